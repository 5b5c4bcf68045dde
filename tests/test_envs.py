"""The Env API on the fake jwst (no network)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import BASE_PYTHON, jwenv, strun_report
from jwenv import Env, InstallOptions
from jwenv.crds import LocalCache
from jwenv.errors import BadInput, EnvNotFound, JwenvError
from jwenv.store import Store


def _options(**kw) -> InstallOptions:
    return InstallOptions(python=str(BASE_PYTHON), check="import", **kw)


def test_install_records_everything(fake_wheel):
    env = Env.install(str(fake_wheel), _options(crds_context="jwst_1200.pmap"))
    m = env.manifest
    assert (m.name, m.jwst_version, m.source, m.backend) == ("9.9.9", "9.9.9", "local", "uv")
    assert m.crds_context == "jwst_1200.pmap"
    assert m.python_version == "{}.{}.{}".format(*sys.version_info[:3])
    assert any(p.startswith("jwst @ file://") and p.endswith(".whl") for p in m.packages)
    assert m.health["ok"] and m.health["level"] == "import"
    assert m.strategy == "latest"
    assert (env.path / "jwenv.json").is_file()
    assert [e.name for e in Env.all()] == ["9.9.9"]
    assert list(Store().staging_dir.iterdir()) == []


def test_local_source_directory(fake_source):
    env = Env.install(str(fake_source), _options(name="src-build"))
    assert (env.name, env.manifest.jwst_version) == ("src-build", "9.9.8")


def test_run_environment(installed, tmp_path, monkeypatch):
    env = Env.get(installed)
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    v = env.environ()
    assert v["PATH"].split(os.pathsep)[0] == str(env.bin)
    assert v["VIRTUAL_ENV"] == str(env.path)
    assert v["CRDS_PATH"] == str(Store().crds_dir)
    assert v["CRDS_SERVER_URL"] == "https://jwst-crds.stsci.edu"
    assert "PYTHONPATH" not in v  # a user's PYTHONPATH would leak another env's packages
    assert env.environ(context="jwst_0001.pmap")["CRDS_CONTEXT"] == "jwst_0001.pmap"
    assert env.environ(offline=True)["CRDS_SERVER_URL"].endswith("serverless-mode.stsci.edu")


def test_a_local_crds_cache_replaces_the_crds_settings(installed, tmp_path, monkeypatch):
    monkeypatch.setenv("CRDS_PATH", "/users/own/cache")  # would win without a local cache
    env = Env.get(installed)
    v = env.environ(cache=LocalCache(tmp_path / "crds", "jwst_9000.pmap"))
    assert v["CRDS_PATH"] == str(tmp_path / "crds")
    assert v["CRDS_CONTEXT"] == "jwst_9000.pmap"
    assert v["CRDS_SERVER_URL"].endswith("serverless-mode.stsci.edu")
    assert v["CRDS_IGNORE_MAPPING_CHECKSUM"] == "1"  # hand-written mappings
    assert "CRDS_IGNORE_MAPPING_CHECKSUM" not in env.environ()


def test_a_failing_in_env_script_is_one_line(installed, tmp_path):
    # the fake jwst has no jwst.associations: make_asn fails inside the environment
    with pytest.raises(JwenvError) as err:
        Env.get(installed).run_script("make_asn", "generate", "--out", str(tmp_path / "asn"),
                                      "x_uncal.fits", what="make the associations")
    assert str(err.value) == ("jwst 9.9.9 could not make the associations: "
                              "ModuleNotFoundError: No module named 'jwst.associations'")


def test_cached_reinstall_is_a_no_op(fake_wheel):
    first = Env.install(str(fake_wheel), _options())
    stamp = (first.path / "jwenv.json").stat().st_mtime_ns
    t0 = time.monotonic()
    again = Env.install("9.9.9", _options())
    assert time.monotonic() - t0 < 3.0  # the figure itself: benchmarks/bench_core.py
    assert (again.path / "jwenv.json").stat().st_mtime_ns == stamp
    forced = Env.install(str(fake_wheel), _options(force=True))
    assert (forced.path / "jwenv.json").stat().st_mtime_ns != stamp


def test_pin_and_remove(installed):
    env = Env.get(installed)
    env.pin("1300")
    assert Env.get(installed).context == "jwst_1300.pmap"
    with pytest.raises(BadInput):
        env.pin("nope")
    env.remove()
    with pytest.raises(EnvNotFound, match=r"jwenv install 9\.9\.9"):
        Env.get(installed)


def test_missing_base_interpreter_is_not_reused(installed):
    env = Env.get(installed)
    data = json.loads((env.path / "jwenv.json").read_text())
    data["python_path"] = "/gone/python3.11"
    (env.path / "jwenv.json").write_text(json.dumps(data))
    report = Env.get(installed).check("import")
    assert not report["ok"] and "is gone" in report["checks"][0]["detail"]


def test_concurrent_installs_build_once(fake_wheel):
    args = [sys.executable, "-m", "jwenv", "install", str(fake_wheel), "--python",
            str(BASE_PYTHON), "--check", "import"]
    env = dict(os.environ, FAKE_JWST_IMPORT_SLEEP="2")  # keep the first build busy
    procs = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    cached = [err for _out, err in outs if "already installed" in err]
    assert len(cached) == 1, outs  # the second waited for the lock, then reused
    assert sum(err.count("creating a Python") for _out, err in outs) == 1, outs  # one build
    assert [e.name for e in Env.all()] == ["9.9.9"]
    assert list(Store().staging_dir.iterdir()) == []


def test_killed_install_leaves_nothing_usable(fake_wheel):
    store = Store()
    env = dict(os.environ, FAKE_JWST_IMPORT_SLEEP="60")  # the health check hangs
    proc = subprocess.Popen([sys.executable, "-m", "jwenv", "install", str(fake_wheel),
                             "--python", str(BASE_PYTHON), "--check", "import"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while not list(store.staging_dir.glob("9.9.9@*/env/bin/python")):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    time.sleep(1.0)  # into the install / health check
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert Env.all() == []
    assert jwenv("run", "9.9.9", "--", "strun").returncode != 0
    assert list(store.staging_dir.iterdir())  # the debris is there ...
    Env.install(str(fake_wheel), _options())  # ... until the next install of that name
    assert [p for p in store.staging_dir.iterdir()] == []
    out = jwenv("run", "9.9.9", "--", "strun", "x")
    assert out.returncode == 0 and strun_report(out.stdout)["argv"] == ["x"]


def test_sigterm_during_install_cleans_up(fake_wheel):
    store = Store()
    env = dict(os.environ, FAKE_JWST_IMPORT_SLEEP="60")  # the health check hangs
    proc = subprocess.Popen([sys.executable, "-m", "jwenv", "install", str(fake_wheel),
                             "--python", str(BASE_PYTHON), "--check", "import"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not list(store.staging_dir.glob("9.9.9@*/env/bin/python")):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    time.sleep(1.0)
    proc.terminate()
    assert proc.wait(timeout=30) == 143
    assert Env.all() == []
    assert list(store.staging_dir.iterdir()) == []  # unwound: nothing half-built is left
