"""Spectroscopy, uncal to x1d: wall time per release, warm workers against a fresh strun.

    python benchmarks/bench_spectra.py [--versions 1.20.2,3.0.0] [--jobs 2]

Makes the synthetic MIRI LRS fixed-slit program (two nods; made by the oldest release,
`--extend` by the others), then for each release runs `jwenv reprocess` on it twice, into
fresh directories: on warm workers (the default) and with `--strun` (a fresh process per
job). Prints the wall time (target: under 2 minutes per release, warm), per-stage job
seconds, the largest measured peak, and the x1d scored against the truth spectrum.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--versions", default="1.20.2,3.0.0")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    from jwenv import Env, InstallOptions
    from jwenv.offline import prepare_spectra, score_spectrum

    envs = [Env.install(v, InstallOptions()) for v in args.versions.split(",")]
    work = Path(tempfile.mkdtemp(prefix="jwenv-bench-spectra-"))
    rows = []
    try:
        t0 = time.perf_counter()
        spectra = prepare_spectra(envs, work / "program")
        made = time.perf_counter() - t0
        base_env = {**os.environ, "CRDS_PATH": str(spectra.crds_path),
                    "CRDS_IGNORE_MAPPING_CHECKSUM": "1"}
        for env in envs:
            for mode in ("warm", "strun"):
                out = work / f"{mode}-{env.name}"
                t0 = time.perf_counter()
                proc = subprocess.run(
                    [sys.executable, "-m", "jwenv", "reprocess", env.name,
                     *map(str, spectra.uncal), "-o", str(out), "--offline", "--crds-context",
                     spectra.context, "-j", str(args.jobs), "--json",
                     *(["--strun"] if mode == "strun" else [])],
                    env=base_env, capture_output=True, text=True, check=True)
                wall = time.perf_counter() - t0
                result = json.loads(proc.stdout)["results"][0]
                stages: dict[int, float] = {}
                for r in result["runs"]:
                    stages[r["stage"]] = stages.get(r["stage"], 0.0) + r["seconds"]
                peak = max(r["peak_rss"] or 0 for r in result["runs"])
                x1d = next(Path(p) for r in result["runs"] if r["stage"] == 3
                           for p in r["products"] if p.endswith("_x1d.fits"))
                score = score_spectrum(x1d, spectra.truth)
                rows.append((env.name, mode, wall, stages, peak, score))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"program made in {made:.1f} s ({len(spectra.uncal)} exposures, "
          f"{len(spectra.report['reference_types'])} reference types)")
    print(f"{'release':<8} {'mode':<6} {'wall':>7}  {'stage 1 / 2 / 3 (job s)':<24} "
          f"{'peak':>7}  lines (res. el.), continuum (worst ratio)")
    for name, mode, wall, stages, peak, score in rows:
        per_stage = " / ".join(f"{stages.get(s, 0):.1f}" for s in (1, 2, 3))
        lines = ", ".join(f"{line['offset_resolution']:+.3f}" for line in score["lines"])
        print(f"{name:<8} {mode:<6} {wall:>5.1f} s  {per_stage:<24} {peak / 2**30:>5.2f} GB  "
              f"{lines}; {score['continuum']['worst_ratio']:.4f}")


if __name__ == "__main__":
    main()
