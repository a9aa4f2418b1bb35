"""`pycompose` against the real Docker daemon, through the console script, as a user runs it.

One five-service stack (two networks, a named volume, replicas, a health-gated and a
completion-gated depends_on, a replicated service behind one published port) is driven
through up, ps, an edit, scaling, down and down -v.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import labels

PYCOMPOSE = str(Path(sys.executable).parent / "pycompose")

HTTPD = "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"
STACK = """\
services:
  db:
    image: {image}
    command: ["sh", "-c", "touch /data/ready; exec sleep 3600"]
    volumes: [data:/data]
    networks: [back]
    healthcheck:
      test: ["CMD", "test", "-f", "/data/ready"]
      interval: 1s
      retries: 30
  cache:
    image: {image}
    command: ["sleep", "3600"]
    environment: {{GENERATION: "{generation}"}}
    networks: [back]
  migrate:
    image: {image}
    command: ["sh", "-c", "sleep 1; echo migrated > /data/migrated"]
    volumes: [data:/data]
    networks: [back]
    depends_on:
      db: {{condition: service_healthy}}
  api:
    image: {image}
    command: ["sh", "-c", "{httpd}"]
    deploy: {{replicas: 2}}
    networks: [front, back]
    depends_on:
      migrate: {{condition: service_completed_successfully}}
      cache: {{condition: service_started}}
  web:
    image: {image}
    command: ["sh", "-c", "{httpd}"]
    ports: ["127.0.0.1:{port}:80"]
    deploy: {{replicas: 2}}
    networks: [front]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"]
      interval: 1s
      retries: 30
    depends_on:
      api: {{condition: service_started}}
networks:
  front: {{}}
  back: {{}}
