"""`jwenv kernel NAME`: a Jupyter kernelspec whose env is what a run gets.

The unit test registers the fake environment (ipykernel taken as present); the
integration test adds a real ipykernel to 1.20.2 and runs code in the kernel through
jupyter_client, as a notebook server would.
"""

from __future__ import annotations

import json
import os

import pytest

from helpers import cli, jwenv, one_line_error
from jwenv import kernels, packages


@pytest.fixture
def jupyter_dir(tmp_path, monkeypatch):
    where = tmp_path / "jupyter"
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(where))
    return where


def test_kernelspec_carries_the_runs_variables(installed, home, jupyter_dir, monkeypatch):
    monkeypatch.setattr(packages, "has", lambda env, name: True)  # no index here
    assert cli("pin", installed, "jwst_1464.pmap").returncode == 0
    out = cli("kernel", installed)
    assert out.returncode == 0, out.stderr
    spec = json.loads((jupyter_dir / "kernels" / "jwenv-9.9.9" / "kernel.json").read_text())
    assert spec["display_name"] == "jwst 9.9.9 (jwst_1464.pmap)"
    env_dir = home / "envs" / installed
    assert spec["argv"][:3] == [str(env_dir / "bin" / "python"), "-m", "ipykernel_launcher"]
    run_vars = json.loads(cli("env", installed, "--json").stdout)
    for key in ("VIRTUAL_ENV", "PATH", "CRDS_CONTEXT", "CRDS_PATH", "CRDS_SERVER_URL"):
        assert spec["env"][key] == run_vars[key], key
    assert spec["env"]["PYTHONPATH"] == ""

    other = cli("kernel", installed, "--crds-context", "jwst_1413.pmap", "--offline", "--json")
    made = json.loads(other.stdout)
    assert made["name"] == "jwenv-9.9.9-jwst_1413"
    spec = json.loads((jupyter_dir / "kernels" / made["name"] / "kernel.json").read_text())
    assert spec["display_name"] == "jwst 9.9.9 (jwst_1413.pmap)"
    assert spec["env"]["CRDS_CONTEXT"] == "jwst_1413.pmap"
    assert "serverless" in spec["env"]["CRDS_SERVER_URL"]

    (jupyter_dir / "kernels" / "python3").mkdir()  # someone else's: never listed or removed
    (jupyter_dir / "kernels" / "python3" / "kernel.json").write_text('{"argv": []}')
    listed = json.loads(cli("kernel", "list", "--json").stdout)
    assert [k["name"] for k in listed] == ["jwenv-9.9.9", "jwenv-9.9.9-jwst_1413"]
    assert cli("kernel", "remove", "jwenv-9.9.9-jwst_1413").returncode == 0
    assert [k.name for k in kernels.listed()] == ["jwenv-9.9.9"]
    assert cli("remove", installed).returncode == 0  # an environment's kernels go with it
    assert kernels.listed() == []
    assert (jupyter_dir / "kernels" / "python3").is_dir()
    one_line_error(cli("kernel", "remove", installed), "no jwenv kernel of '9.9.9'")
    one_line_error(cli("kernel", "list", "extra"), "usage: jwenv kernel")


def test_data_dir_is_jupyters():
    assert kernels.data_dir({"JUPYTER_DATA_DIR": "/j"}) == kernels.Path("/j")
    assert kernels.data_dir({"HOME": "/h", "XDG_DATA_HOME": "/x"}).as_posix() in (
        "/x/jupyter", "/h/Library/Jupyter")


@pytest.mark.integration
def test_a_real_kernel_runs_jwst_with_the_pinned_context(real_env, real_home, tmp_path,
                                                        monkeypatch):
    import jupyter_client  # noqa: F401  (the test extra has it: fail here if it is missing)
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path))  # where Jupyter looks, here too
    env = real_env("1.20.2")
    environ = dict(os.environ, JWENV_HOME=str(real_home), JUPYTER_DATA_DIR=str(tmp_path))
    for args in ([], ["--crds-context", "jwst_1413.pmap"]):
        out = jwenv("kernel", env.name, *args, "--json", env=environ)
        assert out.returncode == 0, out.stderr
    info = json.loads(jwenv("info", env.name, "--json", env=environ).stdout)
    assert "ipykernel" in info["added"]
    assert any(p.startswith("ipykernel==") for p in info["packages"])

    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import start_new_kernel

    specs = KernelSpecManager()
    assert specs.get_kernel_spec("jwenv-1.20.2").display_name == "jwst 1.20.2 (jwst_1464.pmap)"
    for name, context in (("jwenv-1.20.2", "jwst_1464.pmap"),
                          ("jwenv-1.20.2-jwst_1413", "jwst_1413.pmap")):
        km, kc = start_new_kernel(kernel_name=name, startup_timeout=180)
        try:
            seen: list[str] = []

            def hook(msg, seen=seen):
                if msg["msg_type"] == "stream":
                    seen.append(msg["content"]["text"])

            reply = kc.execute_interactive(
                "import jwst, os; print(jwst.__version__, os.environ['CRDS_CONTEXT'])",
                output_hook=hook, timeout=180)
            assert reply["content"]["status"] == "ok", reply["content"]
            assert "".join(seen).strip() == f"1.20.2 {context}"
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
