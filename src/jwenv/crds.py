"""CRDS: the one place that decides what CRDS variables a run gets.

Every case goes through `settings`: a normal run (the environment's pin, the
user's CRDS_PATH and server), `--offline` (serverless mode against the local
cache), a one-run context override, a health check (offline on purpose), and a
hand-made local cache such as the offline program's (`LocalCache`). The rule
that picks a release's default pin is here too (`paired_context`).

jwenv never imports crds; it only sets the environment that the crds package
inside each managed environment reads.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from jwenv.errors import BadInput

DEFAULT_SERVER = "https://jwst-crds.stsci.edu"
SERVERLESS_SERVER = "https://jwst-serverless-mode.stsci.edu"
OFFLINE_VAR = "JWENV_OFFLINE"
_CONTEXT_RE = re.compile(r"^jwst_(\d{4})\.pmap$")

if TYPE_CHECKING:
    from packaging.version import Version


def validate_context(value: str) -> str:
    """Accept `jwst_1464.pmap` (or a bare `1464`) and return the canonical name."""
    v = value.strip()
    if v.isdigit() and len(v) <= 4:
        v = f"jwst_{int(v):04d}.pmap"
    if not _CONTEXT_RE.match(v):
        raise BadInput(f"bad CRDS context {value!r}: expected a name like jwst_1464.pmap")
    return v


def offline_default(environ: Mapping[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    return environ.get(OFFLINE_VAR, "").strip().lower() in {"1", "true", "yes", "on"}


def paired_context(version: Version | str, pairs: Mapping[Version, str]) -> str:
    """The context STScI paired with `version`, else the nearest earlier release's.

    `pairs` maps releases to their paired contexts (the DMS table; '' where a row has
    none). A release newer than the table takes the newest pairing before it.
    """
    from packaging.version import Version  # not on the `jwenv run` path

    v = Version(str(version))
    for other in sorted((r for r in pairs if r <= v), reverse=True):
        if pairs[other]:
            return pairs[other]
    return ""


@dataclass(frozen=True)
class LocalCache:
    """A hand-made CRDS cache (the offline program's): its own context, no server.

    Hand-written mappings carry no valid checksums, so CRDS is told to ignore them.
    """

    path: Path
    context: str


@dataclass(frozen=True)
class CrdsSettings:
    path: str
    server_url: str
    context: str
    offline: bool
    path_from_user: bool
    server_from_user: bool
    ignore_mapping_checksum: bool = False

    def variables(self) -> dict[str, str]:
        out = {"CRDS_PATH": self.path, "CRDS_SERVER_URL": self.server_url}
        if self.context:
            out["CRDS_CONTEXT"] = self.context
        if self.ignore_mapping_checksum:
            out["CRDS_IGNORE_MAPPING_CHECKSUM"] = "1"
        return out


def settings(*, context: str, default_path: Path, offline: bool | None = None,
             environ: Mapping[str, str] | None = None,
             cache: LocalCache | None = None) -> CrdsSettings:
    """The user's CRDS_PATH / CRDS_SERVER_URL win, as that is how CRDS is configured
    today; the context is the environment's pin (or a one-run override). A `cache`
    replaces all of it: its path, its context, serverless."""
    environ = os.environ if environ is None else environ
    if cache is not None:
        return CrdsSettings(path=str(cache.path), server_url=SERVERLESS_SERVER,
                            context=cache.context, offline=True, path_from_user=False,
                            server_from_user=False, ignore_mapping_checksum=True)
    offline = offline_default(environ) if offline is None else offline
    user_path = environ.get("CRDS_PATH")
    user_server = environ.get("CRDS_SERVER_URL")
    server = SERVERLESS_SERVER if offline else (user_server or DEFAULT_SERVER)
    return CrdsSettings(
        path=user_path or str(default_path),
        server_url=server,
        context=context,
        offline=offline,
        path_from_user=bool(user_path),
        server_from_user=bool(user_server) and not offline,
    )


def offline_gap(crds_path: str, context: str) -> str:
    """What a serverless run lacks in this cache ('' when nothing): CRDS needs the cached
    server_config, and the context's top mapping (which names the rest)."""
    missing = []
    if context and not mappings_cached(crds_path, context):
        missing.append(context)
    if not (Path(crds_path) / "config" / "jwst" / "server_config").is_file():
        missing.append("server_config" if missing or context else
                       "server_config (which names the context to use)")
    return " nor ".join(missing)


# CRDS's "instrument" cache layout: one references/jwst/<instrument>/ per instrument.
INSTRUMENT_DIRS = ("fgs", "miri", "nircam", "niriss", "nirspec", "system")


def prepare_cache(crds_path: str) -> None:
    """Create the cache's instrument directories before parallel runs start: CRDS makes
    each one on first use with a check-then-mkdir (crds.core.utils.create_path), so two
    processes that start together race and one fails with FileExistsError."""
    refs = Path(crds_path) / "references" / "jwst"
    for name in INSTRUMENT_DIRS:
        try:
            (refs / name).mkdir(parents=True, exist_ok=True)
        except OSError:
            return  # a read-only cache: CRDS does not create directories in it either


def mappings_cached(crds_path: str, context: str) -> bool:
    """Whether the context's top mapping is in the cache (what serverless mode needs)."""
    if not context:
        return False
    return (Path(crds_path) / "mappings" / "jwst" / context).is_file()
