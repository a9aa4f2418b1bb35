"""The rollout state machine as tables, driven by a fake clock (no sleeping, no backend).

``simulate`` plays a rollout: every replica a batch starts becomes ready ``READY_AFTER``
seconds later, or fails at that moment when the scenario says so; the log is what the
machine asked for, stamped with the fake clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from orchestrator.model.deploy import UpdateConfig
from orchestrator.supervisor import rollout as m

READY_AFTER = 0.5


@dataclass
class Run:
    log: list[tuple[float, str]] = field(default_factory=list)
    finish: m.Finish | None = None

    def batches(self) -> list[tuple[float, str]]:
        return [(t, what) for t, what in self.log if what.startswith("batch")]


def simulate(
    config: UpdateConfig,
    replicas: int,
    fails: Mapping[int, str] | None = None,
    *,
    rollback: bool = False,
    ready_timeout: float | None = None,
    never_ready: frozenset[int] = frozenset(),
) -> Run:
    fails = fails or {}
    state = m.begin(
        config, list(range(1, replicas + 1)), rollback=rollback, ready_timeout=ready_timeout
    )
    now = 0.0
    due: dict[int, float] = {}  # replica -> when it becomes ready (or fails)
    run = Run()
    for _ in range(1000):
        state, action = state.advance(now)
        match action:
            case m.StartBatch():
                run.log.append((now, f"batch {action.number}/{action.total} {action.replicas}"))
                state = state.record(m.BatchStarted(action.index, now))
                for number in action.replicas:
                    state = state.record(m.Started(number, now))
                    if number not in never_ready:
                        due[number] = now + READY_AFTER
            case m.Commit():
                run.log.append((now, f"commit {action.replica}"))
                state = state.record(m.Committed(action.replica, now))
            case m.Discard():
                run.log.append((now, f"discard {action.replica}: {action.reason}"))
                state = state.record(m.Discarded(action.replica, now))
            case m.Wait():
                pending = [t for t in due.values() if t > now]
                candidates = [*pending, *([action.until] if action.until is not None else [])]
                assert candidates, f"waiting forever at {now}: {action.reason}"
                now = max(now, min(candidates))
                for number, when in sorted(due.items()):
                    if when <= now:
                        del due[number]
                        if number in fails:
                            state = state.record(m.Failed(number, when, fails[number]))
                        else:
                            state = state.record(m.Ready(number, when))
            case m.Finish():
                run.log.append((now, f"finish {action.outcome}"))
                run.finish = action
                return run
    raise AssertionError("the rollout never finished")


def cfg(**kw: object) -> UpdateConfig:
    kw.setdefault("monitor", 1.0)
    return UpdateConfig(**kw)  # type: ignore[arg-type]


# -- batches


@pytest.mark.parametrize(
    ("replicas", "parallelism", "expected"),
    [
        ([1, 2, 3, 4], 1, ((1,), (2,), (3,), (4,))),
        ([1, 2, 3, 4], 2, ((1, 2), (3, 4))),
        ([1, 2, 3, 4, 5], 2, ((1, 2), (3, 4), (5,))),
        ([1, 2, 3], 0, ((1, 2, 3),)),  # 0: all at once
        ([1, 2, 3], 10, ((1, 2, 3),)),
        ([3, 1, 2, 2], 2, ((1, 2), (3,))),  # sorted, unique
        ([], 2, ()),
    ],
)
def test_batches(
    replicas: list[int], parallelism: int, expected: tuple[tuple[int, ...], ...]
) -> None:
    assert m.batches(replicas, parallelism) == expected


def test_negative_parallelism_is_refused() -> None:
    with pytest.raises(ValueError):
        m.batches([1], -1)


def test_swarm_defaults() -> None:
    config = UpdateConfig()
    assert (config.parallelism, config.delay, config.failure_action) == (1, 0.0, "pause")
    assert (config.monitor, config.max_failure_ratio, config.order) == (5.0, 0.0, "stop-first")


# -- timing: parallelism, delay, monitor

# each row: config, replicas, expected (time, batch) log; a batch is done READY_AFTER + monitor
# after it starts, and the next one starts `delay` later
TIMING = {
    "defaults: one at a time, each watched 5s": (
        UpdateConfig(),
        3,
        [(0.0, "batch 1/3 (1,)"), (5.5, "batch 2/3 (2,)"), (11.0, "batch 3/3 (3,)")],
    ),
    "parallelism 2, delay 1s: two batches, the second 1s after the first is done": (
        cfg(parallelism=2, delay=1.0),
        4,
        [(0.0, "batch 1/2 (1, 2)"), (2.5, "batch 2/2 (3, 4)")],
    ),
    "parallelism 0: all at once": (
        cfg(parallelism=0, delay=3.0),
        4,
        [(0.0, "batch 1/1 (1, 2, 3, 4)")],
    ),
    "monitor 0: committed as soon as ready": (
        cfg(monitor=0.0),
        2,
        [(0.0, "batch 1/2 (1,)"), (0.5, "batch 2/2 (2,)")],
    ),
    "delay counts from the batch's end, not its start": (
        cfg(delay=2.0, monitor=3.0),
        2,
        [(0.0, "batch 1/2 (1,)"), (5.5, "batch 2/2 (2,)")],
    ),
}


@pytest.mark.parametrize(("config", "replicas", "expected"), TIMING.values(), ids=TIMING.keys())
def test_batch_timing(
    config: UpdateConfig, replicas: int, expected: list[tuple[float, str]]
) -> None:
    run = simulate(config, replicas)
    assert run.batches() == expected
    assert run.finish is not None and run.finish.outcome == "completed"
    assert run.finish.committed == tuple(range(1, replicas + 1))


def test_commit_waits_for_the_monitor() -> None:
    run = simulate(cfg(monitor=2.0), 1)
    assert run.log == [(0.0, "batch 1/1 (1,)"), (2.5, "commit 1"), (2.5, "finish completed")]


def test_no_delay_after_the_last_batch() -> None:
    run = simulate(cfg(delay=10.0), 1)
    assert run.log[-1] == (1.5, "finish completed")


# -- failures: failure_action, max_failure_ratio

FAILURES = {
    "pause (default) on the first failure": (
        cfg(),
        3,
        {1: "exited with code 1"},
        "paused",
        ["batch 1/3 (1,)"],
    ),
    "rollback on the first failure": (
        cfg(failure_action="rollback"),
        3,
        {2: "unhealthy"},
        "rollback",
        ["batch 1/3 (1,)", "batch 2/3 (2,)"],
    ),
    "continue carries on whatever fails": (
        cfg(failure_action="continue"),
        3,
        {1: "x", 2: "x", 3: "x"},
        "completed",
        ["batch 1/3 (1,)", "batch 2/3 (2,)", "batch 3/3 (3,)"],
    ),
    "ratio 0.25 of 4 tolerates one failure": (
        cfg(max_failure_ratio=0.25),
        4,
        {1: "x"},
        "completed",
        ["batch 1/4 (1,)", "batch 2/4 (2,)", "batch 3/4 (3,)", "batch 4/4 (4,)"],
    ),
    "ratio 0.25 of 4: the second failure fires (2/4 > 0.25)": (
        cfg(max_failure_ratio=0.25),
        4,
        {1: "x", 3: "x"},
        "paused",
        ["batch 1/4 (1,)", "batch 2/4 (2,)", "batch 3/4 (3,)"],
    ),
    "ratio 0.5 of 4: exactly half is not more than half": (
        cfg(max_failure_ratio=0.5),
        4,
        {1: "x", 2: "x"},
        "completed",
        ["batch 1/4 (1,)", "batch 2/4 (2,)", "batch 3/4 (3,)", "batch 4/4 (4,)"],
    ),
    "ratio 1: never fires": (
        cfg(max_failure_ratio=1.0, parallelism=0),
        2,
        {1: "x", 2: "x"},
        "completed",
        ["batch 1/1 (1, 2)"],
    ),
    "in-flight replicas of the batch settle before the action": (
        cfg(parallelism=2, failure_action="rollback"),
        4,
        {1: "x"},
        "rollback",
        ["batch 1/2 (1, 2)"],
    ),
}


@pytest.mark.parametrize(
    ("config", "replicas", "fails", "outcome", "batches"), FAILURES.values(), ids=FAILURES.keys()
)
def test_failure_actions(
    config: UpdateConfig, replicas: int, fails: dict[int, str], outcome: str, batches: list[str]
) -> None:
    run = simulate(config, replicas, fails)
    assert run.finish is not None and run.finish.outcome == outcome
    assert [what for _, what in run.batches()] == batches
    assert run.finish.failed == tuple(sorted(n for n in fails if n in run.finish.failed))
    assert set(run.finish.failed) <= set(fails)


def test_in_flight_replica_is_committed_before_pausing() -> None:
    run = simulate(cfg(parallelism=2), 4, {1: "exited with code 1"})
    assert run.finish is not None
    assert (run.finish.failed, run.finish.committed) == ((1,), (2,))
    assert "replica 1: exited with code 1" in run.finish.reason
    assert "1 of 4 replicas failed" in run.finish.reason


def test_failures_under_continue_are_reported_on_completion() -> None:
    run = simulate(cfg(failure_action="continue"), 2, {2: "unhealthy"})
    assert run.finish is not None and run.finish.outcome == "completed"
    assert run.finish.failed == (2,) and "1 of 2 replicas failed" in run.finish.reason


def test_a_replica_never_ready_fails_at_the_ready_timeout() -> None:
    run = simulate(cfg(), 2, ready_timeout=4.0, never_ready=frozenset({1}))
    assert (4.0, "discard 1: not ready within 4s") in run.log
    assert run.finish is not None and run.finish.outcome == "paused"


def test_a_failure_during_the_monitor_counts() -> None:
    state = m.begin(cfg(monitor=5.0), [1])
    state, action = state.advance(0.0)
    assert isinstance(action, m.StartBatch)
    state = state.record(m.BatchStarted(0, 0.0)).record(m.Ready(1, 1.0))
    state, action = state.advance(3.0)
    assert isinstance(action, m.Wait) and action.until == 6.0
    state = state.record(m.Failed(1, 3.0, "exited with code 137"))
    state, action = state.advance(3.0)
    assert action == m.Discard(1, "exited with code 137")


# -- rollbacks

ROLLBACKS = {
    "a failing rollback pauses instead of rolling back again": ("rollback", "paused"),
    "a rollback with pause pauses": ("pause", "paused"),
    "a rollback with continue continues": ("continue", "completed"),
}


@pytest.mark.parametrize(("action", "outcome"), ROLLBACKS.values(), ids=ROLLBACKS.keys())
def test_rollback_of_a_rollback(action: str, outcome: str) -> None:
    run = simulate(cfg(failure_action=action), 2, {1: "x"}, rollback=True)
    assert run.finish is not None and run.finish.outcome == outcome


def test_finished_rollout_stays_finished() -> None:
    state = m.begin(cfg(), [])
    state, first = state.advance(0.0)
    assert first == m.Finish("completed", "", (), ())
    assert state.advance(100.0)[1] == first


@pytest.mark.parametrize(
    "event",
    [m.Ready(9, 0.0), m.BatchStarted(1, 0.0)],
    ids=["unknown replica", "batch out of order"],
)
def test_impossible_events_are_refused(event: m.RolloutEvent) -> None:
    with pytest.raises(ValueError):
        m.begin(cfg(), [1, 2]).record(event)
