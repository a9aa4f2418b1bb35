"""FakeBackend keeps a real engine's observable rules, and its knobs do what they say."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from orchestrator import labels
from orchestrator.backends.base import Attachment, Backend, ContainerSpec, NetworkSpec
from orchestrator.backends.fake import FakeBackend, Program
from orchestrator.errors import BackendError, Conflict, NotFound, WaitTimeout
from orchestrator.model import Healthcheck, Network, Service


def spec(
    name: str = "p-app-1", *, service: str = "app", project: str = "p", **kw: Any
) -> ContainerSpec:
    return ContainerSpec(
        project=project,
        service=Service(service, image="img:1", **kw),
        name=name,
        number=int(name.rsplit("-", 1)[1]),
        labels={labels.PROJECT: project, labels.SERVICE: service, labels.ONEOFF: "False"},
    )


def running(fake: FakeBackend, name: str = "p-app-1", **kw: Any) -> str:
    container_id = fake.create_container(spec(name, **kw))
    fake.start_container(container_id)
    return container_id


def test_it_is_a_backend() -> None:
    assert isinstance(FakeBackend(), Backend)


def _network(fake: FakeBackend) -> str:
    fake.create_network(NetworkSpec(Network("n", "p_n"), {}))
    return "p_n"


def _rename_onto_a_taken_name(fake: FakeBackend) -> None:
    running(fake, "p-app-2")
    fake.rename_container(running(fake), "p-app-2")


ErrorCase = tuple[Callable[[FakeBackend], Any], type[Exception]]

ERRORS: dict[str, ErrorCase] = {
    "duplicate name": (
        lambda f: (f.create_container(spec()), f.create_container(spec())),
        Conflict,
    ),
    "remove running": (lambda f: f.remove_container(running(f)), Conflict),
    "remove missing": (lambda f: f.remove_container("nope"), NotFound),
    "start missing": (lambda f: f.start_container("nope"), NotFound),
    "inspect missing": (lambda f: f.inspect_container("nope"), NotFound),
    "missing network": (
        lambda f: f.create_container(
            ContainerSpec("p", Service("app"), "p-app-1", 1, {}, attachments=(Attachment("n"),))
        ),
        NotFound,
    ),
    "duplicate network": (lambda f: (_network(f), _network(f)), Conflict),
    "remove missing network": (lambda f: f.remove_network("p_n"), NotFound),
    "remove missing volume": (lambda f: f.remove_volume("p_v"), NotFound),
    "rename onto a taken name": (_rename_onto_a_taken_name, Conflict),
    "pull policy never without the image": (
        lambda f: FakeBackend(images=()).ensure_image("img:1", "never"),
        NotFound,
    ),
    "missing image": (
        lambda f: FakeBackend(missing_images={"img:9"}).ensure_image("img:9"),
        NotFound,
    ),
    "wait on a running one": (lambda f: f.wait_container(running(f)), WaitTimeout),
    "exec in a stopped one": (lambda f: f.exec(f.create_container(spec()), ["true"]), Conflict),
}


@pytest.mark.parametrize(("action", "error"), ERRORS.values(), ids=ERRORS.keys())
def test_engine_rules(action: Callable[[FakeBackend], Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        action(FakeBackend())


def test_force_removes_a_running_container() -> None:
    fake = FakeBackend()
    container_id = running(fake)

    fake.remove_container(container_id, force=True)

    assert fake.observe("p").containers == ()


@pytest.mark.parametrize(
    ("method", "call"),
    [
        ("start", lambda f: f.start_container(f.create_container(spec()))),
        ("create", lambda f: f.create_container(spec())),
        ("ensure_image", lambda f: f.ensure_image("p-app-1")),
        ("stop", lambda f: f.stop_container(running(f))),
    ],
)
def test_injected_failures(method: str, call: Callable[[FakeBackend], Any]) -> None:
    fake = FakeBackend(fail_on={method: {"p-app-1"}})

    with pytest.raises(BackendError, match="injected failure"):
        call(fake)
    assert (method, "p-app-1") in fake.calls


@pytest.mark.parametrize(
    ("knobs", "healthcheck", "expected"),
    [
        ({}, None, ("running", "none", None)),
        ({}, Healthcheck(test=("CMD", "true")), ("running", "healthy", None)),
        ({"health": {"app": "starting"}}, None, ("running", "starting", None)),
        ({"exit_codes": {"app": 3}}, None, ("exited", "none", 3)),
    ],
    ids=["plain", "healthcheck", "health knob", "exit code knob"],
)
def test_started_container_state(
    knobs: dict[str, Any], healthcheck: Healthcheck | None, expected: tuple[str, str, int | None]
) -> None:
    fake = FakeBackend(**knobs)
    found = fake.inspect_container(running(fake, healthcheck=healthcheck))

    assert (found.status, found.health, found.exit_code) == expected


def test_observe_keeps_to_one_project_and_parses_labels() -> None:
    fake = FakeBackend()
    running(fake, "p-app-1")
    fake.create_container(spec("q-app-1", project="q"))

    (found,) = fake.observe("p").containers

    assert (found.name, found.project, found.service, found.number) == ("p-app-1", "p", "app", 1)
    assert fake.list_projects() == ["p", "q"]


def test_a_network_in_use_cannot_be_removed() -> None:
    fake = FakeBackend()
    fake.create_network(NetworkSpec(Network("n", "p_n"), {labels.PROJECT: "p"}))
    container = ContainerSpec(
        "p", Service("app"), "p-app-1", 1, {labels.PROJECT: "p"}, attachments=(Attachment("p_n"),)
    )
    fake.start_container(fake.create_container(container))

    with pytest.raises(Conflict):
        fake.remove_network("p_n")


def test_programs_give_logs_and_signal_exit_codes() -> None:
    fake = FakeBackend()
    fake.set_program(
        "p-app-1", Program(stdout=("hi",), stderr=("oops",), signal_exit_codes={"SIGUSR1": 42})
    )
    container_id = running(fake)

    fake.kill_container(container_id, "SIGUSR1")

    assert fake.wait_container(container_id) == 42
    assert [(line.stream, line.text) for line in fake.logs(container_id)] == [
        ("stdout", "hi"),
        ("stderr", "oops"),
    ]


def test_the_call_log_names_containers() -> None:
    fake = FakeBackend()
    container_id = running(fake)
    fake.stop_container(container_id)
    fake.remove_container(container_id)

    assert fake.calls == [
        ("create", "p-app-1"),
        ("start", "p-app-1"),
        ("stop", "p-app-1"),
        ("remove", "p-app-1"),
    ]
