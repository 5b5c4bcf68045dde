"""`jwenv reprocess`: a whole program through stages 1-3, under one or more environments.

Each environment gets its own plan (plan.py: the release's own association rules),
its own output directory `DIR/<env>/` with logs in `logs/`, associations in `asn/` and
the resumable record (`jwenv-record.sqlite`, record.py). The jobs of every environment
go to one scheduler (schedule.py) with one budget of slots and memory, run by warm
workers (workers.py). A re-run does only what is not done; one failed exposure stops
only what needs it.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jwenv import crds
from jwenv import plan as planning
from jwenv.crds import LocalCache
from jwenv.envs import Env
from jwenv.errors import BadInput, JwenvError
from jwenv.plan import Grouping, Input, Job
from jwenv.record import FILENAME, Record
from jwenv.schedule import Outcome, Scheduler, Task, human
from jwenv.store import write_json_atomic
from jwenv.workers import Lane, LocalExecutor

Event = Callable[[str, str], None]
GROUPING_FILE = "jwenv-grouping.json"


@dataclass
class EnvPlan:
    """One environment's share of a run."""

    env: Env
    out: Path
    grouping: Grouping | None
    jobs: list[Job]
    stamp: dict[str, Any]  # what every job's products depend on besides its own inputs
    step_args: dict[str, list[str]]  # pipeline -> its --steps.* arguments
    grouping_cache: dict[str, Any] | None = None  # written to out/asn/ when the run starts

    def to_dict(self) -> dict[str, Any]:
        return {"env": self.env.name, "jwst_version": self.env.manifest.jwst_version,
                "output_dir": str(self.out),
                "grouping": self.grouping.to_dict() if self.grouping else None,
                "jobs": [j.to_dict() for j in self.jobs]}


@dataclass
class StageRun:
    stage: int
    pipeline: str
    name: str
    inputs: list[Path]
    products: list[Path]
    log: Path
    state: str = "pending"
    returncode: int | None = None  # 0 done, 1 failed, None not run (skipped, pending)
    seconds: float = 0.0
    up_to_date: bool = False  # done before this run
    error: str | None = None
    peak_rss: int | None = None
    runner: str | None = None
    attempts: int = 0
    made_by: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "pipeline": self.pipeline, "name": self.name,
                "inputs": [str(p) for p in self.inputs],
                "products": [str(p) for p in self.products], "log": str(self.log),
                "state": self.state, "returncode": self.returncode,
                "seconds": round(self.seconds, 2), "up_to_date": self.up_to_date,
                "error": self.error, "peak_rss": self.peak_rss, "runner": self.runner,
                "attempts": self.attempts, "made_by": self.made_by}


@dataclass
class Result:
    env: str
    jwst_version: str
    output_dir: Path
    runs: list[StageRun] = field(default_factory=list)
    error: str | None = None
    grouping: dict[str, Any] | None = None
    record: Path | None = None
    timing: dict[str, float] = field(default_factory=dict)  # the whole run's, seconds

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {"env": self.env, "jwst_version": self.jwst_version,
                "output_dir": str(self.output_dir), "ok": self.ok, "error": self.error,
                "record": str(self.record) if self.record else None,
                "grouping": self.grouping, "timing": self.timing,
                "runs": [r.to_dict() for r in self.runs]}


# -- planning ---------------------------------------------------------------------------------
def pipeline_steps(env: Env) -> dict[str, list[str]]:
    """Step names of each pipeline of this release (cached in the environment)."""
    cache = env.path / "jwenv-steps.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    steps = env.run_script("make_asn", "steps", what="list its pipelines' steps")
    write_json_atomic(cache, steps)
    return steps


