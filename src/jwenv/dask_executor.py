"""The plan's jobs on a Dask `distributed` cluster (`--executor dask`).

The scheduler (schedule.py) and the record (record.py) stay on the submitting machine;
this executor hands each ready job to the cluster and returns its outcome, which the
submitter records. On the worker, a job runs exactly as it does locally: on a warm
worker process of its environment (workers.LocalExecutor, one per environment and dask
worker process, kept between tasks). Dask reruns the tasks of a worker that is lost.

A worker needs the environment, in one of two ways:
- it shares the store (JWENV_HOME) over a shared file system: the environment is
  found at the submitter's path;
- with `--ship-lock`, it builds the environment from its exact lock into its own store
  on first use (the installer's per-name lock makes concurrent tasks build it once).

Memory: jobs ask for their estimate as the `MEMORY` resource of a worker (the
LocalCluster jwenv starts declares it; `dask worker --resources MEMORY=16e9` on a real
cluster), so the cluster places them by memory. Dask is optional: `pip install
'jwenv[dask]'`.
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from jwenv.errors import BadInput
from jwenv.schedule import Outcome, Task

EXTRA = "pip install 'jwenv[dask]'"
MEMORY = "MEMORY"  # the worker resource jobs ask for


@dataclass(frozen=True)
class Wire:
    """What a dask worker needs to run one environment's jobs (picklable)."""

    name: str  # environment name
    jwst_version: str
    home: str  # the submitter's store root: shared when workers see the same path
    variables: dict[str, str]  # CRDS variables etc. (the cache must be shared too)
    lock: str | None = None  # the environment's exact lock, with --ship-lock
    threads: int | None = 1


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise BadInput(f"--executor dask needs Dask's distributed: {EXTRA}") from None
    return distributed


@dataclass
class Cluster:
    client: Any
    cluster: Any | None  # a LocalCluster jwenv started (closed with `close`)
    workers: int
    threads: int
    memory: int  # bytes, the workers' memory limits summed (0: unknown)
    memory_resource: bool  # every worker declares MEMORY

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


# A LocalCluster shares this machine's cores with the jobs: its workers only hand jobs to
# our warm workers, so they need neither dask's stack-sampling profiler (every 10 ms) nor
# its fast ticks and monitors. These cost ~10 % of a 2-core run (benchmarks/bench_dask.py).
QUIET_WORKERS = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "500ms",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
}


def connect(*, address: str | None = None, scheduler_file: Path | None = None,
            workers: int = 2, memory_per_worker: int | None = None) -> Cluster:
    """A client of an existing scheduler, or of a LocalCluster jwenv starts."""
    distributed = _distributed()
    cluster = None
    try:
        if address:
            client = distributed.Client(address, timeout="10s")
        elif scheduler_file:
            if not Path(scheduler_file).is_file():
                raise BadInput(f"no such scheduler file: {scheduler_file}")
            client = distributed.Client(scheduler_file=str(scheduler_file), timeout="10s")
        else:
            kw: dict[str, Any] = {"n_workers": workers, "threads_per_worker": 1,
                                  "processes": True, "dashboard_address": None}
            if memory_per_worker:
                kw["memory_limit"] = memory_per_worker
                kw["resources"] = {MEMORY: memory_per_worker}
            import dask

            with dask.config.set(QUIET_WORKERS):  # the workers get this config too
                cluster = distributed.LocalCluster(**kw)
            client = distributed.Client(cluster)
    except (OSError, TimeoutError) as exc:
        where = address or scheduler_file
        raise BadInput(f"cannot reach the Dask scheduler at {where} "
                       f"({' '.join(str(exc).split())[:200]})") from None
    info = client.scheduler_info()["workers"]
    return Cluster(client, cluster, len(info),
                   sum(int(w.get("nthreads", 1)) for w in info.values()),
                   sum(int(w.get("memory_limit") or 0) for w in info.values()),
                   bool(info) and all(MEMORY in (w.get("resources") or {})
                                      for w in info.values()))


