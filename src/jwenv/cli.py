"""The `jwenv` command line: parses arguments, calls the core, prints.

The CLI layer is this module, fastrun.py (the entry point and the Typer-free
`jwenv run`) and report.py (rendering comparisons); nothing below it imports
Typer or prints. Core modules are imported inside the commands so each command
loads only what it uses.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from jwenv.envs import Env
    from jwenv.installer import InstallOptions

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Side-by-side jwst pipeline environments with pinned CRDS contexts.",
)
crds_app = typer.Typer(no_args_is_help=True, help="CRDS settings of environments.")
app.add_typer(crds_app, name="crds")

PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped output is read by grep and scripts: don't wrap tables at 80 columns.
    width = None if stream.isatty() else int(os.environ.get("COLUMNS", "0") or 0) or 200
    return Console(stderr=stderr, highlight=False, width=width)


def _json_out(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit in ("B", "KB") else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _readable_help() -> None:
    """Newer Typer writes `<bool>` beside every flag, `<str>` beside every value and
    `{name}` in usage lines. Show click's plain forms: nothing for a flag, TEXT, INTEGER,
    PATH for values, NAME in usage. (Older Typer has none of these methods: untouched.)"""
    from typer import core

    plain = {"<str>": "TEXT", "<int>": "INTEGER", "<float>": "FLOAT", "<path>": "PATH",
             "<list[str]>": "TEXT", "<list[Path]>": "PATH"}
    option, argument = core.TyperOption, core.TyperArgument
    if hasattr(option, "display_type_rich") and hasattr(option, "display_type"):
        def option_type(self: Any, ctx: Any) -> str | None:
            if self.metavar is not None:
                return self.metavar
            if self.is_flag or self.is_bool_flag:
                return None
            shown = self.display_type(ctx)
            return plain.get(shown, shown.strip("<>").upper()) if shown else None
        option.display_type_rich = option_type
    if hasattr(argument, "display_type_rich"):
        argument.display_type_rich = lambda self, ctx: None  # the name says it
    if hasattr(argument, "_usage_display_name"):
        def usage_name(self: Any) -> str:
            name = self.metavar or self.name.upper()
            name = name if self.required else f"[{name}]"
            return name + ("..." if self.nargs != 1 and not self.metavar else "")
        argument._usage_display_name = usage_name
        if hasattr(argument, "_rich_display_name"):
            argument._rich_display_name = lambda self: self.metavar or self.name.upper()


_readable_help()


def _print_version(value: bool) -> None:
    if value:
        from jwenv import __version__

        sys.stdout.write(f"jwenv {__version__}\n")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_print_version,
        help="Show jwenv's version and exit.")] = False,
) -> None:
    """(--debug is read by main() before Typer runs: errors raised anywhere need it.)"""


# -- install -------------------------------------------------------------------
@app.command()
def install(
    version: Annotated[str | None, typer.Argument(
        help="1.20.2, latest, ~=1.12.0, git+URL@ref, a source directory, a wheel, or "
             "@PRODUCT (the release and context that made a product; omit with --lock)")
    ] = None,
    like: Annotated[Path | None, typer.Option(
        help="The release and CRDS context that made this product (same as @FILE)")] = None,
    python: Annotated[str | None, typer.Option(help="Python version (3.11) or path")] = None,
    crds_context: Annotated[str | None, typer.Option(
        help="CRDS context to pin (default: the one STScI paired with the release)")] = None,
    name: Annotated[str | None, typer.Option(help="Environment name "
                                                     "(default: the jwst version)")] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if installed")] = False,
    backend: Annotated[str, typer.Option(help="Installer: uv or virtualenv")] = "uv",
    deps: Annotated[str | None, typer.Option(
        help="Dependency strategy: ops, dated, latest, or an order like ops,dated")] = None,
    check: Annotated[str, typer.Option(help="Health check after the build: full, import, "
                                            "none")] = "full",
    lock: Annotated[Path | None, typer.Option(
        help="Rebuild exactly from a lock written by `jwenv export`")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON")] = False,
) -> None:
    """Create (or reuse) an isolated environment for a jwst release."""
    from jwenv.errors import BadInput
    from jwenv.installer import InstallOptions

    if like is not None:
        if version is not None:
            raise BadInput("give a VERSION or --like FILE, not both")
        version = f"@{like}"
    if (version is None) == (lock is None):
        raise BadInput("give a VERSION or --lock FILE (one of them)")
    options = InstallOptions(python=python, crds_context=crds_context, name=name, force=force,
                             backend=backend, deps=deps, check=check, lock=lock)
    if version is not None and version.startswith("@"):
        env = _like(version, install=True, options=options)
    else:
        env = install_with_progress(version or f"lock:{lock}", options)
    if as_json:
        _json_out(env.manifest.to_dict())
        return
    m = env.manifest
    _console().print(f"[green]✓[/] {m.name}: jwst {m.jwst_version}, Python {m.python_version}, "
                     f"CRDS {m.crds_context or '(none)'}, deps {m.strategy} → {env.path}")


def install_with_progress(spec: str, options: InstallOptions) -> Env:
    import time

    from jwenv.envs import Env

    console = _console(stderr=True)
    t0 = time.monotonic()
    if not console.is_terminal:
        def plain(event: str, detail: str) -> None:
            if event != "line":
                console.print(f"jwenv: {detail}")
        return Env.install(spec, options, progress=plain)
    with console.status("resolving…") as status:
        last = {"phase": "resolving"}

        def show(event: str, detail: str) -> None:
            if event == "line":
                status.update(f"{last['phase']} [dim]{detail[:80]}[/]")
            elif event == "chosen":  # stays on screen: which release `1.20` meant
                console.print(f"jwenv: {detail}", markup=False, highlight=False)
            else:
                last["phase"] = detail
                status.update(f"{detail} [dim]({time.monotonic() - t0:.0f} s)[/]")
        return Env.install(spec, options, progress=show)


# -- run / shell / env ---------------------------------------------------------
ContextOpt = Annotated[str | None, typer.Option(
    "--crds-context", help="Another CRDS context than the environment's pin (this time only)")]
OfflineOpt = Annotated[bool | None, typer.Option(
    "--offline/--online", help="CRDS serverless mode against the local CRDS_PATH cache "
                               "(default: $JWENV_OFFLINE)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON (for scripts)")]


def _like(spec: str, *, install: bool, options: InstallOptions | None = None) -> Env:
    """`@PRODUCT`: the environment of the release and context that made it (reused when
    one is installed, whatever its name; else built when `install`)."""
    from jwenv import like, releases
    from jwenv.errors import EnvNotFound
    from jwenv.installer import InstallOptions
    from jwenv.store import Store

    path = Path(spec[1:])
    maker = like.maker_of(path, lambda: releases.load_index(Store().index_dir))
    options = options or InstallOptions()
    found = None if options.force else like.find(maker)
    if found is not None:
        _console(stderr=True).print(f"jwenv: {path.name} was made by jwst {maker.version} with "
                                    f"{maker.context}: environment {found.name}")
        return found
    if not install:
        raise EnvNotFound(f"no environment of jwst {maker.version} with {maker.context} (what "
                          f"made {path.name}); install it with `jwenv install --like {path}`")
    options.name = options.name or maker.name
    options.crds_context = options.crds_context or maker.context
    return install_with_progress(maker.request, options)


def _get_or_install(name: str, do_install: bool) -> Env:
    """The installed env `name`; with `do_install`, build it first if it is missing.
    `@PRODUCT` names the environment of what made that product."""
    from jwenv.envs import Env
    from jwenv.errors import EnvNotFound
    from jwenv.installer import InstallOptions

    if name.startswith("@"):
        return _like(name, install=do_install)
    try:
        return Env.get(name)
    except EnvNotFound:
        if not do_install:
            raise
        return install_with_progress(name, InstallOptions())


@app.command(context_settings=PASSTHROUGH)
def run(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME -- CMD [ARGS ...]",
                                        help="Environment name (e.g. 1.20.2), then the "
                                             "command")],
    crds_context: Annotated[str | None, typer.Option(help="Override the pinned context "
                                                             "for this run")] = None,
    offline: Annotated[bool | None, typer.Option(
        "--offline/--online", help="CRDS serverless mode against the local CRDS_PATH "
                                   "(default: $JWENV_OFFLINE)")] = None,
    do_install: Annotated[bool, typer.Option("--install", help="Install first if "
                                                               "missing")] = False,
) -> None:
    """Run a command inside an environment: jwenv run 1.20.2 -- strun ..."""
    from jwenv.errors import BadInput
    from jwenv.runner import require_command
    from jwenv.store import Store

    cmd = list(ctx.args)
    argv = sys.argv
    if "--" in argv and name not in argv[1:argv.index("--")]:  # `run -- strun x`
        names = ", ".join(Store().names()) or "none yet"
        raise BadInput(f"no environment given before `--`: jwenv run NAME -- "
                       f"{' '.join([name, *cmd])} (installed: {names})")
    require_command(cmd)  # before an install, not after it
    env = _get_or_install(name, do_install)
    raise typer.Exit(env.run(cmd, context=crds_context, offline=offline))


@app.command()
def shell(
    name: Annotated[str, typer.Argument(help="Environment name")],
    crds_context: ContextOpt = None,
    offline: OfflineOpt = None,
    use: Annotated[str | None, typer.Option(
        "--shell", help="The shell to start (default: $SHELL); bash, zsh, fish and sh get "
                        "the environment first on PATH after their rc files")] = None,
) -> None:
    """Start an interactive shell with the environment active, even after rc files that
    put pyenv or conda first on PATH (exit to leave)."""
    from jwenv import shells
    from jwenv.envs import Env

    env = Env.get(name)
    console = _console(stderr=True)
    console.print(f"jwenv: entering {env.name} (jwst {env.manifest.jwst_version}, "
                  f"CRDS {crds_context or env.context}); exit to leave", markup=False)
    raise typer.Exit(shells.start(env, use, context=crds_context, offline=offline,
                                  on_note=lambda n: console.print(f"jwenv: {n}",
                                                                  markup=False)))


@app.command("env")
def env_cmd(
    name: Annotated[str, typer.Argument(help="Environment name")],
    crds_context: ContextOpt = None,
    offline: OfflineOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the variables a run gets, as `export` lines: eval "$(jwenv env 1.20.2)"."""
    import shlex

    from jwenv.envs import Env
    from jwenv.runner import ISOLATION_UNSET

    variables = Env.get(name).variables(context=crds_context, offline=offline)
    if as_json:
        _json_out(variables)
        return
    for key in ISOLATION_UNSET:
        if key in os.environ and key not in variables:
            sys.stdout.write(f"unset {key}\n")
    for key, value in variables.items():
        sys.stdout.write(f"export {key}={shlex.quote(value)}\n")


