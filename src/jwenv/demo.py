"""`jwenv demo`: the whole chain on a fresh machine, with no network but PyPI.

Installs two releases, generates a synthetic NIRCam imaging program (two dithered
exposures and a background) and a local CRDS context inside the older one (files
written by an older datamodels load in a newer release; the reverse is not
guaranteed), runs Detector1 → Image2 → Image3 under each, offline, into separate
directories, and compares every product level.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.version import Version

from jwenv import offline, releases
from jwenv.envs import Env, InstallOptions
from jwenv.errors import BadInput, JwenvError
from jwenv.store import Store

Event = Callable[[str, str], None]


def default_versions(index: releases.Index) -> list[str]:
    """The newest release of each of the two newest minor lines (e.g. 3.0.0 and 2.0.1)."""
    newest: dict[tuple[int, int], Version] = {}
    for rel in index.sorted():
        if rel.on_pypi and not rel.yanked and not rel.version.is_prerelease:
            newest[rel.version.release[:2]] = rel.version
    lines = sorted(newest)[-2:]
    return [str(newest[line]) for line in lines]


@dataclass
class Program:
    """What the generator made (its JSON report)."""

    root: Path
    context: str
    crds_path: Path
    uncal: list[Path]
    strun_args: list[str] = field(default_factory=list)
    skipped_steps: list[str] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)

    def crds_env(self) -> dict[str, str]:
        return {**offline.OFFLINE_CRDS_ENV, "CRDS_PATH": str(self.crds_path),
                "CRDS_CONTEXT": self.context}


def generate(env: Env, out: Path, *, program: bool = False, size: int | None = None) -> Program:
    """Run the offline generator with the environment's own Python.

    `program=True` makes the three-exposure program for the stage 1→3 chain;
    otherwise one small exposure for Detector1.
    """
    out.mkdir(parents=True, exist_ok=True)
    args = ["--out", str(out)]
    if program:
        args.append("--program")
    if size is not None:
        args += ["--size", str(size)]
    report = env.run_script(offline.SCRIPT, *args, what="run the offline generator")
    return Program(root=out, context=report["context"], crds_path=Path(report["crds_path"]),
                   uncal=[Path(p) for p in report["uncal"]],
                   strun_args=list(report.get("strun_args", [])),
                   skipped_steps=list(report.get("skipped_steps", [])), report=report)


def prepare(envs: list[Env], out: Path, *, program: bool = False,
            size: int | None = None) -> Program:
    """Inputs every env can read: made by the oldest, mappings topped up by the others."""
    ordered = sorted(envs, key=lambda e: Version(e.manifest.jwst_version))
    made = generate(ordered[0], out, program=program, size=size)
    for env in ordered[1:]:
        env.run_script(offline.SCRIPT, "--out", str(out), "--extend",
                       what="extend the local CRDS mappings")
    return made


@dataclass
class DemoResult:
    root: Path
    envs: list[str]
    program: Program
    results: list[Any]  # jwenv.reprocess.Result, one per release
    comparison: Any  # jwenv.compare.Comparison of every product level
    seconds: dict[str, float]


def run_demo(out: Path, versions: list[str] | None = None, *, store: Store | None = None,
             jobs: int = 2, on_event: Event | None = None) -> DemoResult:
    """Install, generate the offline program, run stages 1-3 under each release, compare."""
    from jwenv import compare, reprocess

    notify = on_event or (lambda _e, _d: None)
    store = store or Store()
    timings: dict[str, float] = {}
    if versions is None:
        notify("phase", "reading the jwst release list")
        versions = default_versions(releases.load_index(store.index_dir))
    if len(versions) < 2:
        raise BadInput("the demo compares two releases: give --versions A,B")
    envs: list[Env] = []
    for spec in versions:
        t0 = time.monotonic()
        notify("phase", f"installing jwst {spec}")
        envs.append(Env.install(spec, InstallOptions(), store=store,
                                progress=lambda e, d: notify("install", d)))
        timings[f"install {envs[-1].name}"] = time.monotonic() - t0
    oldest = min(envs, key=lambda e: Version(e.manifest.jwst_version))
    t0 = time.monotonic()
    notify("phase", f"generating a 3-exposure NIRCam program and a local CRDS context with "
                    f"jwst {oldest.manifest.jwst_version}")
    program = prepare(envs, out / "program", program=True)
    timings["generate"] = time.monotonic() - t0
    t0 = time.monotonic()
    notify("phase", f"running Detector1 → Image2 → Image3 under "
                    f"{' and '.join(e.name for e in envs)} (offline)")
    items = reprocess.classify(program.uncal)
    results = reprocess.reprocess_across(
        envs, items, out / "runs", jobs=jobs, stages=[1, 2, 3], force=True,
        context=program.context, offline=True, extra_env=program.crds_env(),
        on_event=lambda e, d: notify(f"run-{e}", d))
    timings["pipelines"] = time.monotonic() - t0
    failed = [r for r in results if not r.ok]
    if failed:
        raise JwenvError(f"{failed[0].env}: {failed[0].error}")
    notify("phase", "comparing every product level (rate, cal, i2d, catalog)")
    t0 = time.monotonic()
    comparison = compare.compare_paths(results[0].output_dir, results[1].output_dir)
    timings["compare"] = time.monotonic() - t0
    return DemoResult(out, [e.name for e in envs], program, results, comparison, timings)


def default_out() -> Path:
    return Path(os.environ.get("JWENV_DEMO_DIR", Path.cwd() / "jwenv-demo"))


def match_truth(catalog: Path, truth: Path, tol_arcsec: float = 0.05) -> dict[str, Any]:
    """How many injected sources the stage-3 catalog found within `tol_arcsec`."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.table import Table

    found = Table.read(catalog, format="ascii.ecsv")["sky_centroid"]
    t = Table.read(truth, format="ascii.ecsv")
    injected = SkyCoord(t["ra"], t["dec"], unit="deg")
    # nearest catalog source per injected one (brute force: no scipy needed)
    sep = injected[:, None].separation(found[None, :]).to(u.arcsec).min(axis=1).value
    return {"injected": len(t), "catalog": len(found),
            "recovered": int((sep < tol_arcsec).sum()), "worst_arcsec": float(sep.max()),
            "tolerance_arcsec": tol_arcsec}


