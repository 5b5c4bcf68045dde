"""Installed environments: find them, compute what a run gets, run commands.

    env = Env.install("1.20.2")             # cached: returns at once when present
    rc = env.run(["strun", "jwst.pipeline.Detector1Pipeline", "x_uncal.fits"])

Kept light on purpose: this module is on the path of every `jwenv run`, so the
installer, resolver and index are imported only by `Env.install`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jwenv import crds, runner, strun
from jwenv.errors import CrdsCacheIncomplete, EnvNotFound, JwenvError
from jwenv.store import Manifest, Store, dir_size, dir_usage, validate_name

if TYPE_CHECKING:
    from jwenv.installer import InstallOptions, Progress


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

    @classmethod
    def install(cls, spec: str, options: InstallOptions | None = None,
                store: Store | None = None, progress: Progress | None = None) -> Env:
        """Build (or reuse) the environment for `spec`; see installer.Installer."""
        from jwenv.installer import Installer, InstallOptions, quiet

        store = store or Store()
        manifest = Installer(spec, options or InstallOptions(), store,
                             progress or quiet).install()
        return cls(store, manifest)

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

    def usage(self) -> tuple[int, int]:
        """(bytes on disk, bytes only it holds: what `remove` frees; the rest is hard-linked
        from uv's cache)."""
        return dir_usage(self.path)

    # -- what a run gets ------------------------------------------------------
    def crds_settings(self, *, context: str | None = None, offline: bool | None = None,
                      environ: Mapping[str, str] | None = None,
                      cache: crds.LocalCache | None = None) -> crds.CrdsSettings:
        ctx = crds.validate_context(context) if context else self.context
        return crds.settings(context=ctx, default_path=self.store.crds_dir, offline=offline,
                             environ=environ, cache=cache)

    def variables(self, *, context: str | None = None, offline: bool | None = None,
                  environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """Exactly the variables jwenv sets for a run (what `jwenv env` prints)."""
        environ = os.environ if environ is None else environ
        full = self.environ(context=context, offline=offline, base=environ)
        return {k: v for k, v in full.items() if environ.get(k) != v}

    def environ(self, *, context: str | None = None, offline: bool | None = None,
                base: Mapping[str, str] | None = None, cache: crds.LocalCache | None = None,
                threads: int | None = None) -> dict[str, str]:
        """The full environment of a run: the caller's, isolated from other Pythons,
        with this env's CRDS settings (`cache`: a hand-made local CRDS cache instead);
        `threads` limits numerical libraries' threads (see runner.run_environ)."""
        base = os.environ if base is None else base
        crds_vars = self.crds_settings(context=context, offline=offline, environ=base,
                                       cache=cache).variables()
        return runner.run_environ(self.path, {**crds_vars, "JWENV_ENV": self.name}, base,
                                  threads=threads)

    def run(self, cmd: Sequence[str], *, context: str | None = None,
            offline: bool | None = None, cwd: Path | None = None,
            cache: crds.LocalCache | None = None, log: Path | None = None) -> int:
        """Run a command inside the environment; returns its exit status. An offline strun
        whose CRDS cache cannot serve it is refused before it starts (one line)."""
        if strun.needs_crds(cmd):
            self.check_offline_cache(cmd, context=context, offline=offline, cache=cache)
        strun.ensure_output_dir(cmd, cwd)
        return runner.run(cmd, self.environ(context=context, offline=offline, cache=cache),
                          cwd=cwd, log=log)

    def check_offline_cache(self, cmd: Sequence[str] = (), *, context: str | None = None,
                            offline: bool | None = None,
                            cache: crds.LocalCache | None = None) -> None:
        """Offline, CRDS reads only its cache: say what it lacks and how to fill it, in one
        line, rather than CRDS's FATAL about server_config half-way through strun."""
        s = self.crds_settings(context=context, offline=offline, cache=cache)
        gap = crds.offline_gap(s.path, s.context) if s.offline else ""
        if gap:
            what = strun.first_input(cmd) or "INPUT..."
            raise CrdsCacheIncomplete(
                f"offline, but the CRDS cache {s.path} has no {gap}: with network, fill it "
                f"once with `jwenv crds sync {self.name} {what}` (the context and the "
                f"references it needs), or set CRDS_PATH to a cache that has them")

    def script(self, name: str, *args: str, cache: crds.LocalCache | None = None,
               cwd: Path | None = None, offline: bool = True) -> runner.JsonScript:
        """Start one of jwenv's in-environment scripts (jwenv.scripts) with this env's
        Python, offline unless asked (CRDS downloads); read it with `finish`."""
        from jwenv import scripts

        return runner.JsonScript(self.python, scripts.path(name), args,
                                 self.environ(offline=offline, cache=cache), cwd=cwd)

    def finish(self, job: runner.JsonScript, what: str) -> dict[str, Any]:
        """A started script's JSON result, or a one-line error
        'jwst <version> could not <what>: <why>'."""
        try:
            return job.result(what)
        except runner.ScriptFailed as exc:
            raise JwenvError(f"jwst {self.manifest.jwst_version} could not {what}: "
                             f"{exc.why}") from None

    def run_script(self, name: str, *args: str, what: str,
                   cache: crds.LocalCache | None = None) -> dict[str, Any]:
        """Run an in-environment script to the end (see `script` and `finish`)."""
        return self.finish(self.script(name, *args, cache=cache), what)

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
        if not self.store.usable(self.manifest):
            return {"ok": False, "level": level, "checks": [{
                "check": "base interpreter", "ok": False,
                "detail": f"{self.manifest.python_path} is gone; `jwenv repair {self.name}`"}]}
        from jwenv import health

        return health.check(self.path, level, self.environ(offline=True))
