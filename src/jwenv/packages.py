"""Adding packages to an installed environment (`jwenv pip`, `jwenv kernel`).

Environments have no pip (uv makes them), and a `pip` found further along PATH would
install into another Python. `jwenv pip NAME -- install x` runs `uv pip install` against
the environment's own python instead, constrained so that what is installed stays as it
is: every installed package is pinned to its version, so an era's numpy or astropy is not
upgraded behind the user's back. `--upgrade`/`-U` lifts the pins (`--upgrade-package P`
lifts P's). The environment's own build settings come along (wheels-only numeric stack,
build constraints); `era=True` (the kernel) adds its date cut-off too, so ipykernel and its
dependencies are of the release's time.

What was added is recorded in the manifest (`added`) and, with the new `uv pip freeze`,
in `packages`: the lock that `jwenv export` writes and `install --lock` rebuilds.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from jwenv import loglines, runner
from jwenv.backends import InstallPlan, UvBackend, get_backend, uv_bin
from jwenv.errors import BadInput, EnvNotFound, JwenvError

if TYPE_CHECKING:
    from jwenv.envs import Env

SUBCOMMANDS = ("install", "uninstall", "list", "show", "freeze", "tree", "check")
CHANGING = ("install", "uninstall")
# `uv pip install` options that take a value (the next word, unless given as --opt=value)
_VALUED = frozenset((
    "-r", "--requirements", "-e", "--editable", "--no-editable-package", "-c", "--constraints",
    "--overrides", "--excludes", "-b", "--build-constraints", "--extra", "--cert", "--group",
    "--no-binary", "--only-binary", "--python-version", "--python-platform", "--output-format",
    "--torch-backend", "--index", "--default-index", "-i", "--index-url", "--extra-index-url",
    "-f", "--find-links", "--index-strategy", "--keyring-provider", "-P", "--upgrade-package",
    "--upgrade-group", "--resolution", "--prerelease", "--prerelease-package",
    "--fork-strategy", "--exclude-newer", "--exclude-newer-package", "--no-sources-package",
    "--reinstall-package", "--link-mode", "-C", "--config-setting", "--config-settings-package",
    "--no-build-isolation-package", "--cache-dir", "--refresh-package", "--color",
    "--allow-insecure-host", "--directory", "--project", "--config-file"))
# Options that would install somewhere else than the environment
_ELSEWHERE = frozenset(("-p", "--python", "-t", "--target", "--prefix", "--system", "--user"))


class PipFailed(JwenvError):
    """uv pip ran and failed (its own output came first); exit code as uv's."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code


@dataclass
class PipResult:
    code: int
    added: list[str] = field(default_factory=list)  # requirements recorded in the manifest
    removed: list[str] = field(default_factory=list)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(req: str) -> str:
    """`astropy>=6`, `photutils[all]==1.9`, `x @ https://…` → the canonical name."""
    return canonical(re.split(r"[\s\[<>=!~;@(]", req.strip(), maxsplit=1)[0])


