"""What jwst releases exist, where each comes from, and what a request means.

Facts come from two public places, never from a table inside jwenv:
- PyPI's JSON API for jwst: the releases on PyPI, upload times, Requires-Python;
- the "DMS Operational Build Versions" table of jwst's README, which ships as
  the newest release's PyPI description: DMS build, SDP version, the CRDS
  context STScI paired with each release, and the releases that exist only as
  git tags (0.9.0-0.16.2, 1.13.0-1.13.3).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from jwenv.errors import BadInput, IndexUnreachable, UnknownVersion

PYPI_URL_VAR = "JWENV_PYPI_URL"
GIT_REPO_VAR = "JWENV_JWST_GIT"
DEFAULT_PYPI_URL = "https://pypi.org/pypi/jwst/json"
DEFAULT_GIT_REPO = "https://github.com/spacetelescope/jwst"
# What a data product's name ends with: `install x_rate.fits` means `install --like`.
PRODUCT_SUFFIXES = (".fits", ".fits.gz", ".fit", ".asdf")
INDEX_TTL_S = 3600


@dataclass(frozen=True)
class DmsRow:
    """One row of the DMS Operational Build Versions table."""

    version: str
    dms_build: str
    sdp_version: str
    context: str  # "jwst_NNNN.pmap" or "" when the row has none
    released: str  # YYYY-MM-DD or ""
    notes: str


@dataclass(frozen=True)
class Release:
    version: Version
    on_pypi: bool
    upload_time: datetime | None = None
    requires_python: str | None = None
    yanked: bool = False
    dms: DmsRow | None = None

    @property
    def release_date(self) -> datetime | None:
        """PyPI upload time; for git-only releases the table's Released date."""
        if self.upload_time:
            return self.upload_time
        if self.dms and self.dms.released:
            return datetime.fromisoformat(self.dms.released).replace(tzinfo=timezone.utc)
        return None


@dataclass
class Index:
    releases: dict[Version, Release] = field(default_factory=dict)

    def sorted(self) -> list[Release]:
        return [self.releases[v] for v in sorted(self.releases)]

    def paired_contexts(self) -> dict[Version, str]:
        """Each release's CRDS context from the DMS table ('' where it names none);
        crds.paired_context picks a release's default pin from these."""
        return {v: r.dms.context if r.dms else "" for v, r in self.releases.items()}


def parse_dms_table(markdown: str) -> dict[str, DmsRow]:
    """Rows of the README table, keyed by version string."""
    rows: dict[str, DmsRow] = {}
    start = markdown.find("DMS Operational Build Versions")
    if start < 0:
        return rows
    header: list[str] | None = None
    for line in markdown[start:].splitlines():
        line = line.strip()
        if not line.startswith("|"):
            if header is not None:
                break
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if header is None:
            header = [c.lower() for c in cells]
            continue
        if set("".join(cells)) <= set("-: "):
            continue
        rec = dict(zip(header, cells, strict=False))
        ver = rec.get("jwst tag", "")
        try:
            Version(ver)
        except InvalidVersion:
            continue
        ctx = rec.get("crds_context", "")
        rows[ver] = DmsRow(
            version=ver,
            dms_build=rec.get("dms build", ""),
            sdp_version=rec.get("sdp_ver", ""),
            context=f"jwst_{int(ctx):04d}.pmap" if ctx.isdigit() else "",
            released=rec.get("released", ""),
            notes=rec.get("notes", ""),
        )
    return rows


def build_index(pypi_json: dict) -> Index:
    """Merge PyPI's release list with the README table of the newest release."""
    table = parse_dms_table(pypi_json.get("info", {}).get("description") or "")
    index = Index()
    for ver, files in pypi_json.get("releases", {}).items():
        try:
            v = Version(ver)
        except InvalidVersion:
            continue
        if not files:
            continue
        uploads = [f["upload_time_iso_8601"] for f in files if f.get("upload_time_iso_8601")]
        upload = min(uploads) if uploads else None
        index.releases[v] = Release(
            version=v,
            on_pypi=True,
            upload_time=datetime.fromisoformat(upload.replace("Z", "+00:00")) if upload else None,
            requires_python=next((f["requires_python"] for f in files if f.get("requires_python")),
                                 None),
            yanked=all(f.get("yanked") for f in files),
            dms=table.get(ver),
        )
    for ver, row in table.items():
        v = Version(ver)
        if v not in index.releases:
            index.releases[v] = Release(version=v, on_pypi=False, dms=row)
    return index


