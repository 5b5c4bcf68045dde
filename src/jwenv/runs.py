"""Run one command under several environments, each into its own output directory.

This is the part of `jwenv compare` that is not comparing: it guarantees that
versions never write next to the input or over each other's products, and keeps
each version's full log beside its products.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from jwenv.envs import Env
from jwenv.errors import BadInput
from jwenv.fastrun import OUTPUT_FLAGS

Event = Callable[[str, str], None]


@dataclass
class VersionRun:
    env: str
    jwst_version: str
    output_dir: Path
    log: Path
    returncode: int
    seconds: float
    command: list[str]

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def log_tail(self, n: int = 5) -> list[str]:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return []
        return [ln for ln in lines if ln.strip()][-n:]

    def error_line(self) -> str:
        return error_line(self.log, self.returncode)

    def to_dict(self) -> dict:
        return {"env": self.env, "jwst_version": self.jwst_version,
                "output_dir": str(self.output_dir), "log": str(self.log),
                "returncode": self.returncode, "seconds": round(self.seconds, 2),
                "command": self.command, "error": None if self.ok else self.error_line()}


def error_line(log: Path, returncode: int) -> str:
    """The one line of a strun log that says why it failed: CRDS's own message first."""
    try:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        lines = []
    for pattern in (r"CRDS - ERROR - +(.*)", r"^\s*(\w+(?:Error|Exception): .*)$",
                    r"(ERROR.*)"):
        hits = [m.group(1).strip() for ln in lines if (m := re.search(pattern, ln))]
        if hits:
            return " ".join(hits[-1].split())[:300]
    return " ".join(lines[-1].split())[:300] if lines else f"exit {returncode}, no output"


def default_output_root() -> Path:
    """A new directory per run (two runs in the same second never share one)."""
    parent = Path.cwd() / "jwenv-runs"
    parent.mkdir(parents=True, exist_ok=True)
    import tempfile

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(tempfile.mkdtemp(prefix=f"{stamp}-", dir=parent))


def command_for(cmd: Sequence[str], output_dir: Path) -> list[str]:
    """The command with this version's output directory added (strun only)."""
    cmd = list(cmd)
    if any(a.split("=", 1)[0] in OUTPUT_FLAGS for a in cmd):
        raise BadInput("do not pass --output_dir to a multi-version run: each version gets "
                       "its own directory under -o")
    if Path(cmd[0]).name == "strun":
        cmd += ["--output_dir", str(output_dir)]
    return cmd


def run_across(envs: Sequence[Env], cmd: Sequence[str], out_root: Path, *, jobs: int = 1,
               context: str | None = None, offline: bool | None = None,
               extra_env: dict[str, str] | None = None,
               on_event: Event | None = None) -> list[VersionRun]:
    """Run `cmd` under each env (up to `jobs` at once); results in the order given."""
    if len({e.name for e in envs}) != len(envs):
        raise BadInput("the same environment is named twice")
    if not cmd:
        raise BadInput("no command given after --")
    command_for(cmd, out_root)  # refuse a bad command before anything is written
    notify = on_event or (lambda _e, _d: None)

    def one(env: Env) -> VersionRun:
        out = out_root / env.name
        out.mkdir(parents=True, exist_ok=True)  # some releases' strun does not create it
        log = out / "jwenv-run.log"
        log.write_text("")
        full = command_for(cmd, out)
        notify("start", env.name)
        t0 = time.monotonic()
        rc = env.run(full, context=context, offline=offline, log=log, cwd=out,
                     extra_env=extra_env)
        result = VersionRun(env.name, env.manifest.jwst_version, out, log, rc,
                            time.monotonic() - t0, full)
        notify("done" if rc == 0 else "failed", env.name)
        return result

    # Paths in the command are resolved by the caller's cwd: make them absolute first,
    # since each version runs in its own output directory.
    cmd = [_absolute(a) for a in cmd]
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, envs))


def _absolute(arg: str) -> str:
    if arg.startswith("-") or "=" in arg:
        return arg
    p = Path(arg)
    return str(p.resolve()) if p.exists() else arg
