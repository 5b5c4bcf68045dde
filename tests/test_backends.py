"""backends: uv and virtualenv+pip carry out a plan (fake jwst, offline)."""

from __future__ import annotations

import os
import sys

import pytest

from helpers import BASE_PYTHON
from jwenv.backends import Backend, InstallPlan, UvBackend, VirtualenvBackend, get_backend
from jwenv.errors import BadInput


def test_get_backend():
    assert isinstance(get_backend("uv"), UvBackend)
    assert isinstance(get_backend("virtualenv"), VirtualenvBackend)
    with pytest.raises(BadInput, match="unknown backend 'conda'"):
        get_backend("conda")
    with pytest.raises(TypeError):
        Backend()  # abstract: a backend must implement create, install and freeze


def test_plan_files_hold_what_the_plan_says(tmp_path):
    plan = InstallPlan("ops", ["jwst==1.0"], constraints=["numpy==1.2"],
                       only_binary=["numpy"])
    files = plan.write_files(tmp_path)
    assert set(files) == {"requirements", "constraints"}  # nothing for an empty list
    assert files["constraints"].read_text() == "numpy==1.2\n"
    assert plan.to_dict()["only_binary"] == ["numpy"]


def test_base_env_drops_other_pythons(monkeypatch):
    monkeypatch.setenv("VIRTUAL_ENV", "/some/venv")
    monkeypatch.setenv("PYTHONPATH", "/x")
    env = Backend.base_env()
    assert "VIRTUAL_ENV" not in env and "PYTHONPATH" not in env


def test_uv_creates_installs_and_freezes(tmp_path, fake_wheel):
    uv = UvBackend()
    env_dir, log = tmp_path / "env", tmp_path / "install.log"
    uv.create(env_dir=env_dir, python=BASE_PYTHON, log=log)
    lines: list[str] = []
    uv.install(env_dir=env_dir, plan=InstallPlan("latest", [f"jwst @ {fake_wheel.as_uri()}"]),
               log=log, on_line=lines.append)
    assert lines and log.read_text().count("$ ") == 2  # both commands are in the log
    frozen = uv.freeze(env_dir=env_dir)
    assert frozen == [f"jwst @ {fake_wheel.as_uri()}"]


def test_uv_dry_run_says_no_to_what_cannot_resolve(tmp_path, fake_wheel):
    uv = UvBackend()
    ok = InstallPlan("latest", [f"jwst @ {fake_wheel.as_uri()}"])
    impossible = InstallPlan("latest", [f"jwst @ {fake_wheel.as_uri()}", "numpy==1.0"],
                             only_binary=["numpy"])  # offline here, and no such wheel anyway
    assert uv.can_resolve(python=BASE_PYTHON, plan=ok, log=tmp_path / "a.log")
    assert not uv.can_resolve(python=BASE_PYTHON, plan=impossible, log=tmp_path / "b.log")


def test_virtualenv_finalize_points_scripts_at_the_final_path(tmp_path):
    staging, final = tmp_path / "staging" / "env", tmp_path / "envs" / "x"
    (staging / "bin").mkdir(parents=True)
    script = staging / "bin" / "strun"
    script.write_text(f"#!{staging}/bin/python\nimport x\n")
    activate = staging / "bin" / "activate"
    activate.write_text("# header\n" + "x" * 5000 + f"\nVIRTUAL_ENV='{staging}'\n")
    VirtualenvBackend().finalize(staging=staging, final=final)
    assert script.read_text().startswith(f"#!{final}/bin/python\n")
    assert f"VIRTUAL_ENV='{final}'" in activate.read_text()


def test_a_missing_interpreter_is_one_clear_error(tmp_path):
    from jwenv.errors import NoInterpreter

    with pytest.raises(NoInterpreter, match="uv could not create a venv"):
        UvBackend().create(env_dir=tmp_path / "env", python=tmp_path / "python9.9",
                           log=tmp_path / "log")
    assert os.environ.get("UV_OFFLINE") == "1" and sys.executable  # unit tests stay offline


def test_per_package_build_settings_and_overrides_go_to_uv(tmp_path):
    plan = InstallPlan("dated", ["jwst @ git+file:///m@0.14.2"], overrides=["asdf==2.4.2"],
                       build_requirements={"jwst": ["numpy", "astropy"]},
                       build_variables={"jwst": {"SETUPTOOLS_SCM_PRETEND_VERSION": "1.0+gab"}})
    files = plan.write_files(tmp_path)
    assert files["overrides"].read_text() == "asdf==2.4.2\n"
    import tomllib

    config = tomllib.loads(files["uv-config"].read_text())["pip"]
    assert config["extra-build-dependencies"] == {"jwst": ["numpy", "astropy"]}
    assert config["extra-build-variables"] == {
        "jwst": {"SETUPTOOLS_SCM_PRETEND_VERSION": "1.0+gab"}}
    args = UvBackend()._plan_args(plan, files)
    assert args[args.index("--overrides") + 1] == str(files["overrides"])
    assert args[args.index("--config-file") + 1] == str(files["uv-config"])
    d = plan.to_dict()
    assert d["overrides"] == ["asdf==2.4.2"] and d["build_requirements"]["jwst"]


def test_pip_refuses_what_it_cannot_express(tmp_path):
    from jwenv.errors import InstallFailed

    plan = InstallPlan("dated", ["jwst"], overrides=["asdf==2.4.2"])
    with pytest.raises(InstallFailed, match="use --backend uv"):
        VirtualenvBackend().install(env_dir=tmp_path / "env", plan=plan, log=tmp_path / "l")
