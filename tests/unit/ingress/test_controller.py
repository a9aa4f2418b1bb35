"""The controller driving real daemon processes (state in tmp_path, ports on 127.0.0.1).

The daemon observes the ``namespace`` backend here: whether or not that backend can open on
this machine, the project has no containers, so these tests are about processes, files,
ports and acknowledgements, not membership (tests/e2e/test_ingress.py covers that).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import ConfigError, Conflict, UsageError
from orchestrator.ingress.controller import (
    DEFAULT_STATE_DIR,
    ProcessIngressController,
    _route_errors,
)
from orchestrator.ingress.daemon import IngressConfig, StateFiles, read_json, route_to_json
from orchestrator.ingress.routes import Route

BACKEND = "namespace"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def route(port: int, protocol: str = "tcp") -> Route:
    return Route("web", port, 80, protocol, "127.0.0.1")  # type: ignore[arg-type]


def accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.fixture
def controller(tmp_path: Path) -> Iterator[ProcessIngressController]:
    made = ProcessIngressController(str(tmp_path / "run"))
    yield made
    for project in ("demo", "other"):
        made.remove(project)


def daemon_pid(controller: ProcessIngressController, project: str = "demo") -> int:
    pid = read_json(StateFiles(controller.state_dir, project).pid)
    assert isinstance(pid, int)
    return pid


def test_ensure_starts_a_detached_daemon_serving_the_routes(
    controller: ProcessIngressController,
) -> None:
    tcp, udp = route(free_port()), route(free_port(), "udp")
    controller.ensure("demo", BACKEND, [tcp, udp])
    pid = daemon_pid(controller)
    assert alive(pid)
    assert os.getsid(pid) == pid  # its own session: the CLI's terminal going away is harmless
    assert accepts(tcp.published)
    assert sorted(controller.status("demo")) == sorted([tcp, udp])


def test_ensure_reconfigures_the_running_daemon(controller: ProcessIngressController) -> None:
    first, second = route(free_port()), route(free_port())
    controller.ensure("demo", BACKEND, [first])
    pid = daemon_pid(controller)
    controller.ensure("demo", BACKEND, [second])
    assert daemon_pid(controller) == pid
    assert controller.status("demo") == [second]
    assert accepts(second.published)
    assert not accepts(first.published)


def test_ensure_of_the_same_routes_is_a_no_op(controller: ProcessIngressController) -> None:
    served = route(free_port())
    controller.ensure("demo", BACKEND, [served])
    config = read_json(StateFiles(controller.state_dir, "demo").config)
    controller.ensure("demo", BACKEND, [served])
    assert read_json(StateFiles(controller.state_dir, "demo").config) == config


def test_port_in_use_is_a_conflict_and_starts_nothing(
    controller: ProcessIngressController,
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(Conflict, match=rf"^port {port}/tcp on 127.0.0.1 is already in use$"):
            controller.ensure("demo", BACKEND, [route(port)])
    assert controller.status("demo") == []
    assert list(controller.state_dir.iterdir()) == []


def test_conflicting_change_keeps_what_was_served(controller: ProcessIngressController) -> None:
    served = route(free_port())
    controller.ensure("demo", BACKEND, [served])
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        with pytest.raises(Conflict):
            controller.ensure("demo", BACKEND, [served, route(holder.getsockname()[1])])
    assert controller.status("demo") == [served]
    assert accepts(served.published)


def test_drain_is_written_and_acknowledged(controller: ProcessIngressController) -> None:
    controller.ensure("demo", BACKEND, [route(free_port())])
    controller.drain("demo", ["c1", "c2"])
    files = StateFiles(controller.state_dir, "demo")
    config = IngressConfig.from_json(read_json(files.config))
    status = read_json(files.status)
    assert config.drained == ("c1", "c2")
    assert isinstance(status, dict) and status["generation"] == config.generation


def test_drain_without_a_daemon_does_nothing(controller: ProcessIngressController) -> None:
    controller.drain("demo", ["c1"])
    assert not controller.state_dir.exists() or list(controller.state_dir.iterdir()) == []


def test_remove_stops_the_daemon_and_deletes_its_files_idempotently(
    controller: ProcessIngressController,
) -> None:
    served = route(free_port())
    controller.ensure("demo", BACKEND, [served])
    pid = daemon_pid(controller)
    controller.remove("demo")
    assert not alive(pid)
    assert list(controller.state_dir.iterdir()) == []
    assert not accepts(served.published)
    controller.remove("demo")
    assert controller.status("demo") == []


def test_ensure_without_routes_removes(controller: ProcessIngressController) -> None:
    controller.ensure("demo", BACKEND, [route(free_port())])
    pid = daemon_pid(controller)
    controller.ensure("demo", BACKEND, [])
    assert not alive(pid)
    assert controller.status("demo") == []


def test_projects_get_separate_daemons(controller: ProcessIngressController) -> None:
    a, b = route(free_port()), route(free_port())
    controller.ensure("demo", BACKEND, [a])
    controller.ensure("other", BACKEND, [b])
    assert daemon_pid(controller, "demo") != daemon_pid(controller, "other")
    controller.remove("demo")
    assert controller.status("other") == [b]


def test_a_daemon_started_elsewhere_is_found_and_stopped(tmp_path: Path) -> None:
    """Another CLI invocation (another controller object) manages the same daemon."""
    state_dir = str(tmp_path / "run")
    first = ProcessIngressController(state_dir)
    served = route(free_port())
    first.ensure("demo", BACKEND, [served])
    pid = daemon_pid(first)
    try:
        second = ProcessIngressController(state_dir)
        assert second.status("demo") == [served]
        second.remove("demo")
        first.status("demo")  # reaps the exited child
        assert not alive(pid)
    finally:
        first.remove("demo")


@pytest.mark.parametrize("stale", ["dead-pid", "unrelated-process", "garbage"])
def test_a_stale_pid_file_is_ignored_and_replaced(
    controller: ProcessIngressController, stale: str
) -> None:
    files = StateFiles(controller.state_dir, "demo")
    controller.state_dir.mkdir(parents=True)
    served = route(free_port())
    # the config stays behind from a daemon that died
    files.config.write_text('{"backend": "namespace", "routes": [], "generation": 4}')
    if stale == "dead-pid":
        exited = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                                capture_output=True, text=True, check=True)
        files.pid.write_text(exited.stdout.strip())
    elif stale == "unrelated-process":
        files.pid.write_text(str(os.getpid()))
    else:
        files.pid.write_text("not a pid")
    assert controller.status("demo") == []
    controller.remove("demo")  # must not signal the unrelated process (ourselves)
    controller.ensure("demo", BACKEND, [served])
    assert controller.status("demo") == [served]
    assert daemon_pid(controller) != os.getpid()


@pytest.mark.parametrize("name", ["", "Demo", "../x", "a/b", "-x", "a.b"])
def test_invalid_project_names_are_refused(
    controller: ProcessIngressController, name: str
) -> None:
    with pytest.raises(UsageError, match="invalid project name"):
        controller.status(name)


@pytest.mark.parametrize(
    ("argument", "environment", "expected"),
    [
        pytest.param("/a", "/b", "/a", id="argument-wins"),
        pytest.param(None, "/b", "/b/ingress", id="environment"),
        pytest.param(None, None, DEFAULT_STATE_DIR, id="default"),
    ],
)
def test_state_dir_choice(
    monkeypatch: pytest.MonkeyPatch, argument: str | None, environment: str | None, expected: str
) -> None:
    if environment is None:
        monkeypatch.delenv("PYCOMPOSE_RUN_DIR", raising=False)
    else:
        monkeypatch.setenv("PYCOMPOSE_RUN_DIR", environment)
    assert str(ProcessIngressController(argument).state_dir) == expected


def _entry(r: Route, error: dict[str, str] | None) -> dict[str, Any]:
    return {"route": route_to_json(r), "bound": error is None, "error": error}


@pytest.mark.parametrize(
    ("errors", "kind", "text"),
    [
        pytest.param([None], None, "", id="all-bound"),
        pytest.param(
            [{"kind": "conflict", "message": "port 1/tcp on 127.0.0.1 is already in use"}],
            Conflict, "port 1/tcp on 127.0.0.1 is already in use", id="conflict",
        ),
        pytest.param(
            [{"kind": "config", "message": "cannot publish", "path": "services.web.ports",
              "hint": "h"}],
            ConfigError, "services.web.ports: cannot publish (h)", id="config",
        ),
        pytest.param(
            [{"kind": "config", "message": "cannot publish", "path": "", "hint": ""},
             {"kind": "conflict", "message": "port 2/tcp on 127.0.0.1 is already in use"}],
            Conflict, "port 2/tcp", id="conflict-wins",
        ),
    ],
)
def test_route_errors_from_status(
    errors: list[dict[str, str] | None], kind: type[Exception] | None, text: str
) -> None:
    routes = [route(i + 1) for i in range(len(errors))]
    status = {"routes": [_entry(r, e) for r, e in zip(routes, errors, strict=True)]}
    found = _route_errors(status, routes)
    if kind is None:
        assert found is None
    else:
        assert isinstance(found, kind)
        assert text in str(found)
