"""The local executor: jobs on warm worker processes of this machine.

A warm worker (scripts/worker.py) is a process of one environment that imports
jwst's pipelines once (5–7 s) and then runs job after job exactly as `strun` would
(stpipe's own command-line entry, in-process): 3–4 s per small exposure instead of
9–10 s for a fresh strun. Workers are keyed by environment and CRDS settings (CRDS
reads them once per process) and recycled after `max_jobs` jobs or above `max_rss`,
since long-lived pipeline processes grow (jwst#8404, jwst#8743).

Where a release cannot start a warm worker, its jobs run one `strun` each, and the
executor says so once. A worker that dies during a job (killed, out of memory) costs
that job one retry in a fresh strun process.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from jwenv import loglines, runner, scripts, strun
from jwenv.schedule import Outcome, Task

READY_TIMEOUT_S = 600
RSS_GROWTH = 1 << 30  # recycle a worker whose RSS grew this much above its start
Note = Callable[[str], None]


@dataclass
class Lane:
    """How the jobs of one environment run: its Python, its run environment."""

    name: str  # the environment's name (for messages)
    jwst_version: str
    python: Path
    environ: Mapping[str, str]
    log: Path  # the workers' own output between jobs
    warm: bool = True
    why_cold: str = ""  # set when warm workers turned out not to work


class WorkerUnavailable(Exception):
    """A worker could not start (the release cannot run one)."""


class WorkerDied(Exception):
    """A worker ended during a job."""


class Worker:
    """One warm worker process and its pipes."""

    def __init__(self, lane: Lane, stderr_log: Path) -> None:
        self.jobs = 0
        self.rss = 0
        stderr_log.parent.mkdir(parents=True, exist_ok=True)
        self._stderr: IO[bytes] = stderr_log.open("ab")
        self.proc = subprocess.Popen(
            [str(lane.python), str(scripts.path("worker"))], env=dict(lane.environ),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True,
            preexec_fn=runner.die_with_parent_preexec())
        ready = self._read(READY_TIMEOUT_S)
        if not ready or not ready.get("ready"):
            self.stop()
            why = loglines.reason(loglines.read(stderr_log), default="no answer")
            raise WorkerUnavailable(why)
        self.info = ready
        self.baseline = int(ready.get("rss") or 0)

    def _read(self, timeout: float | None = None) -> dict[str, Any] | None:
        assert self.proc.stdout is not None
        timer = threading.Timer(timeout, self.proc.kill) if timeout else None
        if timer:
            timer.start()
        try:
            line = self.proc.stdout.readline()
        finally:
            if timer:
                timer.cancel()
        if not line:
            return None
        try:
            value = json.loads(line)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise WorkerDied(f"exit {self.proc.poll()}") from None
        reply = self._read()
        if reply is None:
            code = self.proc.wait()
            raise WorkerDied(f"exit {code}" if code >= 0 else f"killed by signal {-code}")
        self.jobs += 1
        self.rss = int(reply.get("rss") or 0)
        return reply

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()


@dataclass
class LocalExecutor:
    """Runs the plan's jobs (`specs`, by task id) on this machine (see module docstring).

    A spec holds `lane` (a key of `lanes`), `pipeline`, `target`, `output_dir`, `args`,
    `log`, `cwd` and `products`.
    """

    specs: Mapping[str, dict[str, Any]]
    lanes: Mapping[str, Lane]
    max_jobs: int = 20
    max_rss: int | None = None
    note: Note = field(default=lambda _m: None)
    _idle: dict[str, list[Worker]] = field(default_factory=dict, init=False)
    _busy: set[Worker] = field(default_factory=set, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _closed: bool = field(default=False, init=False)

    # -- the Executor protocol ---------------------------------------------------------
    def run(self, task: Task) -> Outcome:
        spec = self.specs[task.id]
        lane = self.lanes[spec["lane"]]
        Path(spec["output_dir"]).mkdir(parents=True, exist_ok=True)
        Path(spec["log"]).parent.mkdir(parents=True, exist_ok=True)
        Path(spec["log"]).write_text("")
        if lane.warm:
            worker = self._borrow(lane)
            if worker is not None:
                try:
                    return self._on_worker(worker, lane, spec)
                except WorkerDied as exc:
                    if self._closed:  # stopped on purpose (interrupted): no retry
                        return Outcome(False, error="interrupted", runner="warm")
                    self.note(f"{lane.name}: the worker running {spec['name']} died "
                              f"({exc}); retrying it once in a fresh process")
        return self._fresh(lane, spec)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = [w for ws in self._idle.values() for w in ws] + list(self._busy)
            self._idle.clear()
        for w in workers:
            with contextlib.suppress(Exception):
                w.proc.kill()
            w.stop()

    # -- warm ----------------------------------------------------------------------------
    def _borrow(self, lane: Lane) -> Worker | None:
        with self._lock:
            idle = self._idle.setdefault(lane.name, [])
            if idle:
                worker = idle.pop()
                self._busy.add(worker)
                return worker
        try:
            worker = Worker(lane, lane.log)
        except (WorkerUnavailable, OSError) as exc:
            with self._lock:
                if lane.warm:
                    lane.warm, lane.why_cold = False, str(exc)
                    self.note(f"{lane.name}: jwst {lane.jwst_version} cannot run a warm "
                              f"worker ({exc}); running one strun per job")
            return None
        with self._lock:
            if self._closed:
                worker.stop()
                return None
            self._busy.add(worker)
        return worker

    def _give_back(self, lane: Lane, worker: Worker) -> None:
        limit = self.max_rss if self.max_rss is not None else worker.baseline + RSS_GROWTH
        recycle = worker.jobs >= self.max_jobs or worker.rss > limit
        with self._lock:
            self._busy.discard(worker)
            if not recycle and not self._closed:
                self._idle.setdefault(lane.name, []).append(worker)
                return
        worker.stop()

    def _on_worker(self, worker: Worker, lane: Lane, spec: dict[str, Any]) -> Outcome:
        request = {"id": spec["id"], "log": spec["log"], "cwd": spec["cwd"],
                   "argv": [f"jwst.pipeline.{spec['pipeline']}", spec["target"],
                            "--output_dir", spec["output_dir"], *spec["args"]]}
        try:
            reply = worker.run(request)
        except WorkerDied:
            with self._lock:
                self._busy.discard(worker)
            worker.stop()
            raise
        self._give_back(lane, worker)
        error = reply.get("error")
        ok = bool(reply.get("ok"))
        if ok:
            error = _missing(spec)
            ok = error is None
        elif error:
            error = _why(spec, error)
        return Outcome(ok, float(reply.get("seconds") or 0.0), reply.get("peak_rss"), error,
                       "warm")

    # -- one strun per job -----------------------------------------------------------------
    def _fresh(self, lane: Lane, spec: dict[str, Any]) -> Outcome:
        cmd = ["strun", f"jwst.pipeline.{spec['pipeline']}", spec["target"],
               "--output_dir", spec["output_dir"], *spec["args"]]
        usage: dict[str, int] = {}
        t0 = time.monotonic()
        try:
            rc = runner.run(cmd, lane.environ, cwd=Path(spec["cwd"]), log=Path(spec["log"]),
                            usage=usage)
        except runner.CommandFailed as exc:
            return Outcome(False, time.monotonic() - t0, None, str(exc), "strun")
        seconds = time.monotonic() - t0
        if rc != 0:
            return Outcome(False, seconds, usage.get("peak_rss"),
                           strun.error_line(Path(spec["log"]), rc), "strun")
        error = _missing(spec)
        return Outcome(error is None, seconds, usage.get("peak_rss"), error, "strun")


def _missing(spec: dict[str, Any]) -> str | None:
    missing = [Path(p).name for p in spec["products"] if not Path(p).is_file()]
    return f"finished but did not write {', '.join(missing)}" if missing else None


def _why(spec: dict[str, Any], error: str) -> str:
    """The log's own reason (CRDS's message first) beats the bare exception."""
    found = strun.error_line(Path(spec["log"]), 1)
    return found if found and not found.startswith("exit ") else error