def _grouping(env: Env, inputs: list[Input], asn_files: Sequence[Path], out: Path,
              notify: Event) -> tuple[Grouping, dict[str, Any] | None]:
    """The run's associations, and what to keep of them in out/asn/ (written with the
    run: a dry run or a refused run writes nothing)."""
    found = planning.find_association_files(inputs, asn_files)
    if found:
        how = "given" if asn_files else "found beside the inputs"
        grouping = planning.from_files(found, f"{len(found)} association file(s) {how}")
        planning.check_grouping(grouping, inputs)
        return grouping, None
    key = planning.fingerprint([i.path for i in inputs], env.manifest.jwst_version)
    cached = out / "asn" / GROUPING_FILE
    if cached.is_file():
        data = json.loads(cached.read_text())
        if data.get("key") == key:
            return _grouping_from_dict(data["grouping"]), None
    with tempfile.TemporaryDirectory(prefix="jwenv-asn-") as tmp:
        try:
            grouping = planning.from_release(env, inputs, Path(tmp))
        except JwenvError as exc:
            grouping = planning.fallback_grouping(env, inputs, str(exc))
            notify("note", f"{env.name}: {grouping.detail}")
    planning.check_grouping(grouping, inputs)
    return grouping, {"key": key, "grouping": _grouping_to_store(grouping)}


def _grouping_to_store(g: Grouping) -> dict[str, Any]:
    out = g.to_dict()
    for level in ("level2", "level3"):
        for stored, asn in zip(out[level], getattr(g, level), strict=True):
            stored["data"] = asn.data
    return out


def _grouping_from_dict(d: dict[str, Any]) -> Grouping:
    g = Grouping(d["source"], d["detail"])
    g.level2 = [planning.Association(**a) for a in d["level2"]]
    g.level3 = [planning.Association(**a) for a in d["level3"]]
    return g


def _keep_grouping(p: EnvPlan) -> None:
    if p.grouping_cache is not None:
        asn_dir = p.out / "asn"
        asn_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(asn_dir / GROUPING_FILE, p.grouping_cache)
        if p.grouping and p.grouping.pool:
            name, text = p.grouping.pool
            (asn_dir / name).write_text(text)


def make_plan(env: Env, inputs: list[Input], out_root: Path, *, stages: list[int],
              step_args: Sequence[str] = (), asn_files: Sequence[Path] = (),
              context: str | None = None, offline: bool | None = None,
              cache: LocalCache | None = None,
              on_event: Event | None = None) -> EnvPlan:
    """The jobs of `inputs` under `env`, products in out_root/<env name>/. Nothing is
    written: `run_plans` writes what the plan needs."""
    notify = on_event or (lambda _k, _d: None)
    out = out_root / env.name
    steps = planning.split_step_args(step_args)
    names = pipeline_steps(env) if steps else {}
    by_pipeline = {p: [a for step, a in steps if step in names.get(p, [])]
                   for p in {"Detector1Pipeline", "Image2Pipeline", "Image3Pipeline",
                             "Spec2Pipeline", "Spec3Pipeline"}}
    unknown = [a for step, a in steps if not any(step in s for s in names.values())]
    if unknown:
        raise BadInput(f"{unknown[0]}: jwst {env.manifest.jwst_version}'s pipelines have no "
                       "such step")
    grouping = keep = None
    if 2 in stages or 3 in stages:
        grouping, keep = _grouping(env, inputs, asn_files, out, notify)
    jobs = planning.jobs(inputs, grouping, out, stages)
    settings = env.crds_settings(context=context, offline=offline, cache=cache)
    stamp = {"jwst": env.manifest.jwst_version, "context": settings.context,
             "offline": settings.offline}
    return EnvPlan(env, out, grouping, jobs, stamp, by_pipeline, keep)


def job_stamp(p: EnvPlan, job: Job) -> dict[str, Any]:
    """What made (or will make) a job's products: if it changes, the job runs again."""
    doc = hashlib.sha256(json.dumps(job.asn, sort_keys=True).encode()).hexdigest()[:16] \
        if job.asn is not None else None
    return {**p.stamp, "args": p.step_args.get(job.pipeline, []), "asn": doc,
            "inputs": planning.fingerprint(job.given_inputs) if job.given_inputs else None}


# -- running ----------------------------------------------------------------------------------
def _log(out: Path, job: Job) -> Path:
    return out / "logs" / f"stage{job.stage}_{job.name}.log"


def _fresh(job: Job) -> bool:
    products = [p for p in job.products if p.is_file()]
    if len(products) != len(job.products):
        return False
    inputs = [p for p in job.inputs if p.is_file()]
    return not inputs or min(p.stat().st_mtime for p in products) >= \
        max(p.stat().st_mtime for p in inputs)


