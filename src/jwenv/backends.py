"""Installers that build an environment: uv (default) and virtualenv + pip.

A backend knows how to create a venv from a base interpreter, install an
InstallPlan into it, dry-run resolve a plan, and list what got installed. It
carries out a plan as given: what to install, and which packages must come as
wheels (`InstallPlan.only_binary`), is decided by strategies.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from jwenv import loglines
from jwenv.errors import BadInput, InstallFailed, NoInterpreter
from jwenv.runner import isolated

LineSink = Callable[[str], None]


@dataclass
class InstallPlan:
    """Everything an installer needs for one attempt."""

    strategy: str
    requirements: list[str]
    constraints: list[str] = field(default_factory=list)
    build_constraints: list[str] = field(default_factory=list)
    exclude_newer: datetime | None = None
    exclude_newer_packages: dict[str, str] = field(default_factory=dict)
    only_binary: list[str] = field(default_factory=list)  # never built from source
    notes: list[str] = field(default_factory=list)
    # Requirements that replace what a package declares (a git-URL pin -> a PyPI release).
    overrides: list[str] = field(default_factory=list)
    # Pure-Python helpers importable in every sdist build (on the builds' PYTHONPATH):
    # old setup.py files clone `relic` from GitHub unless it is importable.
    build_helpers: list[str] = field(default_factory=list)
    # Extra build requirements per package (sources from before PEP 518 import numpy in
    # setup.py without declaring it), and build-time variables per package.
    build_requirements: dict[str, list[str]] = field(default_factory=dict)
    build_variables: dict[str, dict[str, str]] = field(default_factory=dict)
    # The Python minor versions the release ran on ("3.6"); empty: any that resolves.
    pythons: list[str] = field(default_factory=list)
    # Release-fix site hooks written into the environment after the install (by name).
    site_hooks: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"strategy": self.strategy, "requirements": self.requirements,
                "constraints": self.constraints, "build_constraints": self.build_constraints,
                "exclude_newer": self.exclude_newer.isoformat() if self.exclude_newer else None,
                "exclude_newer_packages": self.exclude_newer_packages,
                "only_binary": self.only_binary, "notes": self.notes,
                "overrides": self.overrides, "build_helpers": self.build_helpers,
                "build_requirements": self.build_requirements,
                "build_variables": self.build_variables, "pythons": self.pythons,
                "site_hooks": self.site_hooks}

    def write_files(self, where: Path) -> dict[str, Path]:
        """Requirement files beside the build, kept in the env for the record."""
        where.mkdir(parents=True, exist_ok=True)
        files = {}
        for key, lines in (("requirements", self.requirements), ("constraints", self.constraints),
                           ("build-constraints", self.build_constraints),
                           ("overrides", self.overrides)):
            if lines:
                path = where / f"{key}.txt"
                path.write_text("".join(f"{line}\n" for line in lines))
                files[key] = path
        if self.build_requirements or self.build_variables:
            path = where / "uv.toml"
            path.write_text(_uv_build_settings(self.build_requirements, self.build_variables))
            files["uv-config"] = path
        return files


def _uv_build_settings(requirements: dict[str, list[str]],
                       variables: dict[str, dict[str, str]]) -> str:
    """A uv.toml with uv's per-package build settings (no TOML writer in the stdlib)."""
    def q(text: str) -> str:
        return json.dumps(text)  # a JSON string is a valid TOML basic string

    lines = ["[pip]"]
    if requirements:
        lines.append("extra-build-dependencies = { " + ", ".join(
            f"{q(pkg)} = [{', '.join(q(r) for r in reqs)}]"
            for pkg, reqs in sorted(requirements.items())) + " }")
    if variables:
        lines.append("extra-build-variables = { " + ", ".join(
            f"{q(pkg)} = {{ {', '.join(f'{q(k)} = {q(v)}' for k, v in sorted(env.items()))} }}"
            for pkg, env in sorted(variables.items())) + " }")
    return "\n".join(lines) + "\n"


