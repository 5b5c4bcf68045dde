"""What jwenv knows about `strun` command lines and logs (and nothing else).

Kept apart so that the run path (`Env.run`), the multi-version runner and the
pipeline chain share one reading of `--output_dir` and of a failed run's log.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from jwenv import loglines
from jwenv.errors import BadInput

OUTPUT_FLAGS = ("--output_dir", "--output-dir")


def is_strun(cmd: Sequence[str]) -> bool:
    return bool(cmd) and Path(cmd[0]).name == "strun"


def needs_crds(cmd: Sequence[str]) -> bool:
    """Whether a strun command surely reads CRDS: every step fetches its parameter
    reference (pars-*) unless told `--disable-crds-steppars`; a step without reference
    files (group_scale) then runs without CRDS at all."""
    return is_strun(cmd) and not any(a.split("=", 1)[0] == "--disable-crds-steppars"
                                     for a in cmd)


def first_input(cmd: Sequence[str]) -> str | None:
    """`x_uncal.fits` of `strun PIPELINE x_uncal.fits ...` (None if not given first)."""
    if is_strun(cmd) and len(cmd) > 2 and not cmd[2].startswith("-"):
        return cmd[2]
    return None


def output_dir(cmd: Sequence[str]) -> str | None:
    """The value of a strun command's `--output_dir` (either spelling, either form)."""
    for i, arg in enumerate(cmd):
        key, _, value = arg.partition("=")
        if key in OUTPUT_FLAGS:
            return value or (cmd[i + 1] if i + 1 < len(cmd) else "") or None
    return None


def ensure_output_dir(cmd: Sequence[str], cwd: Path | None = None) -> Path | None:
    """Create the `--output_dir` of a strun command: some releases' strun does not."""
    value = output_dir(cmd) if is_strun(cmd) else None
    if not value:
        return None
    out = (cwd or Path.cwd()) / value
    out.mkdir(parents=True, exist_ok=True)
    return out


def command_for(cmd: Sequence[str], out: Path) -> list[str]:
    """The command with one version's output directory added (strun only).

    Refuses a command that names its own output directory: versions would write
    over each other's products.
    """
    if any(a.split("=", 1)[0] in OUTPUT_FLAGS for a in cmd):
        raise BadInput("do not pass --output_dir to a multi-version run: each version gets "
                       "its own directory under -o")
    return [*cmd, "--output_dir", str(out)] if is_strun(cmd) else list(cmd)


def error_line(log: Path, returncode: int) -> str:
    """The one line of a strun log that says why it failed: CRDS's own message first."""
    return loglines.reason(loglines.read(log), default=f"exit {returncode}, no output")
