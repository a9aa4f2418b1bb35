"""The rolling-update state machine: ``deploy.update_config`` as batches, as data. PURE.

No I/O and no clock of its own: the runner (``rollout_runner``) tells it what happened to
each replica (``record``) and asks what to do next at a time it reads from its own clock
(``advance``). Everything swarm's updater decides is decided here, so it is tested as
tables with a fake clock:

- Batches: the replicas to update, lowest number first, ``parallelism`` at a time
  (0 = all in one batch). Batch k+1 starts ``delay`` seconds after batch k is *done*,
  i.e. after every replica of it was committed or discarded.
- A new replica is *ready* once it runs (and is healthy, if it has a healthcheck). It must
  then survive ``monitor`` seconds; only then is it committed (the runner retires the old
  container). A replica that fails before that (exits, turns unhealthy, restarts, is not
  ready within ``ready_timeout``) counts as failed and is discarded.
  One host, so unlike swarm the monitor holds the batch: the next batch starts only after
  the current one survived it (a single host has no spare capacity to race ahead on).
- ``max_failure_ratio``: the failure action fires when failed / replicas-to-update is
  strictly greater than it (swarm's rule), so 0 means "any failure", 0.25 of 4 tolerates
  one. ``failure_action``: ``pause`` stops and reports, ``rollback`` asks the caller to roll
  back, ``continue`` carries on whatever fails. Replicas already in flight when it fires
  are settled first (committed or discarded), so nothing is left half-replaced.
- A rollback is a rollout too (of the previous spec, with ``rollback_config``); when a
  rollback fails its ``rollback`` action becomes ``pause``: a rollback is never rolled back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from orchestrator.model.deploy import UpdateConfig

Phase = Literal["pending", "starting", "ready", "monitored", "committed", "failed", "discarded"]
Outcome = Literal["completed", "paused", "rollback"]

_IN_FLIGHT: tuple[Phase, ...] = ("starting", "ready")
_SETTLED: tuple[Phase, ...] = ("committed", "discarded")


def batches(replicas: Sequence[int], parallelism: int) -> tuple[tuple[int, ...], ...]:
    """``replicas`` (sorted) cut into batches of ``parallelism``; 0 means one batch of all."""
    if parallelism < 0:
        raise ValueError(f"parallelism cannot be negative, got {parallelism}")
    ordered = sorted(set(replicas))
    if not ordered:
        return ()
    size = parallelism or len(ordered)
    return tuple(tuple(ordered[i : i + size]) for i in range(0, len(ordered), size))


# -- what the runner reports ---------------------------------------------------------------


@dataclass(frozen=True)
class BatchStarted:
    """The runner began batch ``index`` (0-based) at ``at``."""

    index: int
    at: float


@dataclass(frozen=True)
class Started:
    """The new container of ``replica`` was started (it may not be ready yet)."""

    replica: int
    at: float


@dataclass(frozen=True)
class Ready:
    """The new container of ``replica`` runs and is healthy (or has no healthcheck)."""

    replica: int
    at: float


@dataclass(frozen=True)
class Failed:
    """The new container of ``replica`` could not be made, exited, restarted or is unhealthy."""

    replica: int
    at: float
    reason: str


@dataclass(frozen=True)
class Committed:
    """The runner retired the old container of ``replica``: it now runs the new spec."""

    replica: int
    at: float


@dataclass(frozen=True)
class Discarded:
    """The runner dealt with the failed new container of ``replica``."""

    replica: int
    at: float


RolloutEvent = BatchStarted | Started | Ready | Failed | Committed | Discarded


# -- what the machine asks for -------------------------------------------------------------


@dataclass(frozen=True)
class StartBatch:
    """Start updating ``replicas``: batch ``number`` of ``total`` (1-based, for "batch k/n")."""

    index: int
    replicas: tuple[int, ...]
    number: int
    total: int


@dataclass(frozen=True)
class Commit:
    """``replica`` survived the monitor: retire its old container."""

    replica: int


@dataclass(frozen=True)
class Discard:
    """``replica``'s new container failed (``reason``): take it out."""

    replica: int
    reason: str


