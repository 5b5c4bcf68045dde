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

import hashlib
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
from jwenv.releases import Resolved, is_commit, release_data
from jwenv.store import write_text_atomic

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

STRATEGIES = ("ops", "dated", "latest")
# What setup.py files from before PEP 518 import at build time without declaring it
# (jwst's own and its era's sdists: numpy; crds 7.x: astropy). Wheels only (WHEELS_ONLY).
PRE_PEP518_BUILD = ("numpy", "astropy")
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


@lru_cache(maxsize=1)
def known_releases() -> dict[str, dict[str, Any]]:
    """What benchmarks/coverage.py measured per release (envs/coverage.json): healthy or
    not, strategy, Python, Detector1 offline, and why not in one line."""
    import json

    try:
        return json.loads(release_data("coverage.json")).get("releases", {})
    except (OSError, ValueError):
        return {}


def install_site_hooks(env_dir: Path, hooks: list[str]) -> None:
    """Write release-fix site hooks (envs/site_hooks/<name>.py) into an environment's
    site-packages, each loaded at start-up by a one-line .pth file."""
    if not hooks:
        return
    out = subprocess.run([str(env_dir / "bin" / "python"), "-c",
                          "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:  # an OSError: the installer reports it as this attempt's failure
        raise OSError(f"cannot find the environment's site-packages for its site hooks: "
                      f"{(out.stderr.strip().splitlines() or ['python failed'])[-1]}")
    write_site_hooks(Path(out.stdout.strip()), hooks)


def write_site_hooks(site: Path, hooks: list[str]) -> None:
    """Each hook as `_jwenv_<name>.py` with its `.pth`, and the helper they share."""
    (site / "_jwenv_after_import.py").write_text(release_data("site_hooks/_after_import.py"))
    for name in hooks:
        (site / f"_jwenv_{name}.py").write_text(release_data(f"site_hooks/{name}.py"))
        (site / f"_jwenv_{name}.pth").write_text(f"import _jwenv_{name}\n")


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
    build_helpers: tuple[str, ...] = ()
    site_hooks: tuple[str, ...] = ()  # envs/site_hooks/<name>.py, loaded at start-up
    # the release's dependencies are setup.py sdists from before PEP 518 (numpy at build)
    legacy_builds: bool = False
    # {package: {VARIABLE: value}}; "{version}" and "{commit}" (7 hex digits of the
    # release's commit) are filled in when the plan is made
    build_variables: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()

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
            build_helpers=tuple(entry.get("build_helpers", ())),
            site_hooks=tuple(entry.get("site_hooks", ())),
            legacy_builds=bool(entry.get("legacy_builds", False)),
            build_variables=tuple((pkg, tuple(env.items())) for pkg, env
                                  in entry.get("build_variables", {}).items()),
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


@dataclass(frozen=True)
class SourceFacts:
    """What the installer needs to know about a release's own source tree."""

    sdp: str | None = None  # requirements-sdp.txt
    has_pyproject: bool = True  # False: a setup.py from before PEP 518
    git_pins: tuple[tuple[str, str, str], ...] = ()  # (package, repository URL, commit)
    commit: str = ""  # the commit the ref names (git sources)
    declared: tuple[str, ...] = ()  # names in setup.py's install_requires (git sources)

    def to_json(self) -> str:
        import json

        return json.dumps({"sdp": self.sdp, "has_pyproject": self.has_pyproject,
                           "git_pins": [list(p) for p in self.git_pins], "commit": self.commit,
                           "declared": list(self.declared)})

    @classmethod
    def from_json(cls, text: str) -> SourceFacts:
        import json

        d = json.loads(text)
        return cls(d.get("sdp"), d.get("has_pyproject", True),
                   tuple(tuple(p) for p in d.get("git_pins", [])), d.get("commit", ""),
                   tuple(d.get("declared", [])))


def declared_names(setup_py: str) -> tuple[str, ...]:
    """Package names in a setup.py's `install_requires=[...]` (best effort, no execution)."""
    m = re.search(r"install_requires\s*=\s*\[(.*?)\]", setup_py, re.S)
    if not m:
        return ()
    names = (req_name(q) for q in re.findall(r"['\"]([^'\"]+)['\"]", m.group(1)))
    return tuple(dict.fromkeys(n for n in names if n))


# `asdf @ git+https://github.com/spacetelescope/asdf@c1373db9...` in setup.py/setup.cfg
_GIT_PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*@\s*git\+([^\s'\"@]+)@([0-9a-fA-F]{7,40})")


def git_pins(text: str) -> tuple[tuple[str, str, str], ...]:
    """Requirements pinned to a git commit in a setup.py, setup.cfg or pyproject text."""
    seen: dict[str, tuple[str, str, str]] = {}
    for name, url, commit in _GIT_PIN.findall(text):
        seen.setdefault(canonicalize_name(name), (name, url, commit))
    return tuple(seen.values())


def fetch_source(resolved: Resolved, cache_dir: Path) -> SourceFacts:
    """The release's source facts, from its PyPI sdist or its git ref (cached)."""
    if resolved.version is None:
        return SourceFacts()
    # keyed by where the source comes from too: a fork's tag is not upstream's
    origin = f"{resolved.source}|{resolved.git_repo or ''}|{resolved.git_ref or ''}"
    key = hashlib.sha256(origin.encode()).hexdigest()[:12]
    cached = cache_dir / "source" / f"{resolved.version}-{key}.json"
    if cached.is_file():
        try:
            return SourceFacts.from_json(cached.read_text())
        except ValueError:
            pass
    if resolved.source == "pypi":
        facts = SourceFacts(sdp=_sdp_from_pypi(resolved.version, cache_dir / "jwst.json"))
    elif resolved.source == "git" and resolved.git_repo:
        facts = _facts_from_git(resolved.git_repo, resolved.git_ref)
    else:
        return SourceFacts()
    cached.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(cached, facts.to_json())
    return facts


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


def _facts_from_git(repo: str, ref: str | None) -> SourceFacts:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["git", "clone", "--quiet", "--no-checkout"]
        if ref and not is_commit(ref):  # a tag or branch: one commit is enough
            cmd += ["--depth", "1", "--branch", ref]
        out = subprocess.run([*cmd, repo, tmp], capture_output=True, text=True, check=False)
        if out.returncode != 0:  # not "no sdp file": don't remember it as one
            raise OSError(f"git clone {repo} failed: {out.stderr.strip()[-200:]}")
        rev = ref if is_commit(ref) else "HEAD"

        def show(path: str) -> str | None:
            got = subprocess.run(["git", "-C", tmp, "show", f"{rev}:{path}"],
                                 capture_output=True, text=True, check=False)
            return got.stdout if got.returncode == 0 else None

        found = subprocess.run(["git", "-C", tmp, "rev-parse", f"{rev}^{{commit}}"],
                               capture_output=True, text=True, check=False)
        if found.returncode != 0:  # a commit the repository lacks: nothing to remember
            raise OSError(f"{repo} has no commit {rev}")
        commit = found.stdout.strip()
        pyproject, setup_py = show("pyproject.toml"), show("setup.py") or ""
        declared = "\n".join(t for t in (setup_py, show("setup.cfg"), pyproject) if t)
        return SourceFacts(sdp=show("requirements-sdp.txt"), has_pyproject=pyproject is not None,
                           git_pins=git_pins(declared), commit=commit,
                           declared=declared_names(setup_py))


@dataclass(frozen=True)
class PinChoice:
    """What a requirement pinned to a git commit becomes (an override), and why."""

    name: str
    override: str | None  # None: nothing reachable stands in for it
    note: str


def resolve_git_pins(pins: tuple[tuple[str, str, str], ...], when: datetime | None,
                     cache_dir: Path) -> list[PinChoice]:
    """A requirement pinned to a git commit that cannot be reached (GitHub, here) becomes
    the commit from a configured mirror that has it (JWENV_GIT_MIRRORS=<dir>, holding
    `<dir>/<repository name>`), else the PyPI release of that package that was current on
    the jwst release's date."""
    import os

    choices = []
    mirrors = os.environ.get(GIT_MIRRORS_VAR)
    for name, url, commit in pins:
        short = f"{name} @ git+{url}@{commit[:7]}"
        mirror = _mirror_with(Path(mirrors), url, commit) if mirrors else None
        if mirror is not None:
            choices.append(PinChoice(name, f"{name} @ git+{mirror.as_uri()}@{commit}",
                                     f"{short}: commit {commit[:7]} from the mirror {mirror}"))
            continue
        if when is None:
            choices.append(PinChoice(name, None, f"{short} is pinned to a git commit and the "
                                                 "release date is unknown"))
            continue
        found = _pypi_release_at(name, when, cache_dir)
        if found is None:
            choices.append(PinChoice(name, None, f"{short} is pinned to a git commit and no "
                                                 f"PyPI release of {name} predates "
                                                 f"{when.date()} (or PyPI is unreachable)"))
        else:
            choices.append(PinChoice(name, f"{name}=={found}",
                                     f"{short} is pinned to a git commit: using {name} {found},"
                                     f" the PyPI release current on {when.date()}"))
    return choices


GIT_MIRRORS_VAR = "JWENV_GIT_MIRRORS"


def _mirror_with(root: Path, url: str, commit: str) -> Path | None:
    name = url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    for candidate in (root / name, root / f"{name}.git"):
        if candidate.is_dir() and subprocess.run(
                ["git", "-C", str(candidate), "cat-file", "-e", f"{commit}^{{commit}}"],
                capture_output=True, check=False).returncode == 0:
            return candidate.resolve()
    return None


def _pypi_release_at(name: str, when: datetime, cache_dir: Path) -> str | None:
    """The newest final, unyanked release of `name` first uploaded on or before `when`."""
    import json
    import os
    import urllib.request

    from jwenv.releases import DEFAULT_PYPI_URL, PYPI_URL_VAR

    base = os.environ.get(PYPI_URL_VAR, DEFAULT_PYPI_URL).rsplit("/jwst/json", 1)[0]
    cached = cache_dir / "pypi" / f"{canonicalize_name(name)}.json"
    try:
        data = json.loads(cached.read_text())
    except (OSError, ValueError):  # not cached yet, or unreadable: fetch it again
        try:
            with urllib.request.urlopen(f"{base}/{name}/json", timeout=30) as resp:
                raw = resp.read().decode()
            data = json.loads(raw)
        except (OSError, ValueError):
            return None
        cached.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(cached, raw)
    best: tuple[Version, str] | None = None
    for ver, files in data.get("releases", {}).items():
        uploads = [f["upload_time_iso_8601"] for f in files if f.get("upload_time_iso_8601")]
        try:
            v = Version(ver)
        except ValueError:
            continue
        if not uploads or v.is_prerelease or all(f.get("yanked") for f in files):
            continue
        if _as_utc(min(uploads)) <= when and (best is None or v > best[0]):
            best = (v, ver)
    return best[1] if best else None


@dataclass(frozen=True)
class DmsEnvironment:
    """What DMS ran for a release that declares no dependencies of its own (envs/
    dms-environments.toml, made from the public astroconda-releases specs)."""

    version: str
    spec: str
    source: str
    pythons: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()
    exclude_newer_package: tuple[tuple[str, str], ...] = ()


@lru_cache(maxsize=4)
def dms_environments(path: Path | None = None) -> dict[str, DmsEnvironment]:
    text = path.read_text() if path else release_data("dms-environments.toml")
    data: dict[str, Any] = tomllib.loads(text)
    return {ver: DmsEnvironment(
        version=ver, spec=entry.get("spec", ""), source=entry.get("source", ""),
        pythons=tuple(entry.get("pythons", ())),
        requirements=tuple(entry.get("requirements", ())),
        exclude_newer_package=tuple(entry.get("exclude_newer_package", {}).items()),
    ) for ver, entry in data.get("release", {}).items()}


def _widen(p: InstallPlan, pkg: str, when: str) -> None:
    """A later cut-off for one package, never an earlier one."""
    if p.exclude_newer is not None and _as_utc(when) > p.exclude_newer:
        old = p.exclude_newer_packages.get(pkg)
        if old is None or _as_utc(when) > _as_utc(old):
            p.exclude_newer_packages[pkg] = when


def plan(strategy: str, resolved: Resolved, *, release_date: datetime | None,
         sdp_text: str | None, fixes: Fixes | None = None, source: SourceFacts | None = None,
         pins: list[PinChoice] | None = None,
         environments: dict[str, DmsEnvironment] | None = None) -> InstallPlan | str:
    """The install plan for one strategy, or a string saying why it does not apply.

    `source`: facts about the release's own tree (before PEP 518? its commit); `pins`:
    what its git-commit requirements become (`resolve_git_pins`); `environments`: what
    DMS ran for releases that declare no dependencies (default: envs/dms-environments.toml).
    """
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
        dms = (environments if environments is not None else dms_environments()).get(
            version or "")
        if dms is not None and dms.requirements:
            # It declares no dependencies: take what DMS ran (its pins as requirements);
            # builds get numpy and astropy no newer than those (see below).
            p.requirements += list(dms.requirements)
            p.build_constraints += [c.replace("==", "<=", 1) for c in dms.requirements
                                    if req_name(c) in PRE_PEP518_BUILD and "==" in c]
            p.pythons = list(dms.pythons)
            for pkg, when in dms.exclude_newer_package:
                _widen(p, pkg, when)
            p.notes.append(f"dms-environment: {dms.spec}")
    legacy = [f for f in fixes.fixes if f.legacy_builds and f.applies(strategy, version)]
    if (source is not None and not source.has_pyproject) or legacy:
        # A setup.py from before PEP 518 imports numpy (crds's: astropy) without declaring
        # it: as in its era, jwst, what it declares and every package this plan names build
        # with them present (no newer than the plan's own, by -b). jwst's own tree tells; a
        # fix says when its era's dependencies are such sdists too.
        names = [n for n in (req_name(r) for r in [
            *p.requirements, *p.constraints, *(source.declared if source else ())])
            if n and n not in {*PRE_PEP518_BUILD, "setuptools", "pytest"}]
        p.build_requirements = {n: list(PRE_PEP518_BUILD)
                                for n in dict.fromkeys(["jwst", *names])}
    for choice in pins or []:
        if choice.override:
            p.overrides.append(choice.override)
        p.notes.append(choice.note)
    for fix in fixes.fixes:
        if not fix.applies(strategy, version):
            continue
        filled = _fill(fix.build_variables, version, source.commit if source else "")
        if filled is None:
            continue  # it needs the release's commit, which is unknown: not applicable
        p.requirements += fix.requirements
        p.build_constraints += fix.build_constraints
        p.build_helpers += [h for h in fix.build_helpers if h not in p.build_helpers]
        p.site_hooks += [h for h in fix.site_hooks if h not in p.site_hooks]
        if fix.drop_constraints:
            dropped = {canonicalize_name(n) for n in fix.drop_constraints}
            p.constraints = [c for c in p.constraints if req_name(c) not in dropped]
        # A fix's constraint on a package overrides the sdp pin of the same package.
        for c in fix.constraints:
            p.constraints = [x for x in p.constraints if req_name(x) != req_name(c)] + [c]
        for pkg, when in fix.exclude_newer_package:
            # Only ever a *later* cut-off: for a release newer than the fix's date the
            # release's own cut-off already lets the package through.
            _widen(p, pkg, when)
        for pkg, env in filled.items():
            p.build_variables.setdefault(pkg, {}).update(env)
        p.notes.append(fix.id)
    return p


def _fill(variables: tuple[tuple[str, tuple[tuple[str, str], ...]], ...], version: str | None,
          commit: str) -> dict[str, dict[str, str]] | None:
    out: dict[str, dict[str, str]] = {}
    for pkg, env in variables:
        for key, value in env:
            if ("{commit}" in value and not commit) or ("{version}" in value and not version):
                return None
            out.setdefault(pkg, {})[key] = value.replace("{commit}", commit[:7]).replace(
                "{version}", version or "")
    return out


# What stopped an install, named from the attempts' messages and installer logs: the
# families of old-release failures (docs/strategies.md). First match wins.
FAMILIES = (
    (r"github\.com/[\w.-]+/relic|No module named '?relic",
     "setup.py needs relic (a version helper) at build time and clones it from GitHub"),
    (r"Numpy is required to build|No module named '?numpy'?\W.*(setup\.py|build)"
     r"|setup\.py.*No module named '?numpy",
     "setup.py imports numpy at build time without declaring it (a source from before PEP 518)"),
    (r"setuptools>=40\.8\.0",
     "the legacy build's setuptools>=40.8.0 is newer than the release's date cut-off"),
    (r"__version_commit__",
     "the tag's jwst/__init__.py misspells __version_commit__, so jwst.stpipe cannot import "
     "(a tag broken as tagged: a release fix in envs/fixes.toml, or the next release)"),
    (r"git\+https?://\S*@[0-9a-f]{7,40}|Git operation failed|failed to clone"
     r"|Failed to fetch:? \S*git",
     "a dependency is pinned to a git commit whose repository cannot be reached"),
    (r"easy_install|setup_requires|Download error on https?://pypi\.python\.org",
     "a dependency's setup.py fetches its build requirements with easy_install "
     "(setup_requires), which cannot reach the index"),
    (r"import (?:jwst|pipelines): \w*Error: No module named '?(\w+\.[\w.]+)",
     "a dependency is older than the release needs (no module {0}): a stand-in for a "
     "development snapshot DMS ran, or a date cut-off too early"),
    (r"import (?:jwst|pipelines): \w*Error: No module named '?(\w+)",
     "jwst imports {0}, which the environment lacks: the release does not declare it "
     "(such releases take what DMS ran from envs/dms-environments.toml)"),
    (r"no Python \(.*\) resolves in a dry run",
     "no Python on this machine resolves the release's dependencies as wheels"),
)


def failure_family(attempts: list[Any]) -> str:
    """The family of a failed install, from its attempts (`detail`, kept `log`); ''."""
    texts = []
    for a in attempts:
        detail = getattr(a, "detail", "") or ""
        if detail.startswith("not applicable"):
            continue
        texts.append(detail)
        log = getattr(a, "log", "") or ""
        if log and Path(log).is_file():
            texts.append(Path(log).read_text(errors="replace")[-200_000:])
    text = "\n".join(texts)
    for pattern, says in FAMILIES:
        m = re.search(pattern, text, re.IGNORECASE)
        if m:
            return says.format(*m.groups())
    return ""
