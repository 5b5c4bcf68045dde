"""Where jwenv keeps things on disk: the one place that knows the layout.

::

    $JWENV_HOME/                    (platformdirs user data dir by default)
        envs/<name>/                a complete environment (a venv) ...
        envs/<name>/jwenv.json      ... and its manifest; no manifest = not usable
        staging/<name>@<random>/    environments being built (.owner: the builder's pid);
                                    never listed or run
        locks/<name>.lock           one file lock per environment name
        logs/                       installer logs of failed builds
    cache dir (platformdirs user cache dir, or $JWENV_HOME/cache)
        crds/                       default shared CRDS_PATH for every environment
        index/                      cached PyPI metadata

An environment becomes visible only by the rename of a fully built staging
directory (which already holds its manifest) into ``envs/``, so an interrupted
install never leaves something that looks usable.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from jwenv.errors import BadInput, EnvNotFound, StoreError

HOME_VAR = "JWENV_HOME"
MANIFEST = "jwenv.json"
MANIFEST_SCHEMA = 1
STAGING_OWNER = ".owner"  # the pid of the build using a staging directory
_NAME_RE = re.compile(r"^[A-Za-z0-9._+-]+$")


def validate_name(name: str) -> str:
    """Names become directory names: refuse anything that could escape the store."""
    if not name or not _NAME_RE.match(name) or name in {".", ".."} or ".." in name:
        raise BadInput(
            f"bad environment name {name!r}: use letters, digits and . _ + - only "
            "(no path separators, no '..')"
        )
    return name


@dataclass
class Manifest:
    """What jwenv knows about one environment; written once the build succeeded."""

    name: str
    requested: str
    jwst_version: str
    source: str  # "pypi", "git" or "local"
    requirement: str  # what the installer was given for jwst itself
    python_version: str
    python_path: str  # the base interpreter the venv was made from
    backend: str
    crds_context: str
    created: str  # ISO 8601, UTC
    strategy: str = "latest"
    strategy_log: list[dict[str, Any]] = field(default_factory=list)
    python_reason: str = ""
    release_date: str | None = None
    health: dict[str, Any] = field(default_factory=dict)
    packages: list[str] = field(default_factory=list)  # the lock: name==version lines
    plan: dict[str, Any] = field(default_factory=dict)  # what the installer was given
    added: list[str] = field(default_factory=list)  # requirements added later (`jwenv pip`)
    schema: int = MANIFEST_SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        if data.get("schema") != MANIFEST_SCHEMA:
            raise StoreError(f"manifest schema {data.get('schema')!r} is not {MANIFEST_SCHEMA}")
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def write_json_atomic(path: Path, data: Any) -> None:
    """Write-then-rename so a reader never sees half a file."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Store:
    """The directory tree holding every environment."""

    def __init__(self, root: Path | None = None, cache: Path | None = None) -> None:
        home = os.environ.get(HOME_VAR)
        if root is None:
            root = Path(home) if home else platformdirs.user_data_path("jwenv")
        if cache is None:
            cache = root / "cache" if home else platformdirs.user_cache_path("jwenv")
        self.root = Path(root).expanduser().absolute()
        self.cache = Path(cache).expanduser().absolute()

    envs_dir = property(lambda self: self.root / "envs")
    staging_dir = property(lambda self: self.root / "staging")
    locks_dir = property(lambda self: self.root / "locks")
    logs_dir = property(lambda self: self.root / "logs")
    crds_dir = property(lambda self: self.cache / "crds")
    index_dir = property(lambda self: self.cache / "index")

    def ensure(self) -> None:
        """Create the tree, turning permission problems into one clear line."""
        try:
            for d in (self.envs_dir, self.staging_dir, self.locks_dir, self.logs_dir):
                d.mkdir(parents=True, exist_ok=True)
            probe = self.staging_dir / f".probe-{os.getpid()}"
            probe.touch()
            probe.unlink()
        except OSError as exc:
            raise StoreError(
                f"store {self.root} is not writable ({exc.strerror}); "
                f"set {HOME_VAR} to a writable directory"
            ) from exc

    def env_path(self, name: str) -> Path:
        return self.envs_dir / validate_name(name)

    def usable(self, manifest: Manifest) -> bool:
        """Whether a complete environment still runs: a venv needs its base interpreter."""
        python = self.env_path(manifest.name) / "bin" / "python"
        return Path(manifest.python_path).exists() and os.access(python, os.X_OK)

    def lock_path(self, name: str) -> Path:
        return self.locks_dir / f"{validate_name(name)}.lock"

    def new_staging(self, name: str) -> Path:
        # '@' cannot be in a name, so "1.20" never matches the staging dirs of "1.20.2".
        self.ensure()
        path = Path(tempfile.mkdtemp(prefix=f"{validate_name(name)}@", dir=self.staging_dir))
        (path / STAGING_OWNER).write_text(str(os.getpid()))  # `jwenv clean` leaves it alone
        return path

    def clean_staging(self, name: str) -> None:
        """Remove leftovers of interrupted builds of `name` (call with its lock held)."""
        if self.staging_dir.is_dir():
            for leftover in self.staging_dir.glob(f"{validate_name(name)}@*"):
                shutil.rmtree(leftover, ignore_errors=True)

    def read_manifest(self, name: str) -> Manifest | None:
        """The manifest of a complete environment, or None if there is none."""
        path = self.env_path(name) / MANIFEST
        try:
            return Manifest.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError, StoreError):
            return None

    def write_manifest(self, env_dir: Path, manifest: Manifest) -> None:
        write_json_atomic(env_dir / MANIFEST, manifest.to_dict())

    def names(self) -> Iterator[str]:
        """Names of complete environments (a directory without manifest is not one)."""
        if not self.envs_dir.is_dir():
            return
        for child in sorted(self.envs_dir.iterdir()):
            if (child / MANIFEST).is_file() and _NAME_RE.match(child.name):
                yield child.name

    def publish(self, staging: Path, name: str) -> Path:
        """Move a finished build into place; an old one with the same name is replaced.

        The replacement is one atomic exchange where the OS has it (Linux renameat2), so
        a kill at any moment leaves either the old or the new environment at the name.
        """
        final = self.env_path(name)
        if final.exists() and _exchange(staging, final):
            shutil.rmtree(staging, ignore_errors=True)  # now holds the old environment
            return final
        if final.exists():  # no atomic exchange here: two renames
            trash = Path(tempfile.mkdtemp(prefix=f"{name}@old-", dir=self.staging_dir))
            os.replace(final, trash / "env")
            os.replace(staging, final)
            shutil.rmtree(trash, ignore_errors=True)
            return final
        os.replace(staging, final)
        return final

    def remove(self, name: str) -> None:
        final = self.env_path(name)
        self.ensure()
        trash = Path(tempfile.mkdtemp(prefix=f"{validate_name(name)}@removed-",
                                      dir=self.staging_dir))
        # Rename first: the environment disappears at once, the slow delete follows.
        try:
            os.replace(final, trash / "env")
        except FileNotFoundError:
            shutil.rmtree(trash, ignore_errors=True)
            raise EnvNotFound(f"no environment named {name!r}") from None
        shutil.rmtree(trash, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return rc == 0


def dir_usage(path: Path) -> tuple[int, int]:
    """(bytes on disk, bytes of them only this tree holds): a file hard-linked from
    elsewhere (uv's cache, another environment) counts in the first, not in the second,
    so the second is what deleting the tree frees."""
    links: dict[tuple[int, int], list[int]] = {}  # inode -> [links seen here, nlink, bytes]
    total = own = 0
    for root, dirs, files in os.walk(path):
        for d in dirs:
            try:
                st = os.lstat(os.path.join(root, d))
            except OSError:
                continue
            total += st.st_blocks * 512
            own += st.st_blocks * 512
        for f in files:
            try:
                st = os.lstat(os.path.join(root, f))
            except OSError:
                continue
            key = (st.st_dev, st.st_ino)
            seen = links.get(key)
            if seen is None:
                links[key] = [1, st.st_nlink, st.st_blocks * 512]
                total += st.st_blocks * 512
            else:
                seen[0] += 1
    own += sum(size for seen, nlink, size in links.values() if seen >= nlink)
    return total, own


def dir_size(path: Path) -> int:
    """Bytes on disk, counting hardlinked files (uv's cache links) once."""
    return dir_usage(path)[0]
