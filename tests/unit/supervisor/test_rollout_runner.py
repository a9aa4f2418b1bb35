"""The rollout runner against the FakeBackend, planned by reconcile, with a fake clock.

What is checked is what a real engine would show afterwards (names, config hashes, update
generations, the spec labels) and the order of the calls that matter for traffic: a new
replica gets its aliases only once ready, an old one is drained and disconnected before
it is stopped.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from orchestrator import labels
from orchestrator.backends.fake import FakeBackend, Program
from orchestrator.errors import RolledBack, RolloutPaused
from orchestrator.executor import execute
from orchestrator.model import Deploy, Healthcheck, PortConfig, Project, UpdateConfig
from orchestrator.plan.hashing import config_hash
from orchestrator.plan.ops import RecreateContainer, RollingUpdate
from orchestrator.plan.reconcile import UpOptions, plan_rollback, reconcile
from orchestrator.plan.render import render_text
from orchestrator.supervisor.rollout_runner import run_rolling_update
from orchestrator.supervisor.specs import decode_service
from tests.unit.plan.helpers import RecordingIngress, project, svc, up


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.01)


def web(image: str = "img/web:1", replicas: int = 3, **update: object) -> Project:
    update.setdefault("monitor", 1.0)
    deploy = Deploy(
        replicas=replicas,
        update_config=UpdateConfig(**update),  # type: ignore[arg-type]
        rollback_config=UpdateConfig(parallelism=0, monitor=0.5),
    )
    return project(
        svc(
            "web",
            image=image,
            deploy=deploy,
            ports=(PortConfig(80, "8080"),),
            healthcheck=Healthcheck(test=("CMD", "true")),
        )
    )


def rollout_of(old: Project, new: Project, fake: FakeBackend) -> RollingUpdate:
    ingress = RecordingIngress()
    ingress.routes["p"] = []
    plan = reconcile(new, fake.observe("p"), UpOptions())
    ops = [op for op in plan.ops if isinstance(op, RollingUpdate)]
    assert len(ops) == 1, render_text(plan)
    return ops[0]


def run(op: RollingUpdate, fake: FakeBackend, clock: FakeClock, log: list[tuple[str, str]]) -> None:
    run_rolling_update(
        op,
        fake,
        project="p",
        ingress=RecordingIngress(log),
        clock=clock,
        sleep=clock.sleep,
        poll_interval=0.1,
    )


def state(fake: FakeBackend) -> list[tuple[str, str, str]]:
    return [
        (c.name, c.config_hash, c.labels.get(labels.UPDATE_GENERATION, ""))
        for c in fake.observe("p").service_containers("web")
    ]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def started(clock: FakeClock, old: Project) -> FakeBackend:
    fake = FakeBackend(clock=clock)
    up(fake, old)
    return fake


# -- planning


def test_a_changed_deploy_service_is_rolled_and_a_plain_one_recreated(clock: FakeClock) -> None:
    old = project(svc("web", deploy=Deploy(replicas=2)), svc("plain", scale=2))
    fake = started(clock, old)
    new = project(
        svc("web", image="img/web:2", deploy=Deploy(replicas=2)),
        svc("plain", image="img/plain:2", scale=2),
    )
    plan = reconcile(new, fake.observe("p"), UpOptions())
    rolled = [op for op in plan.ops if isinstance(op, RollingUpdate)]
    recreated = [op.spec.name for op in plan.ops if isinstance(op, RecreateContainer)]
    assert [op.service for op in rolled] == ["web"]
    assert [r.spec.name for r in rolled[0].replicas] == ["p-web-1", "p-web-2"]
    assert recreated == ["p-plain-1", "p-plain-2"]
    assert (
        "Update service web (config changed; replicas 1, 2 in 2 batches, stop-first"
        in "\n".join(render_text(plan))
    )
    # each new replica records its spec, the one it replaces and the next generation
    replica = rolled[0].replicas[0]
    assert decode_service("web", replica.spec.labels[labels.SPEC]) == new.services["web"]
    assert decode_service("web", replica.spec.labels[labels.PREVIOUS_SPEC]) == old.services["web"]
    assert replica.spec.labels[labels.UPDATE_GENERATION] == "1"
    assert replica.rollback_spec is not None
    assert replica.rollback_spec.labels[labels.CONFIG_HASH] == config_hash(old.services["web"], old)


def test_forced_recreate_of_a_deploy_service_stays_a_recreate(clock: FakeClock) -> None:
    fake = started(clock, web())
    plan = reconcile(web(), fake.observe("p"), UpOptions(force_recreate=True))
    assert not any(isinstance(op, RollingUpdate) for op in plan.ops)


# -- start-first / stop-first


def test_start_first_keeps_the_old_replica_until_the_new_one_survived(clock: FakeClock) -> None:
    old, new = web(order="start-first"), web("img/web:2", order="start-first")
    fake = started(clock, old)
    old_ids = {c.name: c.id for c in fake.observe("p").containers}
    op = rollout_of(old, new, fake)
    log: list[tuple[str, str]] = []
    fake.calls.clear()
    run(op, fake, clock, log)

    digest = config_hash(new.services["web"], new)
    assert state(fake) == [(f"p-web-{n}", digest, "1") for n in (1, 2, 3)]
    calls = [c for c in fake.calls if c[0] not in ("inspect", "observe")]
    first = calls[: calls.index(("rename", "p-web-1-up1")) + 1]
    assert first == [
        ("create", "p-web-1-up1"),
        ("start", "p-web-1-up1"),
        ("set_network_attachment", "p-web-1-up1"),  # aliases only once ready
        ("set_network_attachment", "p-web-1"),  # the old one leaves the network...
        ("stop", "p-web-1"),  # ...before it stops
        ("remove", "p-web-1"),
        ("rename", "p-web-1-up1"),
    ]
    # drained from the ingress pool in replica order, each before its stop
    assert [entry for entry in log if entry[0] == "drain"] == [
        ("drain", old_ids[f"p-web-{n}"]) for n in (1, 2, 3)
    ]
    # the new one was created without its aliases and got them back
    record = fake.container("p-web-1")
    assert [a.aliases for a in record.spec.attachments] == [("web",)]


def test_start_first_new_replica_is_created_without_aliases(clock: FakeClock) -> None:
    old, new = (
        web(replicas=1, order="start-first"),
        web("img/web:2", replicas=1, order="start-first"),
    )
    fake = started(clock, old)
    op = rollout_of(old, new, fake)
    seen: list[tuple[tuple[str, ...], ...]] = []
    original = fake.start_container

    def spy(container_id: str) -> None:
        record = fake.container(container_id)
        seen.append(tuple(a.aliases for a in record.spec.attachments))
        original(container_id)

    fake.start_container = spy  # type: ignore[method-assign]
    run(op, fake, clock, [])
    assert seen == [((),)]


def test_stop_first_stops_the_old_replica_first(clock: FakeClock) -> None:
    old, new = web(parallelism=2), web("img/web:2", parallelism=2)
    fake = started(clock, old)
    op = rollout_of(old, new, fake)
    fake.calls.clear()
    run(op, fake, clock, [])
    calls = [c for c in fake.calls if c[0] in ("stop", "remove", "create", "start")]
    # the two replicas of the batch are replaced at once (their calls interleave), but each
    # one's old container is stopped and removed before its new one is created and started
    for name in ("p-web-1", "p-web-2"):
        mine = [verb for verb, who in calls if who == name]
        assert mine[:4] == ["stop", "remove", "create", "start"], (name, calls)
    assert [n for n, *_ in state(fake)] == ["p-web-1", "p-web-2", "p-web-3"]


def test_batches_wait_for_the_delay_after_the_previous_batch(clock: FakeClock) -> None:
    old, new = web(replicas=4), web("img/web:2", replicas=4, parallelism=2, delay=1.0)
    fake = started(clock, old)
    op = rollout_of(old, new, fake)
    run(op, fake, clock, [])
    starts = {name: fake.container(name).started_at for name in ("p-web-1", "p-web-2", "p-web-3")}
    first_done = starts["p-web-1"] + 1.0  # its monitor
    assert starts["p-web-3"] is not None and first_done is not None
    assert starts["p-web-3"] >= first_done + 1.0
    assert starts["p-web-2"] < first_done  # same batch as replica 1


# -- failures


def broken(fake: FakeBackend, names: list[str]) -> None:
    for name in names:
        fake.set_program(name, Program(exit_code=1))


def test_start_first_failure_with_rollback_leaves_the_old_replicas(clock: FakeClock) -> None:
    old = web(order="start-first", failure_action="rollback")
    new = web("img/web:2", order="start-first", failure_action="rollback")
    fake = started(clock, old)
    before = state(fake)
    ids = [c.id for c in fake.observe("p").containers]
    broken(fake, ["p-web-1-up1"])
    with pytest.raises(RolledBack, match="exited with code 1"):
        run(rollout_of(old, new, fake), fake, clock, [])
    assert state(fake) == before
    assert [c.id for c in fake.observe("p").containers] == ids


def test_stop_first_failure_with_rollback_brings_the_old_config_back(clock: FakeClock) -> None:
    old = web(failure_action="rollback", max_failure_ratio=0.4)
    new = web("img/web:2", failure_action="rollback", max_failure_ratio=0.4)
    fake = started(clock, old)
    op = rollout_of(old, new, fake)
    # replica 1 updates fine; 2 and 3 exit: 2/3 > 0.4 after the second failure
    original = fake.create_container

    def create(spec):  # type: ignore[no-untyped-def]
        if spec.name in ("p-web-2", "p-web-3") and spec.service.image == "img/web:2":
            fake.set_program(spec.name, Program(exit_code=1))
        else:
            fake.programs.pop(spec.name, None)
        return original(spec)

    fake.create_container = create  # type: ignore[method-assign]
    with pytest.raises(RolledBack, match="2 of 3 replicas failed"):
        run(op, fake, clock, [])
    old_digest = config_hash(old.services["web"], old)
    assert [(n, h) for n, h, _ in state(fake)] == [(f"p-web-{n}", old_digest) for n in (1, 2, 3)]
    # the rolled-back replicas carry a later generation, and their previous spec is the new one
    gens = [g for *_, g in state(fake)]
    assert gens == ["2", "2", "2"]  # 1 was updated, 2 and 3 failed: all three go back
    record = fake.container("p-web-1")
    assert decode_service("web", record.spec.labels[labels.PREVIOUS_SPEC]) == new.services["web"]


def test_pause_stops_and_reports(clock: FakeClock) -> None:
    old, new = web(), web("img/web:2")
    fake = started(clock, old)
    broken(fake, ["p-web-1"])
    with pytest.raises(RolloutPaused, match="1 of 3 replicas failed"):
        run(rollout_of(old, new, fake), fake, clock, [])
    hashes = [h for _, h, _ in state(fake)]
    old_digest = config_hash(old.services["web"], old)
    assert hashes[1:] == [old_digest, old_digest]  # replicas 2, 3 untouched


def test_an_unhealthy_new_replica_fails_it(clock: FakeClock) -> None:
    old, new = (
        web(replicas=1, order="start-first"),
        web("img/web:2", replicas=1, order="start-first"),
    )
    fake = started(clock, old)
    fake.set_health("web", "unhealthy")
    with pytest.raises(RolloutPaused, match="unhealthy"):
        run(rollout_of(old, new, fake), fake, clock, [])
    assert [n for n, *_ in state(fake)] == ["p-web-1"]


def test_a_failing_rollback_pauses(clock: FakeClock) -> None:
    old = web(replicas=1, failure_action="rollback")
    new = web("img/web:2", replicas=1, failure_action="rollback")
    fake = started(clock, old)
    op = rollout_of(old, new, fake)
    broken(fake, ["p-web-1"])  # the new and the rolled-back container both exit
    with pytest.raises(RolloutPaused, match="rollback paused"):
        run(op, fake, clock, [])


def test_without_a_recorded_spec_a_rollback_pauses(clock: FakeClock) -> None:
    old = web(replicas=1, failure_action="rollback")
    new = web("img/web:2", replicas=1, failure_action="rollback")
    fake = started(clock, old)
    op = rollout_of(old, new, fake)
    op = replace(op, replicas=tuple(replace(r, rollback_spec=None) for r in op.replicas))
    broken(fake, ["p-web-1"])
    with pytest.raises(RolloutPaused, match="record no previous configuration"):
        run(op, fake, clock, [])


# -- `pycompose rollback` and the executor


def test_rollback_after_a_good_update_and_back_again(clock: FakeClock) -> None:
    old, new = web(), web("img/web:2")
    fake = started(clock, old)
    run(rollout_of(old, new, fake), fake, clock, [])
    current = fake.observe("p")
    previous = decode_service("web", current.containers[0].labels[labels.PREVIOUS_SPEC])
    plan = plan_rollback(new, current, "web", previous)
    [op] = [o for o in plan.ops if isinstance(o, RollingUpdate)]
    assert op.rollback and op.config == UpdateConfig(parallelism=0, monitor=0.5)
    result = execute(
        plan, fake, ingress=RecordingIngress(), clock=clock, sleep=clock.sleep, poll_interval=0.05
    )
    assert result.ok, result.errors
    old_digest = config_hash(old.services["web"], old)
    assert [(n, h, g) for n, h, g in state(fake)] == [
        (f"p-web-{n}", old_digest, "2") for n in (1, 2, 3)
    ]
    # and `up` with the new file rolls forward again
    again = reconcile(new, fake.observe("p"), UpOptions())
    assert any(isinstance(o, RollingUpdate) for o in again.ops)


def test_executor_reports_a_rolled_back_update(clock: FakeClock) -> None:
    old = web(replicas=1, failure_action="rollback")
    new = web("img/web:2", replicas=1, failure_action="rollback")
    fake = started(clock, old)
    original = fake.create_container

    def create(spec):  # type: ignore[no-untyped-def]
        exit_code = 1 if spec.service.image == "img/web:2" else None
        fake.set_program(spec.name, Program(exit_code=exit_code))
        return original(spec)

    fake.create_container = create  # type: ignore[method-assign]
    plan = reconcile(new, fake.observe("p"), UpOptions())
    result = execute(
        plan, fake, ingress=RecordingIngress(), clock=clock, sleep=clock.sleep, poll_interval=0.05
    )
    assert result.failed == ("update:web",)
    assert isinstance(result.errors["update:web"], RolledBack)
    assert [h for _, h, _ in state(fake)] == [config_hash(old.services["web"], old)]


# -- the spec labels


def test_a_large_spec_is_compressed_and_reads_back() -> None:
    from orchestrator.supervisor.specs import COMPRESS_ABOVE, encode_service

    big = svc("web", environment={f"K{i}": "v" * 40 for i in range(60)})
    text = encode_service(big)
    assert text.startswith("zlib:") and len(text) < len(str(big.environment))
    assert decode_service("web", text) == big
    small = svc("web")
    assert len(encode_service(small)) <= COMPRESS_ABOVE
    assert decode_service("web", encode_service(small)) == small


def test_an_unreadable_spec_is_a_config_error() -> None:
    from orchestrator.errors import ConfigError

    with pytest.raises(ConfigError, match="unreadable"):
        decode_service("web", "zlib:not-base64!")


def test_the_replicas_of_a_batch_are_replaced_at_the_same_time(clock: FakeClock) -> None:
    """parallelism is how many at a time (as in swarm): both stops of a stop-first batch of 2
    are in flight together, or the barrier breaks."""
    import threading

    class Together(FakeBackend):
        barrier = threading.Barrier(2, timeout=5)

        def stop_container(self, container_id: str, timeout: float | None = None) -> None:
            self.barrier.wait()
            super().stop_container(container_id, timeout)

    old, new = web(replicas=2, parallelism=2), web("img/web:2", replicas=2, parallelism=2)
    fake = Together(clock=clock)
    up(fake, old)
    op = rollout_of(old, new, fake)
    run(op, fake, clock, [])
    digest = config_hash(new.services["web"], new)
    assert state(fake) == [(f"p-web-{n}", digest, "1") for n in (1, 2)]
