"""The stage 1→3 chain: wall time per stage per release, and jwenv's overhead.

    python benchmarks/bench_reprocess.py [--versions 1.20.2,3.0.0] [--reps 1]

For each release, runs `jwenv reprocess` on the synthetic offline program (three
400×400 exposures) and then the very same strun commands by hand (same
environment variables, same associations), alternately, and prints per-stage
times and the overhead of jwenv over the hand-run total. Target: under 2 %.
"""

from __future__ import annotations

import argparse
import json
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
    ap.add_argument("--versions", default="1.20.2,3.0.0")
    ap.add_argument("--reps", type=int, default=1)
    args = ap.parse_args()
    from jwenv import Env, InstallOptions
    from jwenv.offline import prepare

    versions = args.versions.split(",")
    envs = [Env.install(v, InstallOptions()) for v in versions]
    work = Path(tempfile.mkdtemp(prefix="jwenv-bench-chain-"))
    program = prepare(envs, work / "program", program=True)
    # the CLI reads a user's CRDS_PATH; the hand-written mappings need their checksums ignored
    base_env = {**os.environ, "CRDS_PATH": str(program.crds_path),
                "CRDS_IGNORE_MAPPING_CHECKSUM": "1", "JWENV_OFFLINE": "1"}
    rows = []
    try:
        for env in envs:
            jw_times, hand_times, stages = [], [], {}
            for rep in range(args.reps):
                out = work / f"jw-{env.name}-{rep}"
                t0 = time.perf_counter()
                proc = subprocess.run(
                    [sys.executable, "-m", "jwenv", "reprocess", env.name,
                     *map(str, program.uncal), "-o", str(out), "--offline", "--crds-context",
                     program.context, "--json"], env=base_env, capture_output=True, text=True,
                    check=True)
                jw_times.append(time.perf_counter() - t0)
                runs = json.loads(proc.stdout)["results"][0]["runs"]
                for r in runs:
                    stages.setdefault(r["stage"], []).append(r["seconds"])
                # the same strun commands by hand, with jwenv's associations
                hand = work / f"hand-{env.name}-{rep}"
                hand.mkdir()
                environ = env.environ(cache=program.cache)
                t0 = time.perf_counter()
                for r in runs:
                    target = r["inputs"][0] if r["stage"] == 1 else _asn_for(out, env.name, r)
                    subprocess.run([str(env.bin / "strun"), f"jwst.pipeline.{r['pipeline']}",
                                    target, "--output_dir", str(hand)], env=environ, cwd=hand,
                                   check=True, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
                hand_times.append(time.perf_counter() - t0)
            jw, hd = statistics.median(jw_times), statistics.median(hand_times)
            per_stage = ", ".join(f"stage {s}: {sum(t) / args.reps:.1f} s"
                                  for s, t in sorted(stages.items()))
            rows.append((env.name, per_stage, jw, hd, 100 * (jw - hd) / hd))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'release':<9} {'jwenv reprocess':>16} {'strun by hand':>14} {'overhead':>9}  stages")
    for name, per_stage, jw, hd, pct in rows:
        print(f"{name:<9} {jw:>14.1f} s {hd:>12.1f} s {pct:>8.1f}%  {per_stage}")


def _asn_for(out: Path, env_name: str, run: dict) -> str:
    kind = "image2" if run["stage"] == 2 else "image3"
    return str(out / env_name / "asn" / f"{run['name']}_{kind}_asn.json")


if __name__ == "__main__":
    main()
