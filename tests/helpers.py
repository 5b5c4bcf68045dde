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
from unittest import mock

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
