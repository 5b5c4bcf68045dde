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

from jwenv.errors import BadInput, JwenvError

_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class CommandFailed(JwenvError):
    """The command could not be started (exit codes as a shell's: 126, 127)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code


def _load_prctl():  # resolved once, here: the child after fork only calls it
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl() if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    _PRCTL(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _terminal_delivers_sigint() -> bool:
    """Ctrl-C in a terminal reaches the whole foreground process group, the child too."""
    try:
        return os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp()
    except OSError:
        return False


def which_in(cmd: str, environ: Mapping[str, str]) -> str:
    """Resolve the program with the run's PATH, so `strun` means the env's strun."""
    if os.sep in cmd:
        return cmd
    found = shutil.which(cmd, path=environ.get("PATH"))
    if not found:
        raise CommandFailed(f"command not found in the environment: {cmd}", 127)
    return found


def _start(argv: list[str], environ: Mapping[str, str], cwd: Path | None,
           log: Path | None) -> subprocess.Popen:
    preexec = _die_with_parent if _PRCTL is not None else None
    try:
        if log is None:
            return subprocess.Popen(argv, env=dict(environ), cwd=cwd, preexec_fn=preexec)
        with log.open("ab") as fh:
            return subprocess.Popen(argv, env=dict(environ), cwd=cwd, preexec_fn=preexec,
                                    stdin=subprocess.DEVNULL, stdout=fh,
                                    stderr=subprocess.STDOUT)
    except PermissionError:
        raise CommandFailed(f"permission denied: {argv[0]}", 126) from None
    except OSError as exc:
        raise CommandFailed(f"cannot run {argv[0]}: {exc.strerror}", 127) from None


def run(cmd: Sequence[str], environ: Mapping[str, str], cwd: Path | None = None,
        log: Path | None = None) -> int:
    """Run `cmd` to completion and return its exit status (128+N if killed by signal N).

    With `log`, stdout and stderr go to that file instead of the terminal (stdin is
    closed): that is how several versions run side by side without mixing output.
    """
    if not cmd:
        raise BadInput("no command given: jwenv run NAME -- CMD [ARGS...]")
    argv = [which_in(cmd[0], environ), *cmd[1:]]
    started: list[subprocess.Popen] = []
    pending: list[int] = []
    skip_sigint = log is None and _terminal_delivers_sigint()

    def forward(signum: int, _frame: object) -> None:
        if signum == signal.SIGINT and skip_sigint:
            return  # the terminal sent it to the child already: twice cuts its clean-up
        if not started:
            pending.append(signum)
            return
        with contextlib.suppress(ProcessLookupError):
            started[0].send_signal(signum)

    # Handlers first, so a signal that arrives while the child starts is not lost.
    previous = {}
    for sig in _FORWARDED:
        try:
            previous[sig] = signal.signal(sig, forward)
        except ValueError:  # not the main thread (e.g. a batch worker's thread)
            break
    try:
        proc = _start(argv, environ, cwd, log)
        started.append(proc)
        for signum in pending:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signum)
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
