"""Install every jwst release with jwenv and record what it took.

    python benchmarks/coverage.py                      # every release from 0.17.0 on
    python benchmarks/coverage.py --only 1.12.5,1.15.1
    python benchmarks/coverage.py --since 1.10 --jobs 1
    nohup python benchmarks/coverage.py > /tmp/coverage.log 2>&1 &   # long run
    python benchmarks/coverage.py --git-only           # the 36 DMS rows that are git tags only

`--git-only` clones the DMS bundle (../shared/jwst-git/jwst-dms.bundle, every tagged
git-only release) into a plain directory and gives it to jwenv as its jwst repository
(JWENV_JWST_GIT=<directory>, as an air-gapped site's mirror), installs every git-only row
of the DMS table, keeps the healthy environments, then runs Detector1 offline on the
generated exposure under each (files written by the release itself, else by the nearest
newer healthy release that can run the generator; one line why where neither works).

Each release is installed with jwenv's own API (`Env.install`, the same path as
`jwenv install X`) into a throwaway store (--home), checked by jwenv's health
check, then deleted to save disk. Results go to a JSON file after every release
(--results), so an interrupted run resumes where it stopped (releases already in
the file are skipped; --retry-failed re-runs the failures), and docs/coverage.md
is rewritten from that file each time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from packaging.version import Version

from jwenv import Env, InstallOptions
from jwenv.errors import JwenvError
from jwenv.releases import GIT_REPO_VAR, Release, load_index
from jwenv.store import Store

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS = ROOT / "benchmarks" / "coverage-results.json"
DEFAULT_DOC = ROOT / "docs" / "coverage.md"
DEFAULT_HOME = Path(os.environ.get("TMPDIR", "/tmp")) / "jwenv-coverage-home"
DEFAULT_BUNDLE = ROOT.parent / "shared" / "jwst-git" / "jwst-dms.bundle"
KNOWN = ROOT / "envs" / "coverage.json"  # what `jwenv available --all` marks
FIRST = Version("0.17.0")  # the oldest jwst on PyPI
_CREATE = re.compile(r"^(\w+): creating a Python (\S+) environment")
_lock = threading.Lock()


def log(msg: str) -> None:
    stamp = datetime.now().strftime("%H:%M:%S")
    with _lock:
        print(f"[{stamp}] {msg}", flush=True)


def pick(releases: list[Release], only: list[str] | None, since: str | None,
         until: str | None) -> list[Release]:
    if only:
        wanted = {Version(v) for v in only}
        return [r for r in releases if r.version in wanted]
    lo = Version(since) if since else FIRST
    hi = Version(until) if until else None
    return [r for r in releases if r.version >= lo and (hi is None or r.version <= hi)
            and not r.version.is_prerelease]


def split_attempts(message: str) -> list[dict[str, str]]:
    """`could not build ... environment[: family] (ops: why; dated: why)` ->
    [{strategy, detail}, ...]."""
    m = re.search(r"environment(?:: [^(]*)? \((.*)\)\s*$", message, re.S)
    if not m:
        return [{"strategy": "?", "detail": message}]
    out = []
    for part in re.split(r";\s*(?=(?:ops|dated|latest): )", m.group(1)):
        strategy, _, detail = part.partition(": ")
        out.append({"strategy": strategy.strip(), "detail": detail.strip()})
    return out


def classify(detail: str) -> str:
    """A short, honest cause for a failed attempt, from its installer/health message."""
    d = detail.lower()
    if "none is usable here" in d:
        return "no interpreter"
    if "github.com" in d or "relic" in d:
        return "build fetches from GitHub (unreachable here)"
    if "not applicable" in d:
        return detail
    if "health check failed" in d:
        return "health check"
    if "no solution found" in d or "unsatisfiable" in d:
        return "no resolution"
    if "failed to build" in d or "failed to download and build" in d:
        return "sdist build failed"
    return "install failed"


def run_one(release: Release, store: Store, check: str, keep: bool = False
            ) -> dict[str, Any]:
    version = str(release.version)
    python_by_strategy: dict[str, str] = {}

    def progress(event: str, detail: str) -> None:
        if event == "line":
            return
        m = _CREATE.match(detail)
        if m:
            python_by_strategy[m.group(1)] = m.group(2)
        if event in {"create", "check", "done"}:
            log(f"{version}: {detail}")

    rec: dict[str, Any] = {
        "version": version, "release_date": (release.release_date.date().isoformat()
                                             if release.release_date else None),
        "yanked": release.yanked, "requires_python": release.requires_python,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    t0 = time.monotonic()
    try:
        env = Env.install(version, InstallOptions(force=True, check=check), store=store,
                          progress=progress)
    except JwenvError as exc:
        family = re.match(r"could not build a working jwst \S+ environment: ([^(]*) \(", str(exc))
        rec.update(ok=False, seconds=round(time.monotonic() - t0, 1), error=str(exc),
                   family=family.group(1) if family else "",
                   attempts=[{**a, "python": python_by_strategy.get(a["strategy"], ""),
                              "cause": classify(a["detail"])}
                             for a in split_attempts(str(exc))])
        rec["logs"] = sorted(str(p) for p in store.logs_dir.glob(f"{version}-*.log"))
        return rec
    m = env.manifest
    rec.update(
        ok=bool(m.health.get("ok", True)), seconds=round(time.monotonic() - t0, 1),
        python=m.python_version, strategy=m.strategy, python_reason=m.python_reason,
        attempts=m.strategy_log, context=m.crds_context,
        health_seconds=m.health.get("seconds"),
        health=[{"check": c["check"], "ok": c["ok"]} for c in m.health.get("checks", [])],
        key_packages=[p for p in m.packages
                      if re.match(r"^(numpy|astropy|gwcs|stdatamodels|stpipe|crds|asdf|"
                                  r"setuptools|stsci[.-]imagestats)==", p, re.I)],
        size_mb=round(env.size() / 1e6), notes=m.plan.get("notes", []) if m.plan else [],
        source=m.source,
    )
    if not keep:
        env.remove()  # disk: the record is what we keep
    return rec


def detector1(version: str, store: Store, writers: list[str], work: Path,
              tries: int = 3) -> dict[str, Any]:
    """Detector1 offline under `version` on the generated exposure: made by the release
    itself, else by up to `tries` of `writers` (healthy releases, nearest older first,
    whose asdf writes an ASDF Standard old enough) that can run the generator.
    {"ok": bool, "writer": ..., "seconds": ..., "why": one line}."""
    from jwenv import loglines, offline

    env = Env.get(version, store=store)
    why, first_failure, generated = "", None, 0
    for writer in [version, *writers]:
        try:
            made = offline.generate(Env.get(writer, store=store), work / f"program-{writer}",
                                    size=64, seed=0)
        except JwenvError as exc:
            if writer == version:
                why = str(exc).split(": ", 1)[-1]
                if "future feature annotations" in why:
                    why = "the generator needs Python >= 3.7, this release has 3.6"
            continue
        generated += 1
        out, log = work / f"run-{writer}", work / f"detector1-{writer}.log"
        t0 = time.monotonic()
        rc = env.run(["strun", "jwst.pipeline.Detector1Pipeline", str(made.uncal[0]),
                      "--output_dir", str(out)], cache=made.cache, offline=True, log=log)
        seconds = round(time.monotonic() - t0, 1)
        if rc == 0 and list(out.glob("*_rate.fits")):
            return {"ok": True, "writer": writer, "seconds": seconds}
        reason = loglines.reason(loglines.read(log), default=f"exit {rc}")
        if writer != version:
            reason = (f"cannot read inputs written by {writer} ({reason}); its own generator "
                      f"does not run ({why})")
        first_failure = first_failure or {"ok": False, "writer": writer, "seconds": seconds,
                                          "why": reason}
        if writer == version or generated >= tries:
            break
    return first_failure or {"ok": False,
                             "why": f"no release here can write its inputs ({why})"}


def load_results(path: Path) -> dict[str, Any]:
    if path.is_file():
        return json.loads(path.read_text())
    return {"results": {}}


def save_results(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _cell(text: str, n: int = 160) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= n else text[: n - 1] + "…"


def render(data: dict[str, Any], all_releases: list[Release]) -> str:
    on_pypi = {str(r.version) for r in all_releases if r.on_pypi}
    results = {v: r for v, r in data["results"].items() if v in on_pypi}
    rows = sorted(results.values(), key=lambda r: Version(r["version"]), reverse=True)
    passed = [r for r in rows if r.get("ok")]
    by_strategy: dict[str, int] = {}
    for r in passed:
        by_strategy[r["strategy"]] = by_strategy.get(r["strategy"], 0) + 1
    pypi = [r for r in all_releases if r.on_pypi and r.version >= FIRST
            and not r.version.is_prerelease]
    git_only = [r for r in all_releases if not r.on_pypi]
    times = sorted(r["seconds"] for r in passed)
    median = times[len(times) // 2] if times else 0
    meta = data.get("meta", {})
    out = [
        "# jwenv release coverage",
        "",
        "Every jwst release on PyPI installed with `jwenv install <version>` (default strategy "
        "order `ops,dated`, uv backend, full health check: import jwst and the pipelines, "
        "`strun`, and a real GroupScaleStep on a tiny exposure, offline). Generated by "
        "`benchmarks/coverage.py` (results in `benchmarks/coverage-results.json`); see "
        "[strategies.md](strategies.md) for what the strategies do.",
        "",
        f"- Machine: {meta.get('machine', '?')}; uv cache warm for most packages; "
        "one install at a time.",
        f"- Releases on PyPI from {FIRST} on: {len(pypi)}; tried: {len(rows)}; "
        f"**passed: {len(passed)}**; failed: {len(rows) - len(passed)}.",
        "- Winning strategy: " + (", ".join(f"`{k}` {v}" for k, v in sorted(by_strategy.items()))
                                  or "none yet") + f"; median install time {median:.0f} s "
        "(dry runs, build, health check).",
        f"- Not on PyPI (git tags only, {len(git_only)}): see "
        "[below](#git-only-releases-the-dms-rows-that-are-git-tags-only).",
        "",
        "| release | date | Python | strategy | install s | health | notes |",
        "|---|---|---|---|---:|---|---|",
    ]
    for r in rows:
        if r.get("ok"):
            failed = [a for a in r.get("attempts", []) if not a.get("ok")
                      and not str(a.get("detail", "")).startswith("not applicable")]
            notes = "; ".join(f"{a['strategy']} failed first: {_cell(a.get('detail', ''), 120)}"
                              for a in failed)
            pins = ", ".join(p for p in r.get("key_packages", [])
                             if p.lower().startswith(("numpy", "gwcs")))
            notes = "; ".join(x for x in (notes, pins) if x)
            health = "ok"
            out.append(f"| {r['version']}{' (yanked)' if r.get('yanked') else ''} | "
                       f"{r.get('release_date') or ''} | {r.get('python', '')} | "
                       f"{r.get('strategy', '')} | {r['seconds']:.0f} | {health} | "
                       f"{_cell(notes, 220)} |")
        else:
            attempts = r.get("attempts", [])
            pythons = sorted({a.get("python") for a in attempts if a.get("python")})
            notes = "; ".join(f"**{a['strategy']}** ({a.get('cause', '')}): "
                              f"{_cell(a.get('detail', ''), 150)}" for a in attempts)
            out.append(f"| {r['version']}{' (yanked)' if r.get('yanked') else ''} | "
                       f"{r.get('release_date') or ''} | {', '.join(pythons)} | — | "
                       f"{r['seconds']:.0f} | **failed** | {notes} |")
    out.append("")
    out += render_git(data, [r for r in all_releases if not r.on_pypi])
    return "\n".join(out)


def _one_line(r: dict[str, Any]) -> str:
    """Why a row is not healthy, in one line (the install error's family, else its cause)."""
    if r.get("family"):
        return r["family"]
    err = r.get("error", "")
    return err.removeprefix("jwenv: error: ") if err else "?"


def render_git(data: dict[str, Any], git_only: list[Release]) -> list[str]:
    results = data["results"]
    rows = [results.get(str(r.version)) or {"version": str(r.version)} for r in git_only]
    tagged = [r for r in rows if not r.get("untagged")]
    healthy = [r for r in rows if r.get("ok")]
    d1 = [r for r in healthy if (r.get("detector1") or {}).get("ok")]
    meta = data.get("git_meta", {})
    out = [
        "## Git-only releases (the DMS rows that are git tags only)",
        "",
        "Every row of the README's DMS table that is not on PyPI, installed with `jwenv install "
        "<version>` from a plain-directory clone of `../shared/jwst-git/jwst-dms.bundle` "
        "(`JWENV_JWST_GIT=<directory>`, as an air-gapped site's mirror), default strategies, "
        "full health check; then Detector1Pipeline offline (`strun`, the generated 64×64 "
        "NIRCam exposure and its local CRDS cache, no network) under each healthy release. "
        "Generated by `benchmarks/coverage.py --git-only`; what made the old ones work is in "
        "[strategies.md](strategies.md#releases-from-git-before-015).",
        "",
        f"- {meta.get('when', '')}: rows {len(rows)}, tagged {len(tagged)}; **healthy "
        f"{len(healthy)}** ({len([r for r in healthy if r in tagged])} of {len(tagged)} "
        f"tagged); Detector1 offline ran under {len(d1)}.",
        "",
        "| release | date | DMS build | Python | strategy | install s | health | Detector1 "
        "offline | notes |",
        "|---|---|---|---|---|---:|---|---|---|",
    ]
    by_version = {str(r.version): r for r in git_only}
    for r in sorted(rows, key=lambda r: Version(r["version"]), reverse=True):
        rel = by_version[r["version"]]
        date = rel.release_date.date().isoformat() if rel.release_date else ""
        build = rel.dms.dms_build if rel.dms else ""
        if "seconds" not in r:
            out.append(f"| {r['version']} | {date} | {build} | | | | not tried | | |")
            continue
        if r.get("ok"):
            d = r.get("detector1") or {}
            if d.get("ok"):
                det = "ok" + (f" (inputs by {d['writer']})" if d.get("writer") not in
                              (None, r["version"]) else "")
            else:
                det = f"no: {_cell(d.get('why', 'not run'), 200)}" if d else "not run"
            notes = "; ".join(n for n in r.get("notes", []) if " is pinned to a git commit" in n
                              or n.startswith("dms-environment") or n in (
                                  "relic-build-helper", "1.13.0-version-commit-typo",
                                  "asdf-inline-threshold"))
            out.append(f"| {r['version']} | {date} | {build} | {r.get('python', '')} | "
                       f"{r.get('strategy', '')} | {r['seconds']:.0f} | ok | {det} | "
                       f"{_cell(notes, 300)} |")
        else:
            out.append(f"| {r['version']} | {date} | {build} | | — | {r['seconds']:.0f} | "
                       f"**failed** | | {_cell(_one_line(r), 300)} |")
    out += [
        "",
        "Detector1's inputs are written by the release's own datamodels when jwenv's generator "
        "runs under it (Python >= 3.7). The Python 3.6 releases read files written by the "
        "nearest release that can run it (\"inputs by\"), tried nearest older first, since a "
        "release's asdf reads only the ASDF Standard versions it knows. 0.8.0-0.9.2 know 1.0 "
        "and 1.1 only, and every release here that runs the generator writes 1.2 or newer: "
        "they install and pass the health check (which makes its own tiny exposure in-process) "
        "but have no generated program. 0.7.7 needs Python 3.5; 0.9.3 needs its commit in the "
        "mirror (the bundle has tags only).",
        "",
    ]
    return out


def known(data: dict[str, Any]) -> dict[str, Any]:
    """What `jwenv available --all` marks: per release, healthy or not and why (one line)."""
    rows = {}
    for v, r in sorted(data["results"].items(), key=lambda kv: Version(kv[0])):
        if "seconds" not in r:
            continue
        entry: dict[str, Any] = {"ok": bool(r.get("ok"))}
        if r.get("ok"):
            entry.update(strategy=r.get("strategy", ""), python=r.get("python", ""))
            if "detector1" in r:
                entry["detector1"] = bool(r["detector1"].get("ok"))
        else:
            entry["why"] = _cell(_one_line(r), 300)
        rows[v] = entry
    return {"source": "benchmarks/coverage.py (docs/coverage.md)", "releases": rows}


def write_outputs(args: argparse.Namespace, data: dict[str, Any],
                  all_releases: list[Release]) -> None:
    save_results(args.results, data)
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    args.doc.write_text(render(data, all_releases))
    KNOWN.write_text(json.dumps(known(data), indent=1, sort_keys=True) + "\n")


def run_detector1(args: argparse.Namespace, data: dict[str, Any], store: Store,
                  all_releases: list[Release]) -> None:
    """Detector1 offline under every healthy git-only release (resumable)."""
    import tempfile

    healthy = [str(r.version) for r in all_releases if not r.on_pypi
               and data["results"].get(str(r.version), {}).get("ok")]
    for i, version in enumerate(healthy):
        rec = data["results"][version]
        if "detector1" in rec and (args.only is None or version not in args.only.split(",")):
            continue
        log(f"{version}: Detector1 offline")
        with tempfile.TemporaryDirectory(prefix=f"d1-{version}-") as tmp:
            try:
                rec["detector1"] = detector1(version, store, healthy[:i][::-1] + healthy[i + 1:],
                                             Path(tmp))
            except Exception as exc:  # record it, keep going
                rec["detector1"] = {"ok": False, "why": f"{type(exc).__name__}: {exc}"}
        log(f"{version}: Detector1 {rec['detector1']}")
        write_outputs(args, data, all_releases)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="comma-separated versions, e.g. 1.12.5,1.15.1")
    ap.add_argument("--since", help=f"oldest version to try (default {FIRST})")
    ap.add_argument("--until", help="newest version to try")
    ap.add_argument("--jobs", type=int, default=1, help="installs at once (default 1)")
    ap.add_argument("--home", type=Path, default=DEFAULT_HOME,
                    help=f"throwaway JWENV_HOME (default {DEFAULT_HOME})")
    ap.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    ap.add_argument("--doc", type=Path, default=DEFAULT_DOC)
    ap.add_argument("--check", default="full", choices=["full", "import"])
    ap.add_argument("--retry-failed", action="store_true", help="re-run recorded failures")
    ap.add_argument("--newest-first", action="store_true")
    ap.add_argument("--render-only", action="store_true", help="just rewrite the doc")
    ap.add_argument("--git-only", action="store_true",
                    help="the DMS rows that are git tags only, from a clone of --bundle")
    ap.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE,
                    help=f"git bundle of the git-only releases (default {DEFAULT_BUNDLE})")
    ap.add_argument("--no-detector1", action="store_true",
                    help="with --git-only: skip the offline Detector1 runs")
    ap.add_argument("--detector1-only", action="store_true",
                    help="with --git-only: no installs, (re)run Detector1 for --only's "
                         "releases (default: those without a Detector1 record)")
    args = ap.parse_args(argv)

    args.home.mkdir(parents=True, exist_ok=True)
    store = Store(root=args.home, cache=args.home / "cache")
    index = load_index(store.index_dir)
    all_releases = index.sorted()
    data = load_results(args.results)
    data["meta"] = {"machine": f"{os.cpu_count()} cores, {platform.system()} "
                               f"{platform.machine()}, Python {platform.python_version()}"}

    if args.git_only:
        mirror = args.home / "jwst-mirror"
        if not (mirror / ".git").is_dir():
            subprocess.run(["git", "clone", "--quiet", str(args.bundle), str(mirror)],
                           check=True)
        os.environ[GIT_REPO_VAR] = str(mirror)  # a plain directory, as a site's mirror
        tags = set(subprocess.run(["git", "-C", str(mirror), "tag"], capture_output=True,
                                  text=True, check=True).stdout.split())
        data["git_meta"] = {"when": datetime.now(timezone.utc).date().isoformat(),
                            "bundle": str(args.bundle)}
        git_rows = [r for r in all_releases if not r.on_pypi]
        todo = [r for r in git_rows if not args.only or str(r.version) in args.only.split(",")]
    else:
        todo = pick([r for r in all_releases if r.on_pypi],
                    args.only.split(",") if args.only else None, args.since, args.until)
    if not args.only:
        todo = [r for r in todo
                if str(r.version) not in data["results"]
                or (args.retry_failed and not data["results"][str(r.version)].get("ok"))]
    if args.newest_first:
        todo.reverse()
    if args.render_only or args.detector1_only:
        todo = []
    log(f"{len(todo)} release(s) to try: {', '.join(str(r.version) for r in todo)}")

    def work(release: Release) -> None:
        log(f"{release.version}: start")
        try:
            rec = run_one(release, store, args.check, keep=args.git_only)
            if args.git_only:
                rec["untagged"] = str(release.version) not in tags
        except Exception as exc:  # a jwenv bug: record it, keep going
            rec = {"version": str(release.version), "ok": False, "seconds": 0.0,
                   "error": f"{type(exc).__name__}: {exc}",
                   "attempts": [{"strategy": "?", "detail": f"jwenv bug: {exc}",
                                 "cause": "jwenv error"}]}
        with _lock:
            data["results"][rec["version"]] = rec
            save_results(args.results, data)
            write_outputs(args, data, all_releases)
        status = (f"ok {rec.get('strategy')} py{rec.get('python')}" if rec.get("ok")
                  else f"FAILED {rec.get('error', '')[:300]}")
        log(f"{release.version}: {status} ({rec['seconds']:.0f} s)")

    if args.jobs <= 1:
        for r in todo:
            work(r)
    else:
        with ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(work, todo))
    if args.git_only and not args.no_detector1:
        run_detector1(args, data, store, all_releases)
    write_outputs(args, data, all_releases)
    res = data["results"].values()
    log(f"done: {sum(1 for r in res if r.get('ok'))}/{len(res)} passed; wrote {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
