"""`jwenv shell`: an interactive shell with an environment active, rc files or not.

Users' rc files often put their own directories first on PATH when a shell starts
(`pyenv init`, `conda init` in ~/.bashrc), so variables set before the shell starts are
not enough: `python` would be pyenv's. As hatch and poetry do, the shell is started on
a small startup file of jwenv's that runs the user's own first and then applies the
environment again, so the environment's bin/ is first on PATH *after* the rc files:

- bash: `bash --rcfile FILE -i`, FILE sources ~/.bashrc, then applies;
- zsh: `ZDOTDIR=DIR zsh -i`, DIR/.zshenv and DIR/.zshrc source the user's own (from
  their ZDOTDIR or HOME), then apply;
- fish: `fish -i --init-command 'source FILE'` (run after config.fish);
- sh, dash, ksh, mksh, ash: `ENV=FILE sh -i` (FILE sources the user's $ENV, then applies).

Applying means: the run's variables again (VIRTUAL_ENV, CRDS_*, JWENV_ENV), the
isolation variables unset again, bin/ moved to the front of PATH, a `(NAME)` prompt,
and, when the environment has no pip, a `pip` that says how to install instead of
reaching another Python's pip. Other shells get the variables at start only.
"""

from __future__ import annotations

import os
import shlex
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from jwenv import runner

if TYPE_CHECKING:
    from jwenv.envs import Env

SUPPORTED = ("bash", "zsh", "fish", "sh")
_POSIX = {"sh", "dash", "ksh", "mksh", "ash", "yash", "busybox"}
PIP_NAMES = ("pip", "pip3")


@dataclass
class Launch:
    """How to start the shell: argv and environment; `note` when rc files can still win."""

    argv: list[str]
    environ: dict[str, str]
    kind: str
    note: str = ""


@dataclass
class Activation:
    """What the startup file applies after the user's rc files."""

    name: str
    bin_dir: Path
    variables: dict[str, str]  # exported again (PATH excluded: bin/ is moved to the front)
    unset: list[str]
    has_pip: bool


def kind_of(shell: str) -> str:
    """bash, zsh, fish, sh (any POSIX sh) or '' for a shell jwenv has no startup file for."""
    base = Path(shell).name
    if base in ("bash", "zsh", "fish"):
        return base
    return "sh" if base in _POSIX else ""


def activation(env: Env, environ: Mapping[str, str]) -> Activation:
    """What a run of `env` sets (`environ`: its full environment), to apply after rc files."""
    variables = {k: v for k, v in environ.items()
                 if k != "PATH" and (k in ("VIRTUAL_ENV", "JWENV_ENV") or k.startswith("CRDS_"))}
    variables["VIRTUAL_ENV_PROMPT"] = env.name
    unset = [k for k in runner.ISOLATION_UNSET if k not in variables]
    has_pip = any((env.bin / p).exists() for p in PIP_NAMES)
    return Activation(env.name, env.bin, variables, unset, has_pip)


def _pip_message(act: Activation) -> str:
    return f"jwenv: {runner.no_pip(act.name)}"


def _posix_apply(act: Activation, dedupe: bool) -> list[str]:
    q = shlex.quote
    bin_dir = q(str(act.bin_dir))
    lines = ["# jwenv: the environment again, after the user's startup files"]
    lines += [f"export {k}={q(v)}" for k, v in act.variables.items()]
    if act.unset:
        lines.append(f"unset {' '.join(act.unset)}")
    if dedupe:  # bash and zsh: drop other copies of bin/ before putting it first
        lines += [f'_jwenv_path=":$PATH:"; _jwenv_path="${{_jwenv_path//":{act.bin_dir}:"/:}}"',
                  '_jwenv_path="${_jwenv_path#:}"; PATH="${_jwenv_path%:}"; unset _jwenv_path']
    lines += [f"PATH={bin_dir}:\"$PATH\"", "export PATH", "hash -r 2>/dev/null || true",
              f"PS1={q(f'({act.name}) ')}\"${{PS1-}}\""]
    if not act.has_pip:
        lines += [f"{p}() {{ echo {q(_pip_message(act))} >&2; return 127; }}"
                  for p in PIP_NAMES]
    return lines


