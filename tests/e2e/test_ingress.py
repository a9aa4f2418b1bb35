"""The ingress daemon as `up -d` leaves it: a real process, started through the controller,
observing the real Docker backend, balancing one host port over two busybox httpd replicas.

Traffic goes only to 127.0.0.1; every container, network, process and file is removed.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import labels as L
from orchestrator.errors import Conflict
from orchestrator.ingress.controller import ProcessIngressController
from orchestrator.ingress.daemon import StateFiles, read_json
from orchestrator.ingress.routes import Route
from tests.support.images import HTTPD_COMMAND

pytestmark = pytest.mark.docker

BACKEND = "docker"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(port: int) -> str:
    """The body of ``GET /`` through the proxy: the hostname of the replica that served it."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n")
        chunks = []
        while data := conn.recv(65536):
            chunks.append(data)
    response = b"".join(chunks).decode(errors="replace")
    head, _, body = response.partition("\r\n\r\n")
    assert head.startswith("HTTP/1."), response
    return body.strip()


def answers(port: int, count: int) -> list[str]:
    return [get(port) for _ in range(count)]


def wait_for(condition: Any, timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError as exc:  # a replica still starting: try again
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last error: {last})")


@pytest.fixture
def replicas(docker_client: Any, busybox_image: str, project_name: str) -> Iterator[list[Any]]:
    """Two running httpd replicas of service ``web``, labelled as pycompose creates them.
    The project_name fixture removes them and the network afterwards."""
    network = docker_client.networks.create(
        L.resource_name(project_name, "default"),
        labels={L.PROJECT: project_name, L.NETWORK: "default"},
    )
    made = []
    for number in (1, 2):
        made.append(docker_client.containers.run(
            busybox_image,
            list(HTTPD_COMMAND),
            name=L.container_name(project_name, "web", number),
            hostname=f"web-{number}",
            network=network.name,
            labels={
                L.PROJECT: project_name,
                L.SERVICE: "web",
                L.CONTAINER_NUMBER: str(number),
                L.ONEOFF: "False",
            },
            detach=True,
        ))
    yield made


@pytest.fixture
def controller(tmp_path: Path, project_name: str) -> Iterator[ProcessIngressController]:
    made = ProcessIngressController(str(tmp_path / "run"))
    yield made
    made.remove(project_name)


def test_one_port_reaches_both_replicas_and_drain_takes_one_out(
    replicas: list[Any], controller: ProcessIngressController, project_name: str
) -> None:
    port = free_port()
    served = Route("web", port, 80, host_ip="127.0.0.1")
    controller.ensure(project_name, BACKEND, [served])
    assert controller.status(project_name) == [served]

    wait_for(lambda: set(answers(port, 4)) == {"web-1", "web-2"}, what="both replicas")

    first = replicas[0]
    controller.drain(project_name, [first.id])
    assert set(answers(port, 6)) == {"web-2"}  # drained: no new connection goes to it
    first.stop(timeout=1)
    assert set(answers(port, 4)) == {"web-2"}  # stopping it afterwards breaks nothing

    # started again, the container is a replica like any other (its drain is over)
    first.start()
    wait_for(lambda: set(answers(port, 4)) == {"web-1", "web-2"}, what="web-1 back")


def test_a_replica_that_dies_is_skipped(
    replicas: list[Any], controller: ProcessIngressController, project_name: str
) -> None:
    port = free_port()
    controller.ensure(project_name, BACKEND, [Route("web", port, 80, host_ip="127.0.0.1")])
    wait_for(lambda: set(answers(port, 4)) == {"web-1", "web-2"}, what="both replicas")
    replicas[1].kill()
    # the pool may still list it for up to one refresh: requests must succeed regardless
    assert set(answers(port, 6)) == {"web-1"}


def test_port_in_use_is_a_conflict(
    replicas: list[Any], controller: ProcessIngressController, project_name: str
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(Conflict, match=f"port {port}/tcp on 127.0.0.1 is already in use"):
            controller.ensure(project_name, BACKEND, [Route("web", port, 80, host_ip="127.0.0.1")])
    assert controller.status(project_name) == []


def test_remove_leaves_no_process_and_no_file(
    replicas: list[Any], controller: ProcessIngressController, project_name: str
) -> None:
    port = free_port()
    controller.ensure(project_name, BACKEND, [Route("web", port, 80, host_ip="127.0.0.1")])
    files = StateFiles(controller.state_dir, project_name)
    pid = read_json(files.pid)
    assert isinstance(pid, int)
    wait_for(lambda: get(port) in {"web-1", "web-2"}, what="an answer")

    controller.remove(project_name)

    assert not Path(f"/proc/{pid}").exists()  # gone, and reaped
    assert list(controller.state_dir.iterdir()) == []
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_the_daemon_outlives_the_process_that_started_it(
    replicas: list[Any], controller: ProcessIngressController, project_name: str
) -> None:
    """What `up -d` relies on: the CLI exits, the port keeps answering."""
    port = free_port()
    script = (
        "import sys\n"
        "from orchestrator.ingress.controller import ProcessIngressController\n"
        "from orchestrator.ingress.routes import Route\n"
        "ProcessIngressController(sys.argv[1]).ensure(\n"
        "    sys.argv[2], 'docker', [Route('web', int(sys.argv[3]), 80, host_ip='127.0.0.1')])\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(controller.state_dir), project_name, str(port)],
        check=True, timeout=60, cwd=str(Path(__file__).resolve().parents[2]),
    )
    wait_for(lambda: set(answers(port, 4)) == {"web-1", "web-2"}, what="both replicas")
    assert controller.status(project_name) == [Route("web", port, 80, host_ip="127.0.0.1")]
    # another process's daemon is stopped too (the fixture's remove runs it again)
    controller.remove(project_name)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
