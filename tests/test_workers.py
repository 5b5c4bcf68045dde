"""workers: warm worker processes on the fake release (its stpipe runs the fake strun)."""

from __future__ import annotations

from pathlib import Path

from helpers import exposure
from jwenv import Env
from jwenv.schedule import Task
from jwenv.workers import Lane, LocalExecutor, Worker


def _setup(installed: str, tmp_path: Path, names: list[str], **kw):
    env = Env.get(installed)
    lane = Lane(env.name, env.manifest.jwst_version, env.python, env.environ(threads=1),
                tmp_path / "out" / "logs" / "workers.log")
    specs = {}
    for i, det in enumerate(names):
        uncal = exposure(tmp_path / "in", 1, i + 1, detector=det)
        base = uncal.name.removesuffix("_uncal.fits")
        specs[base] = {"id": base, "lane": env.name, "pipeline": "Detector1Pipeline",
                       "name": base, "target": str(uncal), "output_dir": str(tmp_path / "out"),
                       "args": [], "log": str(tmp_path / "out" / "logs" / f"{base}.log"),
                       "cwd": str(tmp_path / "out"),
                       "products": [str(tmp_path / "out" / f"{base}_rate.fits")]}
    return LocalExecutor(specs, {env.name: lane}, **kw), specs


def test_a_worker_serves_many_jobs_and_is_recycled(installed, tmp_path):
    executor, specs = _setup(installed, tmp_path, ["NRCB1", "NRCB2", "NRCB3"], max_jobs=2)
    idle = []  # the idle workers' pids after each job
    try:
        for job_id in specs:
            outcome = executor.run(Task(job_id, 1))
            assert outcome.ok and outcome.runner == "warm", outcome
            assert outcome.peak_rss and outcome.peak_rss > 1 << 20
            idle.append([w.proc.pid for w in executor._idle.get(installed, [])])
    finally:
        executor.close()
    # job 1's worker serves job 2, then retires (max_jobs=2); job 3 gets a new one
    assert len(idle[0]) == 1 and idle[1] == [] and len(idle[2]) == 1
    assert idle[2] != idle[0]
    assert all(Path(s["products"][0]).is_file() for s in specs.values())
    assert executor._idle == {}


def test_a_failed_job_reports_the_logs_reason_and_the_worker_serves_on(installed, tmp_path):
    executor, specs = _setup(installed, tmp_path, ["NRCBAD", "NRCB1"])
    try:
        bad, good = (executor.run(Task(j, 1)) for j in specs)
    finally:
        executor.close()
    assert not bad.ok and bad.error == "ValueError: this exposure is broken"
    assert good.ok and good.runner == "warm"


def test_a_release_without_workers_runs_one_strun_per_job(installed, tmp_path):
    notes: list[str] = []
    executor, specs = _setup(installed, tmp_path, ["NRCB1", "NRCB2"], note=notes.append)
    lane = next(iter(executor.lanes.values()))
    lane.python = Path("/bin/false")  # a "python" that cannot start a worker
    try:
        outcomes = [executor.run(Task(j, 1)) for j in specs]
    finally:
        executor.close()
    assert [o.runner for o in outcomes] == ["strun", "strun"] and all(o.ok for o in outcomes)
    assert len(notes) == 1 and "cannot run a warm worker" in notes[0]
    assert "running one strun per job" in notes[0]


def test_worker_start_reports_its_import(installed, tmp_path):
    env = Env.get(installed)
    lane = Lane(env.name, "9.9.9", env.python, env.environ(), tmp_path / "w.log")
    worker = Worker(lane, lane.log)
    try:
        assert worker.info["ready"] and worker.info["jwst"] == "9.9.9"
        assert worker.baseline > 0
    finally:
        worker.stop()
    assert worker.proc.returncode == 0
