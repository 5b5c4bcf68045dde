"""Benchmark ``jwenv.provenance`` (read + group) against the obvious ways to do the same.

Makes ``--copies`` copies of real products (rate, rateints, cal, crf, i2d, segm: what
``jwenv reprocess`` writes) in a scratch directory, warms the page cache, then times, each
in a fresh interpreter (imports included) over the same files:

- jwenv: ``provenance.read`` on every file, then ``provenance.group``;
- getheader: astropy's ``fits.getheader`` loop alone (primary header and its R_*/S_*
  values; no HDRTAB, no processing log): the floor of the obvious approach;
- astropy+yaml: ``fits.open``, HDRTAB's columns through astropy's table, the ASDF
  extension's bytes and its whole YAML tree parsed (libyaml, tags ignored);
- asdf (``--asdf-env NAME``): the real ``asdf`` package in a managed environment opening
  each ASDF extension and reading ``cal_logs`` (on ``--asdf-sample`` files, scaled up).

Products come from ``--products DIR`` (any directory of real products, e.g. a
``jwenv reprocess`` output), else they are made once with ``--env`` (installed in the
current JWENV_HOME): the synthetic offline program through stages 1-3.

    PYTHONPATH=src python benchmarks/bench_provenance.py [--copies 500] [--products DIR]
        [--env 3.0.0] [--asdf-env 3.0.0] [--keep DIR]
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

SRC = Path(__file__).resolve().parents[1] / "src"
JWENV = [sys.executable, "-m", "jwenv"]

JWENV_RUNNER = """
import sys, pathlib
from jwenv import provenance
files = sorted(pathlib.Path(sys.argv[1]).glob("*.fits"))
groups = provenance.group([provenance.read(f) for f in files])
print(len(files), len(groups))
"""
GETHEADER_RUNNER = """
import sys, pathlib
from astropy.io import fits
files = sorted(pathlib.Path(sys.argv[1]).glob("*.fits"))
for f in files:
    h = fits.getheader(f)
    found = (h.get("CAL_VER"), h.get("CRDS_CTX"),
             {k: h[k] for k in h if k.startswith(("R_", "S_"))})
print(len(files), 0)
"""
ASTROPY_YAML_RUNNER = """
import sys, pathlib, yaml
from astropy.io import fits

class Loader(yaml.CSafeLoader):
    pass

def untagged(loader, suffix, node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)

Loader.add_multi_constructor("", untagged)
files = sorted(pathlib.Path(sys.argv[1]).glob("*.fits"))
for f in files:
    with fits.open(f) as hdul:
        h = hdul[0].header
        found = (h.get("CAL_VER"), {k: h[k] for k in h if k.startswith(("R_", "S_"))})
        if "HDRTAB" in hdul:
            t = hdul["HDRTAB"].data
            inputs = [list(t[c]) for c in ("FILENAME", "CAL_VER", "CRDS_CTX")]
        if "ASDF" in hdul:
            raw = bytes(hdul["ASDF"].data[0][0])
            end = raw.find(b"\\n...")
            tree = yaml.load(raw[:end + 1] if end != -1 else raw, Loader=Loader)
            logs = tree.get("cal_logs")
print(len(files), 0)
"""
ASDF_RUNNER = """
import io, sys, pathlib, warnings
import asdf
from astropy.io import fits
warnings.simplefilter("ignore")
files = sorted(pathlib.Path(sys.argv[1]).glob("*.fits"))[:int(sys.argv[2])]
for f in files:
    with fits.open(f) as hdul:
        h = hdul[0].header
        found = (h.get("CAL_VER"), {k: h[k] for k in h if k.startswith(("R_", "S_"))})
        if "ASDF" in hdul:
            raw = bytes(hdul["ASDF"].data[0][0])
            with asdf.open(io.BytesIO(raw), lazy_load=True, memmap=False) as af:
                logs = af.tree.get("cal_logs")
