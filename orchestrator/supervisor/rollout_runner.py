"""The loop that carries out a rolling update: acts on ``rollout``'s decisions, no others.

It reports to the pure state machine what happened to each new replica (started, ready,
failed) and does what the machine asks, through the Backend protocol and the
IngressController only, so it runs the same on every backend.

How one replica is replaced:

- ``start-first`` (when the old replica runs): the new container is created under a
  temporary name (``<replica>-up<generation>``) with its network aliases held back, so
  neither the ingress pool (not healthy yet) nor the service name (no alias yet) sends it
  traffic. Once it runs (and is healthy, when it has a healthcheck) it gets its aliases (the
  engine reconnects it), the ingress pool is refreshed, and it must survive ``monitor``.
  Then the old one is drained from the ingress pool, disconnected from its networks (so the
  service name stops resolving to it), stopped, removed, and the new one is renamed to the
  replica's name. A new replica that fails is taken out the same way; the old one kept
  serving throughout.
- ``stop-first`` (and whenever the old replica is not running): the old one is drained,
  disconnected, stopped and removed first; the new one is created under the replica's name
  and started. A new replica that fails is left in place, as swarm leaves a failed task, for
  the rollback or the next ``up`` to replace (the rollout has already counted it).

Outcomes: completed → return; ``pause`` → RolloutPaused; ``rollback`` → the replicas that no
longer run the old config are rolled back by ``rollback_config`` (a rollout too, whose own
failure pauses), then RolledBack. An update that cannot be rolled back (the old containers
recorded no spec) pauses instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from orchestrator import labels
from orchestrator.backends.base import Attachment, Backend, ContainerSpec, ObservedContainer
from orchestrator.errors import NotFound, PycomposeError, RolledBack, RolloutPaused
from orchestrator.events import Event, EventSink, discard
from orchestrator.ingress.routes import IngressController
from orchestrator.plan.ops import ReplicaUpdate, RollingUpdate
from orchestrator.supervisor import rollout as machine
from orchestrator.supervisor.intents import note_intentional_stop

Clock = Callable[[], float]
Sleep = Callable[[float], None]

# a new replica that is neither ready nor failed after this long counts as failed, unless
# its healthcheck could legitimately take longer (see _ready_timeout)
DEFAULT_READY_TIMEOUT = 60.0
# after an old replica left the ingress pool, the connections it still serves get this
# long to finish before it leaves its networks (which cuts whatever is still flowing)
DRAIN_GRACE = 0.3


@dataclass
class _Slot:
    """One replica during the rollout: which container serves it now, which replaces it."""

    update: ReplicaUpdate
    current_id: str  # the container that serves the replica now (old, or new once committed)
    current_running: bool
    new_id: str | None = None
    new_name: str = ""
    start_first: bool = False
    published: bool = False  # the new container has its aliases


@dataclass(frozen=True)
class RolloutResult:
    """How a rollout ended (only ``completed`` ones return; the others raise)."""

    service: str
    updated: tuple[int, ...]
    failed: tuple[int, ...]


def run_rolling_update(
    op: RollingUpdate,
    backend: Backend,
    *,
    project: str,
    ingress: IngressController | None = None,
    events: EventSink = discard,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
    poll_interval: float = 0.2,
) -> RolloutResult:
    """Run ``op`` to its end; raises RolloutPaused or RolledBack when it does not complete."""
    runner = _Runner(op, backend, project, ingress, events, clock, sleep, poll_interval)
    finish = runner.run()
    if finish.outcome == "completed":
        return RolloutResult(op.service, finish.committed, finish.failed)
    what = "rollback" if op.rollback else "update"
    if finish.outcome == "paused":
        message = f"service {op.service!r}: {what} paused: {finish.reason}"
        events(Event("service", op.service, "Paused", "failed", message))
        raise RolloutPaused(message, service=op.service)
    return _roll_back(op, runner, finish, backend, project, ingress, events, clock, sleep,
                      poll_interval)


def _roll_back(
    op: RollingUpdate,
    runner: _Runner,
    finish: machine.Finish,
    backend: Backend,
    project: str,
    ingress: IngressController | None,
    events: EventSink,
    clock: Clock,
    sleep: Sleep,
    poll_interval: float,
) -> RolloutResult:
    """Bring the replicas that no longer run the old config back to it."""
    touched = [
        slot
        for slot in runner.slots.values()
        if slot.update.number in finish.committed
        or (slot.update.number in finish.failed and not slot.start_first)
    ]
    missing = [s.update.number for s in touched if s.update.rollback_spec is None]
    if missing:
        message = (
            f"service {op.service!r}: update paused: {finish.reason}; it cannot be rolled back "
            f"because replicas {', '.join(map(str, missing))} record no previous configuration"
        )
        events(Event("service", op.service, "Paused", "failed", message))
        raise RolloutPaused(message, service=op.service)
    events(Event("service", op.service, "Rolling back", "working", finish.reason))
    back = RollingUpdate(
        id=f"rollback:{op.service}",
        reason=finish.reason,
        service=op.service,
        replicas=tuple(
            ReplicaUpdate(
                number=slot.update.number,
                old_id=slot.current_id,
                old_name=slot.update.spec.name,
                old_running=True,
                spec=slot.update.rollback_spec,  # type: ignore[arg-type]  # checked above
            )
            for slot in sorted(touched, key=lambda s: s.update.number)
        ),
        config=op.rollback_config,
        rollback_config=op.rollback_config,
        rollback=True,
        drain=op.drain,
        timeout=op.timeout,
    )
    if back.replicas:
        second = _Runner(back, backend, project, ingress, events, clock, sleep, poll_interval)
        ended = second.run()
        if ended.outcome != "completed":
            message = (
                f"service {op.service!r}: update failed ({finish.reason}) and its rollback "
                f"paused: {ended.reason}"
            )
            events(Event("service", op.service, "Paused", "failed", message))
            raise RolloutPaused(message, service=op.service)
    message = (
        f"service {op.service!r}: update failed ({finish.reason}); rolled back to the "
        "previous configuration"
    )
    events(Event("service", op.service, "Rolled back", "failed", message))
    raise RolledBack(message, service=op.service)


class _Runner:
    """One rollout: the machine's state plus the containers it is about."""

    def __init__(
        self,
        op: RollingUpdate,
        backend: Backend,
        project: str,
        ingress: IngressController | None,
        events: EventSink,
        clock: Clock,
        sleep: Sleep,
        poll_interval: float,
    ) -> None:
        self.op, self.backend, self.project, self.ingress = op, backend, project, ingress
        self.events, self.clock, self.sleep, self.poll = events, clock, sleep, poll_interval
        self.slots = {
            r.number: _Slot(r, r.old_id, r.old_running) for r in op.replicas
        }
        self.state = machine.begin(
            op.config,
            [r.number for r in op.replicas],
            rollback=op.rollback,
            ready_timeout=_ready_timeout(op),
        )

    def run(self) -> machine.Finish:
        while True:
            self.state, action = self.state.advance(self.clock())
            match action:
                case machine.StartBatch():
                    self._start_batch(action)
                case machine.Commit():
                    self._commit(self.slots[action.replica])
                    self._record(machine.Committed(action.replica, self.clock()))
                case machine.Discard():
                    self._discard(self.slots[action.replica], action.reason)
                    self._record(machine.Discarded(action.replica, self.clock()))
                case machine.Wait():
                    self._watch()
                    now = self.clock()
                    pause = self.poll if action.until is None else min(
                        self.poll, max(0.0, action.until - now)
                    )
                    if pause > 0:
                        self.sleep(pause)
                case machine.Finish():
                    return action

    def _record(self, event: machine.RolloutEvent) -> None:
        self.state = self.state.record(event)

    def _say(self, resource: str, name: str, action: str, status: str, message: str) -> None:
        self.events(Event(resource, name, action, status, message))  # type: ignore[arg-type]

    # -- batches -----------------------------------------------------------------------------

    def _start_batch(self, action: machine.StartBatch) -> None:
        verb = "Rolling back" if self.op.rollback else "Updating"
        numbers = ", ".join(str(n) for n in action.replicas)
        plural = "s" if len(action.replicas) > 1 else ""
        self._say(
            "service",
            self.op.service,
            verb,
            "working",
            f"batch {action.number}/{action.total}: replica{plural} {numbers} "
            f"({self.op.config.order})",
        )
        self._record(machine.BatchStarted(action.index, self.clock()))
        # the replicas of a batch are replaced at the same time, as swarm does: parallelism
        # is "how many at a time", so a stop-first batch of 2 has 2 replicas down at once
        outcomes: dict[int, PycomposeError | None] = {}
        if len(action.replicas) == 1:
            outcomes[action.replicas[0]] = self._try_start(self.slots[action.replicas[0]])
        else:
            with ThreadPoolExecutor(max_workers=len(action.replicas)) as pool:
                futures = {
                    number: pool.submit(self._try_start, self.slots[number])
                    for number in action.replicas
                }
            outcomes = {number: future.result() for number, future in futures.items()}
        for number in action.replicas:
            failure = outcomes[number]
            if failure is not None:
                self._record(machine.Failed(number, self.clock(), str(failure)))
            else:
                self._record(machine.Started(number, self.clock()))

    def _try_start(self, slot: _Slot) -> PycomposeError | None:
        try:
            self._start_replica(slot)
        except PycomposeError as exc:
            return exc
        return None

    def _start_replica(self, slot: _Slot) -> None:
        spec = slot.update.spec
        slot.start_first = self.op.config.order == "start-first" and slot.current_running
        if slot.start_first:
            generation = spec.labels.get(labels.UPDATE_GENERATION, "")
            slot.new_name = f"{spec.name}-up{generation or 'new'}"
            held = replace(spec, name=slot.new_name, attachments=_without_aliases(spec))
            self._say("container", slot.new_name, "Creating", "working", "beside the old one")
            slot.new_id = self.backend.create_container(held)
        else:
            self._retire(slot.current_id, slot.update.old_name, slot.current_running)
            slot.current_running = False
            slot.new_name = spec.name
            self._say("container", spec.name, "Creating", "working", "replacing the old one")
            slot.new_id = self.backend.create_container(spec)
            slot.current_id = slot.new_id
            slot.published = True
        self.backend.start_container(slot.new_id)
        self._say("container", slot.new_name, "Started", "done", "new config")

    # -- watching ----------------------------------------------------------------------------

    def _watch(self) -> None:
        """Turn what the backend shows of the new containers in flight into events."""
        for number in self.state.numbers("starting", "ready"):
            slot = self.slots[number]
            if slot.new_id is None:
                continue
            now = self.clock()
            try:
                seen = self.backend.inspect_container(slot.new_id)
            except NotFound:
                self._record(machine.Failed(number, now, "the new container disappeared"))
                continue
            failure = _failure(seen)
            if failure:
                self._record(machine.Failed(number, now, failure))
            elif self.state.replicas[number].phase == "starting" and _ready(seen):
                try:
                    self._publish(slot)
                except PycomposeError as exc:
                    self._record(machine.Failed(number, now, str(exc)))
                    continue
                self._say("container", slot.new_name, "Ready", "done", "serving")
                self._record(machine.Ready(number, self.clock()))

    def _publish(self, slot: _Slot) -> None:
        """Give a ready start-first replica its aliases and let the ingress pool see it."""
        if not slot.published and slot.new_id is not None:
            for attachment in slot.update.spec.attachments:
                if attachment.aliases:
                    self.backend.set_network_attachment(
                        slot.new_id, attachment.network, attachment
                    )
            slot.published = True
        if self.ingress is not None and self.op.drain:
            self.ingress.refresh(self.project)

    # -- commit / discard ----------------------------------------------------------------------

    def _commit(self, slot: _Slot) -> None:
        """The new replica survived the monitor: retire the old one, take over its name."""
        assert slot.new_id is not None
        if slot.start_first:
            self._retire(slot.current_id, slot.update.old_name, slot.current_running)
            self.backend.rename_container(slot.new_id, slot.update.spec.name)
            slot.current_id, slot.current_running = slot.new_id, True
        self._say("container", slot.update.spec.name, "Updated", "done", "monitor passed")

    def _discard(self, slot: _Slot, reason: str) -> None:
        self._say("container", slot.new_name or slot.update.spec.name, "Update failed",
                  "failed", reason)
        if slot.start_first and slot.new_id is not None:
            # the old replica still serves: the failed new one goes entirely
            self._retire(slot.new_id, slot.new_name, True)

    def _retire(self, container_id: str, name: str, running: bool) -> None:
        """Out of the ingress pool, off the networks (the service name stops resolving to
        it), stopped, removed. Each step tolerates a container that is already gone."""
        note_intentional_stop(self.project, [container_id])
        try:
            if running:
                if self.ingress is not None and self.op.drain:
                    self.ingress.drain(self.project, [container_id])
                    self.sleep(DRAIN_GRACE)
                seen = self.backend.inspect_container(container_id)
                if self.backend.capabilities().aliases_in_place and seen.addresses:
                    # names first, endpoint later: a client that resolved the service name
                    # just before still reaches a replica that serves
                    for network in sorted(seen.addresses):
                        self.backend.set_network_attachment(
                            container_id, network, Attachment(network=network)
                        )
                    self.sleep(DRAIN_GRACE)
                for network in sorted(seen.addresses):
                    self.backend.set_network_attachment(container_id, network, None)
                self.backend.stop_container(container_id, self.op.timeout)
            self.backend.remove_container(container_id, force=True)
        except NotFound:
            pass
        self._say("container", name, "Removed", "done", "retired")


