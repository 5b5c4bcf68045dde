"""Write envs/dms-environments.toml: what DMS ran for jwst releases that declare no
dependencies of their own (0.7.7-0.12.3), as PyPI requirements.

    git clone -q ../shared/jwst-git/jwst-dms.bundle /tmp/dms/jwst
    python benchmarks/dms_environments.py --astroconda <clone of astroconda/astroconda-releases> \
        --jwst /tmp/dms/jwst

Their setup.py lists only `namedlist`; the real dependencies came from conda, and STScI
published the explicit conda specs DMS installed (astroconda/astroconda-releases,
`jwstdp/<release>/`). For each release this takes the linux spec DMS's `latest-linux`
names (its default), keeps the packages that jwst's own code imports at that tag (tests
excluded), maps conda names to PyPI names, and pins each:

- a version that is on PyPI: that version;
- a dev snapshot (`gwcs-0.10a.dev33+g9c7d371`, `astropy-4.0.0.dev11501`) or a version that
  never reached PyPI: the PyPI release nearest by date to the jwst release;
- when the pinned version's files (wheels built later) were uploaded after the release
  date, a later cut-off for that package alone (the pin keeps its version).

A DMS row without a tag (0.9.3) records the commit its spec names (`jwst-...+g<commit>`).
The output is release data (each entry names its spec and source); jwenv never computes it
at install time. Looks up each package once in PyPI's JSON API (cached in --cache).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urljoin

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from jwenv.releases import load_index

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "envs" / "dms-environments.toml"
SPEC_URL = "https://github.com/astroconda/astroconda-releases/blob/{commit}/{path}"
# Folders that are not named after the release. 0.9.0's spec is in 0.9.x; 0.8.0 (B7.1,
# tagged 2017-11-06) was delivered as the 0.7.8 release candidates, rc7 on the tag's date.
FOLDERS = {"0.9.0": ("jwstdp/0.9.x", "jwst-0.9.0-"), "0.8.0": ("jwstdp/0.7.8", "jwstdp-0.7.8rc7-"),
           "0.9.3": ("jwstdp/0.9.3", "jwstdp-0.9.3rc1-")}
CONDA_TO_PYPI = {"msgpack-python": "msgpack", "dask-core": "dask", "pytables": "tables"}
NOT_PYPI = {"python", "numpy-base", "mkl", "blas", "jwst", "yaml"}  # yaml: libyaml (C)
# Imported by jwst only in developer and ingest tools, never by a pipeline step.
TOOLING = {"pytest", "pymssql", "ci-watson", "pandokia", "docutils", "matplotlib",
           "setuptools", "requests", "pytest-doctestplus"}
IMPORT_NAMES = {"pyyaml": "yaml", "scikit-image": "skimage", "python-dateutil": "dateutil",
                "pywavelets": "pywt", "scikit-learn": "sklearn", "pillow": "PIL"}
_SPEC = re.compile(r"-linux-py(\d)(\d+)\.(\w+)\.txt$")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True).stdout


def pick_spec(repo: Path, version: str) -> tuple[str, list[str]]:
    """(path of DMS's default spec, every Python DMS built the release for)."""
    folder, prefix = FOLDERS.get(version, (f"jwstdp/{version}", f"jwstdp-{version}-"))
    paths = git(repo, "ls-tree", "-r", "--name-only", "HEAD", folder).split()
    best: dict[str, tuple[tuple[int, str], str]] = {}
    for path in paths:
        name = path.rsplit("/", 1)[-1]
        m = _SPEC.search(name)
        if not m or not name.startswith(prefix):
            continue
        minor = f"{m.group(1)}.{m.group(2)}"
        rank = (1, "") if m.group(3) == "final" else (0, m.group(3))  # final beats iterations
        if minor not in best or rank > best[minor][0]:
            best[minor] = (rank, path)
    if not best:
        raise SystemExit(f"no linux spec for {version} in {folder}")
    pythons = sorted(best, key=Version)
    # DMS's own default: the spec `latest-linux` names (or, for another release in the
    # folder, the same Python's); else the newest Python's
    latest = subprocess.run(["git", "-C", str(repo), "show", f"HEAD:{folder}/latest-linux"],
                            capture_output=True, text=True, check=False).stdout.strip()
    if f"{folder}/{latest}" in paths and latest.rsplit("/", 1)[-1].startswith(prefix):
        return f"{folder}/{latest}", pythons
    m = _SPEC.search(latest)
    minor = f"{m.group(1)}.{m.group(2)}" if m else pythons[-1]
    return best.get(minor, best[pythons[-1]])[1], pythons


def spec_packages(text: str) -> dict[str, str]:
    """{PyPI name: conda version} of an explicit conda spec."""
    out = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith(("#", "@")):
            continue
        base = line.rsplit("/", 1)[-1].removesuffix(".tar.bz2")
        name, version, _build = base.rsplit("-", 2)
        if name in NOT_PYPI:
            continue
        out[canonicalize_name(CONDA_TO_PYPI.get(name, name))] = version
    return out


def imported(jwst: Path, ref: str) -> dict[str, set[str]]:
    """{module: names imported from it} over jwst's own code at `ref` (tests excluded)."""
    import ast
    import io

    tar = subprocess.run(["git", "-C", str(jwst), "archive", ref, "jwst"], capture_output=True,
                         check=True).stdout
    found: dict[str, set[str]] = {}
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        for member in t.getmembers():
            if not member.name.endswith(".py") or "/tests/" in member.name \
                    or "/regtest/" in member.name:
                continue
            try:
                tree = ast.parse(t.extractfile(member).read())
            except (SyntaxError, ValueError):  # 0.7.7 still has Python 2 files
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    for alias in node.names:
                        found.setdefault(alias.name, set())
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    found.setdefault(node.module, set()).update(
                        a.name for a in node.names if a.name != "*")
    return found


def needed(pkg: str, mods: set[str]) -> bool:
    if pkg in TOOLING:
        return False
    imp = import_name(pkg)
    return any(m == imp or m.startswith(imp + ".") for m in mods)


def import_name(pkg: str) -> str:
    return IMPORT_NAMES.get(pkg) or (f"stsci.{pkg[6:].replace('-', '_')}" if pkg.startswith(
        "stsci-") else pkg.replace("-", "_"))


def submodules(pkg: str, mods: dict[str, set[str]]) -> dict[str, set[str]]:
    """What jwst imports from `pkg`: {module: names} (`astropy.io.misc.asdf.types`: ...)."""
    imp = import_name(pkg)
    return {m: names for m, names in mods.items() if m == imp or m.startswith(imp + ".")}


def pypi(name: str, cache: Path) -> dict:
    """PyPI's JSON for `name`; {} when PyPI has no such project."""
    path = cache / f"{name}.json"
    if not path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        try:
            with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/json", timeout=60) as r:
                path.write_bytes(r.read())
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise
            path.write_text("{}")
    return json.loads(path.read_text())


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def lacks(files: list[dict], wanted: dict[str, set[str]], cache: Path) -> list[str]:
    """What of `wanted` ({module: names}) a release's sdist (else a wheel) lacks: a module
    file, or a name its module never mentions (`stsci.tools.bitmask.interpret_bit_flags`)."""
    if not wanted:
        return []
    dist = next((f for f in files if f.get("packagetype") == "sdist"), None) or files[0]
    path = cache / "dists" / dist["filename"]
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        url = urljoin("https://pypi.org/simple/", dist["url"])
        with urllib.request.urlopen(url, timeout=300) as r:
            path.write_bytes(r.read())
    texts: dict[str, str] = {}
    if path.name.endswith((".whl", ".egg", ".zip")):  # built ones hold the package at top
        with zipfile.ZipFile(path) as z:
            for n in z.namelist():
                if n.endswith(".py"):
                    texts[n.split("/", 1)[-1] if path.name.endswith(".zip") else n] = \
                        z.read(n).decode(errors="replace")
    else:
        with tarfile.open(path) as t:
            for m in t.getmembers():
                if m.name.endswith(".py") and m.isfile():
                    texts[m.name.split("/", 1)[-1]] = t.extractfile(m).read().decode(
                        errors="replace")
    def find(base: str) -> str | None:  # at the top, or below lib/ or src/ (old layouts)
        for path, text in texts.items():
            for tail in (f"{base}.py", f"{base}/__init__.py"):
                if path == tail or path.endswith("/" + tail):
                    return text
        return None

    missing = []
    for module, names in sorted(wanted.items()):
        base = module.replace(".", "/")
        source = find(base)
        if source is None:
            missing.append(module)
            continue
        if re.search(r"import \*", source):
            continue  # names re-exported from submodules: not checkable by reading
        missing += [f"{module}.{n}" for n in sorted(names) if find(f"{base}/{n}") is None
                    and not re.search(rf"\b{re.escape(n)}\b", source)]
    return missing


def choose(name: str, conda_version: str, when: datetime, cache: Path,
           modules: dict[str, set[str]] | None = None
           ) -> tuple[str, str, datetime] | None:
    """(PyPI version, how it was chosen, upload time of its last file); None: not on PyPI."""
    releases = {v: fs for v, fs in pypi(name, cache).get("releases", {}).items() if fs}
    if not releases:
        return None
    wanted = conda_version.lstrip("v")
    for v, files in releases.items():
        try:
            if Version(v) == Version(wanted) and not Version(wanted).local:
                last = max(_utc(f["upload_time_iso_8601"]) for f in files)
                return v, "as in the spec", last
        except InvalidVersion:
            continue
    finals = []
    for v, files in releases.items():
        try:
            if Version(v).is_prerelease or all(f.get("yanked") for f in files):
                continue
        except InvalidVersion:
            continue
        finals.append((min(_utc(f["upload_time_iso_8601"]) for f in files), Version(v), v, files))
    # Mainline releases only: a bug-fix release of an older line (astropy 2.0.9 LTS, uploaded
    # with 3.0.5) is no stand-in for a snapshot of the development branch. Ties: the newer.
    modules = modules or {}
    finals.sort(key=lambda f: (f[0], f[1]))
    mainline, newest = [], None
    for first, ver, v, files in finals:
        if newest is None or ver >= newest:
            mainline.append((first, ver, v, files))
            newest = ver
    # The newest mainline release by the jwst release's date (+1 day), as `dated` resolves:
    # stand-ins from one date stay consistent with each other (gwcs 0.10.0, from after the
    # date, needs an asdf newer than the asdf of the date). None by then: the first after.
    # A release over a year older than the jwst release is no stand-in for its snapshot
    # (STScI put most of its packages on PyPI only in 2018: stsci.imagestats 1.4 is from 2013).
    by_then = [f for f in mainline if f[0] <= when + timedelta(days=1)]
    after = [f for f in mainline if f[0] > when + timedelta(days=1)]
    if by_then and (when - by_then[-1][0] <= timedelta(days=365) or not after):
        pick = len(by_then) - 1
        how = "newest PyPI release by the jwst release date"
    else:
        pick = len(by_then)
        how = "first PyPI release after the jwst release"
    # It must provide the modules jwst imports from it (jwst 0.9.0 imports
    # astropy.io.misc.asdf, new in astropy 3.0): else the next release that does.
    missing = lacks(mainline[pick][3], modules, cache) if pick < len(mainline) else []
    for later_pick in range(pick + 1, len(mainline)) if missing else ():
        if mainline[later_pick][0] > when + timedelta(days=365):
            break
        if not lacks(mainline[later_pick][3], modules, cache):
            how = f"the first release after the jwst release with {', '.join(missing)}"
            pick = later_pick
            break
    first, _, v, files = mainline[pick]
    last = max(_utc(f["upload_time_iso_8601"]) for f in files)
    return v, f"{conda_version} -> {v} ({how}, {first.date()})", last


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--astroconda", type=Path, required=True,
                    help="a git clone of astroconda/astroconda-releases")
    ap.add_argument("--jwst", type=Path, required=True, help="a jwst git clone with the tags")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/dms-environments-pypi"))
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)

    index = load_index(args.cache / "index")
    commit = git(args.astroconda, "rev-parse", "HEAD").strip()
    tags = set(git(args.jwst, "tag").split())
    rows = [r for r in index.sorted() if not r.on_pypi and r.version <= Version("0.12.99")]
    out = [
        "# What DMS ran for the jwst releases that declare no dependencies of their own",
        "# (setup.py of 0.7.7-0.12.3 lists only `namedlist`). Written by",
        "# benchmarks/dms_environments.py from the public conda specs DMS installed",
        "# (astroconda/astroconda-releases, jwstdp/<release>/), the linux spec `latest-linux`",
        "# names (DMS's default). Kept: the packages jwst's own code imports at the",
        "# tag (tests and developer tools excluded), as PyPI names. Pinned: the spec's version",
        "# where PyPI has it; a dev snapshot, or a version PyPI never had, -> the newest mainline",
        "# PyPI release by the jwst release date (what `dated` resolves; stand-ins of one date",
        "# fit each other), the first after it if none is less than a year old (`snapshots`",
        "# says which), or the first after it that has every module jwst imports from the",
        "# package (astropy.io.misc.asdf for 0.9.0). `exclude_newer_package`: the pinned",
        "# version's own files (wheels)",
        "# were uploaded after the release date.",
        "# `pythons`: every Python DMS built the release for. `commit`: a row without a tag.",
        "# Read by jwenv's `dated` strategy (docs/strategies.md).",
        "",
    ]
    for row in rows:
        version = str(row.version)
        when = row.release_date
        if when is None:
            continue
        path, pythons = pick_spec(args.astroconda, version)
        spec = spec_packages(git(args.astroconda, "show", f"HEAD:{path}"))
        text = git(args.astroconda, "show", f"HEAD:{path}")
        jwst_line = next((ln for ln in text.splitlines() if re.search(r"/jwst-\d", ln)), "")
        m = re.search(r"\+g([0-9a-f]{7,40})", jwst_line)
        ref = version
        if version not in tags:  # imports of the nearest earlier tag
            ref = max((t for t in tags if Version(t) < row.version), key=Version)
        mods = imported(args.jwst, ref)
        pins, snapshots, later, missing = [], {}, {}, []
        for name, cv in sorted(spec.items()):
            if not needed(name, mods) and name != "numpy":
                continue
            chosen = choose(name, cv, when, args.cache, submodules(name, mods))
            if chosen is None:
                missing.append(f"{name}-{cv}")
                continue
            v, how, last = chosen
            pins.append(f"{name}=={v}")
            if how != "as in the spec":
                snapshots[name] = how
            if last > when + timedelta(days=1):
                later[name] = (last + timedelta(days=1)).date().isoformat()
        out.append(f'[release."{version}"]')
        out.append(f'spec = "{path}"')
        out.append(f'source = "{SPEC_URL.format(commit=commit[:12], path=path)}"')
        out.append(f"pythons = {json.dumps(pythons)}")
        if version not in tags and m:
            built = jwst_line.rsplit("/", 1)[-1]
            out.append(f'commit = "{m.group(1)}"  # no tag: DMS built {built}')
        out.append("requirements = [" + ", ".join(json.dumps(p) for p in pins) + "]")
        if later:
            out.append("exclude_newer_package = { " + ", ".join(
                f'"{k}" = "{v}"' for k, v in sorted(later.items())) + " }")
        if missing:
            out.append(f"not_on_pypi = {json.dumps(missing)}")
        if snapshots:
            out.append("snapshots = { " + ", ".join(
                f'"{k}" = {json.dumps(v)}' for k, v in sorted(snapshots.items())) + " }")
        out.append("")
        print(f"{version}: {path} ({', '.join(pythons)}), {len(pins)} pins", file=sys.stderr)
    args.out.write_text("\n".join(out))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
