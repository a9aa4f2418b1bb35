"""The supervisor loop on the fake backend with a fake clock: it acts on the decisions,
starts in depends_on order behind health gates, honours intents, replaces unhealthy
replicas, and a new instance (after a crash) continues from the saved state."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.api import config_document
from orchestrator.backends.base import Backend
from orchestrator.backends.fake import FakeBackend
from orchestrator.backends.spec import build_container_spec
from orchestrator.loader.discover import LoadOptions
from orchestrator.loader.pipeline import load_project
from orchestrator.model import Project
from orchestrator.plan.hashing import config_hash
from orchestrator.supervisor import intents, state
from orchestrator.supervisor.daemon import Supervisor


class Clock:
    """Wall-clock-like (intents are stamped with real time), but moved by the test."""

    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PYCOMPOSE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PYCOMPOSE_RUN_DIR", str(tmp_path / "run"))
    return tmp_path


def setup(text: str, tmp_path: Path) -> tuple[Project, FakeBackend, Clock]:
    project = load_project(
        LoadOptions(
            files=("-",),
            stdin_text=text,
            project_name="p",
            environ={},
            working_directory=str(tmp_path),
        )
    ).project
    clock = Clock()
    fake = FakeBackend(clock=clock)
    for network in project.networks.values():
        fake.add_network(network.name)
    for service in project.services.values():
        spec = build_container_spec(
            project,
            service,
            1,
            config_hash=config_hash(service, project),
            observed=fake.observe("p"),
            supervised_restarts=True,
        )
        fake.start_container(fake.create_container(spec))
    state.register("p", "fake", config_document(project), working_dir=str(tmp_path))
    return project, fake, clock


def supervisor(fake: Backend, clock: Clock) -> Supervisor:
    def open_backend(name: str) -> Backend:
        return fake

    sup = Supervisor(clock=clock, open_backend=open_backend)
    sup.state = state.load_state()
    return sup


CRASHING = """
services:
  crash:
    image: busybox
    deploy: {restart_policy: {condition: on-failure, max_attempts: 2, delay: 2s}}
"""


def test_restarts_after_the_delay_and_a_new_instance_keeps_counting(tmp_path: Path) -> None:
    _, fake, clock = setup(CRASHING, tmp_path)
    sup = supervisor(fake, clock)
    fake.exit_container("p-crash-1", 1)
    sup.pass_once()
    assert fake.container("p-crash-1").status == "exited"  # waiting out the delay
    assert sup.next_due == pytest.approx(clock.now + 2.0)
    clock.now += 2.0
    sup.pass_once()
    assert fake.container("p-crash-1").status == "running"  # restart 1
    fake.exit_container("p-crash-1", 1)
    sup.pass_once()  # restart 2 decided and saved, then the supervisor "crashes"
    clock.now += 2.0
    again = supervisor(fake, clock)
    again.pass_once()
    assert fake.container("p-crash-1").status == "running"  # restart 2, not counted twice
    fake.exit_container("p-crash-1", 1)
    clock.now += 10.0
    again.pass_once()
    assert fake.container("p-crash-1").status == "exited"  # max_attempts: 2 reached
    assert fake.calls_to("start").count("p-crash-1") == 3


def test_exit_zero_under_on_failure_and_stops_on_purpose_are_left_alone(tmp_path: Path) -> None:
    _, fake, clock = setup(CRASHING, tmp_path)
    sup = supervisor(fake, clock)
    fake.exit_container("p-crash-1", 0)
    clock.now += 10
    sup.pass_once()
    assert fake.container("p-crash-1").status == "exited"
    fake.start_container(fake.container("p-crash-1").id)
    intents.note_intentional_stop("p", [fake.container("p-crash-1").id])
    fake.exit_container("p-crash-1", 137)
    clock.now += 10
    sup.pass_once()
    assert fake.container("p-crash-1").status == "exited"  # stopped on purpose


STACK = """
services:
  db:
    image: busybox
    restart: always
    healthcheck: {test: ["CMD", "true"], interval: 1s}
  api:
    image: busybox
    restart: unless-stopped
    depends_on: {db: {condition: service_healthy}}
  web:
    image: busybox
    restart: always
    depends_on: [api]
"""


def test_after_a_reboot_starts_in_depends_on_order_behind_health_gates(tmp_path: Path) -> None:
    _, fake, clock = setup(STACK, tmp_path)
    for name in ("p-web-1", "p-api-1", "p-db-1"):
        fake.exit_container(name, 255)  # the host went down
    fake.health["db"] = "starting"
    fake.calls.clear()
    clock.now += 60
    sup = supervisor(fake, clock)
    sup.pass_once()
    assert fake.calls_to("start") == ["p-db-1"]  # api waits for db, web for api
    clock.now += 1
    sup.pass_once()
    assert fake.calls_to("start") == ["p-db-1"]  # db is still starting its healthcheck
    fake.set_health("db", "healthy")
    clock.now += 1
    sup.pass_once()
    assert fake.calls_to("start") == ["p-db-1", "p-api-1"]
    clock.now += 1
    sup.pass_once()
    assert fake.calls_to("start") == ["p-db-1", "p-api-1", "p-web-1"]


UNHEALTHY = """
services:
  web:
    image: busybox
    healthcheck: {test: ["CMD", "true"], interval: 1s}
  kept:
    image: busybox
    x-pycompose: {replace_unhealthy: false}
    healthcheck: {test: ["CMD", "true"], interval: 1s}
"""


def test_unhealthy_replicas_are_replaced_from_the_spec(tmp_path: Path) -> None:
    project, fake, clock = setup(UNHEALTHY, tmp_path)
    old_web, old_kept = fake.container("p-web-1").id, fake.container("p-kept-1").id
    fake.set_health("web", "unhealthy")
    fake.set_health("kept", "unhealthy")
    fake.health.clear()  # a new container starts healthy
    sup = supervisor(fake, clock)
    sup.pass_once()
    new = fake.container("p-web-1")
    assert new.id != old_web and new.status == "running"
    assert new.spec.labels["io.pycompose.config-hash"] == config_hash(
        project.services["web"], project
    )
    assert new.spec.engine_restart == "no"
    assert fake.container("p-kept-1").id == old_kept  # opted out
    saved = state.load_state().slots["p/web/1"]
    assert saved.container_id == new.id and saved.replacing is None
    assert len(saved.replacements) == 1


def test_a_replacement_cut_short_by_a_crash_is_finished(tmp_path: Path) -> None:
    _, fake, clock = setup(UNHEALTHY, tmp_path)
    old = fake.container("p-web-1").id
    saved = state.SupervisorState(
        slots={"p/web/1": state.Slot(old, replacements=(clock.now,), replacing=old)}
    )
    state.save_state(saved)
    fake.remove_container(old, force=True)  # the crash came after the remove
    sup = supervisor(fake, clock)
    sup.pass_once()
    assert fake.container("p-web-1").status == "running"
    assert state.load_state().slots["p/web/1"].replacing is None


def test_unregistered_projects_are_forgotten(tmp_path: Path) -> None:
    _, fake, clock = setup(CRASHING, tmp_path)
    sup = supervisor(fake, clock)
    sup.pass_once()
    assert "p" in sup.watched and state.load_state().slots
    state.unregister("p")
    sup.pass_once()
    assert not sup.watched and not state.load_state().slots