class _Run:
    """Glue: the plans, their records, the scheduler's callbacks and the results."""

    def __init__(self, plans: Sequence[EnvPlan], notify: Event) -> None:
        self.plans = {p.env.name: p for p in plans}
        self.notify = notify
        self.records = {p.env.name: Record(p.out / FILENAME) for p in plans}
        self.jobs: dict[str, tuple[EnvPlan, Job]] = {}
        self.before: dict[str, str] = {}  # task id -> state when this run started

    def close(self) -> None:
        for r in self.records.values():
            r.close()

    @staticmethod
    def task_id(p: EnvPlan, job: Job) -> str:
        return f"{p.env.name}:{job.id}"

    def sync(self, *, force: bool, retry_failed: bool) -> None:
        for name, p in self.plans.items():
            rec = self.records[name]
            counts = rec.sync([(j.id, name, j.stage, j.name,
                                {**j.to_dict(), "log": str(_log(p.out, j))}, job_stamp(p, j))
                               for j in p.jobs], retry_failed=retry_failed)
            if counts["in_flight"]:
                self.notify("note", f"{name}: {counts['in_flight']} job(s) were running when "
                                    "the last run stopped: they run again")
            rec.set_meta(env=name, jwst_version=p.env.manifest.jwst_version,
                         grouping=p.grouping.to_dict() if p.grouping else None,
                         stamp=p.stamp)
            status = {r.id: r.state for r in rec.rows()}
            for job in p.jobs:  # in plan order, so a job's needs come before it
                if status[job.id] == "done" and (force or not _fresh(job) or any(
                        status.get(n) != "done" for n in job.needs)):
                    status[job.id] = "pending"
                    rec.mark(job.id, "pending")
            for row in rec.rows():
                self.before[f"{name}:{row.id}"] = row.state
            for job in p.jobs:
                self.jobs[self.task_id(p, job)] = (p, job)

    def tasks(self) -> list[Task]:
        out = []
        for tid, (p, job) in self.jobs.items():
            prefix = f"{p.env.name}:"
            out.append(Task(tid, job.memory, f"{p.env.name}/{job.pipeline}",
                            [prefix + n for n in job.needs], [prefix + a for a in job.after]))
        return out

    def states(self) -> dict[str, str]:
        return {tid: ("pending" if s == "running" else s) for tid, s in self.before.items()}

    def specs(self) -> dict[str, dict[str, Any]]:
        out = {}
        for tid, (p, job) in self.jobs.items():
            out[tid] = {"id": tid, "lane": p.env.name, "pipeline": job.pipeline,
                        "name": job.name, "target": str(job.target),
                        "output_dir": str(p.out), "args": p.step_args.get(job.pipeline, []),
                        "log": str(_log(p.out, job)), "cwd": str(p.out),
                        "products": [str(x) for x in job.products]}
        return out

    # -- scheduler callbacks ---------------------------------------------------------------
    def started(self, task: Task, estimate: int) -> None:
        p, job = self.jobs[task.id]
        self.records[p.env.name].start(job.id, log=str(_log(p.out, job)))
        self.notify("start", f"{p.env.name}: stage {job.stage} {job.name}")

    def finished(self, task: Task, outcome: Outcome) -> None:
        p, job = self.jobs[task.id]
        made_by = {**job_stamp(p, job), "runner": outcome.runner} if outcome.ok else None
        rec = self.records[p.env.name]
        rec.finish(job.id, ok=outcome.ok, seconds=outcome.seconds, peak_rss=outcome.peak_rss,
                   error=outcome.error, runner=outcome.runner, made_by=made_by)
        if outcome.ok:
            self.notify("done", f"{p.env.name}: stage {job.stage} {job.name} "
                                f"({outcome.seconds:.0f} s)")
        else:
            self.notify("fail", f"{p.env.name}: stage {job.stage} {job.name}: "
                                f"{outcome.error}; log: {_log(p.out, job)}")

    def skipped(self, task: Task, reason: str) -> None:
        p, job = self.jobs[task.id]
        why = reason.split(":", 1)[-1]
        self.records[p.env.name].mark(job.id, "skipped", f"needs {why}")
        self.notify("skip", f"{p.env.name}: stage {job.stage} {job.name} skipped: needs {why}")

    def warn(self, message: str) -> None:
        self.notify("warn", message)

    def results(self) -> list[Result]:
        out = []
        for name, p in self.plans.items():
            rows = {r.id: r for r in self.records[name].rows()}
            res = Result(name, p.env.manifest.jwst_version, p.out,
                         grouping=p.grouping.to_dict() if p.grouping else None,
                         record=self.records[name].path)
            for job in p.jobs:
                row = rows[job.id]
                tid = self.task_id(p, job)
                # A job skipped or still pending this time keeps its record row's figures
                # from an earlier run: they are not this run's.
                ran = row.state in ("done", "failed")
                res.runs.append(StageRun(
                    job.stage, job.pipeline, job.name, job.inputs,
                    [*job.products, *(x for x in job.optional if x.is_file())],
                    _log(p.out, job), row.state,
                    0 if row.state == "done" else 1 if row.state == "failed" else None,
                    (row.seconds or 0.0) if ran else 0.0,
                    self.before.get(tid) == "done" and row.state == "done",
                    row.error, row.peak_rss if ran else None, row.runner if ran else None,
                    row.attempts, row.made_by if row.state == "done" else None))
            bad = [r for r in res.runs if r.state != "done"]
            if bad:
                first = next((r for r in bad if r.state == "failed"), bad[0])
                res.error = (f"{len(bad)} of {len(res.runs)} jobs not done ("
                             f"{sum(r.state == 'failed' for r in bad)} failed); first: stage "
                             f"{first.stage} {first.name}: {first.error or first.state}")
            out.append(res)
        return out