def chain_check(env: Env, workdir: Path, on_event: Event | None = None) -> dict[str, Any]:
    """`jwenv doctor --deep`: the offline program through stages 1-3, per-stage report."""
    from jwenv import reprocess

    t0 = time.monotonic()
    program = prepare([env], workdir / "program", program=True)
    items = reprocess.classify(program.uncal)
    result = reprocess.reprocess(env, items, workdir / "runs", stages=[1, 2, 3], force=True,
                                 context=program.context, offline=True,
                                 extra_env=program.crds_env(), on_event=on_event)
    checks = [{"check": f"stage {r.stage} {r.pipeline} {r.name}", "ok": r.returncode == 0,
               "seconds": round(r.seconds, 1),
               "detail": "up to date" if r.up_to_date else f"{r.seconds:.1f} s"
               if r.returncode == 0 else f"failed, log: {r.log}"} for r in result.runs]
    if result.ok:
        (catalog,) = result.output_dir.glob("*_cat.ecsv")
        truth = match_truth(catalog, Path(program.report["truth"]))
        good = truth["recovered"] == truth["injected"]
        checks.append({"check": "catalog against the truth table", "ok": good,
                       "detail": f"{truth['recovered']}/{truth['injected']} sources within "
                                 f"{truth['tolerance_arcsec']}″, worst "
                                 f"{1000 * truth['worst_arcsec']:.1f} mas"})
    else:
        checks.append({"check": "chain", "ok": False, "detail": result.error})
    return {"ok": all(c["ok"] for c in checks), "level": "deep", "checks": checks,
            "seconds": round(time.monotonic() - t0, 1)}
