"""How to pick a working dependency set for a jwst release.

Old releases break against today's packages. Two general strategies make them
work, tried in order until an environment passes the health check:

- ``ops``: the release's own ``requirements-sdp.txt`` (STScI's operational pins)
  as constraints, with build constraints pinning numpy to the sdp's numpy;
- ``dated``: resolve as of the release date (``--exclude-newer``), which also
  dates the isolated build environments;
- ``latest`` (opt-in): no bound at all.

Every plan also names the compiled scientific stack that must come as wheels
(`WHEELS_ONLY`). Everything release-specific is data in the repository's
``envs/fixes.toml``, which the package reads as ``jwenv/data/fixes.toml``
(``src/jwenv/data`` links to ``envs/``, so a checkout and a wheel see one file).
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from jwenv.backends import InstallPlan
from jwenv.errors import BadInput
from jwenv.releases import Resolved

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

STRATEGIES = ("ops", "dated", "latest")
DEFAULT_ORDER = ("ops", "dated")
_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


# The big compiled scientific stack is never built from source, in the dry run, the
# install and the build environments alike. An era's release of each has wheels for the
# Pythons of its era only, and building it here fails (scipy: meson + Fortran + BLAS) or
# takes many minutes (numpy; scikit-image 0.19.3 for 3.11: >6 min on 2 cores; astropy).
# With them wheels-only, the Python-choice dry run rejects an interpreter that would need
# such a build (jwst 1.10's sdp scipy==1.9.1 has no cp311 wheel, 1.9's scikit-image==0.19.3
# neither), and the install gets what the dry run resolved. Small compiled packages
# (drizzle, stsci.image, ...) still build.
WHEELS_ONLY = ("numpy", "scipy", "scikit-image", "astropy")


def release_data(name: str) -> str:
    """A file of release data (`fixes.toml`...), packaged as jwenv/data/."""
    from importlib.resources import files

    return files("jwenv").joinpath("data", name).read_text()


@dataclass(frozen=True)
class Fix:
    id: str
    reason: str
    source: str = ""
    when: str = ""
    strategies: tuple[str, ...] = STRATEGIES
    requirements: tuple[str, ...] = ()
    constraints: tuple[str, ...] = ()
    build_constraints: tuple[str, ...] = ()
    drop_constraints: tuple[str, ...] = ()
    exclude_newer_package: tuple[tuple[str, str], ...] = ()

    def applies(self, strategy: str, version: str | None) -> bool:
        if strategy not in self.strategies:
            return False
        if not self.when:
            return True
        return version is not None and SpecifierSet(self.when).contains(Version(version), True)


@dataclass(frozen=True)
class Fixes:
    default_requirements: tuple[str, ...]
    fixes: tuple[Fix, ...] = field(default_factory=tuple)


@lru_cache(maxsize=4)
def load_fixes(path: Path | None = None) -> Fixes:
    text = path.read_text() if path else release_data("fixes.toml")
    data: dict[str, Any] = tomllib.loads(text)
    fixes = []
    for entry in data.get("fix", []):
        fixes.append(Fix(
            id=entry["id"], reason=entry["reason"], source=entry.get("source", ""),
            when=entry.get("when", ""),
            strategies=tuple(entry.get("strategies", STRATEGIES)),
            requirements=tuple(entry.get("requirements", ())),
            constraints=tuple(entry.get("constraints", ())),
            build_constraints=tuple(entry.get("build_constraints", ())),
            drop_constraints=tuple(entry.get("drop_constraints", ())),
            exclude_newer_package=tuple(entry.get("exclude_newer_package", {}).items()),
        ))
    return Fixes(tuple(data.get("defaults", {}).get("requirements", ())), tuple(fixes))


def validate_order(value: str | None) -> tuple[str, ...]:
    if value is None:
        return DEFAULT_ORDER
    order = tuple(s.strip() for s in value.split(",") if s.strip())
    bad = [s for s in order if s not in STRATEGIES]
    if bad or not order:
        raise BadInput(f"unknown --deps {value!r}: use {', '.join(STRATEGIES)} "
                       "(or a comma-separated order)")
    return order


def req_name(line: str) -> str | None:
    m = _REQ_NAME.match(line)
    return canonicalize_name(m.group(1)) if m else None


def sdp_constraints(text: str) -> list[str]:
    """Pins from requirements-sdp.txt usable as constraints (no jwst, no options)."""
    out = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-") or "://" in line:
            continue
        if req_name(line) == "jwst":
            continue
        out.append(line)
    return out


def numpy_build_ceiling(constraints: list[str]) -> list[str]:
    """Build constraints from the sdp's numpy pin: `numpy==X` becomes `numpy<=X`.

    A C extension must be built against a numpy no newer than the one it runs
    with ("compiled against API version 0x10" otherwise), but older is fine (numpy's
    ABI is forward compatible). An exact pin is too strict: sdists that build
    against `oldest-supported-numpy` (stsci.imagestats 1.6.3, ...) ask for the
    oldest numpy with wheels for the interpreter, e.g. numpy==1.17.3 on 3.8, and an
    exact `numpy==1.18.1` makes that build unsatisfiable.
    """
    out = []
    for c in constraints:
        if req_name(c) != "numpy":
            continue
        m = re.match(r"^\s*numpy\s*===?\s*([^\s;,]+)\s*(;.*)?$", c, re.IGNORECASE)
        out.append(f"numpy<={m.group(1)}{(' ' + m.group(2)) if m.group(2) else ''}" if m else c)
    return out


def _as_utc(when: str) -> datetime:
    dt = datetime.fromisoformat(when.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def fetch_sdp(resolved: Resolved, cache_dir: Path) -> str | None:
    """The release's requirements-sdp.txt, from its PyPI sdist or its git tag; None if absent."""
    if resolved.version is None:
        return None
    cached = cache_dir / "sdp" / f"{resolved.version}.txt"
    missing = cached.with_suffix(".none")
    if cached.is_file():
        return cached.read_text()
    if missing.is_file():
        return None
    text = None
    if resolved.source == "pypi":
        text = _sdp_from_pypi(resolved.version, cache_dir / "jwst.json")
    elif resolved.source == "git" and resolved.git_repo:
        text = _sdp_from_git(resolved.git_repo, resolved.git_ref)
    cached.parent.mkdir(parents=True, exist_ok=True)
    if text is None:
        missing.touch()
    else:
        cached.write_text(text)
    return text


