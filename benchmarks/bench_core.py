"""Core targets, measured against `python -m venv` + `pip install` in the same run.

    python benchmarks/bench_core.py [--version 1.20.2] [--second 3.0.0] [--reps 10]

Prints: install time (jwenv/uv vs venv+pip), cached re-install time, the disk a
second version adds (bytes not hard-linked from uv's cache), and the start-up
overhead of `jwenv run V -- python -c pass` over the environment's own python.
Targets: cached re-install <= 2 s; second version <= 50 MB; run overhead <= 0.15 s.
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


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def unique_bytes(path: Path) -> int:
    """Bytes only this tree holds (files not hard-linked from anywhere else)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            st = os.lstat(os.path.join(root, f))
            if st.st_nlink == 1:
                total += st.st_blocks * 512
    return total


def all_bytes(path: Path) -> int:
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--version", default="1.20.2")
    ap.add_argument("--second", default="3.0.0")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--skip-pip", action="store_true", help="skip the venv+pip baseline")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="jwenv-bench-"))
    env = dict(os.environ, JWENV_HOME=str(work / "home"))
    jwenv = [sys.executable, "-m", "jwenv"]
    rows: list[tuple[str, str, str]] = []
    try:
        t_install = timed([*jwenv, "install", args.version, "--check", "none"], env)
        rows.append((f"jwenv install {args.version} (uv, no health check)",
                     f"{t_install:.1f} s", "uv cache as it was"))
        cached = [timed([*jwenv, "install", args.version], env) for _ in range(5)]
        rows.append(("cached re-install", f"{statistics.median(cached):.2f} s",
                     "target <= 2 s"))
        first = work / "home" / "envs" / args.version
        t_second = timed([*jwenv, "install", args.second, "--check", "none"], env)
        second = work / "home" / "envs" / args.second
        rows.append((f"second version {args.second}", f"{t_second:.1f} s", ""))
        rows.append((f"{args.second}: apparent size", f"{all_bytes(second) / 1e6:.0f} MB", ""))
        rows.append((f"{args.second}: disk it adds (not linked from uv's cache)",
                     f"{unique_bytes(second) / 1e6:.1f} MB", "target <= 50 MB"))
        py = str(first / "bin" / "python")
        direct = [timed([py, "-c", "pass"], env) for _ in range(args.reps)]
        via = [timed([*jwenv, "run", args.version, "--", "python", "-c", "pass"], env)
               for _ in range(args.reps)]
        rows.append(("env python -c pass", f"{statistics.median(direct) * 1000:.0f} ms", ""))
        rows.append(("jwenv run V -- python -c pass",
                     f"{statistics.median(via) * 1000:.0f} ms",
                     f"overhead {1000 * (statistics.median(via) - statistics.median(direct)):.0f}"
                     " ms, target <= 150 ms"))
        if not args.skip_pip:
            venv = work / "venv-pip"
            t0 = time.perf_counter()
            base = shutil.which("python3") or sys.executable
            subprocess.run([base, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"jwst=={args.version}"],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            t_pip = time.perf_counter() - t0
            rows.append((f"python -m venv + pip install jwst=={args.version}",
                         f"{t_pip:.1f} s", f"{all_bytes(venv) / 1e6:.0f} MB on disk"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>10}  {note}")


if __name__ == "__main__":
    main()