def load_index(cache_dir: Path, *, refresh: bool = False, offline: bool = False) -> Index:
    """PyPI metadata, cached for an hour; a stale cache beats no answer."""
    url = os.environ.get(PYPI_URL_VAR, DEFAULT_PYPI_URL)
    cache = cache_dir / "jwst.json"
    fresh = cache.is_file() and time.time() - cache.stat().st_mtime < INDEX_TTL_S
    if cache.is_file() and (offline or (fresh and not refresh)):
        return _index_from(cache)
    if offline:
        raise IndexUnreachable("no cached jwst release list and --offline was given")
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=20) as resp:
            raw = resp.read()
        data = json.loads(raw)
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        if cache.is_file():
            return _index_from(cache)
        reason = getattr(exc, "reason", exc)
        raise IndexUnreachable(
            f"cannot reach the package index at {url} ({reason}); "
            "installed environments still run"
        ) from exc
    cache_dir.mkdir(parents=True, exist_ok=True)
    from jwenv.store import write_text_atomic  # concurrent installs share this cache

    write_text_atomic(cache, raw.decode())
    return build_index(data)


def _index_from(path: Path) -> Index:
    return build_index(json.loads(path.read_text()))


# --- what the user asked for ------------------------------------------------

@dataclass(frozen=True)
class Resolved:
    """A request turned into something an installer can take."""

    requested: str
    source: str  # "pypi", "git" or "local"
    requirement: str  # PEP 508 requirement for jwst
    version: str | None  # None until a git/local build tells us
    release: Release | None = None
    git_repo: str | None = None
    git_ref: str | None = None
    note: str = ""  # which release a partial version, a specifier or `latest` chose

    @property
    def default_name(self) -> str | None:
        return self.version


def _is_version_or_specifier(spec: str) -> bool:
    try:
        Version(spec)
        return True
    except InvalidVersion:
        pass
    try:
        SpecifierSet(spec)
        return True
    except InvalidSpecifier:
        return False


def is_plain_version(spec: str) -> bool:
    """`1.20.2` but not `~=1.20`, `latest`, a URL or a path."""
    try:
        return str(Version(spec)) == spec
    except InvalidVersion:
        return False


def git_repo() -> str:
    return normalize_repo(os.environ.get(GIT_REPO_VAR, DEFAULT_GIT_REPO))


def normalize_repo(value: str) -> str:
    """A mirror given as a plain directory (`/srv/mirrors/jwst`) means its file:// URL."""
    if "://" in value or re.match(r"^[\w.-]+@[\w.-]+:", value):  # a URL, or user@host:path
        return value
    return Path(value).expanduser().resolve().as_uri()


def release_data(name: str) -> str:
    """A file of release data (`fixes.toml`...), packaged as jwenv/data/ (the repository's
    envs/)."""
    from importlib.resources import files

    return files("jwenv").joinpath("data", *name.split("/")).read_text()


def dms_commit(version: str) -> str:
    """The commit DMS built for a release row that has no tag (release data), or ''."""
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        text = release_data("dms-environments.toml")
    except OSError:
        return ""
    return tomllib.loads(text).get("release", {}).get(version, {}).get("commit", "")


