"""Disk: what jwenv really uses (`jwenv du`) and what it can give back (`jwenv clean`).

An environment made by uv is mostly hard links into uv's cache: its apparent size (what
`du` of one environment says, ~650 MB for a release) is not what removing it frees (a
few MB). So each environment is reported as the bytes only it holds, and the shared
caches on their own lines: uv's cache, the CRDS cache, the release index; then what
failed builds left in staging, and installer logs.

`clean` removes leftovers of builds no process is using, logs and the index cache; the
CRDS cache (jwenv's own, never the user's CRDS_PATH) and uv's unreachable cache entries
only when asked. Installed environments are never touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jwenv.backends import UvBackend, uv_bin
from jwenv.envs import Env
from jwenv.store import STAGING_OWNER, Store, dir_usage


@dataclass
class EnvUsage:
    name: str
    jwst_version: str
    path: Path
    apparent: int  # bytes on disk, hard links included
    own: int  # bytes only this environment holds (what `jwenv remove` frees)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "jwst_version": self.jwst_version, "path": str(self.path),
                "apparent_bytes": self.apparent, "own_bytes": self.own,
                "linked_bytes": self.apparent - self.own}


@dataclass
class Area:
    """A cache or leftover directory, with its size."""

    key: str  # uv-cache, crds-cache, index-cache, staging, logs
    label: str
    path: Path
    bytes: int
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "path": str(self.path),
                "bytes": self.bytes, "note": self.note}


@dataclass
class Report:
    envs: list[EnvUsage] = field(default_factory=list)
    areas: list[Area] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Disk used: environments' own bytes plus every area (nothing counted twice, as
        the linked bytes of environments are uv cache bytes)."""
        return sum(e.own for e in self.envs) + sum(a.bytes for a in self.areas)

    def to_dict(self) -> dict[str, Any]:
        return {"environments": [e.to_dict() for e in self.envs],
                "areas": [a.to_dict() for a in self.areas], "total_bytes": self.total}


def uv_cache_dir() -> Path | None:
    """uv's cache directory ($UV_CACHE_DIR or uv's default), as uv itself says."""
    try:
        out = subprocess.run([uv_bin(), "cache", "dir"], capture_output=True, text=True,
                             env=UvBackend().environ(), check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = out.stdout.strip()
    return Path(text) if out.returncode == 0 and text else None


def _size(path: Path | None) -> int:
    if path is None or not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_blocks * 512
    return dir_usage(path)[0]


def crds_cache(store: Store, environ: Mapping[str, str] | None = None) -> tuple[Path, bool]:
    """The CRDS cache runs use (the user's CRDS_PATH, else jwenv's own) and whether it is
    jwenv's own."""
    environ = os.environ if environ is None else environ
    user = environ.get("CRDS_PATH")
    return (Path(user), False) if user else (store.crds_dir, True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def staging_in_use(store: Store, path: Path) -> bool:
    """Whether a build (or a remove or replace) is using this staging directory: its
    owner is alive, or the name's lock is held."""
    from filelock import FileLock, Timeout

    owner = path / STAGING_OWNER
    with contextlib.suppress(OSError, ValueError):
        if _pid_alive(int(owner.read_text().strip())):
            return True
    name = path.name.split("@", 1)[0]
    lock_path = store.locks_dir / f"{name}.lock"
    if not lock_path.exists():
        return False
    try:
        with FileLock(lock_path, timeout=0):
            return False
    except Timeout:
        return True


def leftovers(store: Store) -> list[Path]:
    """Staging directories no build is using: what failed or killed builds left."""
    if not store.staging_dir.is_dir():
        return []
    return [p for p in sorted(store.staging_dir.iterdir())
            if p.is_dir() and not staging_in_use(store, p)]


def report(store: Store | None = None, environ: Mapping[str, str] | None = None) -> Report:
    store = store or Store()
    out = Report()
    for env in Env.all(store):
        apparent, own = env.usage()
        out.envs.append(EnvUsage(env.name, env.manifest.jwst_version, env.path, apparent, own))
    uv_dir = uv_cache_dir()
    if uv_dir is not None:
        out.areas.append(Area("uv-cache", "uv cache (shared)", uv_dir, _size(uv_dir),
                              "environments' files are hard links into it"))
    crds_path, own = crds_cache(store, environ)
    out.areas.append(Area("crds-cache", "CRDS cache", crds_path, _size(crds_path),
                          "jwenv's" if own else "yours (CRDS_PATH)"))
    out.areas.append(Area("index-cache", "index cache", store.index_dir,
                          _size(store.index_dir), "release list and pins from PyPI"))
    left = leftovers(store)
    out.areas.append(Area("staging", "failed builds' leftovers", store.staging_dir,
                          sum(_size(p) for p in left), f"{len(left)} build(s)"))
    logs = sorted(store.logs_dir.glob("*")) if store.logs_dir.is_dir() else []
    out.areas.append(Area("logs", "installer logs", store.logs_dir,
                          sum(_size(p) for p in logs), f"{len(logs)} file(s)"))
    return out


@dataclass
class Removal:
    label: str
    path: Path
    bytes: int
    done: bool  # False in a dry run

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "path": str(self.path), "bytes": self.bytes,
                "removed": self.done}


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def clean(store: Store | None = None, *, dry_run: bool = False, crds: bool = False,
          uv: bool = False, environ: Mapping[str, str] | None = None) -> list[Removal]:
    """Remove failed builds' leftovers, installer logs and the index cache; with `crds`,
    jwenv's own CRDS cache; with `uv`, uv's unreachable cache entries (`uv cache prune`).
    Never an installed environment, a build in progress or the user's CRDS_PATH."""
    store = store or Store()
    todo: list[tuple[str, Path]] = [("failed build's leftovers", p) for p in leftovers(store)]
    if store.logs_dir.is_dir():
        todo += [("installer log", p) for p in sorted(store.logs_dir.iterdir())]
    if store.index_dir.exists():
        todo.append(("index cache", store.index_dir))
    if crds:
        path, own = crds_cache(store, environ)
        if own and path.exists():
            todo.append(("CRDS cache", path))
    envs = store.envs_dir.resolve()
    done = []
    for label, path in todo:
        if path.resolve() == envs or envs in path.resolve().parents:
            continue  # never an environment, whatever a symlink says
        size = _size(path)
        if not dry_run:
            _remove(path)
        done.append(Removal(label, path, size, not dry_run))
    if uv:
        where = uv_cache_dir()
        if where is not None:
            before = _size(where)
            if not dry_run:
                subprocess.run([uv_bin(), "cache", "prune"], capture_output=True,
                               env=UvBackend().environ(), check=False)
            freed = before - _size(where) if not dry_run else 0
            done.append(Removal("uv cache: unreachable entries (uv cache prune)", where, freed,
                                not dry_run))
    return done
