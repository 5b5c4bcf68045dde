"""Run a command as a child: live stdio, exit code passed back, signals forwarded.

The child inherits stdin/stdout/stderr (nothing is buffered by jwenv). SIGINT,
SIGTERM and SIGHUP sent to jwenv reach the child; on Linux the child is also
asked to die with jwenv (PR_SET_PDEATHSIG), so even `kill -9 jwenv` leaves no
orphan strun chewing through a 4 GB exposure.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from jwenv.errors import BadInput

_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def which_in(cmd: str, environ: Mapping[str, str]) -> str:
    """Resolve the program with the run's PATH, so `strun` means the env's strun."""
    if os.sep in cmd:
        return cmd
    found = shutil.which(cmd, path=environ.get("PATH"))
    if not found:
        raise BadInput(f"command not found in the environment: {cmd}")
    return found


def run(cmd: Sequence[str], environ: Mapping[str, str], cwd: Path | None = None,
        log: Path | None = None) -> int:
    """Run `cmd` to completion and return its exit status (128+N if killed by signal N).

    With `log`, stdout and stderr go to that file instead of the terminal (stdin is
    closed): that is how several versions run side by side without mixing output.
    """
    if not cmd:
        raise BadInput("no command given: jwenv run NAME -- CMD [ARGS...]")
    argv = [which_in(cmd[0], environ), *cmd[1:]]
    preexec = _die_with_parent if sys.platform.startswith("linux") else None
    if log is None:
        proc = subprocess.Popen(argv, env=dict(environ), cwd=cwd, preexec_fn=preexec)
    else:
        with log.open("ab") as fh:
            proc = subprocess.Popen(argv, env=dict(environ), cwd=cwd, preexec_fn=preexec,
                                    stdin=subprocess.DEVNULL, stdout=fh,
                                    stderr=subprocess.STDOUT)

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)

    previous = {}
    for sig in _FORWARDED:
        try:
            previous[sig] = signal.signal(sig, forward)
        except ValueError:  # not the main thread (e.g. a batch worker's thread)
            break
    try:
        while True:
            try:
                rc = proc.wait()
                break
            except KeyboardInterrupt:  # pragma: no cover - handled by `forward`
                continue
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - rc if rc < 0 else rc
