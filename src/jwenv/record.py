"""The resumable record of a reprocessing run: one SQLite file in the output directory.

Each job of the plan is a row: its spec (what to run), its state (pending, running,
done, failed, skipped), and what happened (seconds, peak RSS, log, the one-line error,
attempts, and `made_by`: the stamp of what made its products). A re-run opens the
same file: jobs that are done with the same stamp stay done, jobs that were running
when jwenv was killed go back to pending (they were in flight), and `--retry-failed`
turns failed jobs back to pending. Nothing else decides what is left to do.

SQLite (the standard library's) gives atomic updates: a kill -9 at any moment leaves
the file as of the last committed state change.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILENAME = "jwenv-record.sqlite"
STATES = ("pending", "running", "done", "failed", "skipped")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    env TEXT NOT NULL,
    stage INTEGER NOT NULL,
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    stamp TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    seconds REAL,
    peak_rss INTEGER,
    log TEXT,
    error TEXT,
    runner TEXT,
    made_by TEXT,
    started REAL,
    finished REAL
);
"""


@dataclass
class Row:
    """One job as the record holds it."""

    id: str
    seq: int
    env: str
    stage: int
    name: str
    spec: dict[str, Any]
    stamp: dict[str, Any]
    state: str
    attempts: int = 0
    seconds: float | None = None
    peak_rss: int | None = None
    log: str | None = None
    error: str | None = None
    runner: str | None = None
    made_by: dict[str, Any] | None = None
    started: float | None = None
    finished: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in (
            "id", "env", "stage", "name", "state", "attempts", "seconds", "peak_rss", "log",
            "error", "runner", "made_by", "started", "finished")}
        out["products"] = self.spec.get("products", [])
        out["pipeline"] = self.spec.get("pipeline")
        return out


class Record:
    """The record of one output directory (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # One connection per Record, used from the scheduler's thread only; autocommit
        # off, every change is its own short transaction (`_tx`).
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Record:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- the plan -------------------------------------------------------------------------
    def sync(self, jobs: Iterable[tuple[str, str, int, str, dict[str, Any], dict[str, Any]]],
             *, retry_failed: bool = False) -> dict[str, int]:
        """Bring the record in line with a plan of (id, env, stage, name, spec, stamp).

        A job that is new, or whose stamp changed (another release, context or
        arguments), becomes pending; one that was running when the last run died goes
        back to pending; failed jobs (and what they skipped) become pending with
        `retry_failed`. Jobs no longer in the plan are dropped. Returns the counts of
        what was found: {"kept": n, "new": n, "changed": n, "in_flight": n, "retried": n}.
        """
        counts = {"kept": 0, "new": 0, "changed": 0, "in_flight": 0, "retried": 0}
        with self._tx() as db:
            old = {r[0]: (r[1], r[2]) for r in db.execute("SELECT id, stamp, state FROM jobs")}
            wanted = set()
            for seq, (job_id, env, stage, name, spec, stamp) in enumerate(jobs):
                wanted.add(job_id)
                stamp_text = json.dumps(stamp, sort_keys=True)
                before = old.get(job_id)
                if before is None:
                    counts["new"] += 1
                    db.execute("INSERT INTO jobs (id, seq, env, stage, name, spec, stamp, "
                               "state) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')",
                               (job_id, seq, env, stage, name, json.dumps(spec), stamp_text))
                    continue
                stamp_old, state = before
                if stamp_old != stamp_text:
                    counts["changed"] += 1
                    state = "pending"
                elif state == "running":
                    counts["in_flight"] += 1
                    state = "pending"
                elif state in ("failed", "skipped") and retry_failed:
                    counts["retried"] += 1
                    state = "pending"
                else:
                    counts["kept"] += 1
                db.execute("UPDATE jobs SET seq=?, env=?, stage=?, name=?, spec=?, stamp=?, "
                           "state=? WHERE id=?",
                           (seq, env, stage, name, json.dumps(spec), stamp_text, state, job_id))
            for job_id in set(old) - wanted:
                db.execute("DELETE FROM jobs WHERE id=?", (job_id,))
        return counts

    def set_meta(self, **values: Any) -> None:
        with self._tx() as db:
            for key, value in values.items():
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                           (key, json.dumps(value)))

    def meta(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM meta")}

    # -- state changes --------------------------------------------------------------------
    def start(self, job_id: str, *, log: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE jobs SET state='running', attempts=attempts+1, log=?, "
                       "error=NULL, started=?, finished=NULL WHERE id=?",
                       (log, time.time(), job_id))

    def finish(self, job_id: str, *, ok: bool, seconds: float, peak_rss: int | None,
               error: str | None = None, runner: str = "",
               made_by: dict[str, Any] | None = None) -> None:
        with self._tx() as db:
            db.execute("UPDATE jobs SET state=?, seconds=?, peak_rss=?, error=?, runner=?, "
                       "made_by=?, finished=? WHERE id=?",
                       ("done" if ok else "failed", seconds, peak_rss, error, runner,
                        json.dumps(made_by) if made_by is not None else None, time.time(),
                        job_id))

    def mark(self, job_id: str, state: str, error: str | None = None) -> None:
        """Set a state without running (pending again, or skipped with the reason)."""
        assert state in STATES, state
        with self._tx() as db:
            db.execute("UPDATE jobs SET state=?, error=? WHERE id=?", (state, error, job_id))

    # -- reading --------------------------------------------------------------------------
    def rows(self) -> list[Row]:
        cols = ("id", "seq", "env", "stage", "name", "spec", "stamp", "state", "attempts",
                "seconds", "peak_rss", "log", "error", "runner", "made_by", "started",
                "finished")
        out = []
        for r in self._db.execute(f"SELECT {', '.join(cols)} FROM jobs ORDER BY seq"):
            data = dict(zip(cols, r, strict=True))
            data["spec"] = json.loads(data["spec"])
            data["stamp"] = json.loads(data["stamp"])
            data["made_by"] = json.loads(data["made_by"]) if data["made_by"] else None
            out.append(Row(**data))
        return out

    def row(self, job_id: str) -> Row:
        (found,) = [r for r in self.rows() if r.id == job_id]
        return found

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATES, 0)
        for state, n in self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state"):
            out[state] = n
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"record": str(self.path), "meta": self.meta(), "counts": self.counts(),
                "jobs": [r.to_dict() for r in self.rows()]}
