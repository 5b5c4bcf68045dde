"""Benchmark ``jwenv.compare.compare_paths`` against astropy's ``fitsdiff``.

Builds 4-extension 2048×2048 products (SCI, ERR float32; DQ uint32; VAR_POISSON float32;
~64 MB each) as directories of ``--pairs`` A/B pairs of three kinds:

- ``identical``: B is a copy of A;
- ``flat``: a flat-field change: B's SCI and ERR are A's × 1.01 and VAR_POISSON × 1.01²
  (three of four extensions differ in every pixel);
- ``typical``: 1000 SCI pixels changed by 1 %, 50 new NaNs, 300 pixels gaining JUMP_DET,
  VAR_POISSON changed by 2·10⁻⁶ (relative) in every pixel (within tolerance).

Each tool runs once per directory (``--repeat`` times, best kept), each in its own
subprocess, reading wall time and the child's peak RSS (``os.wait4``). The page cache is
warmed first so both tools read from memory, and both use jwst's regression-test
tolerances (rtol=1e-5, atol=1e-7).

    PYTHONPATH=src python benchmarks/bench_compare.py [--pairs 6] [--kinds flat,identical]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIDE = 2048
RTOL, ATOL = "1e-5", "1e-7"
KINDS = ("identical", "flat", "typical")

# The console script's module has no __main__ guard, so `python -m` would do nothing.
FITSDIFF_RUNNER = "import sys; from astropy.io.fits.scripts.fitsdiff import main; sys.exit(main())"
JWENV_RUNNER = """
import json, sys
from jwenv.compare import compare_paths
c = compare_paths(sys.argv[1], sys.argv[2], rtol=float(sys.argv[3]), atol=float(sys.argv[4]))
json.dumps(c.to_dict())
sys.exit(c.exit_code())
"""
IMPORT_ONLY = "import jwenv.compare"
# `jwenv diff` as a user runs it: the CLI, the comparison and the terminal report.
CLI_RUNNER = "import sys; sys.argv[0] = 'jwenv'; from jwenv.fastrun import main; main()"


def make_pair(directory_a: Path, directory_b: Path, name: str, seed: int, kind: str) -> None:
    """One A/B pair of the given kind."""
    import numpy as np
    from astropy.io import fits

    rng = np.random.default_rng(seed)
    sci = rng.normal(10.0, 2.0, size=(SIDE, SIDE)).astype(np.float32)
    err = np.sqrt(np.abs(sci)).astype(np.float32)
    dq = np.zeros((SIDE, SIDE), dtype=np.uint32)
    dq[rng.integers(0, SIDE, 5000), rng.integers(0, SIDE, 5000)] = 1  # DO_NOT_USE
    var = (err**2).astype(np.float32)

    sci_b, dq_b, var_b = sci, dq, var
    err_b = err
    if kind == "flat":
        sci_b = (sci * np.float32(1.01)).astype(np.float32)
        err_b = (err * np.float32(1.01)).astype(np.float32)
        var_b = (var * np.float32(1.01**2)).astype(np.float32)
    elif kind == "typical":
        sci_b, dq_b = sci.copy(), dq.copy()
        hit = rng.integers(0, SIDE, (2, 1000))
        sci_b[hit[0], hit[1]] *= 1.01  # 1000 pixels change by 1 %
        sci_b[rng.integers(0, SIDE, 50), rng.integers(0, SIDE, 50)] = np.nan
        dq_b[hit[0, :300], hit[1, :300]] |= 4  # JUMP_DET on 300 pixels
        var_b = (var * np.float32(1 + 2e-6)).astype(np.float32)  # every pixel, within rtol

    for directory, (s, e, d, v) in ((directory_a, (sci, err, dq, var)),
                                    (directory_b, (sci_b, err_b, dq_b, var_b))):
        primary = fits.PrimaryHDU()
        primary.header.update({"CAL_VER": "1.20.2" if directory == directory_a else "1.21.0",
                               "CRDS_CTX": "jwst_1364.pmap", "R_FLAT": "crds://flat.fits",
                               "S_JUMP": "COMPLETE"})
        fits.HDUList([primary, fits.ImageHDU(s, name="SCI"), fits.ImageHDU(e, name="ERR"),
                      fits.ImageHDU(d, name="DQ"), fits.ImageHDU(v, name="VAR_POISSON")]
                     ).writeto(directory / name, overwrite=True)


def measure(argv: list[str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MB, and exit code of one child process.

    A child's ru_maxrss starts at its parent's RSS (fork, then exec keeps the high-water
    mark), so this process stays small: no numpy/astropy here, data is built in children.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{argv[:3]} failed: {proc.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024, proc.returncode  # ru_maxrss is in KiB on Linux


def best(argv: list[str], repeat: int) -> tuple[float, float, int]:
    runs = [measure(argv) for _ in range(repeat)]
    return min(runs, key=lambda r: r[0])


def warm(paths: list[Path]) -> None:
    for path in paths:
        with path.open("rb") as f:
            while f.read(1 << 24):
                pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=6, help="pairs per directory")
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated: "
                        + ", ".join(KINDS))
    parser.add_argument("--repeat", type=int, default=1, help="runs per case (best kept)")
    parser.add_argument("--keep", type=Path, help="build the files here and keep them")
    parser.add_argument("--make", nargs=5, help=argparse.SUPPRESS)  # A B name seed kind
    args = parser.parse_args()
    if args.make:
        make_pair(Path(args.make[0]), Path(args.make[1]), args.make[2], int(args.make[3]),
                  args.make[4])
        return

    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = set(kinds) - set(KINDS)
    if unknown:
        parser.error(f"unknown kind(s): {', '.join(sorted(unknown))}")
    root = args.keep or Path(tempfile.mkdtemp(prefix="jwenv-bench-"))
    names = [f"jw0100{k}001001_01101_00001_nrca1_rate.fits" for k in range(args.pairs)]
    py = sys.executable
    fitsdiff = [py, "-c", FITSDIFF_RUNNER, "-r", RTOL, "-a", ATOL]
    jwenv = [py, "-c", JWENV_RUNNER]
    cli = [py, "-c", CLI_RUNNER, "diff"]
    try:
        rows = [("import jwenv.compare", "–", *best([py, "-c", IMPORT_ONLY], args.repeat)[:2])]
        for kind in kinds:
            dir_a, dir_b = root / kind / "A", root / kind / "B"
            dir_a.mkdir(parents=True, exist_ok=True)
            dir_b.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            for seed, name in enumerate(names):
                if not (dir_b / name).exists():
                    subprocess.run([sys.executable, __file__, "--make", str(dir_a), str(dir_b),
                                    name, str(seed), kind], check=True)
            size = (dir_a / names[0]).stat().st_size / 2**20
            print(f"{kind}: {len(names)} pairs of {size:.0f} MB files in "
                  f"{time.perf_counter() - t0:.1f} s under {root / kind}", flush=True)
            warm(sorted(dir_a.iterdir()) + sorted(dir_b.iterdir()))
            label = f"{kind} ×{len(names)}"
            rows.append(("fitsdiff (astropy)", label,
                         *best([*fitsdiff, str(dir_a), str(dir_b)], args.repeat)[:2]))
            rows.append(("jwenv compare_paths", label,
                         *best([*jwenv, str(dir_a), str(dir_b), RTOL, ATOL], args.repeat)[:2]))
            rows.append(("jwenv diff (CLI)", label,
                         *best([*cli, str(dir_a), str(dir_b)], args.repeat)[:2]))

        print(f"\n{'tool':<22}{'case':<16}{'wall s':>8}{'peak MB':>10}")
        for tool, case, wall, peak in rows:
            print(f"{tool:<22}{case:<16}{wall:>8.2f}{peak:>10.0f}")
        for kind in kinds:
            label = f"{kind} ×{len(names)}"
            fd = next(r for r in rows if r[0].startswith("fitsdiff") and r[1] == label)
            for tool in ("jwenv compare_paths", "jwenv diff (CLI)"):
                jw = next(r for r in rows if r[0] == tool and r[1] == label)
                print(f"{label}: {tool} is {fd[2] / jw[2]:.1f}× faster than fitsdiff, peak "
                      f"memory {jw[3]:.0f} MB vs {fd[3]:.0f} MB")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
