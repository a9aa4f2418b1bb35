"""The daemon in-process, observing a small fake backend, with its real state files."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest

from orchestrator.backends.base import Backend, ObservedContainer, ObservedState
from orchestrator.errors import EngineUnavailable
from orchestrator.ingress.daemon import (
    IngressConfig,
    IngressDaemon,
    StateFiles,
    read_json,
    route_to_json,
    write_json_atomic,
)
from orchestrator.ingress.routes import Route
from tests.unit.ingress.echo import TcpEcho, run, servers, tcp_name

PROJECT = "demo"


class FakeBackend:
    """Observes whatever containers the test puts in it; can fail or stall on demand."""

    def __init__(self) -> None:
        self.containers: list[ObservedContainer] = []
        self.fail = False
        self.stall = threading.Event()  # while set, observe blocks (a slow engine)
        self.observations = 0
        self.closed = False

    def observe(self, project: str) -> ObservedState:
        while self.stall.is_set():
            time.sleep(0.01)
        if self.fail:
            raise EngineUnavailable("no engine")
        self.observations += 1
        return ObservedState(project=project, containers=tuple(self.containers))

    def close(self) -> None:
        self.closed = True


def replica(number: int, **overrides: Any) -> ObservedContainer:
    fields: dict[str, Any] = {
        "id": f"c{number}", "name": f"{PROJECT}-web-{number}", "project": PROJECT,
        "service": "web", "number": number, "status": "running", "labels": {},
        "addresses": {"demo_default": "127.0.0.1"},
    }
    fields.update(overrides)
    return ObservedContainer(**fields)


def write_config(files: StateFiles, routes: list[Route], generation: int,
                 drains: dict[str, int] | None = None) -> None:
    config = IngressConfig("fake", tuple(routes), drains or {}, generation)
    write_json_atomic(files.config, config.to_json())


async def until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def status(files: StateFiles) -> dict[str, Any]:
    data = read_json(files.status)
    return data if isinstance(data, dict) else {}


def acked(files: StateFiles, generation: int) -> bool:
    return int(status(files).get("generation", -1)) >= generation


def bound_port(files: StateFiles, route: Route) -> int:
    for entry in status(files)["routes"]:
        if entry["route"] == route_to_json(route):
            return int(entry["address"][1])
    raise AssertionError(f"{route} not in status")


@contextlib.asynccontextmanager
async def running(
    tmp_path: Path, backend: FakeBackend, routes: list[Route], **config: Any
) -> AsyncIterator[tuple[IngressDaemon, StateFiles, asyncio.Task[int]]]:
    files = StateFiles(tmp_path, PROJECT)
    write_config(files, routes, 1, **config)
    daemon = IngressDaemon(PROJECT, tmp_path, lambda _name: cast(Backend, backend),
                           refresh_interval=0.05)
    task = asyncio.create_task(daemon.run())
    try:
        await until(lambda: acked(files, 1) or task.done())
        yield daemon, files, task
    finally:
        daemon.request_stop()
        await asyncio.wait_for(task, 5.0)


def route_to(port: int, service: str = "web") -> Route:
    return Route(service=service, published=0, target=port, host_ip="127.0.0.1")


def test_serves_observed_replicas_and_writes_its_files(tmp_path: Path) -> None:
    backend = FakeBackend()
    backend.containers = [replica(1)]

    async def body() -> tuple[str, dict[str, Any], object]:
        async with servers(TcpEcho("r1").start()) as (echo,):
            route = route_to(echo.port)
            async with running(tmp_path, backend, [route]) as (daemon, files, _):
                await until(lambda: daemon.members_of(route) != ())
                name = await tcp_name(bound_port(files, route))
                await until(lambda: status(files)["routes"][0]["members"] == ["c1"])
                return name, status(files), read_json(files.pid)

    name, final, pid = run(body)
    assert name == "r1"
    assert pid == os.getpid()
    assert final["pid"] == os.getpid() and final["generation"] == 1
    assert final["routes"][0]["bound"] is True and final["routes"][0]["error"] is None


def test_stop_closes_listeners_removes_pid_and_status(tmp_path: Path) -> None:
    backend = FakeBackend()

    async def body() -> tuple[int, int]:
        route = route_to(1)
        async with running(tmp_path, backend, [route]) as (_, files, task):
            port = bound_port(files, route)
        return port, task.result()

    port, code = run(body)
    files = StateFiles(tmp_path, PROJECT)
    assert code == 0
    assert not files.pid.exists() and not files.status.exists()
    assert backend.closed
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))


def test_reload_binds_added_and_unbinds_removed_routes(tmp_path: Path) -> None:
    backend = FakeBackend()
    kept, dropped, added = route_to(1), route_to(2), route_to(3)

    async def body() -> tuple[list[Route], int]:
        async with running(tmp_path, backend, [kept, dropped]) as (daemon, files, _):
            dropped_port = bound_port(files, dropped)
            write_config(files, [kept, added], 2)
            daemon.request_reload()
            await until(lambda: acked(files, 2))
            served = [
                route for route in (kept, dropped, added) if daemon.proxy_of(route) is not None
            ]
            return served, dropped_port

    served, dropped_port = run(body)
    assert served == [kept, added]
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", dropped_port))


def test_drain_is_acknowledged_without_waiting_for_a_slow_observation(tmp_path: Path) -> None:
    backend = FakeBackend()
    backend.containers = [replica(1), replica(2)]
    route = route_to(80)

    async def body() -> tuple[list[str], list[str], list[str]]:
        async with running(tmp_path, backend, [route]) as (daemon, files, _):
            await until(lambda: len(daemon.members_of(route)) == 2)
            backend.stall.set()  # the engine hangs from now on
            try:
                write_config(files, [route], 2, drains={"c1": 2})
                daemon.request_reload()
                await until(lambda: acked(files, 2), timeout=1.0)
                during = [m.container_id for m in daemon.members_of(route)]
                reported = status(files)["routes"][0]["members"]
            finally:
                backend.stall.clear()
            await asyncio.sleep(0.2)  # observations resume: the drain must hold
            after = [m.container_id for m in daemon.members_of(route)]
            return during, reported, after

    assert run(body) == (["c2"], ["c2"], ["c2"])


def test_a_drain_ends_once_the_container_is_seen_stopped(tmp_path: Path) -> None:
    backend = FakeBackend()
    backend.containers = [replica(1), replica(2)]
    route = route_to(80)

    async def body() -> tuple[dict[str, int], list[str], list[str]]:
        async with running(tmp_path, backend, [route], drains={"c1": 1}) as (daemon, files, _):
            await until(lambda: [m.container_id for m in daemon.members_of(route)] == ["c2"])
            backend.containers = [replica(1, status="exited"), replica(2)]
            await until(lambda: status(files).get("drained_spent") == {"c1": 1})
            spent = status(files)["drained_spent"]
            backend.containers = [replica(1), replica(2)]  # `start` again: serves again
            await until(lambda: len(daemon.members_of(route)) == 2)
            restarted = [m.container_id for m in daemon.members_of(route)]
            # a new drain of the same container (a newer generation) takes it out again
            write_config(files, [route], 2, drains={"c1": 2})
            daemon.request_reload()
            await until(lambda: acked(files, 2))
            await asyncio.sleep(0.2)
            return spent, restarted, [m.container_id for m in daemon.members_of(route)]

    assert run(body) == ({"c1": 1}, ["c1", "c2"], ["c2"])


def test_a_route_that_cannot_bind_is_reported_and_the_others_served(tmp_path: Path) -> None:
    backend = FakeBackend()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        blocked = Route("web", taken, 80, "tcp", "127.0.0.1")
        fine = route_to(81)

        async def body() -> list[dict[str, Any]]:
            async with running(tmp_path, backend, [blocked, fine]) as (_, files, _task):
                return list(status(files)["routes"])

        entries = run(body)
    by_route = {e["route"]["target"]: e for e in entries}
    assert by_route[80]["bound"] is False
    assert by_route[80]["error"]["kind"] == "conflict"
    assert by_route[80]["error"]["message"] == f"port {taken}/tcp on 127.0.0.1 is already in use"
    assert by_route[81]["bound"] is True


def test_observation_failure_keeps_the_last_members(tmp_path: Path) -> None:
    backend = FakeBackend()
    backend.containers = [replica(1)]
    route = route_to(80)

    async def body() -> tuple[list[str], str]:
        async with running(tmp_path, backend, [route]) as (daemon, files, _):
            await until(lambda: len(daemon.members_of(route)) == 1)
            backend.fail = True
            await until(lambda: status(files).get("backend_error", "") != "")
            return [m.container_id for m in daemon.members_of(route)], status(files)[
                "backend_error"
            ]

    members, error = run(body)
    assert members == ["c1"]
    assert "no engine" in error


def test_removing_the_config_and_reloading_stops_the_daemon(tmp_path: Path) -> None:
    backend = FakeBackend()

    async def body() -> int:
        async with running(tmp_path, backend, [route_to(80)]) as (daemon, files, task):
            files.config.unlink()
            daemon.request_reload()
            return await asyncio.wait_for(task, 5.0)

    assert run(body) == 0


def test_missing_config_exits_with_status_2(tmp_path: Path) -> None:
    daemon = IngressDaemon(PROJECT, tmp_path, lambda _name: cast(Backend, FakeBackend()))
    assert run(daemon.run) == 2
    assert not StateFiles(tmp_path, PROJECT).pid.exists()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param([], "expected a JSON object", id="not-an-object"),
        pytest.param({"routes": []}, "'backend'", id="no-backend"),
        pytest.param({"backend": "x", "routes": {}}, "'routes' must be a list", id="routes-type"),
        pytest.param({"backend": "x", "routes": [{"service": "w", "published": 70000,
                                                  "target": 80}]},
                     "'published' must be a port", id="port-range"),
        pytest.param({"backend": "x", "routes": [{"service": "w", "published": 1, "target": 2,
                                                  "protocol": "sctp"}]},
                     "tcp or udp", id="protocol"),
        pytest.param({"backend": "x", "drained": "c1"}, "'drained'", id="drained-type"),
        pytest.param({"backend": "x", "generation": "1"}, "'generation'", id="generation-type"),
    ],
)
def test_config_parsing_rejects(content: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        IngressConfig.from_json(content)


def test_config_round_trips() -> None:
    config = IngressConfig(
        "docker",
        (Route("web", 5000, 80), Route("dns", 53, 53, "udp", "127.0.0.1")),
        {"c1": 3, "c2": 4},
        7,
    )
    assert IngressConfig.from_json(config.to_json()) == config
    assert config.to_json()["drained"] == ["c1", "c2"]
    # a config written without generations still parses (drains count as generation 0)
    bare = dataclasses.replace(config, drains={"c1": 0})
    assert IngressConfig.from_json({**config.to_json(), "drained": ["c1"],
                                    "drain_generations": {}}) == bare


def test_a_drain_ends_when_a_restart_fell_between_two_refreshes(tmp_path: Path) -> None:
    """Stopped and started again before the daemon looked: the new start time tells."""
    backend = FakeBackend()
    backend.containers = [replica(1, started_at=100.0), replica(2)]
    route = route_to(80)

    async def body() -> tuple[list[str], list[str]]:
        async with running(tmp_path, backend, [route]) as (daemon, files, _):
            await until(lambda: len(daemon.members_of(route)) == 2)
            write_config(files, [route], 2, drains={"c1": 2})
            daemon.request_reload()
            await until(lambda: acked(files, 2))
            await asyncio.sleep(0.2)  # refreshes of the same run keep it drained
            drained = [m.container_id for m in daemon.members_of(route)]
            backend.containers = [replica(1, started_at=200.0), replica(2)]
            await until(lambda: len(daemon.members_of(route)) == 2)
            return drained, [m.container_id for m in daemon.members_of(route)]

    assert run(body) == (["c2"], ["c1", "c2"])


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
def test_a_route_whose_target_changes_is_rebound_on_the_same_port(
    tmp_path: Path, protocol: str
) -> None:
    backend = FakeBackend()
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    before = Route("web", port, 80, protocol, "127.0.0.1")  # type: ignore[arg-type]
    after = dataclasses.replace(before, target=8080)

    async def body() -> list[dict[str, Any]]:
        async with running(tmp_path, backend, [before]) as (daemon, files, _):
            write_config(files, [after], 2)
            daemon.request_reload()
            await until(lambda: acked(files, 2))
            return list(status(files)["routes"])

    entries = run(body)
    assert [(e["route"]["target"], e["bound"], e["error"]) for e in entries] == [
        (8080, True, None)
    ]
