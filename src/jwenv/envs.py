"""Installed environments: find them, compute what a run gets, run commands.

    env = Env.install("1.20.2")             # cached: returns at once when present
    rc = env.run(["strun", "jwst.pipeline.Detector1Pipeline", "x_uncal.fits"])

Kept light on purpose (no installer, resolver or index code is imported here):
this module is on the path of every `jwenv run`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from jwenv import crds, runner
from jwenv.errors import BadInput, EnvNotFound, JwenvError
from jwenv.store import Manifest, Store, dir_size, validate_name

Progress = Callable[[str, str], None]
CHECK_LEVELS = ("full", "import", "none")


def _quiet(_event: str, _detail: str) -> None:
    pass


@dataclass
class InstallOptions:
    python: str | None = None
    crds_context: str | None = None
    name: str | None = None
    force: bool = False
    backend: str = "uv"
    deps: str | None = None  # strategy order, e.g. "dated" or "ops,dated"
    check: str = "full"  # health check level after the build
    lock: Path | None = None  # rebuild exactly from a `jwenv export` file

    def validate(self) -> InstallOptions:
        from jwenv import strategies
        from jwenv.backends import get_backend

        if self.crds_context:
            self.crds_context = crds.validate_context(self.crds_context)
        if self.name:
            validate_name(self.name)
        get_backend(self.backend)
        strategies.validate_order(self.deps)
        if self.check not in CHECK_LEVELS:
            raise BadInput(f"unknown check level {self.check!r}: use {', '.join(CHECK_LEVELS)}")
        return self


ISOLATION_UNSET = ("PYTHONHOME", "PYTHONPATH", "CONDA_PREFIX", "__PYVENV_LAUNCHER__")


def run_environ(env_dir: Path, variables: Mapping[str, str],
                base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The one recipe for a run's environment: the caller's, minus what would let another
    Python leak in, with the env's bin/ first on PATH, VIRTUAL_ENV, and `variables`."""
    base = os.environ if base is None else base
    env = {k: v for k, v in base.items() if k not in ISOLATION_UNSET}
    env["VIRTUAL_ENV"] = str(env_dir)
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{base.get('PATH', os.defpath)}"
    env.update(variables)
    return env


class Env:
    """One complete, installed environment."""

    def __init__(self, store: Store, manifest: Manifest) -> None:
        self.store = store
        self.manifest = manifest

    # -- finding ------------------------------------------------------------
    @classmethod
    def get(cls, name: str, store: Store | None = None) -> Env:
        store = store or Store()
        manifest = store.read_manifest(validate_name(name))
        if manifest is None:
            raise EnvNotFound(f"no environment named {name!r}; install it with "
                              f"`jwenv install {name}` (see `jwenv list`)")
        return cls(store, manifest)

    @classmethod
    def all(cls, store: Store | None = None) -> list[Env]:
        store = store or Store()
        found = []
        for name in store.names():
            manifest = store.read_manifest(name)
            if manifest is not None:
                found.append(cls(store, manifest))
        return found

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def path(self) -> Path:
        return self.store.env_path(self.name)

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    @property
    def python(self) -> Path:
        return self.bin / "python"

    @property
    def context(self) -> str:
        return self.manifest.crds_context

    def size(self) -> int:
        return dir_size(self.path)

    def base_python_ok(self) -> bool:
        return Path(self.manifest.python_path).exists() and os.access(self.python, os.X_OK)

    # -- what a run gets ------------------------------------------------------
    def crds_settings(self, *, context: str | None = None, offline: bool | None = None,
                      environ: Mapping[str, str] | None = None) -> crds.CrdsSettings:
        ctx = crds.validate_context(context) if context else self.context
        return crds.settings(context=ctx, default_path=self.store.crds_dir, offline=offline,
                             environ=environ)

    def variables(self, *, context: str | None = None, offline: bool | None = None,
                  environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """Exactly the variables jwenv sets for a run (what `jwenv env` prints)."""
        environ = os.environ if environ is None else environ
        full = self.environ(context=context, offline=offline, base=environ)
        return {k: v for k, v in full.items() if environ.get(k) != v}

    def environ(self, *, context: str | None = None, offline: bool | None = None,
                base: Mapping[str, str] | None = None,
                extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The full environment of a run: the caller's, isolated from other Pythons."""
        base = os.environ if base is None else base
        crds_vars = self.crds_settings(context=context, offline=offline,
                                       environ=base).variables()
        return run_environ(self.path, {**crds_vars, "JWENV_ENV": self.name, **(extra or {})},
                           base)

    def run(self, cmd: Sequence[str], *, context: str | None = None,
            offline: bool | None = None, cwd: Path | None = None,
            extra_env: Mapping[str, str] | None = None, log: Path | None = None) -> int:
        """Run a command inside the environment; returns its exit status."""
        from jwenv.fastrun import ensure_output_dir

        ensure_output_dir(cmd, cwd)
        return runner.run(cmd, self.environ(context=context, offline=offline, extra=extra_env),
                          cwd=cwd, log=log)

    def run_script(self, script: Path, *args: str, what: str) -> dict[str, Any]:
        """Run one of jwenv's in-environment scripts with this env's Python, offline.

        The scripts print one JSON object as their last stdout line; anything else is
        a one-line error saying `what` failed, with the script's last stderr line.
        """
        import json
        import subprocess

        proc = subprocess.run([str(self.python), str(script), *args], capture_output=True,
                              text=True, env=self.environ(offline=True), check=False)
        lines = proc.stdout.strip().splitlines()
        try:
            if proc.returncode != 0 or not lines:
                raise ValueError
            return json.loads(lines[-1])
        except ValueError:
            last = (proc.stderr.strip().splitlines() or lines or ["no output"])[-1]
            raise JwenvError(f"jwst {self.manifest.jwst_version} could not {what}: "
                             f"{last}") from None

    # -- changing -------------------------------------------------------------
    def pin(self, context: str) -> None:
        from filelock import FileLock

        ctx = crds.validate_context(context)
        with FileLock(self.store.lock_path(self.name)):
            # re-read under the lock: a rebuild may have replaced the environment
            current = self.store.read_manifest(self.name)
            if current is None:
                raise EnvNotFound(f"no environment named {self.name!r}")
            self.manifest = replace(current, crds_context=ctx)
            self.store.write_manifest(self.path, self.manifest)

    def remove(self) -> None:
        from filelock import FileLock

        with FileLock(self.store.lock_path(self.name)):
            self.store.remove(self.name)

    def check(self, level: str = "full") -> dict[str, Any]:
        """Re-run the health check; also notices a base interpreter that went away."""
        if not self.base_python_ok():
            return {"ok": False, "level": level, "checks": [{
                "check": "base interpreter", "ok": False,
                "detail": f"{self.manifest.python_path} is gone; `jwenv repair {self.name}`"}]}
        from jwenv.installer import health_check

        return health_check(self.path, level, self.environ(offline=True))

    @classmethod
    def install(cls, spec: str, options: InstallOptions | None = None,
                store: Store | None = None, progress: Progress | None = None) -> Env:
        from jwenv.installer import Installer

        return Installer(spec, options or InstallOptions(), store or Store(),
                         progress or _quiet).install()
