"""The `jwenv run` path and the console entry point, kept free of heavy imports.

`jwenv run NAME -- CMD` is on the hot path of batch work (one fresh strun per
exposure), so its common forms are parsed here without loading Typer, the
installer or the release index; anything else falls through to the full CLI.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

OUTPUT_FLAGS = ("--output_dir", "--output-dir")


def ensure_output_dir(cmd: Sequence[str], cwd: Path | None = None) -> Path | None:
    """Create the `--output_dir` of a strun command: some releases' strun does not."""
    if not cmd or Path(cmd[0]).name != "strun":
        return None
    for i, arg in enumerate(cmd):
        key, _, value = arg.partition("=")
        if key in OUTPUT_FLAGS:
            value = value or (cmd[i + 1] if i + 1 < len(cmd) else "")
            if value:
                out = (cwd or Path.cwd()) / value
                out.mkdir(parents=True, exist_ok=True)
                return out
    return None


def run_command(name: str, cmd: Sequence[str], *, context: str | None = None,
                offline: bool | None = None, install: bool = False) -> int:
    """What `jwenv run` does: find (or install) the env, prepare, run, return the code."""
    from jwenv.errors import BadInput

    if not cmd:
        raise BadInput("no command given: jwenv run NAME -- CMD [ARGS...]")
    env = get_or_install(name, install)
    return env.run(cmd, context=context, offline=offline)  # creates strun's --output_dir


def get_or_install(name: str, install: bool):
    """The installed env `name`; with `install`, build it first if it is missing."""
    from jwenv.envs import Env
    from jwenv.errors import EnvNotFound

    try:
        return Env.get(name)
    except EnvNotFound:
        if not install:
            raise
        from jwenv.cli import install_with_progress
        from jwenv.envs import InstallOptions

        return install_with_progress(name, InstallOptions())


def _parse_simple_run(opts: list[str]) -> tuple[str, str | None, bool | None] | None:
    """NAME with --offline/--online/--crds-context only; None means 'let Typer parse it'."""
    name, context, offline = None, None, None
    it = iter(opts)
    for tok in it:
        if tok == "--offline":
            offline = True
        elif tok == "--online":
            offline = False
        elif tok == "--crds-context":
            context = next(it, None)
            if context is None:
                return None
        elif tok.startswith("--crds-context="):
            context = tok.split("=", 1)[1]
        elif tok.startswith("-") or name is not None:
            return None
        else:
            name = tok
    return (name, context, offline) if name else None


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["run"] and "--" in argv:
        sep = argv.index("--")
        parsed = _parse_simple_run(argv[1:sep])
        if parsed is not None:
            from jwenv.errors import JwenvError

            name, context, offline = parsed
            try:
                code = run_command(name, argv[sep + 1:], context=context, offline=offline)
            except JwenvError as err:
                sys.stderr.write(f"jwenv: error: {err}\n")
                code = err.exit_code
            sys.exit(code)
    from jwenv.cli import main as full_main

    full_main()