# -- pip / kernel ----------------------------------------------------------------
@app.command("pip", context_settings=PASSTHROUGH)
def pip_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(
        metavar="NAME -- install|uninstall|list|show|freeze|tree|check [ARGS ...]",
        help="Environment name, then what uv pip does")],
) -> None:
    """Install packages into an environment (uv pip against its own python), keeping the
    versions installed unless --upgrade: jwenv pip 1.20.2 -- install photutils"""
    from jwenv import packages
    from jwenv.envs import Env

    env = Env.get(name)
    result = packages.pip(env, list(ctx.args))
    if result.added or result.removed:
        what = ", ".join(result.added) or f"removed {', '.join(result.removed)}"
        _console(stderr=True).print(f"jwenv: {env.name}: {what}; recorded in its manifest and "
                                    f"lock (jwenv export {env.name})", markup=False)
    raise typer.Exit(result.code)


@app.command()
def kernel(
    words: Annotated[list[str], typer.Argument(
        metavar="NAME | remove NAME | list",
        help="An environment to register as a Jupyter kernel; `remove NAME` (an environment "
             "or a kernel name); `list` (jwenv's kernels)")],
    crds_context: ContextOpt = None,
    offline: OfflineOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A Jupyter kernel of an environment ("jwst 1.20.2 (jwst_1464.pmap)"): ipykernel of the
    release's era added to it, CRDS set as for a run before jwst is imported.
    $JUPYTER_DATA_DIR moves where kernelspecs go."""
    import time

    from jwenv import kernels
    from jwenv.envs import Env
    from jwenv.errors import BadInput
    from jwenv.store import Store

    verb, rest = (words[0], words[1:]) if words[0] in ("list", "remove") else ("add", words)
    if (verb == "list" and rest) or (verb != "list" and len(rest) != 1):
        raise BadInput("usage: jwenv kernel NAME | jwenv kernel remove NAME | jwenv kernel list")
    if verb == "list":
        found = kernels.listed()
        if as_json:
            _json_out([k.to_dict() for k in found])
            return
        console = _console()
        if not found:
            console.print("no jwenv kernels yet: jwenv kernel NAME")
        names = set(Store().names())
        for k in found:
            gone = "" if k.env in names else "  (environment removed)"
            console.print(f"{k.name:28} {k.display_name}  {k.path}{gone}", markup=False)
        return
    if verb == "remove":
        gone = kernels.remove(rest[0])
        if as_json:
            _json_out([k.to_dict() for k in gone])
            return
        for k in gone:
            _console().print(f"removed kernel {k.name} ({k.display_name})", markup=False)
        return
    env = Env.get(rest[0])
    err = _console(stderr=True)
    log = env.store.logs_dir / f"{env.name}-kernel-{int(time.time())}.log"
    made = kernels.install(env, context=crds_context, offline=offline, log=log,
                           on_event=lambda _k, d: err.print(f"jwenv: {d}", markup=False))
    log.unlink(missing_ok=True)  # kept only when adding ipykernel failed
    if as_json:
        _json_out(made.to_dict())
        return
    _console().print(f"✓ kernel {made.name}: \"{made.display_name}\" → {made.path}",
                     markup=False)


# -- list / info / remove / pin -----------------------------------------------
def _summary(env: Env, with_size: bool = True) -> dict[str, Any]:
    m = env.manifest
    out = {"name": m.name, "jwst_version": m.jwst_version, "python": m.python_version,
           "crds_context": m.crds_context, "source": m.source, "strategy": m.strategy,
           "backend": m.backend, "created": m.created, "path": str(env.path),
           "healthy": bool(m.health.get("ok", False))}
    if with_size:
        out["size_bytes"], out["own_bytes"] = env.usage()
    return out


@app.command("list")
def list_cmd(as_json: JsonOpt = False) -> None:
    """The installed environments; `own` is what removing one frees (the rest is hard-linked
    from uv's cache: jwenv du)."""
    from rich.table import Table

    from jwenv.envs import Env

    rows = [_summary(e) for e in Env.all()]
    if as_json:
        _json_out(rows)
        return
    if not rows:
        _console().print("no environments yet: jwenv install latest")
        return
    table = Table("name", "jwst", "Python", "CRDS context", "deps", "own", "apparent",
                  "created")
    for r in rows:
        table.add_row(r["name"], r["jwst_version"], r["python"], r["crds_context"] or "-",
                      r["strategy"], _human_size(r["own_bytes"]), _human_size(r["size_bytes"]),
                      r["created"][:16])
    _console().print(table)


@app.command()
def du(as_json: JsonOpt = False) -> None:
    """Real disk use: per environment the bytes only it holds (what remove frees) and those
    hard-linked from uv's cache; the shared caches, build leftovers and logs on their own."""
    from rich.table import Table

    from jwenv import disk

    found = disk.report()
    if as_json:
        _json_out(found.to_dict())
        return
    table = Table("", "own", "hard-linked", "path", box=None, pad_edge=False)
    for e in found.envs:
        table.add_row(f"env {e.name}", _human_size(e.own), _human_size(e.apparent - e.own),
                      str(e.path))
    for a in found.areas:
        table.add_row(a.label, _human_size(a.bytes), "", f"{a.path}  ({a.note})" if a.note
                      else str(a.path))
    table.add_row("total", _human_size(found.total), "", "")
    _console().print(table)


@app.command()
def clean(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would go, remove "
                                                            "nothing")] = False,
    crds: Annotated[bool, typer.Option("--crds", help="Also jwenv's own CRDS cache (never "
                                                      "your CRDS_PATH)")] = False,
    uv: Annotated[bool, typer.Option("--uv", help="Also uv's unreachable cache entries "
                                                  "(uv cache prune)")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Remove failed builds' leftovers, installer logs and the release index cache (--crds,
    --uv: those caches too); never an installed environment or a build in progress."""
    from jwenv import disk

    done = disk.clean(dry_run=dry_run, crds=crds, uv=uv)
    if as_json:
        _json_out({"dry_run": dry_run, "removed": [r.to_dict() for r in done],
                   "bytes": sum(r.bytes for r in done)})
        return
    console = _console()
    verb = "would remove" if dry_run else "removed"
    for r in done:
        console.print(f"{verb} {r.label}: {r.path} ({_human_size(r.bytes)})", markup=False)
    if crds and os.environ.get("CRDS_PATH"):
        console.print(f"CRDS_PATH ({os.environ['CRDS_PATH']}) is yours: not touched",
                      markup=False)
    console.print(f"{'would free' if dry_run else 'freed'} "
                  f"{_human_size(sum(r.bytes for r in done))}" if done else "nothing to clean")


@app.command()
def info(name: Annotated[str, typer.Argument(help="Environment name")],
         as_json: JsonOpt = False) -> None:
    """Everything jwenv knows about one environment."""
    from jwenv.envs import Env

    env = Env.get(name)
    data = env.manifest.to_dict()
    data["path"] = str(env.path)
    data["size_bytes"] = env.size()
    if as_json:
        _json_out(data)
        return
    console = _console()
    for key in ("name", "jwst_version", "requested", "source", "requirement", "python_version",
                "python_path", "python_reason", "backend", "strategy", "crds_context",
                "release_date", "created", "path"):
        console.print(f"[bold]{key:15}[/] {data.get(key) or '-'}")
    console.print(f"[bold]{'size':15}[/] {_human_size(data['size_bytes'])}")
    console.print(f"[bold]{'health':15}[/] {'ok' if env.manifest.health.get('ok') else 'FAILED'}"
                  f" ({env.manifest.health.get('level', '-')}, "
                  f"{env.manifest.health.get('checked', '-')})")
    console.print(f"[bold]{'packages':15}[/] {len(data['packages'])} pinned")


@app.command()
def remove(name: Annotated[str, typer.Argument(help="Environment name")]) -> None:
    """Delete an environment (and its Jupyter kernels)."""
    from jwenv import kernels
    from jwenv.envs import Env
    from jwenv.errors import EnvNotFound

    try:
        env = Env.get(name)
    except EnvNotFound:  # nothing to remove: no `jwenv install` hint
        raise EnvNotFound(f"no environment named {name!r} to remove (see `jwenv list`)") \
            from None
    env.remove()
    _console().print(f"removed {name}", markup=False)
    for k in kernels.remove(name, missing_ok=True):
        _console().print(f"removed kernel {k.name} ({k.display_name})", markup=False)


@app.command()
def pin(name: Annotated[str, typer.Argument(help="Environment name")],
        context: Annotated[str, typer.Argument(help="jwst_NNNN.pmap")]) -> None:
    """Change the CRDS context pinned to an environment."""
    from jwenv.envs import Env

    env = Env.get(name)
    old = env.context
    env.pin(context)
    _console().print(f"{name}: CRDS context {old or '(none)'} → {env.context}")


# -- available -------------------------------------------------------------------
@app.command()
def available(
    as_json: JsonOpt = False,
    all_rows: Annotated[bool, typer.Option("--all", help="Include git-only releases and "
                                                         "prereleases")] = False,
    refresh: Annotated[bool, typer.Option(help="Re-read PyPI now")] = False,
) -> None:
    """jwst releases: date, Pythons, paired CRDS context, DMS build, known to work (measured
    by benchmarks/coverage.py), installed or not."""
    from rich.table import Table

    from jwenv import crds, releases, strategies
    from jwenv.envs import Env
    from jwenv.store import Store

    store = Store()
    index = releases.load_index(store.index_dir, refresh=refresh)
    pairs = index.paired_contexts()
    known = strategies.known_releases()  # measured by benchmarks/coverage.py
    installed: dict[str, list[str]] = {}
    for env in Env.all(store):
        installed.setdefault(env.manifest.jwst_version, []).append(env.name)
    rows = []
    for rel in reversed(index.sorted()):
        if not all_rows and (not rel.on_pypi or rel.version.is_prerelease):
            continue
        date = rel.release_date.date().isoformat() if rel.release_date else ""
        rows.append({
            "version": str(rel.version), "source": "pypi" if rel.on_pypi else "git",
            "released": date, "requires_python": rel.requires_python or "",
            "crds_context": crds.paired_context(rel.version, pairs),
            "dms_build": rel.dms.dms_build if rel.dms else "", "yanked": rel.yanked,
            "installed": installed.get(str(rel.version), []),
            "known": known.get(str(rel.version)),  # None: not measured
        })
    if as_json:
        _json_out(rows)
        return
    table = Table("jwst", "released", "Python", "CRDS context", "DMS build", "source",
                  "known to work", "installed")
    for r in rows:
        k = r["known"]
        works = "" if k is None else "yes" if k.get("ok") else f"no: {k.get('why', '')}"
        table.add_row(r["version"], r["released"], r["requires_python"], r["crds_context"],
                      r["dms_build"], r["source"], works, ", ".join(r["installed"]))
    _console().print(table)


# -- doctor / repair -------------------------------------------------------------
@app.command()
def doctor(name: Annotated[str | None, typer.Argument(
               help="Environment name (default: every one)")] = None,
           level: Annotated[str, typer.Option(help="full or import")] = "full",
           deep: Annotated[bool, typer.Option(
               help="Run the offline program through stages 1-3 and check the catalog "
                    "against its truth table (about a minute per release)")] = False,
           as_json: JsonOpt = False) -> None:
    """Re-run the health check of one or every environment."""
    import tempfile

    from jwenv import health
    from jwenv.envs import Env
    from jwenv.errors import BadInput

    if level not in health.LEVELS or level == "none":
        raise BadInput(f"unknown --level {level!r}: use full or import")
    envs = [Env.get(name)] if name else Env.all()
    if deep:
        from jwenv.doctor import chain_check

        results = {}
        for env in envs:
            with tempfile.TemporaryDirectory(prefix=f"jwenv-doctor-{env.name}-") as tmp:
                results[env.name] = chain_check(env, Path(tmp),
                                                on_event=_stage_printer(as_json))
    else:
        results = {e.name: e.check(level) for e in envs}
    if as_json:
        _json_out(results)
    else:
        console = _console()
        for env_name, report in results.items():
            mark = "[green]ok[/]" if report["ok"] else "[red]FAILED[/]"
            console.print(f"{env_name}: {mark}")
            for c in report.get("checks", []):
                console.print(f"  {'✓' if c['ok'] else '✗'} {c['check']}: {c.get('detail', '')}")
    if not all(r["ok"] for r in results.values()):
        raise typer.Exit(1)


@app.command()
def repair(name: Annotated[str, typer.Argument(help="Environment name")]) -> None:
    """Rebuild an environment from its own lock: same pins, Python version and context."""
    import tempfile

    from jwenv.envs import Env
    from jwenv.installer import InstallOptions
    from jwenv.locks import export_lock

    m = Env.get(name).manifest
    with tempfile.TemporaryDirectory(prefix="jwenv-repair-") as tmp:
        lock = Path(tmp) / f"{name}.lock"
        lock.write_text(export_lock(m))
        options = InstallOptions(name=m.name, crds_context=m.crds_context, force=True,
                                 backend=m.backend, lock=lock,
                                 check=m.health.get("level", "full"))
        env = install_with_progress(f"lock:{lock}", options)
    _console().print(f"[green]✓[/] rebuilt {env.name} (jwst {env.manifest.jwst_version}, "
                     f"Python {env.manifest.python_version})")


@app.command()
def export(name: Annotated[str, typer.Argument(help="Environment name")],
           output: Annotated[Path | None, typer.Option("-o", "--output",
                             help="Write here instead of stdout")] = None) -> None:
    """Write the environment's exact lock (rebuild elsewhere with `jwenv install --lock`)."""
    from jwenv.envs import Env
    from jwenv.locks import export_lock
    from jwenv.store import write_text_atomic

    text = export_lock(Env.get(name).manifest)
    if output is None:
        sys.stdout.write(text)
    else:
        write_text_atomic(output, text)
        _console(stderr=True).print(f"wrote {output}")


# -- crds ------------------------------------------------------------------------
@crds_app.command("status")
def crds_status(name: Annotated[str, typer.Argument(help="Environment name")],
                offline: OfflineOpt = None,
                as_json: JsonOpt = False) -> None:
    """Effective CRDS settings of an environment."""
    from jwenv import crds
    from jwenv.envs import Env

    s = Env.get(name).crds_settings(offline=offline)
    data = {"path": s.path, "path_from": "CRDS_PATH" if s.path_from_user else "jwenv default",
            "server_url": s.server_url,
            "server_from": ("offline (serverless)" if s.offline else
                            "CRDS_SERVER_URL" if s.server_from_user else "jwenv default"),
            "context": s.context, "mode": "offline" if s.offline else "online",
            "context_cached": crds.mappings_cached(s.path, s.context)}
    if as_json:
        _json_out(data)
        return
    console = _console()
    for key, value in data.items():
        console.print(f"[bold]{key:15}[/] {value}")


@crds_app.command("sync")
def crds_sync(
    name: Annotated[str, typer.Argument(help="Environment (its crds and pinned context)")],
    inputs: Annotated[list[Path], typer.Argument(help="Exposures or products")],
    context: Annotated[str | None, typer.Option(
        "--context", help="Another context than the environment's pin")] = None,
    offline: Annotated[bool | None, typer.Option(
        "--offline/--online", help="Offline: only check the cache (default: "
                                   "$JWENV_OFFLINE)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fetch once, before a run, every reference the inputs need under the context (the
    release's own crds), so that many workers can read the cache read-only; offline,
    check the cache and name what is missing."""
    from jwenv import refs

    env = _get_or_install(name, False)
    report = refs.sync(env, _product_files(inputs), context=context, offline=offline)
    if as_json:
        _json_out(report.to_dict())
    if not report.ok:
        from jwenv.errors import JwenvError

        raise JwenvError(report.summary())
    if not as_json:
        _console().print(report.summary(), markup=False)


# -- compare / diff ---------------------------------------------------------------
def _compare_options(rtol: float | None, atol: float | None, quick: bool,
                     ignore_keyword: list[str] | None,
                     match_radius: float | None = None) -> dict[str, Any]:
    from jwenv import compare

    return {"rtol": compare.DEFAULT_RTOL if rtol is None else rtol,
            "atol": compare.DEFAULT_ATOL if atol is None else atol, "quick": quick,
            "ignore_keywords": (*compare.DEFAULT_IGNORED, *(ignore_keyword or ())),
            "match_radius": (compare.DEFAULT_MATCH_RADIUS_ARCSEC if match_radius is None
                             else match_radius)}


RtolOpt = Annotated[float | None, typer.Option(help="Relative tolerance (default 1e-5, as "
                                                       "jwst's regression tests)")]
AtolOpt = Annotated[float | None, typer.Option(help="Absolute tolerance (default 1e-7)")]
QuickOpt = Annotated[bool, typer.Option(help="Stop at the first difference")]
IgnoreOpt = Annotated[list[str] | None, typer.Option(
    "--ignore-keyword", help="Header keyword (glob) to ignore, repeatable")]
HtmlOpt = Annotated[Path | None, typer.Option(help="Write a self-contained HTML report "
                                                      "(and its pictures as PNG files) into "
                                                      "this directory")]
VerboseOpt = Annotated[bool, typer.Option(
    "--verbose", help="Every file, extension, column and header keyword (default: a "
                      "one-screen summary)")]
MatchRadiusOpt = Annotated[float | None, typer.Option(
    "--match-radius", help="Catalog sources within this many arcsec are the same source "
                           "(default 0.2)")]


@app.command()
def diff(
    a: Annotated[Path, typer.Argument(help="File or directory (reference)")],
    b: Annotated[Path, typer.Argument(help="File or directory (new)")],
    rtol: RtolOpt = None, atol: AtolOpt = None, quick: QuickOpt = False,
    ignore_keyword: IgnoreOpt = None, match_radius: MatchRadiusOpt = None,
    html: HtmlOpt = None, verbose: VerboseOpt = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Compare two existing products or directories of products (exit 0 same, 1 differ, 2 error)."""
    from jwenv import compare

    result = compare.compare_paths(a, b, **_compare_options(rtol, atol, quick, ignore_keyword,
                                                            match_radius))
    _show_comparisons([result], html, as_json, runs=None, verbose=verbose)
    raise typer.Exit(result.exit_code())


def _show_comparisons(results: list[Any], html: Path | None, as_json: bool,
                      runs: list[Any] | None, verbose: bool = False) -> None:
    from jwenv import report

    pages = []
    if html is not None:
        for i, result in enumerate(results):
            target = html if len(results) == 1 else html / f"{i + 1}"
            pages.append(str(report.write_html(result, target)))
        if not report.plots_available():
            _console(stderr=True).print(f"pictures skipped: {report.PLOTS_HINT}", markup=False)
    if as_json:
        payload: dict[str, Any] = {"comparisons": [r.to_dict() for r in results]}
        if runs is not None:
            payload["runs"] = [r.to_dict() for r in runs]
        if pages:
            payload["html"] = pages
        _json_out(payload)
        return
    console = _console()
    for result in results:
        report.render_terminal(result, console, verbose=verbose)
    for page in pages:
        console.print(f"HTML report: {page}")


@app.command(context_settings=PASSTHROUGH,
             options_metavar="[OPTIONS] V1 V2 [V3 ...] -- CMD [ARGS ...]")
def compare(
    ctx: typer.Context,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Where each version's "
                      "products go (DIR/<env>/); default ./jwenv-runs/<time>")] = None,
    jobs: Annotated[int | None, typer.Option(
        "-j", "--jobs", help="Versions run at once (with --reprocess: jobs at once, default "
                             "this machine's cores)")] = None,
    memory: MemoryOpt = None, allow_mixed: MixedOpt = False,
    offline: Annotated[bool | None, typer.Option("--offline/--online")] = None,
    crds_context: Annotated[str | None, typer.Option(
        help="Use this context for every version instead of each one's pin")] = None,
    do_install: Annotated[bool, typer.Option("--install", help="Install missing "
                                                               "versions first")] = False,
    reprocess_chain: Annotated[bool, typer.Option(
        "--reprocess", help="After --, give INPUT files: run the stage 1→3 chain under each "
                            "version and compare every level")] = False,
    stages: Annotated[str | None, typer.Option(help="With --reprocess: stages to run")] = None,
    rtol: RtolOpt = None, atol: AtolOpt = None, quick: QuickOpt = False,
    ignore_keyword: IgnoreOpt = None, match_radius: MatchRadiusOpt = None,
    html: HtmlOpt = None, verbose: VerboseOpt = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Run a command under several versions and compare their products:
    jwenv compare 1.20.2 3.0.0 -- strun jwst.pipeline.Detector1Pipeline x_uncal.fits"""
    from rich.markup import escape

    from jwenv import compare as cmp
    from jwenv import fanout, strun
    from jwenv.errors import BadInput

    argv = sys.argv
    cmd = argv[argv.index("--") + 1:] if "--" in argv else []
    names = list(ctx.args[: len(ctx.args) - len(cmd)])
    if len(names) < 2 or not cmd:
        raise BadInput("usage: jwenv compare V1 V2 [V3 ...] -- strun PIPELINE INPUT [args]")
    if not reprocess_chain:
        strun.command_for(cmd, Path("."))  # a bad command is refused before anything is made
    options = _compare_options(rtol, atol, quick, ignore_keyword, match_radius)
    out_root = (output or fanout.default_output_root()).absolute()
    if reprocess_chain:
        _compare_chains(names, cmd, out_root, jobs=jobs, memory=memory, offline=offline,
                        context=crds_context, install=do_install, stages=stages,
                        allow_mixed=allow_mixed, options=options, html=html, as_json=as_json,
                        verbose=verbose)
    envs = [_get_or_install(n, do_install) for n in names]
    console = _console(stderr=True)

    def event(kind: str, env_name: str) -> None:
        if not as_json:
            mark = {"start": "…", "done": "[green]✓[/]", "failed": "[red]✗[/]"}[kind]
            console.print(f"{mark} {env_name} {'' if kind == 'start' else kind}")

    results = fanout.run_across(envs, cmd, out_root, jobs=jobs or 1, context=crds_context,
                                offline=offline, on_event=event)
    failed = [r for r in results if not r.ok]
    for r in failed:
        if not as_json:
            console.print(f"[red]{r.env} exited {r.returncode}[/]: "
                          f"{escape(r.error_line())}")
            console.print(f"  log: {r.log}", markup=False)
            for line in r.log_tail():
                console.print(f"    {line}", markup=False)
    comparisons, code = cmp.compare_runs([r.output_dir for r in results if r.ok],
                                         failed=len(failed), **options)
    _show_comparisons(comparisons, html, as_json, runs=results, verbose=verbose)
    if not as_json:
        console.print(f"products: {out_root}")
    raise typer.Exit(code)


# -- reprocess -----------------------------------------------------------------------
def _split_inputs(args: list[str]) -> tuple[list[Path], list[str]]:
    steps = [a for a in args if a.startswith("-")]
    return [Path(a) for a in args if not a.startswith("-")], steps


JobsOpt = Annotated[int | None, typer.Option(
    "-j", "--jobs", help="Jobs at once (default: this machine's cores)")]
MemoryOpt = Annotated[str | None, typer.Option(
    help="Memory budget, e.g. 8G (default: the memory available now); a job starts only "
         "if the estimated peaks of the running jobs and its own fit")]
AsnOpt = Annotated[list[Path] | None, typer.Option(
    "--asn", help="Association file to use as given (repeatable; default: *_asn.json "
                  "beside the inputs, else the release's own rules)")]
MixedOpt = Annotated[bool, typer.Option(
    "--allow-mixed", help="Reprocess inputs of several programs together")]
RetryOpt = Annotated[bool, typer.Option(
    "--retry-failed", help="Run the jobs that failed (and what they blocked) again")]
StrunOpt = Annotated[bool, typer.Option(
    "--strun", help="One strun process per job instead of warm workers")]
ExecutorOpt = Annotated[str, typer.Option(
    help="Where jobs run: local (this machine) or dask (a Dask cluster)")]
SchedulerOpt = Annotated[str | None, typer.Option(
    help="With --executor dask: the scheduler's address, e.g. tcp://host:8786 (default: a "
         "LocalCluster jwenv starts)")]
SchedulerFileOpt = Annotated[Path | None, typer.Option(
    help="With --executor dask: the scheduler file of a running cluster")]
DaskWorkersOpt = Annotated[int, typer.Option(
    help="With --executor dask and no scheduler: workers of the LocalCluster")]
ShipLockOpt = Annotated[bool, typer.Option(
    "--ship-lock", help="With --executor dask: workers without the shared store build the "
                        "environment from its exact lock")]


@contextmanager
def _cluster(executor: str, scheduler: str | None, scheduler_file: Path | None,
             workers: int, jobs: int | None, memory: str | None):
    """(cluster, slots, budget) for --executor dask, closed afterwards; None for local."""
    from jwenv.errors import BadInput

    if executor not in ("local", "dask"):
        raise BadInput(f"unknown --executor {executor!r}: use local or dask")
    if executor == "local":
        if scheduler or scheduler_file:
            raise BadInput("--scheduler and --scheduler-file go with --executor dask")
        yield None
        return
    from jwenv import dask_executor, schedule

    per_worker = None
    if memory and not (scheduler or scheduler_file):
        per_worker = schedule.parse_size(memory) // max(1, workers)
    found = dask_executor.connect(address=scheduler, scheduler_file=scheduler_file,
                                  workers=workers, memory_per_worker=per_worker)
    try:
        budget = schedule.parse_size(memory) if memory else (found.memory or
                                                             schedule.available_memory())
        yield found, jobs or max(1, found.threads), budget
    finally:
        found.close()


@dataclass
class _ChainRequest:
    """What `reprocess` and `compare --reprocess` share: inputs, stages, options."""

    inputs: list[Path]
    step_args: list[str]
    stages: str | None
    asn: list[Path]
    allow_mixed: bool

    def prepare(self) -> tuple[list[Any], list[int], list[Path]]:
        from jwenv import plan

        plan.split_step_args(self.step_args)
        items = plan.classify(self.inputs)
        plan.check_programs(items, self.allow_mixed)
        wanted = plan.parse_stages(self.stages, items)
        asn = list(self.asn) + [p for p in self.inputs if p.suffix == ".json"]
        return items, wanted, asn


def _budget(jobs: int | None, memory: str | None) -> tuple[int, int]:
    from jwenv import schedule
    from jwenv.errors import BadInput

    if jobs is not None and jobs < 1:
        raise BadInput(f"-j {jobs}: give at least 1")
    try:
        budget = schedule.parse_size(memory) if memory else schedule.available_memory()
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    return jobs or schedule.available_cores(), budget


@app.command(context_settings=PASSTHROUGH,
             options_metavar="[OPTIONS]")
def reprocess(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(
        metavar="NAME INPUT... [--steps.STEP.PARAM=VALUE ...]",
        help="Environment name (e.g. 1.20.2), then the inputs and step parameters")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Products go to "
                      "DIR/<env>/ (default ./jwenv-runs/<time>)")] = None,
    stages: Annotated[str | None, typer.Option(help="Stages to run, e.g. 2,3 (default: from "
                                                    "the inputs' level to 3)")] = None,
    jobs: JobsOpt = None, memory: MemoryOpt = None, asn: AsnOpt = None,
    force: Annotated[bool, typer.Option(help="Re-run jobs that are done")] = False,
    retry_failed: RetryOpt = False, allow_mixed: MixedOpt = False, use_strun: StrunOpt = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan (groups, products, "
                                                            "members, jobs) and stop")] = False,
    offline: OfflineOpt = None,
    crds_context: ContextOpt = None,
    do_install: Annotated[bool, typer.Option(
        "--install", help="Install the environment first if it is missing")] = False,
    executor: ExecutorOpt = "local", scheduler: SchedulerOpt = None,
    scheduler_file: SchedulerFileOpt = None, dask_workers: DaskWorkersOpt = 2,
    ship_lock: ShipLockOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Reprocess a program through Detector1 → Image2 → Image3, from any level of inputs,
    grouped by the release's own association rules, many exposures at once, resumable;
    on this machine or on a Dask cluster (--executor dask)."""
    from jwenv import fanout
    from jwenv import reprocess as rp

    inputs, step_args = _split_inputs(list(ctx.args))
    request = _ChainRequest(inputs, step_args, stages, list(asn or ()), allow_mixed)
    items, wanted, asn_files = request.prepare()
    slots, budget = _budget(jobs, memory)
    env = _get_or_install(name, do_install)
    if output is None:  # a dry run makes nothing, not even the default directory
        output = Path("jwenv-runs") / "<new>" if dry_run else fanout.default_output_root()
    out_root = output.absolute()
    show = _ChainDisplay(as_json)
    plan = rp.make_plan(env, items, out_root, stages=wanted, step_args=step_args,
                        asn_files=asn_files, context=crds_context, offline=offline,
                        on_event=show.event)
    if dry_run:
        _show_plans([plan], as_json)
        return
    with _cluster(executor, scheduler, scheduler_file, dask_workers, jobs, memory) as found:
        cluster, slots, budget = found or (None, slots, budget)
        with show:
            results = rp.run_plans([plan], jobs=slots, memory=budget, force=force,
                                   retry_failed=retry_failed, warm=not use_strun,
                                   context=crds_context, offline=offline, on_event=show.event,
                                   cluster=cluster, ship_lock=ship_lock)
    _finish_reprocess(results, as_json)
    if not results[0].ok:
        from jwenv.errors import JwenvError

        raise JwenvError(results[0].error)


def _show_plans(plans: list[Any], as_json: bool) -> None:
    from rich.markup import escape

    if as_json:
        _json_out({"plans": [p.to_dict() for p in plans]})
        return
    from jwenv.schedule import human

    console = _console()
    for p in plans:
        console.print(f"[bold]{p.env.name}[/] (jwst {p.env.manifest.jwst_version}) → {p.out}")
        if p.grouping:
            console.print(f"  associations: {escape(p.grouping.detail)}")
            for asn in p.grouping.level3:
                console.print(f"  level 3 {asn.name}: {len(asn.science)} member(s): "
                              f"{', '.join(asn.science)}", markup=False)
        for stage in (1, 2, 3):
            jobs = [j for j in p.jobs if j.stage == stage]
            if jobs:
                peak = max(j.memory for j in jobs)
                console.print(f"  stage {stage}: {len(jobs)} job(s) of {jobs[0].pipeline}, "
                              f"estimated peak up to {human(peak)}")
                for j in jobs:
                    console.print(f"    {j.name}  ← {', '.join(x.name for x in j.inputs)}",
                                  markup=False)


class _ChainDisplay:
    """Progress of a run: a bar with counts, running jobs and ETA on a terminal; one line
    per event otherwise."""

    def __init__(self, quiet: bool) -> None:
        import time

        self.quiet = quiet
        self.console = _console(stderr=True)
        self.t0 = time.monotonic()
        self.progress: Any = None
        self.task: Any = None
        self.running: list[str] = []
        self.counts = {"done": 0, "fail": 0, "skip": 0}

    def __enter__(self) -> _ChainDisplay:
        if not self.quiet and self.console.is_terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                     MofNCompleteColumn(), TimeElapsedColumn(),
                                     TextColumn("ETA"), TimeRemainingColumn(),
                                     console=self.console)
            self.progress.start()
            self.task = self.progress.add_task("planning", total=None)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def event(self, kind: str, detail: str) -> None:
        import time

        from rich.markup import escape

        if self.quiet:  # --json: stdout is the record; what needs saying still goes to stderr
            if kind in ("warn", "note"):
                self.console.print(f"{_MARKS[kind]} {escape(detail)}")
            return
        if kind == "plan" and self.progress is not None:
            total = int(detail.split(" of ", 1)[0])
            self.progress.update(self.task, total=total, completed=0, description="jobs")
        if kind == "start":
            self.running.append(detail)
        elif kind in ("done", "fail"):
            self.counts[kind] += 1
            self.running = [r for r in self.running if not detail.startswith(r)]
            if self.progress is not None:
                self.progress.advance(self.task)
        elif kind == "skip":
            self.counts["skip"] += 1
        if self.progress is not None:
            first = self.running[0].split(": ", 1)[-1] if self.running else "-"
            first = first if len(first) <= 40 else first[:39] + "…"
            more = f" +{len(self.running) - 1}" if len(self.running) > 1 else ""
            self.progress.update(self.task, description=(
                f"{self.counts['done']} done, {self.counts['fail']} failed, "
                f"{self.counts['skip']} skipped; running {first}{more}"))
            if kind in ("fail", "skip", "warn", "note"):
                self.progress.console.print(f"{_MARKS.get(kind, '')} {escape(detail)}")
            return
        # the clock first: a job's own duration is in `detail` ("… (14 s)")
        clock = int(time.monotonic() - self.t0)
        self.console.print(f"[dim]\\[{clock // 60}:{clock % 60:02d}][/] "
                           f"{_MARKS.get(kind, '')} {escape(detail)}")


_MARKS = {"start": "…", "done": "[green]✓[/]", "skip": "[yellow]-[/]", "fail": "[red]✗[/]",
          "warn": "[yellow]![/]", "note": "[blue]i[/]", "plan": "[blue]i[/]"}


def _stage_printer(quiet: bool) -> Any:
    """One line per event (doctor --deep)."""
    return _ChainDisplay(quiet).event


def _finish_reprocess(results: list[Any], as_json: bool) -> None:
    from rich.table import Table

    from jwenv import reprocess as rp
    from jwenv.schedule import human

    if as_json:
        _json_out({"results": [r.to_dict() for r in results]})
        return
    console = _console()
    for result in results:
        console.print(f"[bold]{result.env}[/] → {result.output_dir}")
        if result.grouping:
            console.print(f"  associations: {result.grouping['detail']}", markup=False)
        table = Table("stage", "job", "state", "time", "peak memory", "products / reason")
        for run in result.runs:
            state = {"done": "[green]done[/]", "failed": "[red]failed[/]",
                     "skipped": "[yellow]skipped[/]"}.get(run.state, run.state)
            if run.up_to_date:
                state = "[dim]up to date[/]"
            what = (", ".join(f"{p.name}: {rp.product_summary(p)}" for p in run.products
                              if p.is_file() and run.stage == 3)
                    or ", ".join(p.name for p in run.products)) if run.state == "done" \
                else (run.error or "")
            table.add_row(str(run.stage), run.name, state,
                          f"{run.seconds:.1f} s" if run.seconds else "-",
                          human(run.peak_rss) if run.peak_rss else "-", what)
        console.print(table)
        if result.record:
            console.print(f"  record: {result.record}; logs: {result.output_dir / 'logs'}",
                          markup=False)


def _compare_chains(names: list[str], args: list[str], out_root: Path, *, jobs: int | None,
                    memory: str | None, offline: bool | None, context: str | None,
                    install: bool, stages: str | None, allow_mixed: bool,
                    options: dict[str, Any], html: Path | None, as_json: bool,
                    verbose: bool = False) -> None:
    from jwenv import compare as cmp
    from jwenv import reprocess as rp

    inputs, step_args = _split_inputs(args)
    items, wanted, asn_files = _ChainRequest(inputs, step_args, stages, [],
                                             allow_mixed).prepare()
    slots, budget = _budget(jobs, memory)
    envs = [_get_or_install(n, install) for n in names]
    show = _ChainDisplay(as_json)
    with show:
        results = rp.reprocess_across(envs, items, out_root, jobs=slots, memory=budget,
                                      stages=wanted, step_args=step_args, asn_files=asn_files,
                                      context=context, offline=offline, on_event=show.event)
    comparisons, code = cmp.compare_runs([r.output_dir for r in results if r.ok],
                                         failed=sum(not r.ok for r in results), **options)
    if not as_json:
        _finish_reprocess(results, False)
    _show_comparisons(comparisons, html, as_json, runs=results, verbose=verbose)
    raise typer.Exit(code)


# -- starting from archive products ---------------------------------------------------
def _product_files(paths: list[Path]) -> list[Path]:
    """Files as given; directories give their FITS products (recursively), sorted."""
    from jwenv.errors import BadInput

    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for pattern in ("*.fits", "*.fits.gz") for p in path.rglob(pattern))
            if not found:
                raise BadInput(f"{path} holds no FITS products")
            out += found
        else:
            out.append(path)
    if not out:
        raise BadInput("no products given")
    return out


@app.command()
def provenance(
    files: Annotated[list[Path], typer.Argument(help="Products, or directories of them")],
    as_json: JsonOpt = False,
) -> None:
    """What made each product: release, commit, CRDS context, references, steps, step
    parameters (from jwst 1.18's processing log), level-3 inputs. Same provenance, one group."""
    from rich.markup import escape

    from jwenv import provenance as pv

    found = [pv.read(p) for p in _product_files(files)]
    groups = pv.group(found)
    differences = pv.parameter_differences(groups)
    if as_json:
        _json_out({"products": [p.to_dict() for p in found],
                   "groups": [g.to_dict() for g in groups],
                   "parameter_differences": differences})
        return
    console = _console()
    for i, g in enumerate(groups, 1):
        what = (f"jwst {g.release} ({g.commit}), CRDS {g.crds_version} {g.crds_context}"
                if g.kind == "calibrated" else f"raw, SDP {g.sdp_version}")
        console.print(f"[bold]{i}. {len(g.files)} product(s)[/]: {escape(what)}")
        names = [Path(f).name for f in g.files]
        console.print(f"   files: {', '.join(names[:4])}"
                      + (f" … (+{len(names) - 4})" if len(names) > 4 else ""), markup=False)
        statuses = {}
        for key, status in g.steps.items():
            statuses.setdefault(status, []).append(key.removeprefix("S_"))
        for status, keys in sorted(statuses.items()):
            console.print(f"   {status.lower()}: {', '.join(keys)}", markup=False)
        if g.references:
            refs = ", ".join(f"{t} {v[0].removeprefix('crds://')}" if len(v) == 1
                             else f"{t} ({len(v)} files)" for t, v in g.references.items())
            console.print(f"   references: {refs}", markup=False)
        for pipeline, pars in (g.parameters or {}).items():
            if pars is None:
                console.print(f"   {pipeline}: parameters not recorded", markup=False)
        if g.pars_files:
            used = {k: v for files_ in g.pars_files.values() for k, v in files_.items()}
            console.print(f"   parameter references: "
                          f"{', '.join(f'{k} {v}' for k, v in used.items()) or 'none'}",
                          markup=False)
        if g.log_note:
            console.print(f"   note: {g.log_note}", markup=False)
        if g.inputs_disagree:
            console.print(f"   [yellow]inputs disagree on version or context[/] in "
                          f"{len(g.inputs_disagree)} product(s)")
    for key, values in differences.items():
        console.print(f"parameter {key}: " + " | ".join(
            f"group {i}: {v}" for i, v in enumerate(values, 1) if v is not None), markup=False)


@app.command()
def refs(
    files: Annotated[list[Path], typer.Argument(help="Products, or directories of them")],
    context: Annotated[str, typer.Option("--context", help="The new context, e.g. "
                                                           "jwst_1464.pmap")],
    against: Annotated[str | None, typer.Option(
        help="The old context (default: each product's own CRDS_CTX)")] = None,
    env_name: Annotated[str | None, typer.Option(
        "--env", help="Whose crds selects (default: the release that made the first "
                      "product, else the newest installed)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Which reference files would change for these products under another CRDS context
    (the release's own crds, offline against the local CRDS cache; nothing is run)."""
    from rich.table import Table

    from jwenv import refs as refs_mod

    products = _product_files(files)
    refs_mod.check_inputs(products, new=context, old=against)
    env = _refs_env(env_name, products[0])
    report = refs_mod.changes(env, products, new=context, old=against)
    if as_json:
        _json_out(report.to_dict())
        return
    console = _console()
    table = Table("product", "type", "old", "new")
    for prod in report.products:
        if prod.error:
            table.add_row(prod.path.name, "-", "[red]error[/]", prod.error)
        for t in prod.changed:
            r = prod.refs[t]
            table.add_row(prod.path.name, t, r.old, r.new)
    if table.row_count:
        console.print(table)
    console.print(report.summary())
    if report.failed:
        raise typer.Exit(1)


def _refs_env(name: str | None, first: Path) -> Env:
    from packaging.version import Version

    from jwenv.envs import Env
    from jwenv.errors import EnvNotFound, JwenvError

    if name:
        return _get_or_install(name, False)
    try:
        return _like(f"@{first}", install=False)
    except JwenvError:
        pass
    envs = Env.all()
    if not envs:
        raise EnvNotFound("no environment to run crds in: install one (jwenv install latest)")
    return max(envs, key=lambda e: Version(e.manifest.jwst_version))


@app.command(context_settings=PASSTHROUGH,
             options_metavar="[OPTIONS] PRODUCT... --inputs INPUT... [--steps.S.P=V ...]")
def reproduce(
    ctx: typer.Context,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Where the rerun "
                      "writes (DIR/<env>/; default ./jwenv-runs/<time>)")] = None,
    crds_context: Annotated[str | None, typer.Option(
        help="Rerun under this context instead of the product's")] = None,
    jobs: JobsOpt = None, memory: MemoryOpt = None,
    offline: OfflineOpt = None,
    do_install: Annotated[bool, typer.Option("--install/--no-install", help="Install the "
                          "release that made a product if it is missing")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Rerun what made archive products from their inputs (--inputs INPUT...: uncal, rate
    or cal exposures, or associations) under the release and CRDS context that made them,
    and say whether each comes out the same (exit 0 reproduced, 1 differs, 2 error)."""
    from rich.markup import escape

    from jwenv import fanout, releases
    from jwenv import reproduce as rep
    from jwenv.errors import BadInput
    from jwenv.store import Store

    args = list(ctx.args)
    split = args.index("--inputs") if "--inputs" in args else len(args)
    products, step_args = _split_inputs(args[:split])
    inputs, more = _split_inputs(args[split + 1:])
    step_args += more
    if not products or not inputs:
        raise BadInput("usage: jwenv reproduce PRODUCT... --inputs INPUT... (the products "
                       "to rerun, then what they were made from)")
    slots, budget = _budget(jobs, memory)
    out_root = (output or fanout.default_output_root()).absolute()
    show = _ChainDisplay(as_json)

    def get_env(maker: Any) -> Env:
        return _like(f"@{maker.product}", install=do_install)

    with show:
        verdicts = rep.reproduce(products, inputs, out_root, get_env=get_env,
                                 context=crds_context, step_args=step_args, offline=offline,
                                 jobs=slots, memory=budget, on_event=show.event,
                                 index=lambda: releases.load_index(Store().index_dir))
    code = max((v.exit_code for v in verdicts), default=2)
    if as_json:
        _json_out({"verdicts": [v.to_dict() for v in verdicts], "exit_code": code})
        raise typer.Exit(code)
    console = _console()
    for v in verdicts:
        mark = {"reproduced": "[green]reproduced[/]", "differs": "[yellow]differs[/]"}.get(
            v.verdict, "[red]error[/]")
        console.print(f"{escape(v.product.name)}: {mark} (jwst {escape(v.env)}, {v.context})")
        for reason in v.reasons[:12]:
            console.print(f"  - {reason}", markup=False)
        if len(v.reasons) > 12:
            console.print(f"  … and {len(v.reasons) - 12} more (--json)")
    console.print(f"rerun products: {out_root}", markup=False)
    raise typer.Exit(code)


# -- demo ---------------------------------------------------------------------------
@app.command()
def demo(
    versions: Annotated[str | None, typer.Option(
        help="Two (or more) releases, comma-separated (default: the newest release of each "
             "of the two newest minor lines)")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Where the demo "
                      "writes (default ./jwenv-demo or $JWENV_DEMO_DIR)")] = None,
    jobs: Annotated[int, typer.Option("-j", "--jobs", help="Releases run at once")] = 2,
    as_json: JsonOpt = False,
) -> None:
    """Install two releases, make a synthetic NIRCam program and a local CRDS context, run
    Detector1 → Image2 → Image3 under each offline, and compare every product level."""
    import time

    from jwenv import demo as demo_mod
    from jwenv import report

    out = (output or demo_mod.default_out()).absolute()
    wanted = [v.strip() for v in versions.split(",") if v.strip()] if versions else None
    console = _console(stderr=True)
    t0 = time.monotonic()
    if as_json or not console.is_terminal:
        def event(kind: str, detail: str) -> None:
            if kind != "install" and not as_json:
                console.print(f"jwenv demo: {detail} [{time.monotonic() - t0:.0f} s]")
        result = demo_mod.run_demo(out, wanted, jobs=jobs, on_event=event)
    else:
        with console.status("starting…") as status:
            phase = {"text": ""}

            def event(kind: str, detail: str) -> None:
                stamp = f"[dim]{time.monotonic() - t0:.0f} s[/]"
                if kind == "phase":
                    if phase["text"]:
                        console.print(f"[green]✓[/] {phase['text']}")
                    phase["text"] = detail
                    status.update(f"{detail} {stamp}")
                elif kind == "install":
                    status.update(f"{phase['text']}: [dim]{detail[:70]}[/] {stamp}")
                elif kind in ("run-done", "run-fail"):
                    mark = "[green]✓[/]" if kind == "run-done" else "[red]✗[/]"
                    console.print(f"  {mark} {detail} {stamp}")
                else:
                    status.update(f"{phase['text']}: {detail} {stamp}")
            result = demo_mod.run_demo(out, wanted, jobs=jobs, on_event=event)
            console.print(f"[green]✓[/] {phase['text']}")
    total = time.monotonic() - t0
    if as_json:
        _json_out({"output": str(result.root), "envs": result.envs,
                   "program": result.program.report,
                   "results": [r.to_dict() for r in result.results],
                   "comparison": result.comparison.to_dict(), "seconds": result.seconds,
                   "total_seconds": round(total, 1)})
        return
    _finish_reprocess(result.results, False)
    stdout = _console()
    report.render_terminal(result.comparison, stdout)
    stdout.print(f"\n[bold]jwenv demo[/] finished in {total:.0f} s "
                 f"({', '.join(f'{k} {v:.0f} s' for k, v in result.seconds.items())})")
    stdout.print(f"  program       {result.program.root / 'data'} (truth: "
                 f"{result.program.report.get('truth')})")
    stdout.print(f"  CRDS cache    {result.program.crds_path} (context {result.program.context})")
    for r in result.results:
        stdout.print(f"  {r.env:<13} {r.output_dir} (logs in logs/)")
    a, b = (r.output_dir for r in result.results[:2])
    stdout.print(f"  again by hand: jwenv diff {a} {b} --html report/")


def main() -> None:
    """Entry point: one-line errors, tracebacks only with --debug."""
    import signal

    from jwenv.errors import JwenvError

    debug = "--debug" in sys.argv[1:sys.argv.index("--")] if "--" in sys.argv else \
        "--debug" in sys.argv
    # SIGTERM unwinds like Ctrl-C: staging is removed and installer children are killed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        app()
    except JwenvError as err:
        if debug:
            raise
        sys.stderr.write(f"jwenv: error: {err}\n")
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("jwenv: interrupted\n")
        sys.exit(130)
    except Exception as err:  # a bug: still one line unless --debug
        if debug:
            raise
        sys.stderr.write(f"jwenv: internal error: {type(err).__name__}: {err} "
                         "(run with --debug for details)\n")
        sys.exit(3)