volumes:
  data: {{}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Stack:
    def __init__(self, root: Path, name: str, image: str) -> None:
        self.root = root
        self.name = name
        self.image = image
        self.port = free_port()

    def write(self, generation: str = "1") -> None:
        text = STACK.format(image=self.image, port=self.port, generation=generation, httpd=HTTPD)
        (self.root / "compose.yaml").write_text(text)

    def run(
        self,
        *args: str,
        check: bool = True,
        env: dict[str, str] | None = None,
        timeout: float = 180,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [PYCOMPOSE, "-p", self.name, "--progress", "plain", *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={
                "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME": str(self.root),
                **{k: v for k, v in os.environ.items() if k.startswith("PYCOMPOSE_")},
                **(env or {}),
            },
        )
        if check:
            assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr
        return result

    def ps(self, *extra: str) -> list[dict[str, Any]]:
        return json.loads(self.run("ps", "--format", "json", *extra).stdout)  # type: ignore[no-any-return]


@pytest.fixture
def stack(tmp_path: Path, project_name: str, busybox_image: str) -> Iterator[Stack]:
    s = Stack(tmp_path, project_name, busybox_image)
    s.write()
    yield s
    s.run("down", "-v", "-t", "1", check=False)


def _inspect(client: Any, name: str) -> dict[str, Any]:
    return client.api.inspect_container(name)  # type: ignore[no-any-return]


def _time(value: str) -> float:
    from datetime import datetime

    # Docker gives nanoseconds; Python parses microseconds
    head, _, frac = value.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + "+00:00").timestamp() + float("0." + (frac or "0"))


def _get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
        return response.read().decode().strip()


def _project_resources(client: Any, name: str) -> tuple[list[Any], list[Any], list[Any]]:
    label = {"label": f"{labels.PROJECT}={name}"}
    return (
        client.containers.list(all=True, filters=label),
        client.networks.list(filters=label),
        client.volumes.list(filters=label),
    )


def test_stack_lifecycle(stack: Stack, docker_client: Any) -> None:
    name = stack.name
    stack.run("up", "-d", "--wait", "--wait-timeout", "120")

    # dependency order, from the engine's own start/finish times
    db = _inspect(docker_client, f"{name}-db-1")
    migrate = _inspect(docker_client, f"{name}-migrate-1")
    api = _inspect(docker_client, f"{name}-api-1")
    web = _inspect(docker_client, f"{name}-web-1")
    cache = _inspect(docker_client, f"{name}-cache-1")
    assert db["State"]["Health"]["Status"] == "healthy"
    assert _time(db["State"]["StartedAt"]) < _time(migrate["State"]["StartedAt"])
    assert migrate["State"]["ExitCode"] == 0
    assert _time(migrate["State"]["FinishedAt"]) <= _time(api["State"]["StartedAt"])
    assert _time(cache["State"]["StartedAt"]) <= _time(api["State"]["StartedAt"])
    assert _time(api["State"]["StartedAt"]) <= _time(web["State"]["StartedAt"])
    nets = set(api["NetworkSettings"]["Networks"])
    assert nets == {f"{name}_front", f"{name}_back"}

    # ps --format json
    rows = {r["name"]: r for r in stack.ps("-a")}
    assert set(rows) == {
        f"{name}-{s}" for s in ("db-1", "cache-1", "migrate-1", "api-1", "api-2", "web-1", "web-2")
    }
    assert rows[f"{name}-migrate-1"]["state"] == "exited"
    assert rows[f"{name}-migrate-1"]["exit_code"] == 0
    assert all(
        rows[f"{name}-{s}"]["state"] == "running"
        for s in ("db-1", "cache-1", "api-1", "api-2", "web-1", "web-2")
    )
    assert rows[f"{name}-web-1"]["health"] == "healthy"
    assert f"127.0.0.1:{stack.port}->80/tcp" in rows[f"{name}-web-1"]["ports"]
    running = {r["name"] for r in stack.ps()}
    assert f"{name}-migrate-1" not in running  # `ps` without -a shows running ones only

    # one published port, both replicas serve
    seen = {_get(stack.port) for _ in range(20)}
    web_hosts = {_inspect(docker_client, f"{name}-web-{n}")["Config"]["Hostname"] for n in (1, 2)}
    assert seen == web_hosts

    # up again: nothing to do
    ids = {r["name"]: r["id"] for r in stack.ps("-a")}
    again = stack.run("--dry-run", "up", "-d")
    assert again.stdout.strip() == "nothing to do"
    stack.run("up", "-d")
    assert {r["name"]: r["id"] for r in stack.ps("-a")} == ids

    # an edit to one service recreates only it
    stack.write(generation="2")
    plan = stack.run("--dry-run", "up", "-d").stdout
    assert f"{name}-cache-1" in plan and "config changed" in plan
    stack.run("up", "-d", "--wait", "--wait-timeout", "120")
    after = {r["name"]: r["id"] for r in stack.ps("-a")}
    changed = {n for n in ids if after.get(n) != ids[n]}
    assert changed == {f"{name}-cache-1"}

    # scale up and down by replica number
    stack.run("up", "-d", "--scale", "web=3", "--wait", "--wait-timeout", "120")
    assert sorted(r["name"] for r in stack.ps() if r["service"] == "web") == [
        f"{name}-web-1",
        f"{name}-web-2",
        f"{name}-web-3",
    ]
    assert len({_get(stack.port) for _ in range(30)}) == 3
    stack.run("up", "-d", "--scale", "web=1")
    assert [r["name"] for r in stack.ps() if r["service"] == "web"] == [f"{name}-web-1"]
    assert _get(stack.port) == _inspect(docker_client, f"{name}-web-1")["Config"]["Hostname"]

    # named volume data survives down + up, and is gone after down -v
    stack.run("exec", "-T", "db", "sh", "-c", "echo kept > /data/kept")
    stack.run("down", "-t", "1")
    containers, networks, volumes = _project_resources(docker_client, name)
    assert containers == [] and networks == []
    assert [v.name for v in volumes] == [f"{name}_data"]
    stack.run("up", "-d", "--wait", "--wait-timeout", "120")
    assert stack.run("exec", "-T", "db", "cat", "/data/kept").stdout.strip() == "kept"
    stack.run("down", "-v", "-t", "1")
    assert _project_resources(docker_client, name) == ([], [], [])
    with pytest.raises(ConnectionError):
        _get_or_raise(stack.port)


def _get_or_raise(port: int) -> str:
    try:
        return _get(port)
    except OSError as exc:
        raise ConnectionError(str(exc)) from exc


def test_bad_input_leaves_the_engine_untouched(stack: Stack, docker_client: Any) -> None:
    (stack.root / "compose.yaml").write_text(
        (stack.root / "compose.yaml").read_text().replace("retries: 30", "retries: many", 1)
    )
    result = stack.run("up", "-d", check=False)
    assert result.returncode == 3
    assert "services.db.healthcheck.retries" in result.stderr
    assert _project_resources(docker_client, stack.name) == ([], [], [])


def test_unknown_service_is_one_clear_sentence(stack: Stack, docker_client: Any) -> None:
    result = stack.run("up", "-d", "wbe", check=False)
    assert result.returncode == 4
    assert "no such service: wbe" in result.stderr and "web" in result.stderr
    assert _project_resources(docker_client, stack.name) == ([], [], [])


def test_missing_image_is_one_clear_sentence(stack: Stack, docker_client: Any) -> None:
    (stack.root / "compose.yaml").write_text(
        f"services:\n  x:\n    image: pycompose-test/does-not-exist:{stack.name}\n"
    )
    result = stack.run("up", "-d", check=False)
    assert result.returncode == 4
    assert "does-not-exist" in result.stderr and "not found" in result.stderr
    containers, _, _ = _project_resources(docker_client, stack.name)
    assert containers == []


def test_port_in_use_is_one_clear_sentence(stack: Stack, docker_client: Any) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", stack.port))
        busy.listen()
        result = stack.run("up", "-d", check=False)
    assert result.returncode == 5
    assert f"{stack.port}" in result.stderr and "already in use" in result.stderr


def test_unreachable_daemon_is_one_clear_sentence(stack: Stack) -> None:
    result = stack.run(
        "--backend",
        "docker",
        "ps",
        check=False,
        env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
    )
    assert result.returncode == 10
    assert "cannot reach the Docker engine" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_logs_and_run(stack: Stack, docker_client: Any) -> None:
    (stack.root / "compose.yaml").write_text(
        f"services:\n  hello:\n    image: {stack.image}\n"
        "    command: [sh, -c, 'echo out-line; echo err-line >&2; sleep 3600']\n"
    )
    stack.run("up", "-d", "--wait")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        out = stack.run("logs", "hello").stdout
        if "out-line" in out and "err-line" in out:
            break
        time.sleep(0.2)
    assert f"{stack.name}-hello-1 | out-line" in out
    ran = stack.run("run", "--rm", "hello", "sh", "-c", "echo one-off; exit 3", check=False)
    assert ran.returncode == 3 and "one-off" in ran.stdout
    containers, _, _ = _project_resources(docker_client, stack.name)
    assert [c.name for c in containers] == [f"{stack.name}-hello-1"]  # --rm removed the one-off


def test_keys_the_engine_cannot_honour_are_warned_about(stack: Stack) -> None:
    (stack.root / "compose.yaml").write_text(
        f"services:\n  x:\n    image: {stack.image}\n    command: [sleep, '3600']\n"
        "    deploy:\n      placement:\n        constraints: ['node.role == manager']\n"
    )
    result = stack.run("up", "-d")
    assert "warning:" in result.stderr
    assert "deploy.placement" in result.stderr and "docker" in result.stderr
