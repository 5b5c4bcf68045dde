"""Install every jwst release on PyPI with jwenv and record what it took.

    python benchmarks/coverage.py                      # every release from 0.17.0 on
    python benchmarks/coverage.py --only 1.12.5,1.15.1
    python benchmarks/coverage.py --since 1.10 --jobs 1
    nohup python benchmarks/coverage.py > /tmp/coverage.log 2>&1 &   # long run

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
from jwenv.releases import Release, load_index
from jwenv.store import Store

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS = ROOT / "benchmarks" / "coverage-results.json"
DEFAULT_DOC = ROOT / "docs" / "coverage.md"
DEFAULT_HOME = Path(os.environ.get("TMPDIR", "/tmp")) / "jwenv-coverage-home"
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
    """`could not build ... (ops: why; dated: why)` -> [{strategy, detail}, ...]."""
    m = re.search(r"environment \((.*)\)\s*$", message, re.S)
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


def run_one(release: Release, store: Store, check: str) -> dict[str, Any]:
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
        rec.update(ok=False, seconds=round(time.monotonic() - t0, 1), error=str(exc),
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
        size_mb=round(env.size() / 1e6),
    )
    env.remove()  # disk: the record is what we keep
    return rec


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
    results = data["results"]
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
        f"- Not on PyPI (git tags only, {len(git_only)}: "
        f"{', '.join(str(r.version) for r in git_only[:3])} … "
        f"{', '.join(str(r.version) for r in git_only[-4:])}): not tried here, because this "
        "machine cannot reach GitHub. They install from any jwst git mirror with "
        "`JWENV_JWST_GIT=<mirror> jwenv install <tag>`; 0.15.1 was checked from the shared "
        "bundle (see strategies.md).",
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
    return "\n".join(out)


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
    args = ap.parse_args(argv)

    args.home.mkdir(parents=True, exist_ok=True)
    store = Store(root=args.home, cache=args.home / "cache")
    index = load_index(store.index_dir)
    all_releases = index.sorted()
    data = load_results(args.results)
    data["meta"] = {"machine": f"{os.cpu_count()} cores, {platform.system()} "
                               f"{platform.machine()}, Python {platform.python_version()}"}

    todo = pick([r for r in all_releases if r.on_pypi],
                args.only.split(",") if args.only else None, args.since, args.until)
    if not args.only:
        todo = [r for r in todo
                if str(r.version) not in data["results"]
                or (args.retry_failed and not data["results"][str(r.version)].get("ok"))]
    if args.newest_first:
        todo.reverse()
    if args.render_only:
        todo = []
    log(f"{len(todo)} release(s) to try: {', '.join(str(r.version) for r in todo)}")

    def work(release: Release) -> None:
        log(f"{release.version}: start")
        try:
            rec = run_one(release, store, args.check)
        except Exception as exc:  # a jwenv bug: record it, keep going
            rec = {"version": str(release.version), "ok": False, "seconds": 0.0,
                   "error": f"{type(exc).__name__}: {exc}",
                   "attempts": [{"strategy": "?", "detail": f"jwenv bug: {exc}",
                                 "cause": "jwenv error"}]}
        with _lock:
            data["results"][rec["version"]] = rec
            save_results(args.results, data)
            args.doc.parent.mkdir(parents=True, exist_ok=True)
            args.doc.write_text(render(data, all_releases))
        status = (f"ok {rec.get('strategy')} py{rec.get('python')}" if rec.get("ok")
                  else f"FAILED {rec.get('error', '')[:300]}")
        log(f"{release.version}: {status} ({rec['seconds']:.0f} s)")

    if args.jobs <= 1:
        for r in todo:
            work(r)
    else:
        with ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(work, todo))
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    args.doc.write_text(render(data, all_releases))
    res = data["results"].values()
    log(f"done: {sum(1 for r in res if r.get('ok'))}/{len(res)} passed; wrote {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