def resolve(spec: str, index_loader, *, allow_prereleases: bool = False) -> Resolved:
    """Turn `latest`, `1.12.5`, `~=1.12.0`, `git+URL@ref` or a directory into a Resolved.

    `index_loader` is called only when the answer needs PyPI, so a local
    directory or a git URL installs with no index at all.
    """
    spec = spec.strip()
    if not spec:
        raise BadInput("empty version: give a release (1.20.2), latest, ~=1.12.0, git+URL@ref "
                       "or a source directory")
    if spec.lower().endswith(PRODUCT_SUFFIXES):
        raise BadInput(f"{spec} is a data product, not a release: to install the release and "
                       f"CRDS context that made it, `jwenv install --like {spec}`")
    if spec.startswith("git+"):
        url, ref = spec[4:], None
        if "@" in url.rsplit("/", 1)[-1]:  # an @ in the last path segment starts the ref
            url, ref = url.rsplit("@", 1)
        if "://" not in url or (not ref and ref is not None):
            raise BadInput(f"malformed git URL {spec!r}: use git+https://host/repo@ref")
        version = None
        if ref:
            try:
                version = str(Version(ref))
            except InvalidVersion:
                version = None
        req = f"jwst @ git+{url}" + (f"@{ref}" if ref else "")
        return Resolved(spec, "git", req, version, git_repo=url, git_ref=ref)
    # A version or specifier wins over a same-named directory in the cwd (`compare -o .`
    # makes folders named after versions); `./1.20.2` still means the directory.
    looks_like_path = spec.startswith(("/", "./", "../", "~/")) or os.sep in spec \
        or spec.endswith(".whl")
    if not looks_like_path and (spec == "latest" or _is_version_or_specifier(spec)
                                or not Path(spec).is_dir()):
        return _resolve_release(spec, index_loader, allow_prereleases)
    path = Path(spec).expanduser()
    if spec.endswith(".whl"):
        if not path.is_file():
            raise BadInput(f"no such wheel: {spec}")
        version = path.name.split("-")[1] if path.name.count("-") >= 4 else None
        path = path.resolve()
        return Resolved(spec, "local", f"jwst @ {path.as_uri()}", version)
    if not path.is_dir():
        raise BadInput(f"no such source directory: {spec}")
    if not any((path / f).is_file() for f in ("pyproject.toml", "setup.py", "setup.cfg")):
        raise BadInput(f"{spec} is not a Python source tree (no pyproject.toml or setup.py)")
    path = path.resolve()
    return Resolved(spec, "local", f"jwst @ {path.as_uri()}", None)


def partial_version(spec: str) -> bool:
    """`1.20` or `1`: fewer than three release numbers and nothing else, meaning the
    newest release of that line (as `uv python install 3.12` does), not 1.20.0."""
    try:
        v = Version(spec)
    except InvalidVersion:
        return False
    return (len(v.release) < 3 and not re.match(r"^[<>=!~]", spec) and v.epoch == 0
            and v.pre is None and v.post is None and v.dev is None and v.local is None)


def _resolve_release(spec: str, index_loader, allow_prereleases: bool) -> Resolved:

    exact = wanted = None
    if partial_version(spec):
        wanted = SpecifierSet(f"=={spec}.*")
    elif spec != "latest":
        try:
            exact = Version(spec) if not re.match(r"^[<>=!~]", spec) else None
        except InvalidVersion:
            exact = None
        if exact is None:
            try:
                wanted = SpecifierSet(spec)
            except InvalidSpecifier:
                raise BadInput(
                    f"malformed version {spec!r}: use a release (1.20.2), latest, a PEP 440 "
                    f"specifier (~=1.12.0), git+URL@ref or a source directory"
                ) from None
    index: Index = index_loader()  # only now: a typo needs no network to be caught
    if exact is not None:
        release = index.releases.get(exact)
        if release is None:
            raise UnknownVersion(_unknown_message(spec, index, exact))
        return _from_release(spec, release)
    if wanted is None:  # latest
        candidates = [r for r in index.sorted() if r.on_pypi and not r.yanked
                      and (allow_prereleases or not r.version.is_prerelease)]
        if not candidates:
            raise UnknownVersion("PyPI lists no jwst release")
        return _from_release(spec, candidates[-1], f"latest is jwst {candidates[-1].version}")
    matches = [r for r in index.sorted()
               if wanted.contains(r.version, prereleases=allow_prereleases) and not r.yanked]
    if not matches:
        raise UnknownVersion(f"no jwst release matches {spec!r}; see `jwenv available`")
    chosen = matches[-1].version
    note = (f"{spec} means the newest {spec}.x: jwst {chosen}" if partial_version(spec)
            else f"{spec} is jwst {chosen}, the newest release that matches")
    return _from_release(spec, matches[-1], note)


def _from_release(spec: str, release: Release, note: str = "") -> Resolved:
    ver = str(release.version)
    if release.on_pypi:
        return Resolved(spec, "pypi", f"jwst=={ver}", ver, release=release, note=note)
    repo = git_repo()
    ref = ver
    commit = dms_commit(ver)
    if commit:  # a DMS row without a tag: the commit DMS built (envs/dms-environments.toml)
        ref = commit
        note = "; ".join(x for x in (note, f"jwst {ver} has no tag: DMS built it from commit "
                                           f"{commit}") if x)
    return Resolved(spec, "git", f"jwst @ git+{repo}@{ref}", ver, release=release,
                    git_repo=repo, git_ref=ref, note=note)