def _stream(cmd: list[str], log: Path, on_line: LineSink | None, env: dict[str, str],
            cwd: Path | None = None) -> int:
    """Run an installer, appending its output to `log` and feeding lines to `on_line`."""
    with log.open("a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=env, cwd=cwd, errors="replace")
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                fh.write(line)
                if on_line:
                    on_line(line.rstrip())
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        return proc.wait()


def tail(log: Path) -> str:
    """The line of an installer's log that says why it failed."""
    return loglines.reason(loglines.read(log), default="")


class Backend(ABC):
    """How environments are made; methods take keywords only (as pipx's do)."""

    name = "base"

    @abstractmethod
    def create(self, *, env_dir: Path, python: Path, log: Path) -> None:
        """A new venv at `env_dir` from the base interpreter `python`."""

    @abstractmethod
    def install(self, *, env_dir: Path, plan: InstallPlan, log: Path,
                on_line: LineSink | None = None) -> None:
        """Install `plan` into the venv; installer output goes to `log` and `on_line`."""

    def can_resolve(self, *, python: Path, plan: InstallPlan, log: Path) -> bool:
        """Whether `plan` resolves for `python` without building what must be a wheel
        (a cheap dry run); a backend that cannot tell says yes."""
        return True

    @abstractmethod
    def freeze(self, *, env_dir: Path) -> list[str]:
        """The exact `name==version` lines of what is installed (the lock)."""

    def finalize(self, *, staging: Path, final: Path) -> None:  # noqa: B027 - optional hook
        """Make a staged env work at its final path (uv's relocatable venvs need nothing)."""

    @staticmethod
    def base_env() -> dict[str, str]:
        """An installer's environment: nothing of another Python, no active venv."""
        return isolated()

    @staticmethod
    def with_build_helpers(env: dict[str, str], plan: InstallPlan, *, where: Path,
                           python: Path, log: Path) -> dict[str, str]:
        """`env` with the plan's build helpers importable in every sdist build.

        They go to `where/build-helpers` (installed once per build directory) and onto
        PYTHONPATH, which the installer's isolated build environments inherit: an old
        setup.py that would clone `relic` from GitHub imports it instead. Only the helpers'
        own top-level packages are kept (relic's sdist also installs a `tests` package).
        """
        if not plan.build_helpers:
            return env
        target = where / "build-helpers"
        if not target.is_dir():
            staging = where / "build-helpers.tmp"
            shutil.rmtree(staging, ignore_errors=True)
            cmd = [uv_bin(), "pip", "install", "--quiet", "--no-deps", "--target", str(staging),
                   "--python", str(python), *plan.build_helpers]
            if _stream(cmd, log, None, {**isolated(), "UV_PYTHON_DOWNLOADS": "never"}) != 0:
                raise InstallFailed(f"could not install the build helpers "
                                    f"{', '.join(plan.build_helpers)}: {tail(log)}")
            keep = {_helper_name(r) for r in plan.build_helpers}
            for entry in staging.iterdir():
                stem = entry.name.split("-")[0] if entry.name.endswith(".dist-info") \
                    else entry.name.removesuffix(".py")
                if _helper_name(stem) not in keep:
                    shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
            staging.rename(target)
        return {**env, "PYTHONPATH": str(target)}


def _helper_name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ @]", requirement.strip(), maxsplit=1)[0].lower().replace("-", "_")


def uv_bin() -> str:
    """The uv binary shipped by the `uv` PyPI package (a jwenv dependency)."""
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if not found:
            raise InstallFailed(
                "uv is not installed; pip install uv or use --backend virtualenv") from None
        return found


class UvBackend(Backend):
    name = "uv"

    def _env(self) -> dict[str, str]:
        env = self.base_env()
        # Never let uv fetch an interpreter from the internet: jwenv passes one it found.
        env["UV_PYTHON_DOWNLOADS"] = "never"
        env.setdefault("UV_NO_PROGRESS", "1")
        return env

    def environ(self) -> dict[str, str]:
        """What uv runs with (no other Python's variables, no interpreter downloads)."""
        return self._env()

    def plan_args(self, plan: InstallPlan, where: Path) -> list[str]:
        """`uv pip install` options carrying a plan's constraints, build constraints,
        date cut-offs and wheels-only packages (files written into `where`)."""
        return self._plan_args(plan, plan.write_files(where))

    def create(self, *, env_dir, python, log):
        # --relocatable: console-script shebangs survive the rename from staging.
        rc = _stream([uv_bin(), "venv", "--relocatable", "--python", str(python), str(env_dir)],
                     log, None, self._env(), cwd=log.parent)
        if rc != 0:
            raise NoInterpreter(f"uv could not create a venv with {python}: {tail(log)}")

    def _plan_args(self, plan: InstallPlan, files: dict[str, Path]) -> list[str]:
        """Options shared by `uv pip install` and `uv pip compile` (requirements excluded)."""
        args: list[str] = []
        for pkg in plan.only_binary:
            args += ["--only-binary", pkg]
        if "constraints" in files:
            args += ["-c", str(files["constraints"])]
        if "build-constraints" in files:
            args += ["-b", str(files["build-constraints"])]
        if plan.exclude_newer:
            args += ["--exclude-newer", plan.exclude_newer.strftime("%Y-%m-%dT%H:%M:%SZ")]
        for pkg, when in plan.exclude_newer_packages.items():
            args += ["--exclude-newer-package", f"{pkg}={when}"]
        if "overrides" in files:
            args += ["--overrides", str(files["overrides"])]
        if "uv-config" in files:  # per-package build requirements and variables
            args += ["--config-file", str(files["uv-config"])]
        return args

    def install(self, *, env_dir, plan, log, on_line=None):
        files = plan.write_files(env_dir / "jwenv-plan")
        python = env_dir / "bin" / "python"
        cmd = [uv_bin(), "pip", "install", "--python", str(python),
               "-r", str(files["requirements"]), *self._plan_args(plan, files)]
        env = self.with_build_helpers(self._env(), plan, where=log.parent, python=python, log=log)
        if _stream(cmd, log, on_line, env, cwd=log.parent) != 0:
            raise InstallFailed(f"uv pip install failed: {tail(log)}")

    def can_resolve(self, *, python, plan, log):
        files = plan.write_files(log.parent / f"dry-{plan.strategy}-{Path(python).name}")
        # With the plan's only_binary (numpy, scipy, ...), an era's numpy that would be
        # built from source for a newer Python fails here, in a second, not in the build.
        cmd = [uv_bin(), "pip", "compile", "--quiet", "--python", str(python),
               "-o", os.devnull, str(files["requirements"]), *self._plan_args(plan, files)]
        env = self.with_build_helpers(self._env(), plan, where=log.parent, python=python, log=log)
        return _stream(cmd, log, None, env, cwd=log.parent) == 0

    def freeze(self, *, env_dir):
        out = subprocess.run([uv_bin(), "pip", "freeze", "--python",
                              str(env_dir / "bin" / "python")],
                             capture_output=True, text=True, env=self._env(), check=False)
        return sorted(ln for ln in out.stdout.splitlines() if ln.strip())


