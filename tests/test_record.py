"""record: the resumable SQLite record of a run."""

from __future__ import annotations

from jwenv.record import Record

PLAN = [("1:a", "3.0.0", 1, "a", {"products": ["a_rate.fits"]}, {"jwst": "3.0.0"}),
        ("1:b", "3.0.0", 1, "b", {"products": ["b_rate.fits"]}, {"jwst": "3.0.0"}),
        ("3:x", "3.0.0", 3, "x", {"products": ["x_i2d.fits"]}, {"jwst": "3.0.0"})]


def test_a_new_plan_is_pending_and_states_survive_reopening(tmp_path):
    path = tmp_path / "r.sqlite"
    with Record(path) as rec:
        assert rec.sync(PLAN)["new"] == 3
        rec.start("1:a", log="a.log")
        rec.finish("1:a", ok=True, seconds=3.5, peak_rss=10, runner="warm",
                   made_by={"jwst": "3.0.0"})
        rec.start("1:b", log="b.log")  # killed while running
        rec.set_meta(env="3.0.0")
    with Record(path) as rec:
        counts = rec.sync(PLAN)
        assert counts == {"kept": 2, "new": 0, "changed": 0, "in_flight": 1, "retried": 0}
        states = {r.id: r.state for r in rec.rows()}
        assert states == {"1:a": "done", "1:b": "pending", "3:x": "pending"}
        a = rec.row("1:a")
        assert (a.seconds, a.peak_rss, a.made_by, a.attempts, a.runner) == (
            3.5, 10, {"jwst": "3.0.0"}, 1, "warm")
        assert rec.meta() == {"env": "3.0.0"}


def test_a_changed_stamp_or_retry_makes_jobs_pending(tmp_path):
    with Record(tmp_path / "r.sqlite") as rec:
        rec.sync(PLAN)
        for job in ("1:a", "1:b"):
            rec.start(job, log="l")
        rec.finish("1:a", ok=True, seconds=1, peak_rss=None)
        rec.finish("1:b", ok=False, seconds=1, peak_rss=None, error="KeyError: x")
        rec.mark("3:x", "skipped", "1:b failed")
        assert rec.sync(PLAN)["kept"] == 3  # failed stays failed without --retry-failed
        assert rec.sync(PLAN, retry_failed=True)["retried"] == 2
        changed = [(*PLAN[0][:5], {"jwst": "3.1.0"})]
        assert rec.sync(changed) == {"kept": 0, "new": 0, "changed": 1, "in_flight": 0,
                                     "retried": 0}
        assert [r.id for r in rec.rows()] == ["1:a"]  # jobs no longer planned are dropped
        assert rec.counts()["pending"] == 1
        assert rec.to_dict()["jobs"][0]["products"] == ["a_rate.fits"]