def _fish_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish_apply(act: Activation) -> list[str]:
    q = _fish_quote
    bin_dir = q(str(act.bin_dir))
    lines = ["# jwenv: the environment again, after config.fish"]
    lines += [f"set -gx {k} {q(v)}" for k, v in act.variables.items()]
    lines += [f"set -e {k}" for k in act.unset]
    lines += [f"set -gx PATH {bin_dir} (string match -v -- {bin_dir} $PATH)",
              "if functions -q fish_prompt",
              "    functions -c fish_prompt _jwenv_fish_prompt",
              "else",
              "    function _jwenv_fish_prompt; echo -n '> '; end",
              "end",
              f"function fish_prompt; echo -n {q(f'({act.name}) ')}; _jwenv_fish_prompt; end"]
    if not act.has_pip:
        lines += [f"function {p}; echo {q(_pip_message(act))} >&2; return 127; end"
                  for p in PIP_NAMES]
    return lines


def prepare(shell: str, act: Activation, environ: Mapping[str, str], workdir: Path) -> Launch:
    """The shell's argv and environment, writing its startup files into `workdir` (which
    must outlive the shell)."""
    kind = kind_of(shell)
    env = dict(environ)
    env["VIRTUAL_ENV_PROMPT"] = act.name
    if kind == "bash":
        rc = workdir / "bashrc"
        rc.write_text("\n".join(['[ -f "$HOME/.bashrc" ] && . "$HOME/.bashrc"',
                                 *_posix_apply(act, dedupe=True)]) + "\n")
        return Launch([shell, "--rcfile", str(rc), "-i"], env, kind)
    if kind == "zsh":
        user = environ.get("ZDOTDIR") or environ.get("HOME", "")
        (workdir / ".zshenv").write_text("\n".join([
            "_jwenv_zdotdir=$ZDOTDIR",
            "ZDOTDIR=$JWENV_USER_ZDOTDIR",
            '[[ -f "$ZDOTDIR/.zshenv" ]] && source "$ZDOTDIR/.zshenv"',
            "JWENV_USER_ZDOTDIR=$ZDOTDIR  # their .zshenv may move it",
            "ZDOTDIR=$_jwenv_zdotdir", ""]))
        (workdir / ".zshrc").write_text("\n".join([
            "ZDOTDIR=$JWENV_USER_ZDOTDIR",
            '[[ -f "$ZDOTDIR/.zshrc" ]] && source "$ZDOTDIR/.zshrc"',
            "unset JWENV_USER_ZDOTDIR _jwenv_zdotdir",
            *_posix_apply(act, dedupe=True), ""]))
        env.update(ZDOTDIR=str(workdir), JWENV_USER_ZDOTDIR=user)
        return Launch([shell, "-i"], env, kind)
    if kind == "fish":
        init = workdir / "jwenv.fish"
        init.write_text("\n".join(_fish_apply(act)) + "\n")
        return Launch([shell, "-i", "--init-command", f"source {_fish_quote(str(init))}"],
                      env, kind)
    if kind == "sh":
        rc = workdir / "env.sh"
        user = environ.get("ENV", "")
        rc.write_text("\n".join([f'[ -n {shlex.quote(user)} ] && [ -f {shlex.quote(user)} ] '
                                 f'&& . {shlex.quote(user)}',
                                 *_posix_apply(act, dedupe=False)]) + "\n")
        env["ENV"] = str(rc)
        return Launch([shell, "-i"], env, kind)
    return Launch([shell, "-i"], env, "", note=(
        f"{Path(shell).name}: the environment is set when the shell starts, but its startup "
        f"files may put other directories first on PATH (jwenv knows {', '.join(SUPPORTED)})"))


def default_shell(environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    return environ.get("SHELL") or "/bin/sh"


def start(env: Env, shell: str | None = None, *, context: str | None = None,
          offline: bool | None = None, on_note=None) -> int:
    """Run an interactive shell with `env` active until it exits; its exit status."""
    environ = env.environ(context=context, offline=offline)
    shell = shell or default_shell()
    with tempfile.TemporaryDirectory(prefix="jwenv-shell-") as tmp:
        launch = prepare(shell, activation(env, environ), environ, Path(tmp))
        if launch.note and on_note is not None:
            on_note(launch.note)
        return runner.run(launch.argv, launch.environ)
