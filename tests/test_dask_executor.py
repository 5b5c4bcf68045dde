"""dask_executor: the same plan on a Dask cluster (fake release; a LocalCluster here)."""

from __future__ import annotations

import builtins
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import archive_env, cli, jwenv, one_line_error
from helpers import program as fake_program
from jwenv import dask_executor
from jwenv.errors import BadInput
from jwenv.record import Record


def _run(installed, files, out, *args):
    res = cli("reprocess", installed, *map(str, files), "-o", str(out), "--json", *args)
    return res, (json.loads(res.stdout) if res.stdout.strip() else None)


def _products(out):
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.fits"))}


def test_the_plan_on_a_local_cluster_makes_what_the_local_executor_makes(installed,
                                                                         tmp_path):
    files = fake_program(tmp_path / "in")
    local, _ = _run(installed, files, tmp_path / "local", "-j", "2")
    assert local.returncode == 0, local.stderr
    res, data = _run(installed, files, tmp_path / "dask", "--executor", "dask",
                     "--dask-workers", "2")
    assert res.returncode == 0, res.stderr
    runs = data["results"][0]["runs"]
    assert {r["state"] for r in runs} == {"done"} and len(runs) == 21
    assert {r["runner"] for r in runs} == {"dask/warm"}
    assert "dask workers share the store" in res.stderr
    assert _products(tmp_path / "dask" / installed) == _products(tmp_path / "local" / installed)


def test_ship_lock_builds_the_environment_in_the_workers_own_store(installed, tmp_path):
    import distributed  # in the [test] extra

    second = tmp_path / "worker-home"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None,
                                  env={"JWENV_HOME": str(second), "UV_OFFLINE": "1"}) as c:
        files = fake_program(tmp_path / "in")[:2]
        res, data = _run(installed, files, tmp_path / "out", "--stages", "1", "--executor",
                         "dask", "--scheduler", c.scheduler_address, "--ship-lock")
    assert res.returncode == 0, res.stderr
    assert f"built {installed} from its lock in {second}" in res.stderr
    manifest = json.loads((second / "envs" / installed / "jwenv.json").read_text())
    assert manifest["strategy"] == "lock"
    assert {r["runner"] for r in data["results"][0]["runs"]} == {"dask/warm"}
    assert len(list((tmp_path / "out" / installed).glob("*_rate.fits"))) == 2


def test_dask_errors_are_one_line(installed, tmp_path, monkeypatch):
    files = fake_program(tmp_path / "in")[:1]
    args = ["reprocess", installed, *map(str, files), "-o", str(tmp_path / "o"),
            "--stages", "1", "--executor", "dask"]
    one_line_error(cli(*args, "--scheduler", "tcp://127.0.0.1:9"),
                   "cannot reach the Dask scheduler at tcp://127.0.0.1:9")
    one_line_error(cli(*args[:-2], "--scheduler", "tcp://127.0.0.1:9"),
                   "--scheduler and --scheduler-file go with --executor dask")
    real_import = builtins.__import__

    def no_dask(name, *a, **kw):
        if name == "distributed":
            raise ImportError("no distributed")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    one_line_error(cli(*args), "pip install 'jwenv[dask]'")


def test_a_worker_without_the_environment_says_how_to_give_it(tmp_path):
    wire = dask_executor.Wire("1.20.2", "1.20.2", str(tmp_path / "nowhere"), {})
    with pytest.raises(BadInput, match=r"has no environment 1\.20\.2: share the store .* "
                                       r"or use --ship-lock"):
        dask_executor._environment(wire)


# -- real releases (integration) -----------------------------------------------------------
def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.mark.integration
def test_the_whole_program_on_dask_survives_a_killed_worker(real_env, real_home,
                                                           whole_program, tmp_path):
    """The whole offline program under 3.0.0 on a LocalCluster of 2 workers, one of them
    killed mid-run: the same products as the local executor, every job done once."""
    real_env("3.0.0")
    env = archive_env(real_home, whole_program)
    common = ["reprocess", "3.0.0", *map(str, whole_program.uncal), "--offline",
              "--crds-context", whole_program.context]
    local = jwenv(*common, "-o", str(tmp_path / "local"), "-j", "2", env=env)
    assert local.returncode == 0, local.stderr[-3000:]
    out = tmp_path / "dask"
    proc = subprocess.Popen([sys.executable, "-m", "jwenv", *common, "-o", str(out),
                             "--executor", "dask", "--dask-workers", "2"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    record = out / "3.0.0" / "jwenv-record.sqlite"
    deadline, killed = time.monotonic() + 900, None
    while killed is None:
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
        if record.is_file():
            with Record(record) as rec:
                counts = rec.counts()
            if counts["done"] >= 3 and counts["running"] >= 1:
                # a dask worker process running one of our warm workers (worker.py)
                busy = [w for w in _children(proc.pid)
                        if any("worker.py" in _cmdline(c) for c in _children(w))]
                if busy:
                    killed = busy[0]
                    os.kill(killed, signal.SIGKILL)
        time.sleep(0.3)
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    with Record(record) as rec:
        rows = rec.rows()
    assert {r.state for r in rows} == {"done"} and {r.attempts for r in rows} == {1}
    with Record(tmp_path / "local" / "3.0.0" / "jwenv-record.sqlite") as rec:
        assert sorted(r.id for r in rec.rows()) == sorted(r.id for r in rows)
    diff = jwenv("diff", str(tmp_path / "local" / "3.0.0"), str(out / "3.0.0"), "--json")
    assert diff.returncode == 0, diff.stdout[-3000:]


@pytest.mark.integration
def test_crds_sync_offline_names_a_missing_reference(real_env, real_home, whole_program,
                                                     tmp_path):
    real_env("3.0.0")
    cache = tmp_path / "crds"
    shutil.copytree(whole_program.crds_path, cache)
    env = dict(archive_env(real_home, whole_program), CRDS_PATH=str(cache))
    ok = jwenv("crds", "sync", "3.0.0", *map(str, whole_program.uncal), "--context",
               whole_program.context, "--offline", "--json", env=env)
    assert ok.returncode == 0, ok.stderr[-2000:]
    report = json.loads(ok.stdout)
    assert report["ok"] and report["missing"] == [] and len(report["needed"]) > 10
    gone = next(n for n in report["needed"] if "_flat_" in n)
    (cache / "references" / "jwst" / "nircam" / gone).unlink()
    bad = jwenv("crds", "sync", "3.0.0", *map(str, whole_program.uncal), "--context",
                whole_program.context, "--offline", env=env)
    line = one_line_error(bad, gone, "missing from")
    assert line.startswith("jwenv: error: 1 of ")