def _unknown_message(spec: str, index: Index, wanted: Version) -> str:
    versions = sorted(index.releases)
    near = sorted(versions, key=lambda v: _distance(v, wanted))[:3]
    near_s = ", ".join(str(v) for v in sorted(near))
    return (f"jwst {spec} is not a known release (nearest: {near_s}); for an unreleased "
            f"commit use git+{git_repo()}@<ref>")


def _distance(a: Version, b: Version) -> tuple[int, ...]:
    ra = ((*a.release, 0, 0, 0))[:3]
    rb = ((*b.release, 0, 0, 0))[:3]
    return tuple(abs(x - y) for x, y in zip(ra, rb, strict=True))


def _local_path(repo: str) -> Path | None:
    target = repo[4:] if repo.startswith("git+") else repo
    if target.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(target).path))
    if "://" not in target and not re.match(r"^[\w.-]+@[\w.-]+:", target):
        return Path(target)
    return None


def _nearest_tags(tags_output: str, version: str | None, n: int = 2) -> list[str]:
    found = []
    for line in tags_output.splitlines():
        name = line.split("refs/tags/", 1)[-1].removesuffix("^{}")
        try:
            found.append(Version(name))
        except InvalidVersion:
            continue
    try:
        want = Version(version or "")
    except InvalidVersion:
        return []
    if not found:
        return []
    below = sorted({v for v in found if v < want})[-1:]
    above = sorted({v for v in found if v > want})[:1]
    return [str(v) for v in (*below, *above)][:n] or [str(v) for v in sorted(
        set(found), key=lambda v: _distance(v, want))[:n]]


def is_commit(ref: str | None) -> bool:
    """A git ref spelled as a (short) commit hash."""
    return bool(ref) and re.fullmatch(r"[0-9a-fA-F]{7,40}", ref or "") is not None


def check_git_ref(repo: str, ref: str | None, timeout: float = 30,
                  version: str | None = None) -> None:
    """Fail in one line, before any build, when the git repository cannot be reached, is
    not a git repository, or lacks the ref (a tag, branch or commit)."""
    local = _local_path(repo)
    target = str(local) if local is not None else repo.removeprefix("git+")
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    if local is not None and local.is_dir():
        inside = subprocess.run(["git", "-C", str(local), "rev-parse", "--git-dir"],
                                capture_output=True, text=True, env=env, check=False)
        if inside.returncode != 0:
            raise BadInput(f"{local} is not a git repository: point {GIT_REPO_VAR} at a jwst "
                           "mirror (a clone of https://github.com/spacetelescope/jwst)")
    cmd = ["git", "ls-remote", target]
    if ref:
        cmd.append(ref)
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise IndexUnreachable(
            f"cannot reach jwst git repository {repo} ({exc.__class__.__name__}); set "
            f"{GIT_REPO_VAR} to a reachable mirror"
        ) from exc
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["git ls-remote failed"])[-1]
        raise IndexUnreachable(
            f"cannot reach jwst git repository {repo} ({last.removeprefix('fatal: ')}); set "
            f"{GIT_REPO_VAR} to a reachable mirror"
        )
    if not ref or out.stdout.strip():
        return
    commit = is_commit(ref)
    if commit and (local is None or subprocess.run(
            ["git", "-C", str(local), "cat-file", "-e", f"{ref}^{{commit}}"],
            capture_output=True, env=env, check=False).returncode == 0):
        return  # a commit: a remote cannot be asked without fetching; a local one has it
    try:
        tags = subprocess.run(["git", "ls-remote", "--tags", target], capture_output=True,
                              text=True, timeout=timeout, env=env, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        tags = ""  # only for naming the nearest tags
    near = _nearest_tags(tags, version or (ref if not commit else None))
    nearest = f" (nearest tags: {', '.join(near)})" if near else ""
    if commit:
        what = f"jwst {version} has no tag: DMS built it from commit {ref}" if version \
            else f"commit {ref}"
        raise BadInput(f"{what}, which {repo} does not have{nearest}")
    raise BadInput(f"{repo} has no tag or branch {ref!r}{nearest}")