print(len(files), 0)
"""


def make_products(env: str, where: Path) -> Path:
    """The synthetic program through stages 1-3 under `env` (installed already)."""
    prog = where / "program"
    gen = SRC / "jwenv" / "scripts" / "make_program.py"
    run = subprocess.run([*JWENV, "run", "--offline", env, "--", "python", str(gen),
                          "--out", str(prog), "--program"], capture_output=True, text=True,
                         env=_env())
    if run.returncode:
        raise SystemExit(f"make_program failed: {run.stderr[-2000:]}")
    made = json.loads(run.stdout.strip().splitlines()[-1])
    out = where / "runs"
    rep = subprocess.run([*JWENV, "reprocess", env, *made["uncal"], "-o", str(out),
                          "--offline", "--crds-context", made["context"]],
                         capture_output=True, text=True,
                         env=_env(CRDS_PATH=made["crds_path"],
                                  CRDS_IGNORE_MAPPING_CHECKSUM="1"))
    if rep.returncode:
        raise SystemExit(f"reprocess failed: {rep.stderr[-2000:]}")
    return out / env


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    return env


def copies(sources: list[Path], n: int, into: Path) -> list[Path]:
    """`n` copies of the sources, round robin, each named as a product of its own."""
    into.mkdir(parents=True, exist_ok=True)
    made = []
    for i in range(n):
        src = sources[i % len(sources)]
        dest = into / f"c{i:05d}_{src.name}"
        shutil.copyfile(src, dest)
        made.append(dest)
    return made


def warm(files: list[Path]) -> None:
    for f in files:
        with f.open("rb") as fh:
            while fh.read(1 << 20):
                pass


def timed(argv: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, env=_env())
    wall = time.perf_counter() - start
    if out.returncode:
        raise RuntimeError(f"{argv[:4]} failed: {out.stderr[-2000:]}")
    return wall, out.stdout.strip().splitlines()[-1]


def asdf_python(env: str) -> str:
    out = subprocess.run([*JWENV, "run", env, "--", "python", "-c",
                          "import sys, asdf; print(sys.executable)"],
                         capture_output=True, text=True, env=_env())
    if out.returncode:
        raise SystemExit(f"environment {env} has no usable asdf: {out.stderr[-500:]}")
    return out.stdout.strip().splitlines()[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=500)
    ap.add_argument("--products", type=Path, action="append", default=[],
                    help="directory of real products (repeatable)")
    ap.add_argument("--env", default="3.0.0", help="release that makes products if none given")
    ap.add_argument("--asdf-env", default=None, help="managed env whose asdf to time too")
    ap.add_argument("--asdf-sample", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3, help="runs per tool (best is shown)")
    ap.add_argument("--keep", type=Path, default=None, help="work here and keep it")
    args = ap.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-provenance-"))
    try:
        dirs = args.products or [make_products(args.env, work / "made")]
        sources = sorted(p for d in dirs for p in d.glob("*.fits"))
        if not sources:
            raise SystemExit(f"no *.fits products in {', '.join(map(str, dirs))}")
        files = copies(sources, args.copies, work / "copies")
        warm(files)
        size = sum(f.stat().st_size for f in files) / 1e6
        print(f"{len(files)} products ({len(sources)} distinct real ones, {size:.0f} MB), "
              f"{os.cpu_count()} cores; best of {args.repeat} runs, each a fresh "
              "interpreter (imports included)")
        cases = [("jwenv read+group", [sys.executable, "-c", JWENV_RUNNER, str(work / "copies")]),
                 ("astropy getheader loop", [sys.executable, "-c", GETHEADER_RUNNER,
                                             str(work / "copies")]),
                 ("astropy open + HDRTAB + full YAML", [sys.executable, "-c",
                                                        ASTROPY_YAML_RUNNER,
                                                        str(work / "copies")])]
        results = {}
        for name, argv in cases:
            best, said = min(timed(argv) for _ in range(args.repeat))
            results[name] = best
            extra = f", {said.split()[1]} groups" if name.startswith("jwenv") else ""
            print(f"  {name:36s} {best:6.2f} s  {best / len(files) * 1e3:6.2f} ms/product"
                  f"{extra}")
        if args.asdf_env:
            python = asdf_python(args.asdf_env)
            n = min(args.asdf_sample, len(files))
            argv = [python, "-c", ASDF_RUNNER, str(work / "copies")]
            start_up, _ = timed([*argv, "0"])  # imports alone
            wall, _ = timed([*argv, str(n)])
            per_file = (wall - start_up) / n
            scaled = start_up + per_file * len(files)
            results["asdf.open"] = scaled
            print(f"  {'asdf.open (env ' + args.asdf_env + ')':36s} {scaled:6.2f} s  "
                  f"{per_file * 1e3:6.2f} ms/product (measured on {n} after "
                  f"{start_up:.1f} s of imports, scaled)")
        base = results["jwenv read+group"]
        print("  time relative to jwenv: " + ", ".join(
            f"{k} {t / base:.2f}x" for k, t in results.items() if k != "jwenv read+group"))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
