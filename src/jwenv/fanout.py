"""Fan-out: one command under several environments, each into its own output directory.

This is the part of `jwenv compare` that is not comparing: it guarantees that
versions never write next to the input or over each other's products, and keeps
each version's full log beside its products. (One child process is runner.py.)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from jwenv import crds, loglines, strun
from jwenv.envs import Env
from jwenv.errors import BadInput

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
        return loglines.tail(loglines.read(self.log), n)

    def error_line(self) -> str:
        return strun.error_line(self.log, self.returncode)

    def to_dict(self) -> dict:
        return {"env": self.env, "jwst_version": self.jwst_version,
                "output_dir": str(self.output_dir), "log": str(self.log),
                "returncode": self.returncode, "seconds": round(self.seconds, 2),
                "command": self.command, "error": None if self.ok else self.error_line()}


def default_output_root() -> Path:
    """A new directory per run (two runs in the same second never share one)."""
    parent = Path.cwd() / "jwenv-runs"
    parent.mkdir(parents=True, exist_ok=True)
    import tempfile

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(tempfile.mkdtemp(prefix=f"{stamp}-", dir=parent))


def run_across(envs: Sequence[Env], cmd: Sequence[str], out_root: Path, *, jobs: int = 1,
               context: str | None = None, offline: bool | None = None,
               on_event: Event | None = None) -> list[VersionRun]:
    """Run `cmd` under each env (up to `jobs` at once); results in the order given."""
    if len({e.name for e in envs}) != len(envs):
        raise BadInput("the same environment is named twice")
    if not cmd:
        raise BadInput("no command given after --")
    strun.command_for(cmd, out_root)  # refuse a bad command before anything is written
    notify = on_event or (lambda _e, _d: None)

    def one(env: Env) -> VersionRun:
        out = out_root / env.name
        out.mkdir(parents=True, exist_ok=True)  # some releases' strun does not create it
        log = out / "jwenv-run.log"
        log.write_text("")
        full = strun.command_for(cmd, out)
        notify("start", env.name)
        t0 = time.monotonic()
        rc = env.run(full, context=context, offline=offline, log=log, cwd=out)
        result = VersionRun(env.name, env.manifest.jwst_version, out, log, rc,
                            time.monotonic() - t0, full)
        notify("done" if rc == 0 else "failed", env.name)
        return result

    # Paths in the command are resolved by the caller's cwd: make them absolute first,
    # since each version runs in its own output directory.
    cmd = [_absolute(a) for a in cmd]
    if jobs > 1:
        for env in envs:
            crds.prepare_cache(env.crds_settings(context=context, offline=offline).path)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, envs))


def _absolute(arg: str) -> str:
    if arg.startswith("-") or "=" in arg:
        return arg
    p = Path(arg)
    return str(p.resolve()) if p.exists() else arg