def run_plans(plans: Sequence[EnvPlan], *, jobs: int, memory: int, force: bool = False,
              retry_failed: bool = False, warm: bool = True,
              context: str | None = None, offline: bool | None = None,
              cache: LocalCache | None = None, on_event: Event | None = None,
              cluster: Any = None, ship_lock: bool = False) -> list[Result]:
    """Run every plan's jobs that are not done, `jobs` at a time within `memory` bytes:
    on this machine, or on a Dask `cluster` (dask_executor.connect) whose workers read
    the CRDS cache read-only and share the store (or, `ship_lock`, build from locks)."""
    notify = on_event or (lambda _k, _d: None)
    if len({p.env.name for p in plans}) != len(plans):
        raise BadInput("the same environment is named twice")
    smallest = min((j for p in plans for j in p.jobs), key=lambda j: j.memory, default=None)
    if smallest is not None and smallest.memory > memory:
        raise BadInput(f"--memory {human(memory)} is smaller than the smallest job "
                       f"(stage {smallest.stage} {smallest.name}: about "
                       f"{human(smallest.memory)})")
    run = _Run(plans, notify)
    executor = None
    try:
        run.sync(force=force, retry_failed=retry_failed)
        for p in plans:
            p.out.mkdir(parents=True, exist_ok=True)
            _keep_grouping(p)
            planning.write_associations(p.jobs)
            crds.prepare_cache(p.env.crds_settings(context=context, offline=offline,
                                                   cache=cache).path)
        if cluster is not None:
            executor = _dask_executor(plans, run.specs(), cluster, ship_lock, context=context,
                                      offline=offline, cache=cache,
                                      note=lambda m: notify("note", m))
        else:
            threads = 1 if jobs > 1 else None
            lanes = {p.env.name: Lane(p.env.name, p.env.manifest.jwst_version, p.env.python,
                                      p.env.environ(context=context, offline=offline,
                                                    cache=cache, threads=threads),
                                      p.out / "logs" / "workers.log", warm=warm)
                     for p in plans}
            executor = LocalExecutor(run.specs(), lanes, note=lambda m: notify("note", m))
        todo = sum(s not in ("done",) for s in run.states().values())
        notify("plan", f"{todo} of {len(run.jobs)} jobs to run, {jobs} at a time within "
                       f"{human(memory)}")
        scheduler = Scheduler(run.tasks(), run.states(), slots=jobs, budget=memory,
                              executor=executor, callbacks=run)
        t0 = time.monotonic()
        scheduler.run()
        timing = {"wall": round(time.monotonic() - t0, 3),
                  "scheduling": round(scheduler.scheduling_seconds, 4)}
        results = run.results()
        for r in results:
            r.timing = timing
        return results
    finally:
        if executor is not None:
            executor.close()
        run.close()


