"""Child processes inside an environment: what they inherit, and how they run.

- `run_environ`: the one recipe for a child's environment variables (the
  caller's, minus what would let another Python leak in, plus the env's bin/).
- `run`: a command with live stdio, its exit code passed back, SIGINT/SIGTERM/
  SIGHUP forwarded; on Linux the child is asked to die with jwenv
  (PR_SET_PDEATHSIG), so even `kill -9 jwenv` leaves no orphan strun chewing
  through a 4 GB exposure.
- `JsonScript`: one of jwenv's in-environment scripts, whose last stdout line
  is a JSON object.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jwenv import loglines
from jwenv.errors import BadInput, JwenvError

# Variables that would let another Python's packages or prefix leak into a child.
# VIRTUAL_ENV is set again for a run; installers get none of them.
ISOLATION_UNSET = ("PYTHONHOME", "PYTHONPATH", "CONDA_PREFIX", "__PYVENV_LAUNCHER__",
                   "VIRTUAL_ENV")
# What numerical libraries read for their thread count.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
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


def die_with_parent_preexec():
    """A Popen preexec_fn that ties the child's life to this process (Linux), or None."""
    return _die_with_parent if _PRCTL is not None else None


def _terminal_delivers_sigint() -> bool:
    """Ctrl-C in a terminal reaches the whole foreground process group, the child too."""
    try:
        return os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp()
    except OSError:
        return False


def require_command(cmd: Sequence[str]) -> None:
    if not cmd:
        raise BadInput("no command given: jwenv run NAME -- CMD [ARGS...]")


# `pip`, `pip3`, `pip3.11`: environments have none, and one found further along PATH
# would install into another Python, silently.
_PIP = re.compile(r"^pip(\d+(\.\d+)*)?$")


def no_pip(env_name: str, cmd: str = "pip") -> str:
    """The one line said when `pip` would not be the environment's own."""
    return (f"this environment has no {cmd} (one further along PATH would install into "
            f"another Python): use `jwenv pip {env_name} -- install PACKAGE`")


def which_in(cmd: str, environ: Mapping[str, str]) -> str:
    """Resolve the program with the run's PATH, so `strun` means the env's strun; a `pip`
    that is not the environment's own is refused."""
    if os.sep in cmd:
        return cmd
    found = shutil.which(cmd, path=environ.get("PATH"))
    venv = environ.get("VIRTUAL_ENV")
    if venv and _PIP.match(cmd) and not (found and Path(found).parent == Path(venv) / "bin"):
        raise CommandFailed(no_pip(environ.get("JWENV_ENV") or "NAME", cmd), 127)
    if not found:
        raise CommandFailed(f"command not found in the environment: {cmd}", 127)
    return found


def isolated(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default: os.environ) without the variables of ISOLATION_UNSET."""
    base = os.environ if base is None else base
    return {k: v for k, v in base.items() if k not in ISOLATION_UNSET}


def run_environ(env_dir: Path, variables: Mapping[str, str],
                base: Mapping[str, str] | None = None,
                threads: int | None = None) -> dict[str, str]:
    """A run's environment: `base` isolated, the env's bin/ first on PATH, VIRTUAL_ENV,
    and `variables` (the CRDS settings and the like) on top. With `threads`, numpy's
    BLAS and OpenMP get that many threads: parallel jobs each get one, not all cores."""
    base = os.environ if base is None else base
    env = isolated(base)
    env["VIRTUAL_ENV"] = str(env_dir)
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{base.get('PATH', os.defpath)}"
    if threads is not None:
        env.update(dict.fromkeys(THREAD_VARS, str(threads)))
    env.update(variables)
    return env


def _start(argv: list[str], environ: Mapping[str, str], cwd: Path | None,
           log: Path | None) -> subprocess.Popen:
    preexec = die_with_parent_preexec()
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


def _wait(proc: subprocess.Popen, usage: dict[str, int] | None) -> int:
    """proc.wait(), through wait4 when the child's resource usage is wanted."""
    if usage is None or not hasattr(os, "wait4"):
        return proc.wait()
    _pid, status, rusage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    # ru_maxrss is in KiB on Linux
    usage["peak_rss"] = rusage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return proc.returncode


def run(cmd: Sequence[str], environ: Mapping[str, str], cwd: Path | None = None,
        log: Path | None = None, usage: dict[str, int] | None = None) -> int:
    """Run `cmd` to completion and return its exit status (128+N if killed by signal N).

    With `log`, stdout and stderr go to that file instead of the terminal (stdin is
    closed): that is how several versions run side by side without mixing output.
    With `usage`, the child's peak RSS in bytes is stored as usage["peak_rss"].
    """
    require_command(cmd)
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
                rc = _wait(proc, usage)
                break
            except KeyboardInterrupt:  # pragma: no cover - handled by `forward`
                continue
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - rc if rc < 0 else rc


class ScriptFailed(JwenvError):
    """An in-environment script printed no JSON result; `why` is its one-line reason."""

    def __init__(self, what: str, why: str) -> None:
        super().__init__(f"{what}: {why}")
        self.why = why


class JsonScript:
    """One of jwenv's in-environment scripts, started now and read later.

    The scripts print one JSON object as their last stdout line: their result, or a
    report of what failed (the health check exits 1 with its report). A script that
    prints none could not run at all. Starting and
    reading apart lets a caller overlap the script with other work (associations
    are written while stage 1 runs).
    """

    def __init__(self, python: Path, script: Path, args: Sequence[str],
                 environ: Mapping[str, str], *, cwd: Path | None = None) -> None:
        self.argv = [str(python), str(script), *args]
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=dict(environ), cwd=cwd)

    def result(self, what: str, timeout: float | None = None) -> dict[str, Any]:
        """The script's JSON object, whatever its exit code; otherwise ScriptFailed:
        '`what`: <why, in one line>'."""
        try:
            stdout, stderr = self.proc.communicate(timeout=timeout)
        except BaseException:
            self.stop()
            raise
        found = loglines.lines(stdout)
        try:
            value = json.loads(found[-1]) if found else None
        except ValueError:
            value = None
        if isinstance(value, dict):
            return value
        why = loglines.reason(stderr) if loglines.lines(stderr) else loglines.reason(stdout)
        raise ScriptFailed(what, why)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def run_json_script(python: Path, script: Path, args: Sequence[str],
                    environ: Mapping[str, str], *, what: str, cwd: Path | None = None,
                    timeout: float | None = None) -> dict[str, Any]:
    """Run an in-environment script to the end and return its JSON object."""
    return JsonScript(python, script, args, environ, cwd=cwd).result(what, timeout)
