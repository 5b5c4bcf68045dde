"""Run a graph of jobs in parallel within a number of slots and a memory budget.

The scheduler knows only what it needs of a job (`Task`: its id, the jobs it needs
done, the jobs it must wait for, its estimated peak memory) and hands each ready
task to an executor, which runs it somewhere and returns an `Outcome`. The local
executor (jwenv.workers) runs jobs on warm worker processes of this machine; another
executor (a cluster) plugs in the same way. The caller records what happens through
the callbacks, so the scheduler keeps no state of its own between runs.

Memory: a task starts only if the estimates of the running tasks plus its own fit
the budget. A task larger than the whole budget runs alone, with a warning.
Estimates are corrected from measured peaks: after a task of a kind (one pipeline
under one environment) finishes, later tasks of that kind are scaled by the largest
measured/estimated ratio seen so far, with a margin.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

MARGIN = 1.2  # on measured peaks: the next exposure may be a little bigger
DONE, FAILED, SKIPPED = "done", "failed", "skipped"
FINISHED = {DONE, FAILED, SKIPPED}


@dataclass
class Task:
    id: str
    memory: int  # estimated peak bytes
    kind: str = ""  # estimates are corrected per kind
    needs: list[str] = field(default_factory=list)  # must be done first
    after: list[str] = field(default_factory=list)  # must have finished (any outcome) first


@dataclass
class Outcome:
    ok: bool
    seconds: float = 0.0
    peak_rss: int | None = None  # bytes, measured
    error: str | None = None
    runner: str = ""  # how it ran ("warm", "strun", ...)


class Executor(Protocol):
    def run(self, task: Task) -> Outcome:
        """Run one task to the end (called from the scheduler's threads)."""

    def close(self) -> None:
        """Stop everything this executor started."""


class Callbacks(Protocol):
    def started(self, task: Task, estimate: int) -> None: ...
    def finished(self, task: Task, outcome: Outcome) -> None: ...
    def skipped(self, task: Task, reason: str) -> None: ...
    def warn(self, message: str) -> None: ...


class BudgetTooSmall(ValueError):
    """The memory budget is smaller than the smallest job: nothing could ever start."""


def available_memory() -> int:
    """Bytes of memory available now (Linux MemAvailable; else physical memory)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def parse_size(text: str) -> int:
    """'8G', '512M', '1.5GB', '2048' (bytes) → bytes."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    scale = units.get(t[-1:], 1)
    number = t[:-1] if t[-1:] in units else t
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"bad memory size {text!r}: use e.g. 8G or 512M") from None
    if value <= 0:
        raise ValueError(f"bad memory size {text!r}: must be positive")
    return int(value * scale)


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit in ("B", "KB") else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


class Scheduler:
    """One run of a task graph (see the module docstring)."""

    def __init__(self, tasks: Iterable[Task], states: dict[str, str], *, slots: int,
                 budget: int, executor: Executor, callbacks: Callbacks) -> None:
        self.tasks = {t.id: t for t in tasks}  # in plan order: the order ready tasks start
        self.states = dict(states)  # id -> pending/done/failed/skipped (running = pending)
        self.slots = max(1, slots)
        self.budget = budget
        self.executor = executor
        self.cb = callbacks
        self.factor: dict[str, float] = {}
        self.running: dict[str, int] = {}  # id -> estimate in use
        self.scheduling_seconds = 0.0

    def estimate(self, task: Task) -> int:
        return int(task.memory * self.factor.get(task.kind, 1.0))

    def check_budget(self) -> None:
        todo = [t for t in self.tasks.values() if self.states.get(t.id) not in FINISHED]
        if todo and min(t.memory for t in todo) > self.budget:
            smallest = min(todo, key=lambda t: t.memory)
            raise BudgetTooSmall(
                f"--memory {human(self.budget)} is smaller than the smallest job "
                f"({smallest.id}: about {human(smallest.memory)})")

    def _skip_blocked(self) -> None:
        changed = True
        while changed:
            changed = False
            for t in self.tasks.values():
                if self.states.get(t.id) in FINISHED or t.id in self.running:
                    continue
                bad = [n for n in t.needs if self.states.get(n) in (FAILED, SKIPPED)]
                if bad:
                    why = self.states[bad[0]]
                    self.states[t.id] = SKIPPED
                    self.cb.skipped(t, f"{bad[0]} {why}")
                    changed = True

    def _ready(self) -> list[Task]:
        out = []
        for t in self.tasks.values():
            if self.states.get(t.id) in FINISHED or t.id in self.running:
                continue
            if all(self.states.get(n) == DONE or n not in self.tasks for n in t.needs) and \
                    all(self.states.get(a) in FINISHED or a not in self.tasks for a in t.after):
                out.append(t)
        return out

    def run(self) -> dict[str, str]:
        """Run every task that is not finished; returns the final states."""
        self.check_budget()
        done_q: queue.Queue[tuple[Task, Outcome]] = queue.Queue()
        lock = threading.Lock()

        def work(task: Task) -> None:
            try:
                outcome = self.executor.run(task)
            except Exception as exc:  # an executor bug must not hang the scheduler
                outcome = Outcome(False, error=f"{type(exc).__name__}: {exc}")
            done_q.put((task, outcome))

        pool = ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="jwenv-job")
        try:
            while True:
                t0 = time.perf_counter()
                with lock:
                    self._skip_blocked()
                    self._start_ready(pool, work)
                self.scheduling_seconds += time.perf_counter() - t0
                if not self.running:
                    break
                task, outcome = done_q.get()
                t0 = time.perf_counter()
                with lock:
                    self.running.pop(task.id, None)
                    self.states[task.id] = DONE if outcome.ok else FAILED
                    if outcome.ok and outcome.peak_rss and task.memory:
                        ratio = MARGIN * outcome.peak_rss / task.memory
                        self.factor[task.kind] = max(ratio, self.factor.get(task.kind, 0.0))
                    self.cb.finished(task, outcome)
                self.scheduling_seconds += time.perf_counter() - t0
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return self.states

    def _start_ready(self, pool: ThreadPoolExecutor, work: Callable[[Task], None]) -> None:
        for task in self._ready():
            if len(self.running) >= self.slots:
                return
            need = self.estimate(task)
            used = sum(self.running.values())
            if need > self.budget:
                if self.running:
                    return  # drain: it runs alone once the others are done
                self.cb.warn(f"{task.id} needs about {human(need)}, more than the budget of "
                             f"{human(self.budget)}: it runs alone")
            elif used + need > self.budget:
                continue
            self.running[task.id] = min(need, self.budget)
            self.cb.started(task, need)
            pool.submit(work, task)
            if need > self.budget:
                return
