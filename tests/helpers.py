"""Helpers the tests share (fixtures live in conftest.py).

`cli(...)` runs the jwenv command line in this process, as pipx's tests run pipx:
no interpreter start-up and no re-import per call. `jwenv(...)` runs it in a
subprocess, for what only a real process shows: signals, exit codes of children,
stdio passed through to a child, concurrent installs.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
from astropy.io import fits

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
BASE_PYTHON = Path(getattr(sys, "_base_executable", sys.executable)).resolve()


@dataclass
class Outcome:
    """What a CLI call left behind (the fields of subprocess.CompletedProcess)."""

    returncode: int
    stdout: str
    stderr: str


def jwenv(*args: str, env: dict | None = None, input: str | None = None,
          check: bool = False, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the jwenv CLI as a user would, in a subprocess."""
    return subprocess.run([sys.executable, "-m", "jwenv", *args], capture_output=True,
                          text=True, env=env if env is not None else dict(os.environ),
                          input=input, check=check, cwd=cwd)


def cli(*args: str, env: dict | None = None, input: str | None = None,
        cwd: Path | None = None) -> Outcome:
    """Run the jwenv CLI in this process (same entry point: fastrun.main).

    Children started by a command (strun, installers) still write to the real file
    descriptors: use `jwenv` where a child's output is what the test reads.
    """
    from jwenv import fastrun

    out, err = io.StringIO(), io.StringIO()
    code = 0
    handler = signal.getsignal(signal.SIGTERM)  # main() installs its own
    environ = env if env is not None else dict(os.environ)
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.dict(os.environ, environ, clear=True))
        stack.enter_context(mock.patch.object(sys, "argv", ["jwenv", *args]))
        stack.enter_context(mock.patch.object(sys, "stdin", io.StringIO(input or "")))
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        if cwd is not None:
            stack.enter_context(_chdir(cwd))
        try:
            fastrun.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            signal.signal(signal.SIGTERM, handler)
    return Outcome(code, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def _chdir(path: Path):  # contextlib.chdir is 3.11+
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def strun_report(stdout: str) -> dict:
    """The JSON line the fake strun prints (tests/fakejwst.py)."""
    return json.loads(stdout.strip().splitlines()[-1])


def one_line_error(out, *needles: str) -> str:
    """Assert the call failed with exactly one `jwenv: error:` line holding `needles`."""
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    # Progress lines may precede it (stderr is not a terminal here); the error is one line.
    lines = [ln for ln in out.stderr.strip().splitlines() if ln.startswith("jwenv: error")]
    assert len(lines) == 1 and out.stderr.strip().endswith(lines[0]), out.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


@dataclass
class Archive:
    """Products made under one release and context (the `archive` fixture)."""

    program: Any  # jwenv.offline.Program: the inputs and the CRDS cache
    products: Path  # the directory of products


def archive_env(real_home: Path, program: Any) -> dict[str, str]:
    """A CLI's environment for runs against a program's local CRDS cache."""
    return dict(os.environ, JWENV_HOME=str(real_home), CRDS_PATH=str(program.crds_path),
                CRDS_IGNORE_MAPPING_CHECKSUM="1")


class RealEnv:
    """A real installed jwst environment, as integration tests use it."""

    def __init__(self, env) -> None:
        self.env = env
        self.name = env.name
        self.python = env.python
        self.bin = env.bin

    def environ(self, cache=None, **extra: str) -> dict[str, str]:
        """A run's environment (offline with a local CRDS `cache`), plus `extra`."""
        return {**self.env.environ(offline=True if cache else None, cache=cache), **extra}


def tiny_fits(path: Path, **header) -> Path:
    """A primary header with `header` and a 4×4 SCI extension (None values are left out)."""
    hdu = fits.PrimaryHDU()
    for key, value in header.items():
        if value is not None:
            hdu.header[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList([hdu, fits.ImageHDU(np.zeros((4, 4), "f4"), name="SCI")]).writeto(path)
    return path


# -- exposures shaped like a program's ----------------------------------------------------
PROGRAM = "01234"


def exposure(folder: Path, obs: int, num: int, filt: str = "F200W", *, level: str = "uncal",
             detector: str = "NRCB1", background: bool = False, target: str = "NGC-0001",
             program: str = PROGRAM, instrument: str = "NIRCAM", start: float = 0.0,
             **extra) -> Path:
    """A tiny exposure file with the header facts a plan reads, named as DMS names it."""
    name = f"jw{program}{obs:03d}001_01101_{num:05d}_{detector.lower()}_{level}.fits"
    header = {"TELESCOP": "JWST", "PROGRAM": program, "OBSERVTN": f"{obs:03d}", "VISIT": "001",
              "EXPOSURE": str(num), "DETECTOR": detector, "INSTRUME": instrument,
              "FILTER": filt, "PUPIL": "CLEAR", "EXP_TYPE": "NRC_IMAGE", "SUBARRAY": "SUB400P",
              "TARGPROP": target, "EXPSTART": 60000.0 + obs + num / 100 + start,
              "NGROUPS": 5, "NINTS": 1, "SUBSIZE1": 400, "SUBSIZE2": 400,
              "BKGDTARG": background, **extra}
    return tiny_fits(folder / name, **header)


def program(folder: Path) -> list[Path]:
    """2 observations (2 targets) x 2 filters x 2 dithers, and one background."""
    files = [exposure(folder, obs, num, filt, target=f"NGC-000{obs}")
             for obs in (1, 2) for num, filt in ((1, "F150W"), (2, "F150W"), (3, "F200W"),
                                                 (4, "F200W"))]
    files.append(exposure(folder, 3, 1, "F200W", background=True, target="BKG"))
    return files
