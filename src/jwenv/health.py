"""The health check: does an environment's jwst really work?

Run by the environment's own Python (scripts/health_check.py), offline:
`import` imports jwst and its pipelines; `full` also starts `strun` and runs a
real GroupScaleStep on a tiny exposure. A build is kept only if it passes.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jwenv import scripts
from jwenv.runner import ScriptFailed, run_json_script

LEVELS = ("full", "import", "none")
TIMEOUT_S = 1800


def check(env_dir: Path, level: str, environ: Mapping[str, str]) -> dict[str, Any]:
    """The health report of the environment at `env_dir` (never raises for a bad env).

    `environ` is the environment of a run in that env, offline (see Env.environ).
    """
    if level == "none":
        return {"ok": True, "level": "none", "checks": []}
    work = env_dir / "jwenv-health"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    t0 = time.monotonic()
    try:
        report = run_json_script(env_dir / "bin" / "python", scripts.path("health_check"),
                                 [level, str(work)], environ, what="health script",
                                 cwd=work, timeout=TIMEOUT_S)
    except (ScriptFailed, OSError, subprocess.TimeoutExpired) as exc:
        why = exc.why if isinstance(exc, ScriptFailed) else str(exc)
        report = {"ok": False, "level": level,
                  "checks": [{"check": "health script", "ok": False, "detail": why}]}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["seconds"] = round(time.monotonic() - t0, 1)
    report["checked"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return report


def first_failure(report: dict[str, Any]) -> str:
    """'<check>: <detail>' of the first failed check."""
    for c in report.get("checks", []):
        if not c.get("ok"):
            return f"{c['check']}: {c.get('detail', '')}"
    return "failed"