def _sdp_from_pypi(version: str, index_json: Path) -> str | None:
    import io
    import json
    import tarfile
    import urllib.request

    files = json.loads(index_json.read_text())["releases"].get(version, [])
    sdists = [f for f in files if f.get("packagetype") == "sdist"]
    if not sdists:
        return None
    with urllib.request.urlopen(sdists[0]["url"], timeout=300) as resp:
        blob = resp.read()
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        for member in tar.getmembers():
            if member.name.count("/") == 1 and member.name.endswith("/requirements-sdp.txt"):
                fh = tar.extractfile(member)
                return fh.read().decode() if fh else None
    return None


def _sdp_from_git(repo: str, ref: str | None) -> str | None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["git", "clone", "--quiet", "--depth", "1", "--no-checkout"]
        if ref:
            cmd += ["--branch", ref]
        out = subprocess.run([*cmd, repo, tmp], capture_output=True, text=True, check=False)
        if out.returncode != 0:  # not "no sdp file": don't remember it as one
            raise OSError(f"git clone {repo} failed: {out.stderr.strip()[-200:]}")
        show = subprocess.run(["git", "-C", tmp, "show", "HEAD:requirements-sdp.txt"],
                              capture_output=True, text=True, check=False)
        return show.stdout if show.returncode == 0 else None


def plan(strategy: str, resolved: Resolved, *, release_date: datetime | None,
         sdp_text: str | None, fixes: Fixes | None = None) -> InstallPlan | str:
    """The install plan for one strategy, or a string saying why it does not apply."""
    fixes = fixes or load_fixes()
    version = resolved.version
    # The era's setuptools and pytest are what old releases lack; `latest` is plain.
    extra = list(fixes.default_requirements) if strategy != "latest" else []
    p = InstallPlan(strategy=strategy, requirements=[resolved.requirement, *extra],
                    only_binary=list(WHEELS_ONLY))
    if strategy == "ops":
        if not sdp_text:
            return "the release ships no requirements-sdp.txt"
        p.constraints = sdp_constraints(sdp_text)
        p.build_constraints = numpy_build_ceiling(p.constraints)
    elif strategy == "dated":
        if release_date is None:
            return "the release date is unknown"
        # A day of slack: the release's own dependencies went up the same day.
        p.exclude_newer = release_date + timedelta(days=1)
    for fix in fixes.fixes:
        if not fix.applies(strategy, version):
            continue
        p.requirements += fix.requirements
        p.build_constraints += fix.build_constraints
        if fix.drop_constraints:
            dropped = {canonicalize_name(n) for n in fix.drop_constraints}
            p.constraints = [c for c in p.constraints if req_name(c) not in dropped]
        # A fix's constraint on a package overrides the sdp pin of the same package.
        for c in fix.constraints:
            p.constraints = [x for x in p.constraints if req_name(x) != req_name(c)] + [c]
        for pkg, when in fix.exclude_newer_package:
            # Only ever a *later* cut-off: for a release newer than the fix's date the
            # release's own cut-off already lets the package through.
            if p.exclude_newer is not None and _as_utc(when) > p.exclude_newer:
                p.exclude_newer_packages[pkg] = when
        p.notes.append(fix.id)
    return p
