"""The executor on a FakeBackend: order from the call log, bounded parallelism, failure
containment (skips with the right event, independent branches carry on), and health gates
with a fake clock."""

from __future__ import annotations

import pytest

from orchestrator.backends.base import Health
from orchestrator.backends.fake import FakeBackend
from orchestrator.errors import DependencyFailed, WaitTimeout
from orchestrator.events import Event
from orchestrator.executor import ExecutionResult, execute
from orchestrator.ingress.routes import Route
from orchestrator.model import DependsOn, Healthcheck, PortConfig, Project
from orchestrator.plan.ops import EnsureImage, Plan
from orchestrator.plan.reconcile import reconcile
from tests.unit.plan.helpers import RecordingIngress, project, svc, up

CHECK = Healthcheck(test=("CMD", "true"))


class FakeClock:
    """Time that moves only when the executor sleeps; ``on_sleep`` runs at each sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps = 0
        self.on_sleep: list[tuple[int, FakeBackend, str, Health]] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.sleeps += 1
        for at, fake, service, health in self.on_sleep:
            if self.sleeps == at:
                fake.set_health(service, health)


def run_up(
    fake: FakeBackend,
    target: Project,
    *,
    events: list[Event] | None = None,
    clock: FakeClock | None = None,
    wait_timeout: float | None = 30,
    parallel: int = 4,
) -> ExecutionResult:
    clock = clock or FakeClock()
    sink = events.append if events is not None else (lambda _: None)
    return execute(
        reconcile(target, fake.observe(target.name)),
        fake,
        events=sink,
        parallel=parallel,
        ingress=RecordingIngress(),
        wait_timeout=wait_timeout,
        clock=clock,
        sleep=clock.sleep,
        poll_interval=1.0,
    )


CHAIN = project(
    svc("db", healthcheck=CHECK),
    svc("api", depends_on={"db": DependsOn("service_healthy")}),
    svc("web", depends_on={"api": DependsOn()}),
)


def test_dependencies_start_first_in_the_call_log() -> None:
    fake = FakeBackend()

    result = run_up(fake, CHAIN)

    assert result.ok
    calls = fake.calls
    assert calls.index(("start", "p-db-1")) < calls.index(("create", "p-api-1"))
    assert calls.index(("inspect", "p-db-1")) < calls.index(("create", "p-api-1"))
    assert calls.index(("start", "p-api-1")) < calls.index(("create", "p-web-1"))
    assert calls.index(("create_network", "p_default")) < calls.index(("create", "p-db-1"))


@pytest.mark.parametrize("parallel", [1, 2, 3])
def test_parallelism_is_bounded(parallel: int) -> None:
    fake = FakeBackend(call_delay=0.02)
    many = project(*(svc(f"s{i}") for i in range(6)))

    result = run_up(fake, many, parallel=parallel)

    assert result.ok
    assert fake.max_concurrent_calls == parallel


def test_a_failed_dependency_skips_its_dependents_only() -> None:
    fake = FakeBackend(fail_on={"start": {"p-db-1"}})
    events: list[Event] = []
    target = project(*CHAIN.services.values(), svc("cache"))

    result = run_up(fake, target, events=events)

    assert result.failed == ("start:p-db-1",)
    assert set(result.skipped) == {
        "await:db:service_healthy",
        "create:p-api-1",
        "start:p-api-1",
        "await:api:service_started",
        "create:p-web-1",
        "start:p-web-1",
    }
    skipped = {(e.name, e.message) for e in events if e.status == "skipped"}
    assert ("p-api-1", "dependency await:db:service_healthy failed") in skipped
    assert ("db", "dependency start:p-db-1 failed") in skipped
    assert fake.container("p-cache-1").status == "running"
    assert "p-api-1" not in fake.calls_to("create")


def test_health_gate_waits_until_healthy() -> None:
    fake = FakeBackend(health={"db": "starting"})
    clock = FakeClock()
    clock.on_sleep.append((3, fake, "db", "healthy"))

    result = run_up(fake, CHAIN, clock=clock, wait_timeout=30)

    assert result.ok
    assert clock.now == 3.0
    assert fake.container("p-api-1").status == "running"


def test_health_gate_times_out_on_the_fake_clock() -> None:
    fake = FakeBackend(health={"db": "starting"})
    clock = FakeClock()

    result = run_up(fake, CHAIN, clock=clock, wait_timeout=10)

    assert isinstance(result.errors["await:db:service_healthy"], WaitTimeout)
    assert clock.now == 10.0
    assert "create:p-api-1" in result.skipped


@pytest.mark.parametrize(
    ("health", "exit_codes", "condition", "ok"),
    [
        ({"db": "unhealthy"}, {}, "service_healthy", False),
        ({}, {}, "service_healthy", False),  # no healthcheck at all
        ({}, {"db": 0}, "service_completed_successfully", True),
        ({}, {"db": 3}, "service_completed_successfully", False),
        ({}, {"db": 3}, "service_started", True),
    ],
    ids=["unhealthy", "no healthcheck", "completed 0", "completed 3", "started then exited"],
)
def test_conditions(
    health: dict[str, Health], exit_codes: dict[str, int], condition: str, ok: bool
) -> None:
    fake = FakeBackend(health=health, exit_codes=exit_codes)
    clock = FakeClock()
    target = project(svc("db"), svc("api", depends_on={"db": DependsOn(condition)}))  # type: ignore[arg-type]

    result = run_up(fake, target, clock=clock, wait_timeout=None)

    assert result.ok is ok
    assert clock.now == 0.0  # decided on the first look, no waiting
    if not ok:
        assert isinstance(result.errors[f"await:db:{condition}"], DependencyFailed)


def test_an_optional_dependency_that_fails_does_not_block() -> None:
    fake = FakeBackend(fail_on={"start": {"p-db-1"}})
    events: list[Event] = []
    target = project(svc("db"), svc("api", depends_on={"db": DependsOn(required=False)}))

    result = run_up(fake, target, events=events)

    assert fake.container("p-api-1").status == "running"
    assert "start:p-api-1" in result.succeeded
    assert result.failed == ("start:p-db-1",)


def test_drain_comes_before_stop() -> None:
    fake = FakeBackend()
    scaled = project(svc("web", ports=(PortConfig(80, "8080"),), scale=2))
    up(fake, scaled)
    web2 = fake.container("p-web-2").id
    log: list[tuple[str, str]] = []
    ingress = RecordingIngress(log)
    original_stop = fake.stop_container

    def stop(container_id: str, timeout: float | None = None) -> None:
        log.append(("stop", container_id))
        original_stop(container_id, timeout)

    fake.stop_container = stop  # type: ignore[method-assign]
    plan = reconcile(
        project(svc("web", ports=(PortConfig(80, "8080"),))),
        fake.observe("p"),
        ingress=(Route("web", 8080, 80),),
    )

    result = execute(plan, fake, ingress=ingress)

    assert result.ok
    assert log == [("drain", web2), ("stop", web2), ("drain", web2)]


def test_a_cycle_in_the_plan_fails_instead_of_hanging() -> None:
    ops = (
        EnsureImage(id="a", reason="test", image="x"),
        EnsureImage(id="b", reason="test", image="y"),
        EnsureImage(id="c", reason="test", image="z"),
    )
    plan = Plan("p", ops, {"a": frozenset({"b"}), "b": frozenset({"a"})})

    result = execute(plan, FakeBackend())

    assert result.succeeded == ("c",)
    assert set(result.failed) == {"a", "b"}


def test_events_say_what_happens_to_each_op() -> None:
    events: list[Event] = []

    run_up(FakeBackend(), project(svc("web")), events=events)

    assert [
        (e.resource, e.name, e.action, e.status) for e in events if e.resource == "container"
    ] == [
        ("container", "p-web-1", "Creating", "working"),
        ("container", "p-web-1", "Created", "done"),
        ("container", "p-web-1", "Starting", "working"),
        ("container", "p-web-1", "Started", "done"),
    ]


@pytest.mark.parametrize(
    ("status", "health", "exit_code", "expected"),
    [
        ("running", "none", None, ""),
        ("running", "healthy", None, ""),
        ("running", "starting", None, None),
        ("created", "none", None, None),
        ("exited", "none", 0, ""),
        ("exited", "none", 3, "container c exited with code 3"),
        ("running", "unhealthy", None, "container c is unhealthy"),
    ],
)
def test_readiness_is_what_up_wait_asks_of_a_replica(
    status: str, health: str, exit_code: int | None, expected: str | None
) -> None:
    from orchestrator.backends.base import ObservedContainer
    from orchestrator.executor import readiness

    state = ObservedContainer(
        id="c1",
        name="c",
        project="p",
        service="s",
        number=1,
        status=status,  # type: ignore[arg-type]
        labels={},
        health=health,
        exit_code=exit_code,  # type: ignore[arg-type]
    )
    assert readiness(state) == expected