class DaskExecutor:
    """schedule.Executor on a Dask cluster (see the module docstring)."""

    def __init__(self, cluster: Cluster, specs: Mapping[str, dict[str, Any]],
                 wires: Mapping[str, Wire], note: Callable[[str], None]) -> None:
        self.cluster = cluster
        self.specs = specs
        self.wires = wires
        self.note = note
        self._said: set[str] = set()
        self._lock = threading.Lock()

    def run(self, task: Task) -> Outcome:
        spec = self.specs[task.id]
        wire = self.wires[spec["lane"]]
        resources = None
        if self.cluster.memory_resource:
            resources = {MEMORY: task.memory}
        future = self.cluster.client.submit(
            run_on_worker, spec, wire, key=f"jwenv-{task.id}-{uuid.uuid4().hex[:8]}",
            resources=resources, pure=False)
        try:
            result = future.result()
        except Exception as exc:  # KilledWorker after dask's retries, a lost scheduler
            return Outcome(False, error=f"{type(exc).__name__}: {' '.join(str(exc).split())}"
                           [:300], runner="dask")
        for line in result.pop("notes", []):
            with self._lock:
                if line not in self._said:
                    self._said.add(line)
                    self.note(line)
        return Outcome(**result)

    def close(self) -> None:
        pass  # the cluster is the caller's to close


# -- on the worker ----------------------------------------------------------------------
_EXECUTORS: dict[str, Any] = {}  # per dask worker process: one per environment
_NOTES: list[str] = []  # what the worker-side executors had to say, until returned
_GUARD = threading.Lock()


def run_on_worker(spec: dict[str, Any], wire: Wire) -> dict[str, Any]:
    """One job, on a dask worker: the environment (shared or built from its lock), then
    a warm worker of it, as locally. Returns Outcome's fields (+ "notes")."""
    from jwenv.workers import Lane, LocalExecutor

    notes: list[str] = []
    try:
        env, how = _environment(wire)
    except Exception as exc:
        return {**asdict(Outcome(False, error=str(exc), runner="dask")), "notes": notes}
    notes.append(how)
    key = f"{wire.name}@{env.path}"
    with _GUARD:
        executor = _EXECUTORS.get(key)
        if executor is None:
            from jwenv.runner import run_environ

            environ = run_environ(env.path, {**wire.variables, "JWENV_ENV": env.name},
                                  threads=wire.threads)
            # dask's nanny sets it for its own worker process (distributed.nanny.pre-spawn-
            # environ); inherited by the pipeline it makes glibc give memory back on every
            # free, and jobs run ~10 % slower (benchmarks/bench_dask.py)
            environ.pop("MALLOC_TRIM_THRESHOLD_", None)
            lane = Lane(wire.name, wire.jwst_version, env.python, environ,
                        Path(spec["log"]).parent / f"workers-{socket.gethostname()}.log")
            executor = _EXECUTORS[key] = LocalExecutor({}, {wire.name: lane},
                                                       note=_NOTES.append)
    executor.specs[spec["id"]] = spec  # type: ignore[index]
    outcome = executor.run(Task(spec["id"], 0))
    with _GUARD:
        notes += _NOTES
        _NOTES.clear()
    return {**asdict(outcome), "runner": f"dask/{outcome.runner}", "notes": notes}


def _environment(wire: Wire) -> tuple[Any, str]:
    from jwenv.envs import Env
    from jwenv.store import Store

    host = socket.gethostname()
    if wire.lock is None:
        shared = Store(Path(wire.home), Path(wire.home) / "cache")
        manifest = shared.read_manifest(wire.name)
        if manifest is None or not shared.usable(manifest):
            raise BadInput(f"worker {host} has no environment {wire.name}: share the store "
                           f"{wire.home} with the workers, or use --ship-lock")
        return Env(shared, manifest), (f"dask workers share the store {wire.home} "
                                       f"(environment {wire.name})")
    own = Store()  # the worker's own (its JWENV_HOME)
    manifest = own.read_manifest(wire.name)
    if manifest is not None and own.usable(manifest):
        return Env(own, manifest), f"worker {host} uses its own {wire.name} in {own.root}"
    import tempfile

    from jwenv.installer import InstallOptions

    with tempfile.TemporaryDirectory(prefix="jwenv-lock-") as tmp:
        lock = Path(tmp) / f"{wire.name}.lock"
        lock.write_text(wire.lock)
        env = Env.install(f"lock:{lock}", InstallOptions(name=wire.name, lock=lock,
                                                         check="import"), store=own)
    return env, f"worker {host} built {wire.name} from its lock in {own.root}"