def _dask_executor(plans: Sequence[EnvPlan], specs: dict[str, dict[str, Any]], cluster: Any,
                   ship_lock: bool, *, context: str | None, offline: bool | None,
                   cache: LocalCache | None, note: Callable[[str], None]) -> Any:
    from jwenv.dask_executor import DaskExecutor, Wire
    from jwenv.locks import export_lock

    wires = {}
    for p in plans:
        crds_vars = p.env.crds_settings(context=context, offline=offline,
                                        cache=cache).variables()
        # the cache was filled before (`jwenv crds sync`): many workers only read it
        crds_vars["CRDS_READONLY_CACHE"] = "1"
        wires[p.env.name] = Wire(p.env.name, p.env.manifest.jwst_version,
                                 str(p.env.store.root), crds_vars,
                                 export_lock(p.env.manifest) if ship_lock else None)
    return DaskExecutor(cluster, specs, wires, note)


def reprocess(env: Env, inputs: list[Input], out_root: Path, *, stages: list[int],
              step_args: Sequence[str] = (), force: bool = False,
              context: str | None = None, offline: bool | None = None,
              cache: LocalCache | None = None, jobs: int = 1, memory: int | None = None,
              on_event: Event | None = None, **kwargs: Any) -> Result:
    """One environment: plan and run (see `reprocess_across`)."""
    return reprocess_across([env], inputs, out_root, stages=stages, step_args=step_args,
                            force=force, context=context, offline=offline, cache=cache,
                            jobs=jobs, memory=memory, on_event=on_event, **kwargs)[0]


def reprocess_across(envs: Sequence[Env], inputs: list[Input], out_root: Path, *,
                     stages: list[int], step_args: Sequence[str] = (),
                     asn_files: Sequence[Path] = (), force: bool = False,
                     retry_failed: bool = False, context: str | None = None,
                     offline: bool | None = None, cache: LocalCache | None = None,
                     jobs: int = 1, memory: int | None = None, warm: bool = True,
                     on_event: Event | None = None, cluster: Any = None,
                     ship_lock: bool = False) -> list[Result]:
    """The same inputs under several environments (each into out_root/<env>/), all jobs
    in one schedule."""
    from jwenv.schedule import available_memory

    if len({e.name for e in envs}) != len(envs):
        raise BadInput("the same environment is named twice")
    plans = [make_plan(env, inputs, out_root, stages=stages, step_args=step_args,
                       asn_files=asn_files, context=context, offline=offline, cache=cache,
                       on_event=on_event) for env in envs]
    return run_plans(plans, jobs=jobs, memory=memory or available_memory(), force=force,
                     retry_failed=retry_failed, warm=warm, context=context, offline=offline,
                     cache=cache, on_event=on_event, cluster=cluster, ship_lock=ship_lock)


def product_summary(path: Path) -> str:
    """One line about a product: image size, median and NaN share; catalog row count."""
    try:
        if path.suffix == ".ecsv":
            from astropy.table import Table

            return f"{len(Table.read(path, format='ascii.ecsv'))} sources"
        import numpy as np
        from astropy.io import fits

        with fits.open(path, memmap=True) as hdul:
            if "EXTRACT1D" in hdul:  # a spectrum (x1d, c1d): rows, range, median flux
                spec = hdul["EXTRACT1D"]
                wave, flux = spec.data["WAVELENGTH"], spec.data["FLUX"]
                ok = np.isfinite(wave) & np.isfinite(flux)
                if not ok.any():
                    return f"{len(wave)} rows, no finite flux"
                unit = spec.columns["FLUX"].unit or ""
                return (f"{len(wave)} rows, {wave[ok].min():.4g}–{wave[ok].max():.4g} "
                        f"{spec.columns['WAVELENGTH'].unit or ''}, median flux "
                        f"{np.median(flux[ok]):.4g} {unit}".rstrip())
            sci = hdul["SCI"].data
            unit = hdul["SCI"].header.get("BUNIT", "")
            finite = np.isfinite(sci)
            median = float(np.median(sci[finite])) if finite.any() else float("nan")
            shape = "×".join(str(n) for n in sci.shape)
            filt = hdul[0].header.get("FILTER", "")
            return (f"SCI {shape}, median {median:.4g} {unit}".rstrip()
                    + f", {100 * (1 - finite.mean()):.1f}% NaN"
                    + (f", {filt}" if filt else ""))
    except (OSError, KeyError, ValueError, TypeError) as exc:
        return f"unreadable ({type(exc).__name__})"
