"""schedule: dependencies, slots, the memory budget and measured corrections."""

from __future__ import annotations

import threading
import time

import pytest

from jwenv.schedule import BudgetTooSmall, Outcome, Scheduler, Task, parse_size

G = 1 << 30


class FakeExecutor:
    """Runs tasks by sleeping; fails the ids it is told to; measures concurrency."""

    def __init__(self, fail=(), peak=None, seconds=0.05):
        self.fail, self.peak, self.seconds = set(fail), peak or {}, seconds
        self.running: set[str] = set()
        self.max_together = 0
        self.together: list[set[str]] = []
        self.order: list[str] = []
        self.lock = threading.Lock()

    def run(self, task):
        with self.lock:
            self.running.add(task.id)
            self.order.append(task.id)
            self.together.append(set(self.running))
            self.max_together = max(self.max_together, len(self.running))
        time.sleep(self.seconds)
        with self.lock:
            self.running.discard(task.id)
        return Outcome(task.id not in self.fail, 0.05, self.peak.get(task.id),
                       "boom" if task.id in self.fail else None, "fake")

    def close(self):
        pass


class Log:
    def __init__(self):
        self.events = []

    def started(self, task, estimate):
        self.events.append(("start", task.id, estimate))

    def finished(self, task, outcome):
        self.events.append(("done" if outcome.ok else "failed", task.id))

    def skipped(self, task, reason):
        self.events.append(("skip", task.id, reason))

    def warn(self, message):
        self.events.append(("warn", message))


def _run(tasks, *, slots=2, budget=8 * G, states=None, **kw):
    ex, log = FakeExecutor(**kw), Log()
    final = Scheduler(tasks, states or {}, slots=slots, budget=budget, executor=ex,
                      callbacks=log).run()
    return final, ex, log


def test_stage_three_waits_for_its_members_and_slots_are_used():
    tasks = [Task("1:a", G), Task("1:b", G), Task("1:c", G),
             Task("3:ab", G, needs=["1:a", "1:b"]), Task("3:c", G, needs=["1:c"])]
    final, ex, _ = _run(tasks)
    assert set(final.values()) == {"done"}
    assert ex.max_together == 2
    assert ex.order.index("3:ab") > max(ex.order.index("1:a"), ex.order.index("1:b"))


def test_order_within_a_detector_is_kept_even_after_a_failure():
    tasks = [Task("1:e1", G), Task("1:e2", G, after=["1:e1"]), Task("1:e3", G, after=["1:e2"])]
    final, ex, _ = _run(tasks, fail={"1:e1"}, slots=3)
    assert ex.order == ["1:e1", "1:e2", "1:e3"] and ex.max_together == 1
    assert final == {"1:e1": "failed", "1:e2": "done", "1:e3": "done"}


def test_a_failure_skips_only_what_needs_it():
    tasks = [Task("1:a", G), Task("1:b", G), Task("2:a", G, needs=["1:a"]),
             Task("2:b", G, needs=["1:b"]), Task("3:x", G, needs=["2:a", "2:b"])]
    final, _, log = _run(tasks, fail={"1:a"})
    assert final == {"1:a": "failed", "1:b": "done", "2:a": "skipped", "2:b": "done",
                     "3:x": "skipped"}
    assert ("skip", "2:a", "1:a failed") in log.events
    assert ("skip", "3:x", "2:a skipped") in log.events


def test_memory_budget_limits_what_runs_together():
    tasks = [Task(f"1:{i}", 3 * G) for i in range(4)]
    _, ex, _ = _run(tasks, slots=4, budget=7 * G)
    assert ex.max_together == 2  # 3 + 3 fit in 7, a third does not


def test_a_job_bigger_than_the_budget_runs_alone_with_a_warning():
    tasks = [Task("1:small", G), Task("1:huge", 10 * G), Task("1:small2", G)]
    final, ex, log = _run(tasks, slots=3, budget=4 * G)
    assert set(final.values()) == {"done"}
    assert {"1:huge"} in ex.together and not any("1:huge" in s and len(s) > 1
                                                 for s in ex.together)
    assert any(e[0] == "warn" and "1:huge" in e[1] for e in log.events)


def test_a_budget_below_the_smallest_job_is_refused():
    with pytest.raises(BudgetTooSmall, match="smaller than the smallest job"):
        _run([Task("1:a", 2 * G), Task("1:b", 3 * G)], budget=G)


def test_measured_peaks_correct_later_estimates():
    # the first job measures 4x its estimate: the next ones of its kind no longer fit two
    # at a time
    tasks = [Task("1:a", G, kind="d1"), Task("1:b", G, kind="d1", after=["1:a"]),
             Task("1:c", G, kind="d1", after=["1:a"])]
    _, ex, log = _run(tasks, slots=2, budget=8 * G, peak={"1:a": 4 * G})
    starts = {e[1]: e[2] for e in log.events if e[0] == "start"}
    assert starts["1:b"] == int(4 * G * 1.2)
    assert ex.max_together == 1


def test_finished_jobs_are_not_run_again():
    tasks = [Task("1:a", G), Task("2:a", G, needs=["1:a"])]
    _, ex, _ = _run(tasks, states={"1:a": "done"})
    assert ex.order == ["2:a"]


@pytest.mark.parametrize(("text", "value"), [("8G", 8 * G), ("512M", 512 << 20),
                                             ("1.5GB", int(1.5 * G)), ("2048", 2048),
                                             ("4GiB", 4 * G)])
def test_sizes(text, value):
    assert parse_size(text) == value
    with pytest.raises(ValueError):
        parse_size("lots")
