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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import Version

from jwenv import compare, offline, plan, releases, reprocess
from jwenv.envs import Env
from jwenv.errors import BadInput, JwenvError
from jwenv.installer import InstallOptions
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
class DemoResult:
    root: Path
    envs: list[str]
    program: offline.Program
    results: list[Any]  # jwenv.reprocess.Result, one per release
    comparison: Any  # jwenv.compare.Comparison of every product level
    seconds: dict[str, float]


def run_demo(out: Path, versions: list[str] | None = None, *, store: Store | None = None,
             jobs: int = 2, on_event: Event | None = None) -> DemoResult:
    """Install, generate the offline program, run stages 1-3 under each release, compare."""
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
    program = offline.prepare(envs, out / "program", program=True)
    timings["generate"] = time.monotonic() - t0
    t0 = time.monotonic()
    notify("phase", f"running Detector1 → Image2 → Image3 under "
                    f"{' and '.join(e.name for e in envs)} (offline)")
    items = plan.classify(program.uncal)
    results = reprocess.reprocess_across(
        envs, items, out / "runs", jobs=jobs, stages=[1, 2, 3], force=True,
        cache=program.cache, offline=True, on_event=lambda e, d: notify(f"run-{e}", d))
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
