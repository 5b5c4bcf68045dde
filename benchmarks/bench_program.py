"""Whole-program throughput: `jwenv reprocess` (warm workers, memory scheduling) against
`xargs -P2 strun` (one fresh process per exposure), in the same run, offline.

    python benchmarks/bench_program.py [--version 3.0.0] [--exposures 8] [--size 64]
    python benchmarks/bench_program.py --size 2048 --exposures 4 --memory 5G   # full frames

Makes one exposure with the offline generator (the release's own datamodels), copies it
into N exposures of 2 visits (headers rewritten: exposure numbers, visits), then runs
Detector1 on all of them both ways with the same environment (CRDS serverless against the
generated cache, one BLAS thread per process). Prints wall times, the speed-up, the peak
memory of each whole process tree (sampled from /proc every 0.1 s), and jwenv's own
scheduling time as a share of its run. Targets (issue 11): ≥ 2.5× on 8 small exposures;
no slower on full frames, with the peak within --memory; scheduling < 2 %.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def tree_rss(root: int) -> int:
    """Bytes of RSS of `root` and all its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            ppid, pages = int(fields[1]), int(fields[21])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = pages * os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total


def measured(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int, str]:
    """Wall seconds, peak tree RSS and stdout of a command."""
    peak = [0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss(proc.pid))
            time.sleep(0.1)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    out, _ = proc.communicate()
    done.set()
    t.join()
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:3]} exited {proc.returncode}")
    return time.perf_counter() - t0, peak[0], out


def clone(uncal: Path, dest: Path, n: int) -> list[Path]:
    """N exposures of 2 visits from one: names and the header facts a plan reads."""
    from astropy.io import fits

    dest.mkdir(parents=True)
    files = []
    for i in range(n):
        visit, number = 1 + i % 2, 1 + i // 2
        name = f"jw01234001{visit:03d}_01101_{number:05d}_nrcb1_uncal.fits"
        shutil.copyfile(uncal, dest / name)
        with fits.open(dest / name, mode="update") as hdul:
            h = hdul[0].header
            h["VISIT"], h["EXPOSURE"], h["FILENAME"] = f"{visit:03d}", str(number), name
            h["EXPSTART"] = float(h.get("EXPSTART", 60000.0)) + i / 1000
        files.append(dest / name)
    return files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--version", default="3.0.0")
    ap.add_argument("--exposures", type=int, default=8)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--memory", default=None, help="jwenv's --memory (default: available)")
    args = ap.parse_args()
    from jwenv import Env, InstallOptions, offline

    env = Env.install(args.version, InstallOptions())
    work = Path(tempfile.mkdtemp(prefix="jwenv-bench-program-"))
    try:
        t0 = time.perf_counter()
        made = offline.generate(env, work / "gen", size=args.size)
        print(f"generated one {args.size}x{args.size} exposure in "
              f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
        files = clone(made.uncal[0], work / "data", args.exposures)
        user_env = {**os.environ, "CRDS_PATH": str(made.crds_path),
                    "CRDS_IGNORE_MAPPING_CHECKSUM": "1", "JWENV_OFFLINE": "1"}
        environ = env.environ(cache=made.cache, threads=1)
        out_x = work / "xargs"
        out_x.mkdir()
        xargs = ["xargs", "-P2", "-I{}", str(env.bin / "strun"),
                 "jwst.pipeline.Detector1Pipeline", "{}", "--output_dir", str(out_x)]
        t_x, peak_x, _ = measured(["sh", "-c", " ".join(xargs) + " < files.txt"], environ,
                                  _listing(work, files))
        cmd = [sys.executable, "-m", "jwenv", "reprocess", env.name, *map(str, files),
               "--stages", "1", "-j", "2", "-o", str(work / "jwenv"), "--crds-context",
               made.context, "--json"]
        if args.memory:
            cmd += ["--memory", args.memory]
        t_j, peak_j, out = measured(cmd, user_env, work)
        result = json.loads(out)["results"][0]
        runs = result["runs"]
        assert all(r["state"] == "done" for r in runs), runs
        sched = result["timing"]["scheduling"]
        warm = sum(r["runner"] == "warm" for r in runs)
        print(f"jwst {env.manifest.jwst_version}, Detector1 on {args.exposures} exposures of "
              f"{args.size}x{args.size}, 2 cores")
        print(f"{'':28} {'wall':>8} {'peak RSS':>10}")
        print(f"{'xargs -P2 strun':28} {t_x:7.1f}s {peak_x / 2**30:8.2f} GB")
        print(f"{'jwenv reprocess -j 2':28} {t_j:7.1f}s {peak_j / 2**30:8.2f} GB")
        print(f"speed-up {t_x / t_j:.2f}x; {warm}/{len(runs)} jobs on warm workers; "
              f"scheduling {sched:.3f} s = {100 * sched / t_j:.2f} % of the run"
              + (f"; budget {args.memory}" if args.memory else ""))
        per_job = sorted(r["seconds"] for r in runs)
        print(f"per job: median {per_job[len(per_job) // 2]:.1f} s; peak RSS per job up to "
              f"{max(r['peak_rss'] or 0 for r in runs) / 2**30:.2f} GB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _listing(work: Path, files: list[Path]) -> Path:
    (work / "files.txt").write_text("".join(f"{f}\n" for f in files))
    return work


if __name__ == "__main__":
    main()
