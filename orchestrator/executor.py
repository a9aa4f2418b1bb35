"""Runs a Plan against a Backend: every op once its prerequisites succeeded, in parallel.

No decisions are taken here; the plan made them. What the executor adds is the running:
a bounded thread pool, events for each op, and failure containment: an op that fails
makes every op that needs it (directly or not) "skipped", independent branches carry on,
and nothing waits forever for an op that will never run. An ``AwaitCondition`` marked not
required that fails or is skipped lets its dependents go ahead, with a warning.

``plan.warnings`` are not emitted here: the caller shows them, also for ``--dry-run``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from orchestrator.backends.base import Backend, ContainerSpec, ObservedContainer
from orchestrator.backends.spec import resolve_network_mode
from orchestrator.errors import (
    BackendError,
    DependencyFailed,
    PycomposeError,
    Unsupported,
    WaitTimeout,
)
from orchestrator.events import Event, EventSink, Status, discard
from orchestrator.ingress.routes import IngressController
from orchestrator.plan.ops import (
    AnyOp,
    AwaitCondition,
    CreateContainer,
    CreateNetwork,
    CreateVolume,
    EnsureImage,
    EnsureIngress,
    Plan,
    RecreateContainer,
    RemoveContainer,
    RemoveIngress,
    RemoveNetwork,
    RemoveVolume,
    RollingUpdate,
    StartContainer,
    StopContainer,
)
from orchestrator.plan.render import describe
from orchestrator.supervisor.intents import note_intentional_stop

Clock = Callable[[], float]
Sleep = Callable[[float], None]

# (present participle, past) of each verb, for the events
_ACTIONS = {
    "Ensure": ("Checking", "Present"),
    "Create": ("Creating", "Created"),
    "Recreate": ("Recreating", "Recreated"),
    "Start": ("Starting", "Started"),
    "Stop": ("Stopping", "Stopped"),
    "Remove": ("Removing", "Removed"),
    "Wait for": ("Waiting", "Ready"),
    "Publish": ("Publishing", "Published"),
    "Update": ("Updating", "Updated"),
    "Roll back": ("Rolling back", "Rolled back"),
}


def default_parallelism() -> int:
    """Ops mostly wait on the engine (a stop waits out its grace period), not on our CPU, so
    the bound is generous: the engine queues what it cannot do at once."""
    return max(32, 8 * (os.cpu_count() or 1))


@dataclass(frozen=True)
class ExecutionResult:
    """Which ops ran and how; the caller maps failures to an exit status."""

    succeeded: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    errors: Mapping[str, PycomposeError] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped


def execute(
    plan: Plan,
    backend: Backend,
    *,
    events: EventSink = discard,
    parallel: int | None = None,
    ingress: IngressController | None = None,
    wait_timeout: float | None = None,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
    poll_interval: float = 0.5,
) -> ExecutionResult:
    """Run ``plan``; ``wait_timeout`` bounds each AwaitCondition (None: no bound)."""
    workers = parallel if parallel is not None else default_parallelism()
    if workers < 1:
        raise ValueError(f"parallel must be at least 1, got {workers}")
    run = _Run(plan, backend, events, ingress, wait_timeout, clock, sleep, poll_interval)
    return run.execute(workers)


class _Run:
    """The state of one execution; touched only by the scheduling thread, except ``ids``."""

    def __init__(
        self,
        plan: Plan,
        backend: Backend,
        events: EventSink,
        ingress: IngressController | None,
        wait_timeout: float | None,
        clock: Clock,
        sleep: Sleep,
        poll_interval: float,
    ) -> None:
        self.plan, self.backend, self.events, self.ingress = plan, backend, events, ingress
        self.wait_timeout, self.clock, self.sleep = wait_timeout, clock, sleep
        self.poll_interval = poll_interval
        self.succeeded: list[str] = []
        self.failed: list[str] = []
        self.skipped: list[str] = []
        self.errors: dict[str, PycomposeError] = {}
        self.ids: dict[str, str] = {}  # container name -> id, for containers this run made

    # -- scheduling -----------------------------------------------------------------------

    def execute(self, workers: int) -> ExecutionResult:
        pending = {op.id: op for op in self.plan.ops}
        running: dict[Future[str | None], AnyOp] = {}
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pycompose") as pool:
            while pending or running:
                self._skip_blocked(pending)
                for op in self._ready(pending):
                    if len(running) >= workers:
                        break
                    del pending[op.id]
                    self._emit(op, "working")
                    running[pool.submit(self._run_op, op)] = op
                if not running:
                    if pending:
                        self._fail_stuck(pending)
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    self._finish(running.pop(future), future)
        return ExecutionResult(
            tuple(self.succeeded), tuple(self.failed), tuple(self.skipped), dict(self.errors)
        )

    def _ready(self, pending: Mapping[str, AnyOp]) -> list[AnyOp]:
        done = set(self.succeeded)
        return [op for op in pending.values() if self.plan.needs(op.id) <= done | self._lenient()]

    def _lenient(self) -> set[str]:
        """Not-required awaits that failed or were skipped: their dependents still go."""
        out: set[str] = set()
        for op_id in (*self.failed, *self.skipped):
            op = self.plan.op(op_id)
            if isinstance(op, AwaitCondition) and not op.required:
                out.add(op_id)
        return out

    def _skip_blocked(self, pending: dict[str, AnyOp]) -> None:
        """Skip, transitively, every pending op that needs one that failed or was skipped."""
        changed = True
        while changed:
            changed = False
            bad = (set(self.failed) | set(self.skipped)) - self._lenient()
            for op in list(pending.values()):
                blocker = sorted(self.plan.needs(op.id) & bad)
                if not blocker:
                    continue
                del pending[op.id]
                self.skipped.append(op.id)
                self._emit(op, "skipped", f"dependency {blocker[0]} failed")
                changed = True

    def _fail_stuck(self, pending: dict[str, AnyOp]) -> None:
        # only reachable when the edges form a cycle: fail loudly instead of waiting
        for op in list(pending.values()):
            del pending[op.id]
            error = DependencyFailed(f"{op.id} waits on a cycle of operations in the plan")
            self.failed.append(op.id)
            self.errors[op.id] = error
            self._emit(op, "failed", str(error))

    def _finish(self, op: AnyOp, future: Future[str | None]) -> None:
        error = future.exception()
        if error is None:
            created = future.result()
            if created is not None and isinstance(op, CreateContainer | RecreateContainer):
                self.ids[op.spec.name] = created
            self.succeeded.append(op.id)
            self._emit(op, "done")
            return
        mapped = error if isinstance(error, PycomposeError) else BackendError(str(error))
        if mapped is not error:
            mapped.__cause__ = error
        if isinstance(op, AwaitCondition) and not op.required:
            self.failed.append(op.id)
            self.errors[op.id] = mapped
            self._emit(op, "warning", f"optional dependency not ready: {mapped}")
            return
        self.failed.append(op.id)
        self.errors[op.id] = mapped
        self._emit(op, "failed", str(mapped))

    def _emit(self, op: AnyOp, status: Status, message: str = "") -> None:
        verb, kind, name = describe(op)
        working, past = _ACTIONS.get(verb, (verb, verb))
        action = working if status == "working" else past if status == "done" else verb
        self.events(Event(kind, name, action, status, message or op.reason))

    # -- one op, on a worker thread --------------------------------------------------------

    def _run_op(self, op: AnyOp) -> str | None:
        backend = self.backend
        match op:
            case EnsureImage():
                backend.ensure_image(op.image, op.pull_policy)
            case CreateNetwork():
                backend.create_network(op.spec)
            case CreateVolume():
                backend.create_volume(op.spec)
            case CreateContainer():
                return backend.create_container(self._resolved(op.spec))
            case RecreateContainer():
                note_intentional_stop(self.plan.project, [op.old_id])
                self._drain(op.drain, op.old_id)
                backend.stop_container(op.old_id, op.timeout)
                backend.remove_container(op.old_id)
                return backend.create_container(self._resolved(op.spec))
            case StartContainer():
                backend.start_container(self._id(op.name, op.container_id))
            case StopContainer():
                note_intentional_stop(self.plan.project, [op.container_id])
                self._drain(op.drain, op.container_id)
                backend.stop_container(op.container_id, op.timeout)
            case RemoveContainer():
                note_intentional_stop(self.plan.project, [op.container_id])
                self._drain(op.drain, op.container_id)
                backend.remove_container(op.container_id)
            case RollingUpdate():
                from orchestrator.supervisor.rollout_runner import run_rolling_update

                run_rolling_update(
                    op,
                    backend,
                    project=self.plan.project,
                    ingress=self.ingress,
                    events=self.events,
                    clock=self.clock,
                    sleep=self.sleep,
                    poll_interval=min(self.poll_interval, 0.2),
                )
            case RemoveNetwork():
                backend.remove_network(op.name)
            case RemoveVolume():
                backend.remove_volume(op.name)
            case AwaitCondition():
                self._await(op)
            case EnsureIngress():
                if self.ingress is None:
                    raise Unsupported(
                        "this plan publishes ingress ports but no ingress proxy is available"
                    )
                self.ingress.ensure(self.plan.project, backend.capabilities().name, op.routes)
            case RemoveIngress():
                if self.ingress is not None:
                    self.ingress.remove(self.plan.project)
        return None

    def _resolved(self, spec: ContainerSpec) -> ContainerSpec:
        """The spec with a deferred ``service:x`` network mode pointed at x's container."""
        mode = spec.network_mode or ""
        if not mode.startswith("service:"):
            return spec
        return resolve_network_mode(spec, self.backend.observe(self.plan.project))

    def _id(self, name: str, known: str | None) -> str:
        if known is not None:
            return known
        created = self.ids.get(name)
        if created is None:
            raise DependencyFailed(f"container {name!r} was not created by this plan")
        return created

    def _drain(self, wanted: bool, container_id: str) -> None:
        if wanted and self.ingress is not None:
            self.ingress.drain(self.plan.project, [container_id])

    def _await(self, op: AwaitCondition) -> None:
        ids = self._await_ids(op)
        deadline = None if self.wait_timeout is None else self.clock() + self.wait_timeout
        while True:
            pending = False
            for container_id in ids:
                state = self.backend.inspect_container(container_id)
                verdict = _verdict(op.condition, state)
                if verdict is None:
                    pending = True
                elif verdict:
                    raise DependencyFailed(
                        f"service {op.service!r} is not "
                        f"{op.condition.removeprefix('service_').replace('_', ' ')}: {verdict}"
                    )
            if not pending:
                return
            if deadline is not None and self.clock() >= deadline:
                raise WaitTimeout(
                    f"service {op.service!r} was not "
                    f"{op.condition.removeprefix('service_').replace('_', ' ')} "
                    f"within {self.wait_timeout:g}s"
                )
            self.sleep(self.poll_interval)

    def _await_ids(self, op: AwaitCondition) -> list[str]:
        missing = [name for name in op.containers if name not in self.ids]
        found: dict[str, str] = {}
        if missing:
            observed = self.backend.observe(self.plan.project)
            found = {c.name: c.id for c in observed.containers}
        out: list[str] = []
        for name in op.containers:
            container_id = self.ids.get(name) or found.get(name)
            if container_id is None:
                raise DependencyFailed(f"container {name!r} of service {op.service!r} is missing")
            out.append(container_id)
        return out


def readiness(state: ObservedContainer) -> str | None:
    """What `up --wait` asks of a replica, judged like ``_verdict``: running (and healthy
    when it has a healthcheck), or a one-shot that exited 0."""
    if state.status in ("exited", "dead"):
        return _verdict("service_completed_successfully", state)
    if state.health == "none":
        return _verdict("service_started", state) if state.status == "running" else None
    return _verdict("service_healthy", state)


def _verdict(condition: str, state: ObservedContainer) -> str | None:
    """ "" when ``state`` meets ``condition``, None while it may still, else why it cannot."""
    status = state.status
    if condition == "service_started":
        return None if status == "created" else ""
    if condition == "service_healthy":
        if status in ("exited", "dead"):
            return f"container {state.name} exited with code {state.exit_code}"
        if status != "running" or state.health == "starting":
            return None
        if state.health == "healthy":
            return ""
        if state.health == "unhealthy":
            return f"container {state.name} is unhealthy"
        return f"container {state.name} has no healthcheck"
    # service_completed_successfully
    if status in ("exited", "dead"):
        if state.exit_code == 0:
            return ""
        return f"container {state.name} exited with code {state.exit_code}"
    return None
