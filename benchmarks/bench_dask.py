"""The same plan on this machine's executor and on a Dask LocalCluster, in the same run.

    python benchmarks/bench_dask.py [--version 3.0.0] [--reps 1]
    python benchmarks/bench_dask.py --observations 4 --dithers 4 --reps 3   # 4x as many jobs

Generates the offline whole program (2 observations x 2 filters x 2 dithers + 2
backgrounds: 26 jobs through stages 1-3) with the release, then runs `jwenv reprocess`
on it with `--executor local -j 2` and with `--executor dask --dask-workers 2` (a
LocalCluster of 2 single-threaded worker processes that jwenv starts), alternately,
each into a fresh directory. Prints the wall times and Dask's overhead (target < 5 %).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--version", default="3.0.0")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--observations", type=int, default=2)
    ap.add_argument("--dithers", type=int, default=2)
    args = ap.parse_args()
    from jwenv import Env, InstallOptions, offline

    env = Env.install(args.version, InstallOptions())
    work = Path(tempfile.mkdtemp(prefix="jwenv-bench-dask-"))
    try:
        program = offline.generate(env, work / "program", whole=offline.Whole(
            observations=args.observations, dithers=args.dithers))
        environ = {**os.environ, "CRDS_PATH": str(program.crds_path),
                   "CRDS_IGNORE_MAPPING_CHECKSUM": "1"}
        base = [sys.executable, "-m", "jwenv", "reprocess", env.name,
                *map(str, program.uncal), "--offline", "--crds-context", program.context]
        times: dict[str, list[float]] = {"local": [], "dask": []}
        for rep in range(args.reps):
            for kind, extra in (("local", ["-j", "2"]),
                                ("dask", ["--executor", "dask", "--dask-workers", "2"])):
                t0 = time.perf_counter()
                subprocess.run([*base, "-o", str(work / f"{kind}-{rep}"), *extra],
                               env=environ, check=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
                times[kind].append(time.perf_counter() - t0)
        local, dask = (statistics.median(times[k]) for k in ("local", "dask"))
        print(f"jwst {env.manifest.jwst_version}, whole program ({len(program.uncal)} "
              f"exposures, stages 1-3), {os.cpu_count()} cores, median of {args.reps}")
        print(f"{'--executor local -j 2':34} {local:7.1f} s")
        print(f"{'--executor dask (LocalCluster, 2)':34} {dask:7.1f} s")
        print(f"Dask's overhead: {100 * (dask - local) / local:+.1f} % (target < 5 %)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