def _without_aliases(spec: ContainerSpec) -> tuple[Attachment, ...]:
    return tuple(replace(a, aliases=()) for a in spec.attachments)


def _ready(seen: ObservedContainer) -> bool:
    return seen.status == "running" and seen.health in ("healthy", "none")


def _failure(seen: ObservedContainer) -> str:
    """Why a new replica counts as failed now, or ""."""
    if seen.status in ("exited", "dead"):
        return f"exited with code {seen.exit_code}"
    if seen.status == "restarting" or seen.restart_count > 0:
        return "restarted"
    if seen.health == "unhealthy":
        return "unhealthy"
    return ""


def _ready_timeout(op: RollingUpdate) -> float:
    """How long a new replica may take to become ready: a minute, or what its
    healthcheck needs to pass at its last allowed try (start period + retries * interval)."""
    longest = DEFAULT_READY_TIMEOUT
    for replica in op.replicas:
        check = replica.spec.service.healthcheck
        if check is None or check.disable:
            continue
        interval = check.interval if check.interval is not None else 30.0
        timeout = check.timeout if check.timeout is not None else 30.0
        retries = check.retries if check.retries is not None else 3
        start = check.start_period or 0.0
        longest = max(longest, start + (retries + 1) * (interval + timeout))
    return longest
