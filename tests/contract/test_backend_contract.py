"""One suite of behaviours, run over every backend we have.

Each backend comes with a small harness: how to get the test image, and how a "program"
(print these lines, exit with this code, or run until signalled) is spelled for it. Real
engines get a busybox shell script; a fake gets told the same facts through its own knobs.
Add a backend by adding a harness to HARNESSES.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from orchestrator import labels as L
from orchestrator.backends.base import (
    Attachment,
    Backend,
    ContainerSpec,
    ExecResult,
    NetworkSpec,
    ObservedContainer,
    VolumeSpec,
)
from orchestrator.errors import Conflict, NotFound
from orchestrator.model import Healthcheck, Network, Service, Volume


@dataclass(frozen=True)
class Program:
    """What a container does, said once for every backend."""

    stdout: tuple[str, ...] = ()
    stderr: tuple[str, ...] = ()
    exit_code: int = 0
    forever: bool = False  # run until stopped: SIGTERM → exit 0, SIGUSR1 → exit 42


def shell_script(program: Program) -> tuple[str, ...]:
    """The program as a busybox ``sh -c`` command line."""
    parts = [f"echo '{line}'" for line in program.stdout]
    parts += [f"echo '{line}' >&2" for line in program.stderr]
    if program.forever:
        parts += ["trap 'exit 0' TERM", "trap 'exit 42' USR1", "while :; do sleep 1 & wait; done"]
    else:
        parts.append(f"exit {program.exit_code}")
    return ("/bin/sh", "-c", "; ".join(parts))


def _nothing_to_prepare(*_: object) -> None:
    """Real engines run the program itself: nothing to tell them beforehand."""


@dataclass
class Harness:
    backend: Backend
    image: str
    # hooks for backends that must be told what a container or an exec will do (fakes)
    prepare: Callable[[ContainerSpec, Program], None] = _nothing_to_prepare
    prepare_exec: Callable[[tuple[str, ...], ExecResult], None] = _nothing_to_prepare
    # removes what a test left behind where the project_name fixture cannot see it
    cleanup: Callable[[], None] = _nothing_to_prepare


def _docker_harness(request: pytest.FixtureRequest) -> Harness:
    request.getfixturevalue("docker_client")  # skips, or fails under PYCOMPOSE_REQUIRE_DOCKER=1
    image = request.getfixturevalue("busybox_image")
    from orchestrator.backends.docker import DockerBackend

    return Harness(DockerBackend.from_env(), image)


def _fake_harness(request: pytest.FixtureRequest) -> Harness:
    from orchestrator.backends import fake

    backend = fake.FakeBackend()

    def prepare(spec: ContainerSpec, program: Program) -> None:
        backend.set_program(
            spec.name,
            fake.Program(
                stdout=program.stdout,
                stderr=program.stderr,
                exit_code=None if program.forever else program.exit_code,
                signal_exit_codes={"SIGTERM": 0, "SIGUSR1": 42} if program.forever else {},
            ),
        )

    def prepare_exec(command: tuple[str, ...], result: ExecResult) -> None:
        backend.exec_results[command] = result

    return Harness(backend, "pycompose-test/busybox:1", prepare, prepare_exec)


def _namespace_harness(request: pytest.FixtureRequest) -> Harness:
    """The built-in runtime under a state root shared by this session's contract tests,
    with the busybox test image copied from the local Docker engine once."""
    import os

    if os.geteuid() != 0:
        pytest.skip("the namespace backend needs root")
    image = request.getfixturevalue("busybox_image")
    from orchestrator.backends.factory import _docker_export
    from orchestrator.backends.namespace import NamespaceBackend

    if "root" not in _NAMESPACE_ROOT:
        factory: pytest.TempPathFactory = request.getfixturevalue("tmp_path_factory")
        _NAMESPACE_ROOT["root"] = factory.mktemp("pycompose-ns-contract")
    backend = NamespaceBackend(_NAMESPACE_ROOT["root"], image_source=_docker_export)
    backend.ensure_image(image)
    project = request.getfixturevalue("project_name")

    def cleanup() -> None:
        state = backend.observe(project)
        for container in state.containers:
            backend.remove_container(container.id, force=True)
        for network in state.networks:
            backend.remove_network(network.name)
        for volume in state.volumes:
            backend.remove_volume(volume.name)

    return Harness(backend, image, cleanup=cleanup)


_NAMESPACE_ROOT: dict[str, Any] = {}

HARNESSES: dict[str, Callable[[pytest.FixtureRequest], Harness]] = {
    "fake": _fake_harness,
    "docker": _docker_harness,
    "namespace": _namespace_harness,
}


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest, project_name: str) -> Iterator[Harness]:
    made = HARNESSES[request.param](request)
    made.backend.ensure_image(made.image, "never")
    yield made
    made.cleanup()
    made.backend.close()


def container_spec(
    harness: Harness,
    project: str,
    program: Program,
    *,
    service: str = "app",
    number: int = 1,
    name: str | None = None,
    healthcheck: Healthcheck | None = None,
    networks: tuple[str, ...] = (),
) -> ContainerSpec:
    spec = ContainerSpec(
        project=project,
        service=Service(
            name=service,
            image=harness.image,
            command=shell_script(program),
            healthcheck=healthcheck,
            stop_grace_period=10,
        ),
        name=name or L.container_name(project, service, number),
        number=number,
        labels={
            L.PROJECT: project,
            L.SERVICE: service,
            L.CONTAINER_NUMBER: str(number),
            L.ONEOFF: "False",
            "test.label": "yes",
        },
        attachments=tuple(Attachment(n, aliases=(service,)) for n in networks),
    )
    harness.prepare(spec, program)
    return spec


def run(harness: Harness, spec: ContainerSpec) -> str:
    container_id = harness.backend.create_container(spec)
    harness.backend.start_container(container_id)
    return container_id


def eventually(
    check: Callable[[], ObservedContainer], until: Callable[[ObservedContainer], bool]
) -> ObservedContainer:
    deadline = time.monotonic() + 30
    while True:
        found = check()
        if until(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_network_create_observe_remove(harness: Harness, project_name: str) -> None:
    name = f"{project_name}_front"
    network = Network(key="front", name=name, labels={"from.file": "1"})
    harness.backend.create_network(NetworkSpec(network, {L.PROJECT: project_name}))

    observed = {n.name: n for n in harness.backend.observe(project_name).networks}
    assert observed[name].labels == {"from.file": "1", L.PROJECT: project_name}

    harness.backend.remove_network(name)
    assert harness.backend.observe(project_name).networks == ()


def test_volume_create_observe_remove(harness: Harness, project_name: str) -> None:
    name = f"{project_name}_data"
    volume = Volume(key="data", name=name, labels={"from.file": "1"})
    harness.backend.create_volume(VolumeSpec(volume, {L.PROJECT: project_name}))

    observed = {v.name: v for v in harness.backend.observe(project_name).volumes}
    assert observed[name].labels == {"from.file": "1", L.PROJECT: project_name}

    harness.backend.remove_volume(name)
    assert harness.backend.observe(project_name).volumes == ()


def test_started_container_is_observed_running(harness: Harness, project_name: str) -> None:
    spec = container_spec(harness, project_name, Program(forever=True), service="web", number=2)
    container_id = run(harness, spec)

    (found,) = harness.backend.observe(project_name).containers
    assert (found.id, found.name, found.service, found.number, found.status) == (
        container_id,
        spec.name,
        "web",
        2,
        "running",
    )
    assert found.labels["test.label"] == "yes"
    assert project_name in harness.backend.list_projects()


def test_stop_leaves_it_exited_with_its_exit_code(harness: Harness, project_name: str) -> None:
    container_id = run(harness, container_spec(harness, project_name, Program(forever=True)))

    harness.backend.stop_container(container_id, timeout=10)

    found = harness.backend.inspect_container(container_id)
    assert (found.status, found.exit_code) == ("exited", 0)


def test_removed_container_is_gone(harness: Harness, project_name: str) -> None:
    container_id = run(harness, container_spec(harness, project_name, Program(exit_code=0)))
    harness.backend.wait_container(container_id, timeout=30)

    harness.backend.remove_container(container_id)

    assert harness.backend.observe(project_name).containers == ()
    with pytest.raises(NotFound):
        harness.backend.inspect_container(container_id)


def test_running_container_needs_force_to_remove(harness: Harness, project_name: str) -> None:
    container_id = run(harness, container_spec(harness, project_name, Program(forever=True)))

    with pytest.raises(Conflict):
        harness.backend.remove_container(container_id)
    harness.backend.remove_container(container_id, force=True)

    assert harness.backend.observe(project_name).containers == ()


def test_rename(harness: Harness, project_name: str) -> None:
    container_id = harness.backend.create_container(
        container_spec(harness, project_name, Program())
    )

    harness.backend.rename_container(container_id, f"{project_name}-renamed")

    assert harness.backend.inspect_container(container_id).name == f"{project_name}-renamed"


@pytest.mark.parametrize(("signal", "exit_code"), [("SIGKILL", 137), ("SIGUSR1", 42)])
def test_kill_with_a_signal(
    harness: Harness, project_name: str, signal: str, exit_code: int
) -> None:
    container_id = run(harness, container_spec(harness, project_name, Program(forever=True)))
    eventually(
        lambda: harness.backend.inspect_container(container_id), lambda c: c.status == "running"
    )
    time.sleep(0.3)  # let the shell install its traps

    harness.backend.kill_container(container_id, signal)

    assert harness.backend.wait_container(container_id, timeout=30) == exit_code
    assert harness.backend.inspect_container(container_id).status == "exited"


@pytest.mark.parametrize("exit_code", [0, 3])
def test_wait_returns_the_exit_code(harness: Harness, project_name: str, exit_code: int) -> None:
    spec = container_spec(harness, project_name, Program(exit_code=exit_code))
    container_id = run(harness, spec)

    assert harness.backend.wait_container(container_id, timeout=30) == exit_code
    assert harness.backend.inspect_container(container_id).exit_code == exit_code


def test_logs_keep_stdout_and_stderr_apart(harness: Harness, project_name: str) -> None:
    program = Program(stdout=("out one", "out two"), stderr=("err one",))
    spec = container_spec(harness, project_name, program)
    container_id = run(harness, spec)
    harness.backend.wait_container(container_id, timeout=30)

    lines = list(harness.backend.logs(container_id))

    assert [x.text for x in lines if x.stream == "stdout"] == ["out one", "out two"]
    assert [x.text for x in lines if x.stream == "stderr"] == ["err one"]
    assert {x.container for x in lines} == {spec.name}


@pytest.mark.parametrize(
    ("command", "exit_code", "output"),
    [
        (("echo", "hello"), 0, b"hello\n"),
        (("/bin/sh", "-c", "echo bad; exit 5"), 5, b"bad\n"),
    ],
)
def test_exec_returns_exit_code_and_output(
    harness: Harness, project_name: str, command: tuple[str, ...], exit_code: int, output: bytes
) -> None:
    container_id = run(harness, container_spec(harness, project_name, Program(forever=True)))
    harness.prepare_exec(command, ExecResult(exit_code, output))

    result = harness.backend.exec(container_id, command)

    assert (result.exit_code, result.output) == (exit_code, output)


def test_duplicate_name_is_a_conflict(harness: Harness, project_name: str) -> None:
    spec = container_spec(harness, project_name, Program())
    harness.backend.create_container(spec)

    with pytest.raises(Conflict):
        harness.backend.create_container(spec)


@pytest.mark.parametrize(
    "remove",
    [
        lambda b, p: b.remove_container(f"{p}-missing-1"),
        lambda b, p: b.remove_network(f"{p}_missing"),
        lambda b, p: b.remove_volume(f"{p}_missing"),
        lambda b, p: b.start_container(f"{p}-missing-1"),
        lambda b, p: b.inspect_container(f"{p}-missing-1"),
    ],
    ids=["container", "network", "volume", "start", "inspect"],
)
def test_missing_things_are_not_found(
    harness: Harness, project_name: str, remove: Callable[[Backend, str], Any]
) -> None:
    with pytest.raises(NotFound):
        remove(harness.backend, project_name)


def test_healthcheck_reaches_healthy(harness: Harness, project_name: str) -> None:
    check = Healthcheck(test=("CMD", "true"), interval=0.2, timeout=2, retries=3)
    spec = container_spec(harness, project_name, Program(forever=True), healthcheck=check)
    container_id = run(harness, spec)

    found = eventually(
        lambda: harness.backend.inspect_container(container_id), lambda c: c.health == "healthy"
    )

    assert found.health == "healthy"


def test_container_joins_its_networks(harness: Harness, project_name: str) -> None:
    names = (f"{project_name}_a", f"{project_name}_b")
    for name in names:
        network = Network(key=name.rsplit("_", 1)[1], name=name)
        harness.backend.create_network(NetworkSpec(network, {L.PROJECT: project_name}))
    spec = container_spec(harness, project_name, Program(forever=True), networks=names)

    container_id = run(harness, spec)

    found = harness.backend.inspect_container(container_id)
    if "networks" in harness.backend.capabilities().unsupported_keys:
        # a backend without networking says so (the loader warns per service using
        # networks); the container still runs, with loopback only
        assert (found.status, dict(found.addresses)) == ("running", {})
    else:
        assert set(found.addresses) == set(names)