def split_args(args: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """The requirements (positional words) of `uv pip install` arguments, and the values of
    the options that take one."""
    reqs: list[str] = []
    values: dict[str, list[str]] = {}
    it = iter(args)
    for word in it:
        if word.startswith("-"):
            key, eq, value = word.partition("=")
            if key in _VALUED:
                values.setdefault(key, []).append(value if eq else next(it, ""))
            elif key in _ELSEWHERE:
                raise BadInput(f"jwenv pip always installs into the environment: drop {key}")
        else:
            reqs.append(word)
    for option in ("-e", "--editable"):
        reqs += [f"-e {v}" for v in values.get(option, [])]
    for option in ("-r", "--requirements"):
        for path in values.get(option, []):
            reqs += _requirement_lines(Path(path))
    return reqs, values


def _requirement_lines(path: Path) -> list[str]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise BadInput(f"cannot read requirements file {path}: {exc.strerror}") from None
    return [ln.split("#", 1)[0].strip() for ln in text.splitlines()
            if ln.split("#", 1)[0].strip() and not ln.lstrip().startswith("-")]


def installed(env: Env) -> dict[str, str]:
    """Installed distributions of the environment: canonical name → version."""
    import json
    import subprocess

    out = subprocess.run([uv_bin(), "pip", "list", "--format", "json", "--python",
                          str(env.python)], capture_output=True, text=True,
                         env=UvBackend().environ(), check=False)
    if out.returncode != 0:
        raise JwenvError(f"cannot list {env.name}'s packages: {loglines.reason(out.stderr)}")
    return {canonical(d["name"]): d["version"] for d in json.loads(out.stdout or "[]")}


def _plan(env: Env, pins: list[str], era: bool) -> InstallPlan:
    recorded = env.manifest.plan or {}
    when = recorded.get("exclude_newer") if era else None
    return InstallPlan(
        strategy="add", requirements=[], constraints=pins,
        build_constraints=list(recorded.get("build_constraints") or []),
        exclude_newer=datetime.fromisoformat(when) if when else None,
        exclude_newer_packages=dict(recorded.get("exclude_newer_packages") or {}) if era
        else {},
        only_binary=list(recorded.get("only_binary") or []))


def pip(env: Env, args: list[str], *, era: bool = False, log: Path | None = None) -> PipResult:
    """`uv pip SUBCOMMAND ARGS` against the environment's python; installs keep what is
    installed unless --upgrade/-U (or --upgrade-package P). Output goes to the terminal, or
    to `log`. A change is recorded in the manifest and lock; a failed install raises
    PipFailed with one line."""
    from filelock import FileLock

    if not args or args[0] not in SUBCOMMANDS:
        raise BadInput(f"usage: jwenv pip {env.name} -- {'|'.join(SUBCOMMANDS)} [ARGS...] "
                       f"(e.g. jwenv pip {env.name} -- install photutils)")
    sub, rest = args[0], list(args[1:])
    reqs, values = split_args(rest) if sub == "install" else ([], {})
    if sub == "install" and not reqs:
        raise BadInput(f"nothing to install: jwenv pip {env.name} -- install PACKAGE...")
    if sub != "install" and any(a.partition("=")[0] in _ELSEWHERE for a in rest):
        raise BadInput("jwenv pip always works on the environment: drop --python/--target")
    cmd = [uv_bin(), "pip", sub, "--python", str(env.python)]
    with tempfile.TemporaryDirectory(prefix="jwenv-pip-") as tmp, \
            FileLock(env.store.lock_path(env.name)):
        if sub == "install":
            upgrade = "-U" in rest or "--upgrade" in rest
            free = {canonical(p) for p in values.get("-P", []) + values.get("--upgrade-package",
                                                                             [])}
            pins = [] if upgrade else [f"{n}=={v}" for n, v in sorted(installed(env).items())
                                       if n not in free]
            cmd += UvBackend().plan_args(_plan(env, pins, era), Path(tmp))
        cmd += rest
        if log is None:
            code = runner.run(cmd, UvBackend().environ())
        else:
            with log.open("a") as fh:
                fh.write(f"$ {' '.join(cmd)}\n")
            code = runner.run(cmd, UvBackend().environ(), log=log)
        if code != 0:
            if sub != "install":
                raise PipFailed(f"uv pip {sub} failed (exit {code})", code)
            why = loglines.reason(loglines.read(log)) if log is not None else "see above"
            hint = "" if "-U" in rest or "--upgrade" in rest else (
                f"; installed versions are kept as they are: `jwenv pip {env.name} -- install "
                f"--upgrade {' '.join(reqs)}` lets them change")
            raise PipFailed(f"could not install {' '.join(reqs)} into {env.name} ({why})"
                            f"{hint}", code)
        if sub not in CHANGING:
            return PipResult(code)
        return _record(env, sub, reqs, rest)


def _record(env: Env, sub: str, reqs: list[str], rest: list[str]) -> PipResult:
    """Update the manifest after a change (the env's lock is held by the caller)."""
    current = env.store.read_manifest(env.name)
    if current is None:
        raise EnvNotFound(f"no environment named {env.name!r}")
    added = list(current.added)
    if sub == "install":
        names = {requirement_name(r) for r in reqs}
        added = [a for a in added if requirement_name(a) not in names] + reqs
        removed: list[str] = []
    else:
        removed = [canonical(w) for w in rest if not w.startswith("-")]
        added = [a for a in added if requirement_name(a) not in removed]
    packages = get_backend(current.backend).freeze(env_dir=env.path)
    env.manifest = replace(current, added=added, packages=packages)
    env.store.write_manifest(env.path, env.manifest)
    return PipResult(0, reqs if sub == "install" else [], removed)


def has(env: Env, name: str) -> bool:
    return canonical(name) in installed(env)