class VirtualenvBackend(Backend):
    """virtualenv + pip, for sites that cannot run uv. Slower, no shared cache links."""

    name = "virtualenv"

    def create(self, *, env_dir, python, log):
        rc = _stream([sys.executable, "-m", "virtualenv", "--python", str(python),
                      "--no-setuptools", "--no-wheel", str(env_dir)], log, None,
                     self.base_env())
        if rc != 0:
            raise NoInterpreter(f"virtualenv could not create a venv with {python}: {tail(log)}")

    def _pip_help(self, py: Path) -> str:
        out = subprocess.run([str(py), "-m", "pip", "install", "--help"], capture_output=True,
                             text=True, check=False)
        return out.stdout

    def install(self, *, env_dir, plan, log, on_line=None):
        py = env_dir / "bin" / "python"
        if plan.overrides or plan.build_requirements or plan.build_variables:
            raise InstallFailed("this release needs per-package build settings or overrides "
                                "(an old source tree, or a dependency pinned to a git commit), "
                                "which pip cannot express; use --backend uv")
        files = plan.write_files(env_dir / "jwenv-plan")
        env = self.with_build_helpers(self.base_env(), plan, where=log.parent, python=py,
                                      log=log)
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        cmd = [str(py), "-m", "pip", "install", "--progress-bar", "off",
               "-r", str(files["requirements"])]
        if plan.only_binary:
            cmd += ["--only-binary", ",".join(plan.only_binary)]
        if "constraints" in files:
            cmd += ["-c", str(files["constraints"])]
        help_text = self._pip_help(py) if (plan.exclude_newer or "build-constraints" in files) \
            else ""
        if "build-constraints" in files:
            if "--build-constraint" in help_text:
                cmd += ["--build-constraint", str(files["build-constraints"])]
            else:
                # Older pip: PIP_CONSTRAINT also reaches isolated build environments.
                env["PIP_CONSTRAINT"] = str(files["build-constraints"])
        if plan.exclude_newer:
            if "--uploaded-prior-to" not in help_text:
                raise InstallFailed("this pip has no --uploaded-prior-to (needs pip >= 26) for the "
                                    "dated strategy; use --backend uv or --deps latest")
            cmd += ["--uploaded-prior-to", plan.exclude_newer.strftime("%Y-%m-%dT%H:%M:%SZ")]
        if _stream(cmd, log, on_line, env) != 0:
            raise InstallFailed(f"pip install failed: {tail(log)}")

    def freeze(self, *, env_dir):
        out = subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "freeze", "--all"],
                             capture_output=True, text=True, check=False)
        return sorted(ln for ln in out.stdout.splitlines() if ln.strip())

    def finalize(self, *, staging, final):
        # pip writes absolute shebangs and virtualenv writes its path into the
        # activate scripts: point them at the final location before the rename.
        old, new = str(staging).encode(), str(final).encode()
        for f in (staging / "bin").iterdir():
            if f.is_symlink() or not f.is_file():
                continue
            data = f.read_bytes()
            if old in data[:4096] or (f.name.startswith("activate") and old in data):
                f.write_bytes(data.replace(old, new))


BACKENDS: dict[str, type[Backend]] = {"uv": UvBackend, "virtualenv": VirtualenvBackend}


def get_backend(name: str) -> Backend:
    try:
        return BACKENDS[name]()
    except KeyError:
        raise BadInput(f"unknown backend {name!r}: use one of {', '.join(BACKENDS)}") from None
