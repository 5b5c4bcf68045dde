"""Installers that build an environment: uv (default) and virtualenv + pip.

A backend knows how to create a venv from a base interpreter, install an
InstallPlan into it, dry-run resolve a plan, and list what got installed.
It never decides *what* to install: that is strategies.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from jwenv.errors import BadInput, InstallFailed, NoInterpreter

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
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"strategy": self.strategy, "requirements": self.requirements,
                "constraints": self.constraints, "build_constraints": self.build_constraints,
                "exclude_newer": self.exclude_newer.isoformat() if self.exclude_newer else None,
                "exclude_newer_packages": self.exclude_newer_packages, "notes": self.notes}

    def write_files(self, where: Path) -> dict[str, Path]:
        """Requirement files beside the build, kept in the env for the record."""
        where.mkdir(parents=True, exist_ok=True)
        files = {}
        for key, lines in (("requirements", self.requirements), ("constraints", self.constraints),
                           ("build-constraints", self.build_constraints)):
            if lines:
                path = where / f"{key}.txt"
                path.write_text("".join(f"{line}\n" for line in lines))
                files[key] = path
        return files


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


def tail(log: Path, n: int = 1) -> str:
    """The last meaningful line(s) of a log, for a one-line error."""
    try:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    errors = [ln for ln in lines if re.match(r"^(error|×|ERROR|.*Error:)", ln)]
    picked = (errors or lines)[-n:]
    return " | ".join(picked)


class Backend:
    name = "base"

    def create(self, env_dir: Path, python: Path, log: Path, on_line: LineSink | None) -> None:
        raise NotImplementedError

    def install(self, env_dir: Path, plan: InstallPlan, log: Path,
                on_line: LineSink | None) -> None:
        raise NotImplementedError

    def can_resolve(self, python: Path, plan: InstallPlan, log: Path) -> bool:
        """Whether `plan` resolves for `python` without building numpy (cheap dry run)."""
        return True

    def freeze(self, env_dir: Path) -> list[str]:
        raise NotImplementedError

    def finalize(self, staging: Path, final: Path) -> None:
        """Make a staged env work at its final path."""

    @staticmethod
    def base_env() -> dict[str, str]:
        env = dict(os.environ)
        for var in ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH", "CONDA_PREFIX"):
            env.pop(var, None)
        return env


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

    def create(self, env_dir, python, log, on_line):
        # --relocatable: console-script shebangs survive the rename from staging.
        rc = _stream([uv_bin(), "venv", "--relocatable", "--python", str(python), str(env_dir)],
                     log, on_line, self._env(), cwd=log.parent)
        if rc != 0:
            raise NoInterpreter(f"uv could not create a venv with {python}: {tail(log)}")

    # The big compiled scientific stack is never built from source, in the dry run, the
    # install and the build environments alike. An era's release of each has wheels for
    # the Pythons of its era only, and building it here fails (scipy: meson + Fortran +
    # BLAS) or takes many minutes (numpy; scikit-image 0.19.3 for 3.11: >6 min on 2 cores;
    # astropy). With them in --only-binary, the Python-choice dry run rejects an
    # interpreter that would need such a build (jwst 1.10's sdp scipy==1.9.1 has no cp311
    # wheel, 1.9's scikit-image==0.19.3 neither), and the install gets what the dry run
    # resolved. Small compiled packages (drizzle, stsci.image, ...) still build.
    ONLY_BINARY = ("numpy", "scipy", "scikit-image", "astropy")

    def _plan_args(self, plan: InstallPlan, files: dict[str, Path]) -> list[str]:
        """Options shared by `uv pip install` and `uv pip compile` (requirements excluded)."""
        args: list[str] = []
        for pkg in self.ONLY_BINARY:
            args += ["--only-binary", pkg]
        if "constraints" in files:
            args += ["-c", str(files["constraints"])]
        if "build-constraints" in files:
            args += ["-b", str(files["build-constraints"])]
        if plan.exclude_newer:
            args += ["--exclude-newer", plan.exclude_newer.strftime("%Y-%m-%dT%H:%M:%SZ")]
        for pkg, when in plan.exclude_newer_packages.items():
            args += ["--exclude-newer-package", f"{pkg}={when}"]
        return args

    def install(self, env_dir, plan, log, on_line):
        files = plan.write_files(env_dir / "jwenv-plan")
        cmd = [uv_bin(), "pip", "install", "--python", str(env_dir / "bin" / "python"),
               "-r", str(files["requirements"]), *self._plan_args(plan, files)]
        if _stream(cmd, log, on_line, self._env(), cwd=log.parent) != 0:
            raise InstallFailed(f"uv pip install failed: {tail(log)}")

    def can_resolve(self, python, plan, log):
        files = plan.write_files(log.parent / f"dry-{plan.strategy}-{Path(python).name}")
        # numpy, scipy, ... must come as wheels (ONLY_BINARY): an era's numpy built from
        # source for a newer Python is the classic way old releases fail, and the dry run
        # sees it early.
        cmd = [uv_bin(), "pip", "compile", "--quiet", "--python", str(python),
               "-o", os.devnull, str(files["requirements"]), *self._plan_args(plan, files)]
        return _stream(cmd, log, None, self._env(), cwd=log.parent) == 0

    def freeze(self, env_dir):
        out = subprocess.run([uv_bin(), "pip", "freeze", "--python",
                              str(env_dir / "bin" / "python")],
                             capture_output=True, text=True, env=self._env(), check=False)
        return sorted(ln for ln in out.stdout.splitlines() if ln.strip())


class VirtualenvBackend(Backend):
    """virtualenv + pip, for sites that cannot run uv. Slower, no shared cache links."""

    name = "virtualenv"

    def create(self, env_dir, python, log, on_line):
        rc = _stream([sys.executable, "-m", "virtualenv", "--python", str(python),
                      "--no-setuptools", "--no-wheel", str(env_dir)], log, on_line,
                     self.base_env())
        if rc != 0:
            raise NoInterpreter(f"virtualenv could not create a venv with {python}: {tail(log)}")

    def _pip_help(self, py: Path) -> str:
        out = subprocess.run([str(py), "-m", "pip", "install", "--help"], capture_output=True,
                             text=True, check=False)
        return out.stdout

    def install(self, env_dir, plan, log, on_line):
        py = env_dir / "bin" / "python"
        files = plan.write_files(env_dir / "jwenv-plan")
        env = self.base_env()
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        cmd = [str(py), "-m", "pip", "install", "--progress-bar", "off",
               "-r", str(files["requirements"])]
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

    def freeze(self, env_dir):
        out = subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "freeze", "--all"],
                             capture_output=True, text=True, check=False)
        return sorted(ln for ln in out.stdout.splitlines() if ln.strip())

    def finalize(self, staging, final):
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
