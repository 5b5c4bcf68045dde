"""`jwenv reprocess`: a chain of pipeline stages under one environment.

Inputs may start at any level (uncal → stage 1, rate/rateints → 2, cal → 3, or an
association naming its stage). Each stage's products feed the next; stage 2 and 3
associations are made inside the environment with the release's own
`asn_from_list`; every strun is a fresh process with its log kept beside the
products in DIR/<env>/logs/. A stage whose products are newer than its inputs is
skipped unless forced. A failure stops the chain; what was made is kept.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jwenv import strun
from jwenv.crds import LocalCache
from jwenv.envs import Env
from jwenv.errors import BadInput, JwenvError
from jwenv.runner import JsonScript
from jwenv.store import write_json_atomic

Event = Callable[[str, str], None]
SUFFIX_STAGE = {"uncal": 1, "rate": 2, "rateints": 2, "cal": 3}
STAGE_PIPELINES = {1: ("Detector1Pipeline", "Detector1Pipeline"),
                   2: ("Image2Pipeline", "Spec2Pipeline"),
                   3: ("Image3Pipeline", "Spec3Pipeline")}


@dataclass
class Input:
    path: Path
    stage: int  # the first stage this file goes through
    background: bool = False
    exp_type: str = ""

    @property
    def base(self) -> str:
        """The exposure name without its product suffix."""
        return self.path.name.rsplit("_", 1)[0]


@dataclass
class StageRun:
    stage: int
    pipeline: str
    name: str  # exposure base name, or the level-3 product name
    inputs: list[Path]
    products: list[Path]
    log: Path
    returncode: int = 0
    seconds: float = 0.0
    up_to_date: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "pipeline": self.pipeline, "name": self.name,
                "inputs": [str(p) for p in self.inputs],
                "products": [str(p) for p in self.products], "log": str(self.log),
                "returncode": self.returncode, "seconds": round(self.seconds, 2),
                "up_to_date": self.up_to_date}


@dataclass
class Result:
    env: str
    jwst_version: str
    output_dir: Path
    runs: list[StageRun] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {"env": self.env, "jwst_version": self.jwst_version,
                "output_dir": str(self.output_dir), "ok": self.ok, "error": self.error,
                "runs": [r.to_dict() for r in self.runs]}


# -- inputs -------------------------------------------------------------------------
def classify(paths: Sequence[Path]) -> list[Input]:
    """Validate every input before anything is written (one-line errors)."""
    if not paths:
        raise BadInput("no inputs: give *_uncal.fits, *_rate.fits, *_cal.fits or an "
                       "association (.json)")
    found: list[Input] = []
    for raw in paths:
        path = Path(raw).absolute()
        if not path.is_file():
            raise BadInput(f"no such input: {raw}")
        if path.suffix == ".json":
            found += _from_association(path)
        else:
            found.append(_from_fits(path))
    seen: set[Path] = set()
    unique = [i for i in found if not (i.path in seen or seen.add(i.path))]
    return unique


def _from_fits(path: Path, stage: int | None = None, background: bool | None = None) -> Input:
    from astropy.io import fits

    try:
        header = fits.getheader(path, 0)
    except (OSError, ValueError):
        raise BadInput(f"{path.name} is not a FITS file") from None
    if str(header.get("TELESCOP", "")).strip().upper() != "JWST":
        raise BadInput(f"{path.name} is not a JWST product (TELESCOP="
                       f"{header.get('TELESCOP', 'missing')!r})")
    suffix = path.stem.rsplit("_", 1)[-1] if "_" in path.stem else ""
    if stage is None:
        if suffix not in SUFFIX_STAGE:
            raise BadInput(f"cannot tell the stage of {path.name}: expected *_uncal, *_rate, "
                           "*_rateints, *_cal or an association")
        stage = SUFFIX_STAGE[suffix]
    if background is None:
        background = bool(header.get("BKGDTARG", False))
    return Input(path, stage, background, str(header.get("EXP_TYPE", "")))


def _from_association(path: Path) -> list[Input]:
    try:
        asn = json.loads(path.read_text())
        asn_type = str(asn.get("asn_type", "")).lower()
        products = asn.get("products") or []
    except (ValueError, AttributeError):
        raise BadInput(f"{path.name} is not an association (JSON with asn_type and "
                       "products)") from None
    stage = 2 if asn_type.endswith("2") else 3 if asn_type.endswith("3") else None
    if stage is None:
        raise BadInput(f"{path.name}: unknown asn_type {asn_type!r} (image2/spec2/image3/"
                       "spec3)")
    out = []
    for product in products:
        for member in product.get("members", []):
            exptype = str(member.get("exptype", "science")).lower()
            if exptype not in ("science", "background"):
                continue
            member_path = (path.parent / member["expname"]).absolute()
            if not member_path.is_file():
                raise BadInput(f"{path.name} names {member['expname']}, which does not exist")
            out.append(_from_fits(member_path, stage, exptype == "background"))
    if not any(not i.background for i in out):
        raise BadInput(f"{path.name} is an empty association (no science members)")
    return out


def parse_stages(value: str | None, inputs: list[Input]) -> list[int]:
    first = min(i.stage for i in inputs)
    if value is None:
        return list(range(first, 4))
    try:
        stages = sorted({int(s) for s in value.split(",") if s.strip()})
    except ValueError:
        raise BadInput(f"--stages {value!r}: give stage numbers like 1,2,3") from None
    if not stages or any(s not in (1, 2, 3) for s in stages):
        raise BadInput(f"--stages {value!r}: stages are 1, 2 and 3")
    if stages != list(range(stages[0], stages[-1] + 1)):
        raise BadInput(f"--stages {value!r}: stages must be consecutive")
    if stages[0] < first:
        raise BadInput(f"--stages {value!r}: the inputs start at stage {first}")
    return stages


def split_step_args(args: Sequence[str]) -> list[tuple[str, str]]:
    """`--steps.jump.rejection_threshold=5` → ("jump", the arg); anything else is an error."""
    out = []
    for arg in args:
        if not arg.startswith("--steps.") or "=" not in arg or arg.count(".") < 2:
            raise BadInput(f"unexpected argument {arg!r}: pipeline options are "
                           "--steps.STEP.PARAM=VALUE")
        out.append((arg.split(".", 2)[1], arg))
    return out


# -- the chain ------------------------------------------------------------------------
def pipeline_steps(env: Env) -> dict[str, list[str]]:
    """Step names of each pipeline of this release (cached in the environment)."""
    cache = env.path / "jwenv-steps.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    steps = env.run_script("make_asn", "steps", what="list its pipelines' steps")
    write_json_atomic(cache, steps)
    return steps


def _stamp(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _fresh(products: list[Path], inputs: list[Path]) -> bool:
    if not products or not all(p.is_file() for p in [*products, *inputs]):
        return False
    newest_input = max(p.stat().st_mtime for p in inputs)
    return min(p.stat().st_mtime for p in products) >= newest_input


def _pipeline(stage: int, inputs: list[Input]) -> str:
    image, spec = STAGE_PIPELINES[stage]
    science = [i for i in inputs if not i.background] or inputs
    return image if all("IMAGE" in i.exp_type or not i.exp_type for i in science) else spec


def _level3_name(inputs: list[Input]) -> str:
    from astropy.io import fits

    h = fits.getheader(inputs[0].path, 0)
    parts = [f"jw{str(h.get('PROGRAM', '00000')).strip()}-jwenv",
             str(h.get("INSTRUME", "")).strip().lower(),
             "-".join(str(h.get(k, "")).strip().lower() for k in ("PUPIL", "FILTER")
                      if h.get(k)) or "image"]
    return "_".join(p for p in parts if p)


@dataclass
class _Job:
    """One strun invocation of the chain, planned before anything runs."""

    stage: int
    pipeline: str
    name: str
    target: Path  # the file strun is given: an exposure or an association
    needs: list[Path]
    products: list[Path]
    asn: dict[str, Any] | None = None  # how make_asn.py writes `target`, if it is one


def plan_chain(inputs: list[Input], out: Path, stages: list[int]) -> list[_Job]:
    """Every job of the chain, with the paths each stage will produce."""
    jobs: list[_Job] = []
    current = list(inputs)
    # from the inputs given: later stages' products do not exist yet
    level3 = _level3_name([i for i in inputs if not i.background] or inputs)
    for stage in stages:
        todo = [i for i in current if i.stage == stage]
        later = [i for i in current if i.stage > stage]
        if not todo:
            continue
        pipeline = _pipeline(stage, todo)
        made: list[Input] = []
        if stage == 1:
            for item in todo:
                rate = out / f"{item.base}_rate.fits"
                jobs.append(_Job(1, pipeline, item.base, item.path, [item.path], [rate]))
                made.append(Input(rate, 2, item.background, item.exp_type))
        elif stage == 2:
            backgrounds = [i.path for i in todo if i.background]
            for item in (i for i in todo if not i.background):
                # per-integration inputs give per-integration products
                suffix = "calints" if item.path.stem.endswith("_rateints") else "cal"
                cal = out / f"{item.base}_{suffix}.fits"
                asn = out / "asn" / f"{item.base}_image2_asn.json"
                jobs.append(_Job(2, pipeline, item.base, asn, [item.path, *backgrounds], [cal],
                                 {"level": 2, "out": str(asn), "science": str(item.path),
                                  "background": [str(b) for b in backgrounds]}))
                made.append(Input(cal, 3, False, item.exp_type))
        else:
            science = [i for i in todo if not i.background]
            name = level3
            asn = out / "asn" / f"{name}_image3_asn.json"
            if pipeline == "Image3Pipeline":
                products = [out / f"{name}_i2d.fits", out / f"{name}_cat.ecsv"]
            else:  # spectra: the combined 1-D product (untested here: imaging only so far)
                products = [out / f"{name}_x1d.fits"]
            needs = [i.path for i in science]
            jobs.append(_Job(3, pipeline, name, asn, needs, products,
                             {"level": 3, "out": str(asn), "product_name": name,
                              "files": [str(p) for p in needs]}))
        current = made + later
    return jobs


def reprocess(env: Env, inputs: list[Input], out_root: Path, *, stages: list[int],
              step_args: Sequence[str] = (), force: bool = False,
              context: str | None = None, offline: bool | None = None,
              cache: LocalCache | None = None,
              on_event: Event | None = None) -> Result:
    """Run `stages` for `inputs` under `env`; products in out_root/<env name>/.

    `context`/`offline` as for `Env.run`; `cache`: a hand-made local CRDS cache
    (the offline program's) instead of the environment's CRDS settings.
    """
    notify = on_event or (lambda _k, _d: None)
    steps = split_step_args(step_args)
    out = out_root / env.name
    logs = out / "logs"
    result = Result(env.name, env.manifest.jwst_version, out)
    names = pipeline_steps(env) if steps else {}
    out.mkdir(parents=True, exist_ok=True)
    jobs = plan_chain(inputs, out, stages)
    # Associations do not need their members to exist yet: one process, started now,
    # writes them all while stage 1 runs (importing jwst.associations costs ~2 s).
    specs = [j.asn for j in jobs if j.asn is not None]
    asn_maker = _start_associations(env, out / "asn", specs) if specs else None
    effective = env.crds_settings(context=context, offline=offline, cache=cache)
    rerun = force
    try:
        for job in jobs:
            run = StageRun(job.stage, job.pipeline, job.name, job.needs, job.products,
                           logs / f"stage{job.stage}_{job.name}.log")
            result.runs.append(run)
            extra = [a for step, a in steps if step in names.get(job.pipeline, [])]
            stamp = {"jwst": env.manifest.jwst_version, "context": effective.context,
                     "offline": offline, "args": extra}
            stamp_file = logs / f"stage{job.stage}_{job.name}.json"
            if not rerun and _fresh(job.products, job.needs) and _stamp(stamp_file) == stamp:
                run.up_to_date = True
                notify("skip", f"{env.name}: stage {job.stage} {job.name}: up to date")
                continue
            rerun = True  # everything downstream of a re-run is stale too
            if job.asn is not None and asn_maker is not None:
                try:
                    env.finish(asn_maker, "make the associations")
                except JwenvError as exc:
                    result.error = str(exc)
                    notify("fail", f"{env.name}: {result.error}")
                    return result
                asn_maker = None
            stamp_file.unlink(missing_ok=True)
            cmd = ["strun", f"jwst.pipeline.{job.pipeline}", str(job.target),
                   "--output_dir", str(out), *extra]
            notify("start", f"{env.name}: stage {job.stage} {job.name}")
            logs.mkdir(parents=True, exist_ok=True)
            run.log.write_text("")
            t0 = time.monotonic()
            run.returncode = env.run(cmd, context=context, offline=offline, log=run.log,
                                     cwd=out, cache=cache)
            run.seconds = time.monotonic() - t0
            if run.returncode != 0 or not all(p.is_file() for p in job.products):
                result.error = (f"stage {job.stage} ({job.pipeline}) failed for {job.name}: "
                                f"{_why(run)}")
                notify("fail", f"{env.name}: {result.error}; log: {run.log}")
                return result
            write_json_atomic(stamp_file, stamp)  # what made these products
            notify("done", f"{env.name}: stage {job.stage} {job.name} ({run.seconds:.0f} s)")
    finally:
        if asn_maker is not None:
            asn_maker.stop()
    return result


def _start_associations(env: Env, asn_dir: Path, specs: list[dict[str, Any]]) -> JsonScript:
    asn_dir.mkdir(parents=True, exist_ok=True)
    spec_file = asn_dir / "jwenv-asn-spec.json"
    spec_file.write_text(json.dumps(specs, indent=1))
    return env.script("make_asn", "batch", str(spec_file))


def _why(run: StageRun) -> str:
    if run.returncode == 0:
        missing = [p.name for p in run.products if not p.is_file()]
        return f"exited 0 but did not write {', '.join(missing)}"
    return strun.error_line(run.log, run.returncode)


def product_summary(path: Path) -> str:
    """One line about a product: image size, median and NaN share; catalog row count."""
    try:
        if path.suffix == ".ecsv":
            from astropy.table import Table

            return f"{len(Table.read(path, format='ascii.ecsv'))} sources"
        import numpy as np
        from astropy.io import fits

        with fits.open(path, memmap=True) as hdul:
            sci = hdul["SCI"].data
            unit = hdul["SCI"].header.get("BUNIT", "")
            finite = np.isfinite(sci)
            median = float(np.median(sci[finite])) if finite.any() else float("nan")
            shape = "×".join(str(n) for n in sci.shape)
            return (f"SCI {shape}, median {median:.4g} {unit}".rstrip()
                    + f", {100 * (1 - finite.mean()):.1f}% NaN")
    except (OSError, KeyError, ValueError, TypeError) as exc:
        return f"unreadable ({type(exc).__name__})"


def reprocess_across(envs: Sequence[Env], inputs: list[Input], out_root: Path, *,
                     jobs: int = 1, **kwargs: Any) -> list[Result]:
    """The same chain under several environments (each into out_root/<env>/)."""
    from concurrent.futures import ThreadPoolExecutor

    if len({e.name for e in envs}) != len(envs):
        raise BadInput("the same environment is named twice")
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(lambda env: reprocess(env, inputs, out_root, **kwargs), envs))
