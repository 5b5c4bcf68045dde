"""`jwenv doctor`: is an installed environment still healthy, and does it run the chain?

The quick check is the install's health check again (Env.check). `--deep` runs
the offline program through stages 1-3 and scores the catalog against its truth.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jwenv import offline, plan, reprocess
from jwenv.envs import Env
from jwenv.schedule import available_cores

Event = Callable[[str, str], None]


def chain_check(env: Env, workdir: Path, on_event: Event | None = None) -> dict[str, Any]:
    """The offline program through stages 1-3 under `env`, as a per-stage report."""
    t0 = time.monotonic()
    program = offline.prepare([env], workdir / "program", program=True)
    items = plan.classify(program.uncal)
    result = reprocess.reprocess(env, items, workdir / "runs", stages=[1, 2, 3], force=True,
                                 cache=program.cache, offline=True, jobs=available_cores(),
                                 on_event=on_event)
    checks = [{"check": f"stage {r.stage} {r.pipeline} {r.name}", "ok": r.state == "done",
               "seconds": round(r.seconds, 1),
               "detail": "up to date" if r.up_to_date else f"{r.seconds:.1f} s"
               if r.state == "done" else f"{r.state}: {r.error}, log: {r.log}"}
              for r in result.runs]
    if result.ok:
        # the catalog of the star field (a background target has a level-3 product too)
        science = {i.base for i in items if not i.background}
        (catalog,) = (result.output_dir / f"{a['name']}_cat.ecsv"
                      for a in (result.grouping or {}).get("level3", [])
                      if set(a["science"]) & science)
        truth = offline.match_truth(catalog, program.truth)
        good = truth["recovered"] == truth["injected"]
        checks.append({"check": "catalog against the truth table", "ok": good,
                       "detail": f"{truth['recovered']}/{truth['injected']} sources within "
                                 f"{truth['tolerance_arcsec']}″, worst "
                                 f"{1000 * truth['worst_arcsec']:.1f} mas"})
    else:
        checks.append({"check": "chain", "ok": False, "detail": result.error})
    return {"ok": all(c["ok"] for c in checks), "level": "deep", "checks": checks,
            "seconds": round(time.monotonic() - t0, 1)}