@dataclass(frozen=True)
class Wait:
    """Nothing to do before ``until`` (None: before the next reported event); poll meanwhile."""

    until: float | None
    reason: str


@dataclass(frozen=True)
class Finish:
    """The rollout is over: ``completed``, ``paused`` or ``rollback`` (the caller rolls back)."""

    outcome: Outcome
    reason: str
    failed: tuple[int, ...] = ()
    committed: tuple[int, ...] = ()


RolloutAction = StartBatch | Commit | Discard | Wait | Finish


@dataclass(frozen=True)
class Replica:
    """One replica's progress; times are the runner's clock."""

    number: int
    phase: Phase = "pending"
    started_at: float | None = None
    ready_at: float | None = None
    reason: str = ""


@dataclass(frozen=True)
class Rollout:
    """The whole state of one rolling update (or rollback). Build it with :func:`begin`."""

    config: UpdateConfig
    plan: tuple[tuple[int, ...], ...]
    replicas: Mapping[int, Replica]
    rollback: bool = False
    ready_timeout: float | None = None
    current: int = -1  # index of the batch in progress; -1 before the first
    batch_done_at: float | None = None
    triggered: str = ""  # why the failure action fired ("" while it has not)
    finished: Finish | None = field(default=None)

    # -- derived ---------------------------------------------------------------------------

    @property
    def total(self) -> int:
        return len(self.replicas)

    @property
    def failure_action(self) -> Literal["pause", "continue", "rollback"]:
        """The configured action, except that a rollback never rolls back: it pauses."""
        action = self.config.failure_action
        return "pause" if self.rollback and action == "rollback" else action

    def numbers(self, *phases: Phase) -> tuple[int, ...]:
        return tuple(n for n, r in sorted(self.replicas.items()) if r.phase in phases)

    @property
    def failed_count(self) -> int:
        return len(self.numbers("failed", "discarded"))

    def ratio_exceeded(self) -> bool:
        """failed / total > max_failure_ratio (strictly, as swarm)."""
        return self.total > 0 and self.failed_count / self.total > self.config.max_failure_ratio

    # -- transitions -----------------------------------------------------------------------

    def record(self, event: RolloutEvent) -> Rollout:
        """The state after ``event``; events about replicas not in the rollout are errors."""
        if isinstance(event, BatchStarted):
            if event.index != self.current + 1 or event.index >= len(self.plan):
                raise ValueError(f"batch {event.index} cannot start after batch {self.current}")
            batch = self.plan[event.index]
            updated = dict(self.replicas)
            for number in batch:
                updated[number] = replace(updated[number], phase="starting", started_at=event.at)
            return replace(self, replicas=updated, current=event.index, batch_done_at=None)
        replica = self.replicas.get(event.replica)
        if replica is None:
            raise ValueError(f"replica {event.replica} is not part of this rollout")
        match event:
            case Started():
                changed = replace(replica, started_at=event.at)
            case Ready():
                if replica.phase != "starting":
                    return self
                changed = replace(replica, phase="ready", ready_at=event.at)
            case Failed():
                if replica.phase not in (*_IN_FLIGHT, "monitored"):
                    return self
                changed = replace(replica, phase="failed", reason=event.reason)
            case Committed():
                changed = replace(replica, phase="committed")
            case Discarded():
                changed = replace(replica, phase="discarded")
        state = self._with(changed)
        if isinstance(event, Committed | Discarded):
            state = state._batch_settled(event.at)
        return state

    def advance(self, now: float) -> tuple[Rollout, RolloutAction]:
        """Apply the timers due at ``now`` (monitor survived, not ready in time) and say
        what the runner must do next. Returns the new state and one action."""
        if self.finished is not None:
            return self, self.finished
        state = self._timers(now)
        for number in state.numbers("failed"):
            return state, Discard(number, state.replicas[number].reason)
        for number in state.numbers("monitored"):
            return state, Commit(number)
        if not state.triggered and state.failure_action != "continue" and state.ratio_exceeded():
            reasons = "; ".join(
                f"replica {n}: {state.replicas[n].reason}"
                for n in state.numbers("discarded")
                if state.replicas[n].reason
            )
            state = replace(
                state,
                triggered=f"{state.failed_count} of {state.total} replicas failed ({reasons})",
            )
        in_flight = state.numbers(*_IN_FLIGHT)
        if in_flight:
            return state, Wait(state._next_timer(), "waiting for replicas " + _listed(in_flight))
        if state.triggered:
            outcome: Outcome = "rollback" if state.failure_action == "rollback" else "paused"
            return state._finish(outcome, state.triggered)
        next_index = state.current + 1
        if next_index >= len(state.plan):
            failed = state.numbers("discarded")
            why = f"{len(failed)} of {state.total} replicas failed" if failed else ""
            return state._finish("completed", why)
        if state.current >= 0 and state.config.delay > 0:
            assert state.batch_done_at is not None
            due = state.batch_done_at + state.config.delay
            if now < due:
                return state, Wait(due, f"delay {state.config.delay:g}s between batches")
        batch = state.plan[next_index]
        return state, StartBatch(next_index, batch, next_index + 1, len(state.plan))

    # -- internals -------------------------------------------------------------------------

    def _with(self, replica: Replica) -> Rollout:
        return replace(self, replicas={**self.replicas, replica.number: replica})

    def _batch_settled(self, at: float) -> Rollout:
        if self.current < 0:
            return self
        batch = self.plan[self.current]
        if all(self.replicas[n].phase in _SETTLED for n in batch):
            return replace(self, batch_done_at=at)
        return self

    def _timers(self, now: float) -> Rollout:
        state = self
        for number in self.numbers("ready"):
            replica = self.replicas[number]
            assert replica.ready_at is not None
            if now >= replica.ready_at + self.config.monitor:
                state = state._with(replace(replica, phase="monitored"))
        if self.ready_timeout is not None:
            for number in self.numbers("starting"):
                replica = self.replicas[number]
                if replica.started_at is not None and now >= replica.started_at + (
                    self.ready_timeout
                ):
                    state = state._with(
                        replace(
                            replica,
                            phase="failed",
                            reason=f"not ready within {self.ready_timeout:g}s",
                        )
                    )
        return state

    def _next_timer(self) -> float | None:
        due: list[float] = []
        for replica in self.replicas.values():
            if replica.phase == "ready" and replica.ready_at is not None:
                due.append(replica.ready_at + self.config.monitor)
            elif (
                replica.phase == "starting"
                and replica.started_at is not None
                and self.ready_timeout is not None
            ):
                due.append(replica.started_at + self.ready_timeout)
        return min(due) if due else None

    def _finish(self, outcome: Outcome, reason: str) -> tuple[Rollout, Finish]:
        done = Finish(outcome, reason, self.numbers("discarded"), self.numbers("committed"))
        return replace(self, finished=done), done


def begin(
    config: UpdateConfig,
    replicas: Sequence[int],
    *,
    rollback: bool = False,
    ready_timeout: float | None = None,
) -> Rollout:
    """A rollout of ``replicas`` (numbers) under ``config``; ``rollback`` marks a rollback."""
    plan = batches(replicas, config.parallelism)
    return Rollout(
        config=config,
        plan=plan,
        replicas={n: Replica(n) for batch in plan for n in batch},
        rollback=rollback,
        ready_timeout=ready_timeout,
    )


def _listed(numbers: Sequence[int]) -> str:
    return ", ".join(str(n) for n in numbers)
