"""The environment of the release and context that made a product (`install --like`, `@FILE`).

A product records the jwst version that made it (CAL_VER) and the CRDS context
(CRDS_CTX). `maker_of` turns those into what the installer needs: a release
(`1.12.5`), or for a development version (`1.12.6.dev12+gabc1234`) its commit in
the configured jwst git repository; `find` reuses an installed environment of that
release and context, whatever its name. New ones are named after both:
`1.12.5+jwst_1130`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from jwenv import crds, provenance, releases
from jwenv.envs import Env
from jwenv.errors import BadInput, IndexUnreachable, UnknownVersion
from jwenv.store import Store


@dataclass(frozen=True)
class Maker:
    """What made a product, as something jwenv can install."""

    product: Path
    version: str  # CAL_VER as recorded
    context: str  # CRDS_CTX
    request: str  # what the installer is given: "1.12.5" or "git+<repo>@<commit>"

    @property
    def name(self) -> str:
        return f"{self.version}+{self.context.removesuffix('.pmap')}"


def maker_of(path: Path, index: Callable[[], releases.Index] | None = None,
             check_git: bool = True) -> Maker:
    """The release and context that made `path` (a JWST product)."""
    path = Path(path)
    facts = provenance.read(path)
    if not facts.release:
        raise BadInput(f"{path.name} records no CAL_VER: not a calibrated product")
    if not facts.crds_context:
        raise BadInput(f"{path.name} records no CRDS_CTX: cannot tell its CRDS context")
    context = crds.validate_context(facts.crds_context)
    try:
        version = Version(facts.release)
    except InvalidVersion:
        raise BadInput(f"{path.name}: CAL_VER {facts.release!r} is not a version") from None
    if not version.is_devrelease and not version.local:
        return Maker(path, str(version), context, str(version))
    commit = (version.local or "").removeprefix("g")
    repo = releases.git_repo()
    why = "it names no commit" if not commit else ""
    if commit and check_git:
        try:
            releases.check_git_ref(repo, None)
        except IndexUnreachable as exc:
            why = str(exc).split(" (", 1)[-1].split(")", 1)[0]
    if why or not commit:
        raise UnknownVersion(
            f"{path.name} was made by jwst {facts.release}, a development version; its "
            f"commit cannot be installed from {repo} ({why}); the nearest release is "
            f"{_nearest(version, index)}")
    return Maker(path, facts.release, context, f"git+{repo}@{commit}")


def _nearest(version: Version, index: Callable[[], releases.Index] | None) -> str:
    try:
        if index is None:
            raise IndexUnreachable("no index")
        known = [v for v in index().releases if v <= version and not v.is_prerelease]
        if known:
            return str(max(known))
    except IndexUnreachable:
        pass
    return f"{version.base_version} or the one before it"


def find(maker: Maker, store: Store | None = None) -> Env | None:
    """An installed environment of the maker's release and context (any name)."""
    for env in Env.all(store):
        m = env.manifest
        if m.jwst_version == maker.version and m.crds_context == maker.context:
            return env
    return None
