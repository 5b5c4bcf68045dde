"""A tiny fake `jwst` distribution, built by hand so unit tests need no network.

Its `strun` console script prints what a run sees (argv, cwd, the CRDS and venv
variables) as JSON, reads stdin when asked, sleeps when asked, and exits with
the code it is given, so the tests can check jwenv's plumbing exactly.

It also "processes" like the three stages: an exposure gives `_uncal` → `_rate`, an
image2 association its product's `_cal`, an image3 association `_i2d` and `_cat.ecsv`
(copies of the input bytes). `jwst.stpipe.Step.from_cmdline` runs the same code
in-process, so jwenv's warm workers run on the fake too. Exposures named `*bad*`
fail; `*sleepy*` sleep FAKE_JWST_SLEEP seconds first; `*dies*` kill a warm worker
(a fresh strun process runs them fine).
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

STRUN = '''
import json, os, sys, time, signal

def main():
    return run(sys.argv[1:])

def _copy(src, dst, flip=False):
    with open(src, "rb") as fh:
        data = bytearray(fh.read())
    if flip:
        data[-4] ^= 0x01  # the last float32 of the data: 3.0 becomes 12.0
    with open(dst, "wb") as fh:
        fh.write(bytes(data))

def _stage(target, out_dir, flip):
    """Write what the stage of `target` would: returns False for a *bad* exposure."""
    if "sleepy" in target:
        time.sleep(float(os.environ.get("FAKE_JWST_SLEEP", "2")))
    if "bad" in os.path.basename(target):
        print("ValueError: this exposure is broken")
        return False
    if not target.endswith(".json"):
        name = os.path.basename(target).replace("_uncal", "_rate")
        _copy(target, os.path.join(out_dir, name), flip)
        return True
    with open(target) as fh:
        asn = json.load(fh)
    product = asn["products"][0]
    first = [m["expname"] for m in product["members"] if m["exptype"] == "science"][0]
    if "bad" in first:
        print("ValueError: a broken member")
        return False
    if asn["asn_type"].endswith("2"):
        _copy(first, os.path.join(out_dir, product["name"] + "_cal.fits"), flip)
    else:
        _copy(first, os.path.join(out_dir, product["name"] + "_i2d.fits"), flip)
        with open(os.path.join(out_dir, product["name"] + "_cat.ecsv"), "w") as fh:
            fh.write("# %ECSV 1.0\\n# ---\\n# datatype:\\n"
                     "# - {name: id, datatype: int64}\\nid\\n1\\n")
    return True

def run(args, in_worker=False):
    if in_worker and any("dies" in a for a in args):
        os.kill(os.getpid(), signal.SIGKILL)
    if args[:1] == ["--help"]:
        print("usage: strun cfg_file_or_class [args]")
        return 0
    if "--sleep" in args:
        pidfile = args[args.index("--sleep") + 2]
        with open(pidfile, "w") as fh:
            fh.write(str(os.getpid()))
        def bye(signum, frame):
            with open(pidfile + ".signal", "w") as fh:
                fh.write(str(signum))
            sys.exit(99)
        signal.signal(signal.SIGTERM, bye)
        time.sleep(float(args[args.index("--sleep") + 1]))
        return 0
    import jwst
    if jwst.__version__ == "9.9.1":  # a broken release, for failure reporting
        print("ERROR: this fake release always fails")
        return 5
    inputs = [a for a in args if a.endswith((".fits", ".json")) and os.path.isfile(a)]
    if "--output_dir" in args and inputs:
        # "process" the input; 9.9.8 changes the last pixel
        out_dir = args[args.index("--output_dir") + 1]
        if not _stage(inputs[0], out_dir, jwst.__version__ == "9.9.8"):
            return 3
    stdin = sys.stdin.read() if "--stdin" in args else None
    keys = ["CRDS_PATH", "CRDS_SERVER_URL", "CRDS_CONTEXT", "VIRTUAL_ENV", "PYTHONPATH",
            "JWENV_ENV"]
    print(json.dumps({"argv": args, "cwd": os.getcwd(), "stdin": stdin,
                      "python": sys.executable,
                      "env": {k: os.environ.get(k) for k in keys}}))
    sys.stdout.flush()
    if "--exit" in args:
        return int(args[args.index("--exit") + 1])
    return 0
'''

PIPELINE = '''
class Detector1Pipeline: pass
class Image2Pipeline: pass
class Image3Pipeline: pass
'''

STPIPE = '''
class Step:
    @classmethod
    def from_cmdline(cls, argv):
        import jwst_fake_strun
        code = jwst_fake_strun.run(list(argv), in_worker=True)
        if code:
            raise SystemExit(code)
'''


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(dest: Path, version: str = "9.9.9") -> Path:
    """Write jwst-<version>-py3-none-any.whl into `dest` and return its path."""
    dest.mkdir(parents=True, exist_ok=True)
    dist = f"jwst-{version}.dist-info"
    files = {
        "jwst/__init__.py": (
            "import os, time\n"
            "time.sleep(float(os.environ.get('FAKE_JWST_IMPORT_SLEEP', '0')))\n"
            f'__version__ = "{version}"\n').encode(),
        "jwst/pipeline/__init__.py": PIPELINE.encode(),
        "jwst/stpipe/__init__.py": STPIPE.encode(),
        "jwst_fake_strun.py": STRUN.encode(),
        f"{dist}/METADATA": (f"Metadata-Version: 2.1\nName: jwst\nVersion: {version}\n"
                             "Summary: fake jwst for jwenv's tests\n").encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: jwenv-tests\nRoot-Is-Purelib: true\n"
                         b"Tag: py3-none-any\n",
        f"{dist}/entry_points.txt": b"[console_scripts]\nstrun = jwst_fake_strun:main\n",
    }
    record = [_record_line(n, d) for n, d in files.items()] + [f"{dist}/RECORD,,"]
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = dest / f"jwst-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return wheel


BACKEND = '''
"""An in-tree PEP 517 backend: builds the fake wheel with no build dependency."""
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    import fakejwst
    return fakejwst.build_wheel(Path(wheel_directory), VERSION).name

def get_requires_for_build_wheel(config_settings=None):
    return []
'''


def build_source_tree(dest: Path, version: str = "9.9.8") -> Path:
    """A source directory whose build needs nothing from an index."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "fake_backend"\nbackend-path = ["."]\n\n'
        f'[project]\nname = "jwst"\nversion = "{version}"\n')
    (dest / "fakejwst.py").write_text(Path(__file__).read_text())
    (dest / "fake_backend.py").write_text(
        BACKEND.replace("VERSION)", f'"{version}")'))
    return dest


def build_package_wheel(dest: Path, name: str, version: str,
                        requires: tuple[str, ...] = ()) -> Path:
    """A minimal pure-Python wheel `name` (a module of that name) requiring `requires`."""
    dest.mkdir(parents=True, exist_ok=True)
    dist = f"{name}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires)
    files = {
        f"{name}.py": f'__version__ = "{version}"\n'.encode(),
        f"{dist}/METADATA": meta.encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: jwenv-tests\nRoot-Is-Purelib: true\n"
                         b"Tag: py3-none-any\n",
    }
    record = [_record_line(n, d) for n, d in files.items()] + [f"{dist}/RECORD,,"]
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = dest / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return wheel
