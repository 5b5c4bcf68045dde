"""Building environments: resolve, choose Python and strategy, build, check, publish.

An environment becomes visible only when a fully built and checked staging
directory is renamed into the store (see store.py), under a per-name file lock.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock

from jwenv import crds, health, interpreters, locks, releases, strategies
from jwenv.backends import Backend, InstallPlan, get_backend, tail
from jwenv.errors import BadInput, Conflict, IndexUnreachable, InstallFailed, NoInterpreter
from jwenv.runner import run_environ
from jwenv.store import Manifest, Store, validate_name

Progress = Callable[[str, str], None]
"""progress(event, detail): phases ('resolve', 'python', 'create', 'install', 'check',
'cached', 'done'), which release a request chose ('chosen': worth keeping on screen) and
every installer output line ('line')."""


def quiet(_event: str, _detail: str) -> None:
    pass


@dataclass
class InstallOptions:
    python: str | None = None
    crds_context: str | None = None
    name: str | None = None
    force: bool = False
    backend: str = "uv"
    deps: str | None = None  # strategy order, e.g. "dated" or "ops,dated"
    check: str = "full"  # health check level after the build (health.LEVELS)
    lock: Path | None = None  # rebuild exactly from a `jwenv export` file

    def validate(self) -> InstallOptions:
        if self.crds_context:
            self.crds_context = crds.validate_context(self.crds_context)
        if self.name:
            validate_name(self.name)
        get_backend(self.backend)
        strategies.validate_order(self.deps)
        if self.check not in health.LEVELS:
            raise BadInput(f"unknown check level {self.check!r}: use {', '.join(health.LEVELS)}")
        return self


@dataclass
class Attempt:
    """One strategy tried during an install, kept in the manifest."""

    strategy: str
    ok: bool
    python: str = ""
    detail: str = ""
    seconds: float = 0.0
    log: str = ""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class Installer:
    """One `jwenv install`: resolve, pick Python and strategy, build, check, publish.

    `install()` returns the manifest of the installed (or reused) environment; it
    knows the store, never the Env class built on top of it.
    """

    spec: str
    options: InstallOptions
    store: Store
    progress: Progress
    _index: releases.Index | None = field(default=None, init=False)
    _interpreters: list[interpreters.Interpreter] | None = field(default=None, init=False)
    _lock: locks.Lock | None = field(default=None, init=False)

    def index(self) -> releases.Index:
        if self._index is None:
            self.progress("resolve", "reading the jwst release list from PyPI")
            self._index = releases.load_index(self.store.index_dir)
        return self._index

    def maybe_index(self) -> releases.Index | None:
        try:
            return self.index()
        except IndexUnreachable:
            return None

    def found_interpreters(self) -> list[interpreters.Interpreter]:
        if self._interpreters is None:
            self.progress("python", "looking for Python interpreters")
            self._interpreters = interpreters.discover()
        return self._interpreters

    def install(self) -> Manifest:
        self.options.validate()
        self.store.ensure()
        # Cached fast path: a plain version (or --name) that is already installed needs
        # no index, no interpreter discovery, no lock.
        early = self.options.name or (self.spec if releases.is_plain_version(self.spec) else None)
        if early and not self.options.lock:  # a lock is compared first (see _reuse)
            found = self._reuse(early)
            if found is not None:
                return found
        lock = locks.read_lock(Path(self.options.lock)) if self.options.lock else None
        if lock is not None:
            jwst_pin = next(p for p in lock.pins if p.lower().startswith("jwst"))
            resolved = releases.Resolved(f"lock:{self.options.lock}", "lock", jwst_pin,
                                         lock.jwst_version)
            if not self.options.crds_context and lock.context:
                self.options.crds_context = lock.context
            if not self.options.python and lock.python:
                self.options.python = ".".join(lock.python.split(".")[:2])
            self._lock = lock
        else:
            resolved = releases.resolve(self.spec, self.index)
            if resolved.note:
                self.progress("chosen", resolved.note)
        name = self.options.name or resolved.default_name
        if name:
            found = self._reuse(name)
            if found is not None:
                return found
        if resolved.source == "git":
            self.progress("resolve", f"checking {resolved.git_repo} for {resolved.git_ref}")
            releases.check_git_ref(resolved.git_repo or "", resolved.git_ref,
                                   version=resolved.version)
        if name:
            with FileLock(self.store.lock_path(name)):
                found = self._reuse(name)  # someone else may have built it while we waited
                if found is not None:
                    return found
                self.store.clean_staging(name)
                staging, manifest = self._build(resolved, name)
                return self._publish(staging, manifest)
        # A git ref or directory of unknown version: build first, name it after its version.
        staging, manifest = self._build(resolved, "unnamed")
        with FileLock(self.store.lock_path(manifest.name)):
            found = self._reuse(manifest.name)
            if found is not None:
                shutil.rmtree(staging.parent, ignore_errors=True)
                return found
            return self._publish(staging, manifest)

    def _reuse(self, name: str) -> Manifest | None:
        if self.options.force:
            return None
        manifest = self.store.read_manifest(name)
        if manifest is None or not self.store.usable(manifest):
            return None
        if self._lock is not None:  # the same as the lock, or refused: never silently other
            found = locks.differences(self._lock, manifest, self.options.crds_context)
            if found:
                more = f" (and {len(found) - 2} more)" if len(found) > 2 else ""
                raise Conflict(f"{name} is installed but differs from {self.options.lock}: "
                               f"{'; '.join(found[:2])}{more}; rebuild it from the lock with "
                               f"--force, or install the lock under another --name")
            self.progress("cached", f"{name} is already installed, identical to "
                                    f"{self.options.lock}")
            return manifest
        self.progress("cached", f"{name} is already installed")
        return manifest

    def _publish(self, staging: Path, manifest: Manifest) -> Manifest:
        backend = get_backend(manifest.backend)
        final = self.store.env_path(manifest.name)
        backend.finalize(staging=staging, final=final)
        self.store.write_manifest(staging, manifest)  # last: the build is complete
        self.store.publish(staging, manifest.name)
        shutil.rmtree(staging.parent, ignore_errors=True)
        self.progress("done", f"installed {manifest.name} in {final}")
        return manifest

    # -- building -------------------------------------------------------------
    def _release(self, resolved: releases.Resolved) -> releases.Release | None:
        if resolved.release is not None:
            return resolved.release
        if resolved.version is None:
            return None
        index = self.maybe_index()
        if index is None:
            return None
        from packaging.version import Version

        return index.releases.get(Version(resolved.version))

    def _build(self, resolved: releases.Resolved, name: str) -> tuple[Path, Manifest]:
        backend = get_backend(self.options.backend)
        if self._lock is not None:  # exact pins: one plan, nothing to choose
            attempts: list[Attempt] = []
            result = self._attempt(backend, resolved, None, self._lock.plan(), name, attempts)
            if result is None:
                raise InstallFailed(f"could not rebuild from {self.options.lock}: "
                                    f"{attempts[-1].detail}")
            return result
        release = self._release(resolved)
        order = strategies.validate_order(self.options.deps)
        if resolved.source == "local" or (release is None and self.options.deps is None):
            order = ("latest",)  # no release date, no sdp pins: nothing else can apply
        facts = None
        if "ops" in order or resolved.source == "git":
            self.progress("resolve", "reading the release's source (requirements-sdp.txt, "
                                     "setup files)")
            try:
                facts = strategies.fetch_source(resolved, self.store.index_dir)
            except OSError as exc:  # say so: fixes that need the source (its commit) drop out
                self.progress("resolve", f"cannot read the release's source ({exc}); "
                                         "building without its sdp pins and setup facts")
                facts = None
        release_date = release.release_date if release else None
        pins = strategies.resolve_git_pins(facts.git_pins, release_date, self.store.index_dir) \
            if facts and facts.git_pins else []
        for choice in pins:  # one line each, and in the manifest (plan notes, overrides)
            self.progress("chosen", choice.note)
        attempts = []
        for strategy in order:
            plan = strategies.plan(strategy, resolved, release_date=release_date,
                                   sdp_text=facts.sdp if facts else None, source=facts,
                                   pins=pins)
            if isinstance(plan, str):
                attempts.append(Attempt(strategy, False, detail=f"not applicable: {plan}"))
                continue
            result = self._attempt(backend, resolved, release, plan, name, attempts)
            if result is not None:
                return result
        lines = "; ".join(f"{a.strategy}: {a.detail}" for a in attempts)
        family = strategies.failure_family(attempts)
        raise InstallFailed(f"could not build a working jwst {resolved.version or self.spec} "
                            f"environment{': ' + family if family else ''} ({lines})")

    def _choose_python(self, backend: Backend, plan: InstallPlan,
                       release: releases.Release | None, log: Path) -> tuple[
                           interpreters.Interpreter, str]:
        if self.options.python:
            interp = interpreters.from_option(self.options.python,
                                              None if "/" in self.options.python
                                              else self.found_interpreters())
            return interp, "given with --python"
        requires = release.requires_python if release else None
        found = self.found_interpreters()
        allowed = interpreters.allowed(found, requires)
        if plan.pythons:  # the Pythons the release ran on (what DMS ran)
            allowed = [i for i in allowed if i.minor in plan.pythons]
            if not allowed:
                raise NoInterpreter(interpreters.era_message(
                    str(release.version) if release else self.spec, plan.pythons, found))
            requires = f"Python {' or '.join(plan.pythons)}"
        if not allowed:
            raise NoInterpreter(interpreters.missing_message(requires or "any Python 3", found))
        if len(allowed) == 1:
            return allowed[0], f"the only interpreter satisfying {requires or 'any'}"
        for interp in allowed:
            self.progress("python", f"{plan.strategy}: trying Python {interp.version} (dry run)")
            if backend.can_resolve(python=interp.path, plan=plan, log=log):
                return interp, (f"newest interpreter satisfying {requires or 'any'} whose "
                                f"{plan.strategy} resolution needs no build of numpy, scipy "
                                "and the like")
        # Building anyway would fail for sure: let the next strategy try instead.
        raise InstallFailed(f"no Python ({', '.join(i.minor for i in allowed)}) resolves in a "
                            f"dry run: {tail(log)}")

    def _attempt(self, backend: Backend, resolved: releases.Resolved,
                 release: releases.Release | None, plan: InstallPlan, name: str,
                 attempts: list[Attempt]) -> tuple[Path, Manifest] | None:
        t0 = time.monotonic()
        work = self.store.new_staging(name)  # holds the venv, the log and dry-run files
        staging = work / "env"
        log = work / "install.log"
        interp = None
        try:
            interp, reason = self._choose_python(backend, plan, release, log)
            self.progress("create", f"{plan.strategy}: creating a Python {interp.version} "
                                    f"environment with {backend.name}")
            backend.create(env_dir=staging, python=interp.path, log=log)
            self.progress("install", f"{plan.strategy}: installing {resolved.requirement}")
            backend.install(env_dir=staging, plan=plan, log=log,
                            on_line=lambda line: self.progress("line", line))
            strategies.install_site_hooks(staging, plan.site_hooks)
            self.progress("check", f"{plan.strategy}: health check")
            context = self.options.crds_context or self._paired_context(resolved.version)
            report = health.check(staging, self.options.check,
                                  self._check_environ(staging, context))
            if not report.get("ok"):
                raise InstallFailed(f"health check failed: {health.first_failure(report)}")
        except (InstallFailed, NoInterpreter, OSError) as exc:
            kept = self._keep_log(log, name, plan.strategy)
            shutil.rmtree(work, ignore_errors=True)
            if isinstance(exc, NoInterpreter):
                raise
            attempts.append(Attempt(plan.strategy, False,
                                    python=str(interp.version) if interp else "",
                                    detail=str(exc), seconds=round(time.monotonic() - t0, 1),
                                    log=str(kept)))
            return None
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        version = report.get("jwst_version") or resolved.version or self._installed_version(
            staging)
        if version is None:
            shutil.rmtree(work, ignore_errors=True)
            raise InstallFailed("jwst did not install (no version found in the environment)")
        attempts.append(Attempt(plan.strategy, True, python=str(interp.version),
                                detail="passed", seconds=round(time.monotonic() - t0, 1)))
        context = context or self._paired_context(version)
        final_name = name if name != "unnamed" else validate_name(version)
        manifest = Manifest(
            name=final_name, requested=self.spec, jwst_version=version,
            source=resolved.source, requirement=resolved.requirement,
            python_version=str(interp.version), python_path=str(interp.path),
            backend=backend.name, crds_context=context, created=_now(),
            strategy=plan.strategy, strategy_log=[a.__dict__ for a in attempts],
            python_reason=reason,
            release_date=(release.release_date.isoformat()
                          if release and release.release_date else None),
            health=report, packages=backend.freeze(env_dir=staging), plan=plan.to_dict(),
            added=self._lock.added if self._lock is not None else [],
        )
        shutil.copyfile(log, staging / "jwenv-install.log")
        return staging, manifest

    def _check_environ(self, env_dir: Path, context: str) -> dict[str, str]:
        # Offline on purpose: a build must be judged without the CRDS server.
        settings = crds.settings(context=context, default_path=self.store.crds_dir, offline=True)
        return run_environ(env_dir, settings.variables())

    def _paired_context(self, version: str | None) -> str:
        if version is None:
            return ""
        index = self.maybe_index()
        return crds.paired_context(version, index.paired_contexts()) if index else ""

    def _installed_version(self, env_dir: Path) -> str | None:
        out = subprocess.run([str(env_dir / "bin" / "python"), "-c",
                              "import importlib.metadata as m; print(m.version('jwst'))"],
                             capture_output=True, text=True, check=False)
        return out.stdout.strip() or None

    def _keep_log(self, log: Path, name: str, strategy: str) -> Path | None:
        if not log.is_file():
            return None
        self.store.logs_dir.mkdir(parents=True, exist_ok=True)
        kept = self.store.logs_dir / f"{name}-{strategy}-{int(time.time())}.log"
        shutil.copyfile(log, kept)
        return kept
