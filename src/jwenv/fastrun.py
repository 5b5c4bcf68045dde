"""The console entry point, and `jwenv run NAME -- CMD` without Typer (start-up cost).

`jwenv run NAME -- CMD` is on the hot path of batch work (one fresh strun per
exposure), so its common forms (NAME with --offline/--online/--crds-context) are
parsed here and run an environment that exists; anything else, `--install` and
`@PRODUCT` included, falls through to the full CLI in cli.py. Part of the CLI layer: it
prints the one-line error of a failed run.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def run_command(name: str, cmd: Sequence[str], *, context: str | None = None,
                offline: bool | None = None) -> int:
    """What `jwenv run` does for an installed environment: run, return the exit code."""
    from jwenv.envs import Env
    from jwenv.runner import require_command

    require_command(cmd)
    return Env.get(name).run(cmd, context=context, offline=offline)


def parse_simple_run(opts: list[str]) -> tuple[str, str | None, bool | None] | None:
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
        elif tok.startswith(("-", "@")) or name is not None:
            return None  # options of Typer's, or @PRODUCT (reads the product's headers)
        else:
            name = tok
    return (name, context, offline) if name else None


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["run"] and "--" in argv:
        sep = argv.index("--")
        parsed = parse_simple_run(argv[1:sep])
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
