"""Deploy to a real Docker Swarm: private dockerds in their own network namespaces.

``scripts/swarm-daemons.sh`` starts node1 (a single-node swarm on 127.0.0.1) for the
session; the last test adds node2 over a veth pair for placement. The kernel here has no
IPVS, so every service uses ``endpoint_mode: dnsrr`` and host-mode ports. Commands run
through the ``pycompose`` console script as a user runs them; assertions read the
swarm's own records (service CreatedAt, task timestamps, update status). Each stack is
taken down after its test, and the daemons (with their namespaces, veth and directories)
are stopped at the end of the session.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.targets.swarm.engine import parse_time
from tests.support.swarm import V2_TAG, Swarm, swarm_fixture  # noqa: F401 (the fixture)
from tests.support.swarm import run_script as _script

pytestmark = [pytest.mark.docker, pytest.mark.root]

PYCOMPOSE = str(Path(sys.executable).parent / "pycompose")
NAMESPACE = "com.docker.stack.namespace"
# busybox sleep as PID 1 ignores SIGTERM; this stops at once, so no test waits out a grace
SLEEP_ARGS = ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]
SLEEP = json.dumps(SLEEP_ARGS)


class Stack:
    """One compose project in a temporary directory, deployed with the console script."""

    def __init__(self, swarm: Swarm, root: Path) -> None:
        self.swarm = swarm
        self.root = root
        self.name = "pysw" + secrets.token_hex(4)

    def write(self, text: str) -> None:
        (self.root / "compose.yaml").write_text(text)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [PYCOMPOSE, "-f", str(self.root / "compose.yaml"), "-p", self.name, *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=180)
        if check:
            assert done.returncode == 0, done.stderr
        return done

    def deploy(self, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(
            "deploy",
            "--target",
            "swarm",
            "--host",
            self.swarm.host,
            "--wait-timeout",
            "60",
            "--format",
            "json",
            check=check,
        )

    def service(self, key: str) -> dict[str, Any]:
        found: dict[str, Any] = self.swarm.client.api.inspect_service(f"{self.name}_{key}")
        return found

    def tasks(self, key: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.swarm.client.api.tasks(
            filters={"service": f"{self.name}_{key}"}
        )
        return found

    def down(self) -> None:
        self.run("stack", "down", "--target", "swarm", "--host", self.swarm.host, check=False)


@pytest.fixture
def stack(swarm: Swarm, tmp_path: Path) -> Iterator[Stack]:
    made = Stack(swarm, tmp_path)
    try:
        yield made
    finally:
        made.down()


def _running(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        t for t in tasks if t["DesiredState"] == "running" and t["Status"]["State"] == "running"
    ]


def test_services_deploy_in_dependency_order_once_healthy(stack: Stack) -> None:
    image = stack.swarm.image
    stack.write(
        f"""
services:
  db:
    image: {image}
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 2; touch /ready; sleep 1000 & wait"]
    healthcheck: {{test: ["CMD", "test", "-f", "/ready"], interval: 1s, retries: 20}}
    deploy: {{endpoint_mode: dnsrr}}
  web:
    image: {image}
    command: {SLEEP}
    depends_on: {{db: {{condition: service_healthy}}}}
    ports: [{{target: 80, mode: host}}]
    deploy: {{replicas: 2, endpoint_mode: dnsrr}}
"""
    )
    result = json.loads(stack.deploy().stdout)
    services = [a["name"] for a in result["actions"] if a["kind"] == "service"]
    assert services == [f"{stack.name}_db", f"{stack.name}_web"]

    (db_task,) = _running(stack.tasks("db"))
    db_running_at = parse_time(db_task["Status"]["Timestamp"])
    web_created_at = parse_time(stack.service("web")["CreatedAt"])
    assert web_created_at >= db_running_at, "web was created before db was running"
    # the db container passed its healthcheck before web existed
    (container,) = stack.swarm.client.containers.list(
        filters={"label": f"com.docker.swarm.task.id={db_task['ID']}"}
    )
    health = container.attrs["State"]["Health"]
    first_healthy = min(
        parse_time(probe["End"]) for probe in health["Log"] if probe["ExitCode"] == 0
    )
    assert first_healthy <= web_created_at
    assert len(_running(stack.tasks("web"))) == 2

    ps = json.loads(stack.run("stack", "ps", "--host", stack.swarm.host, "--format", "json").stdout)
    assert sorted((r["service"], r["state"]) for r in ps) == [
        ("db", "running"),
        ("web", "running"),
        ("web", "running"),
    ]
    # deploying the same file again changes nothing, not even the services' versions
    versions = {key: stack.service(key)["Version"]["Index"] for key in ("db", "web")}
    again = json.loads(stack.deploy().stdout)
    assert {a["action"] for a in again["actions"]} == {"unchanged"}
    assert {key: stack.service(key)["Version"]["Index"] for key in ("db", "web")} == versions


def _rolling_file(image: str, replicas: int = 4) -> str:
    return f"""
services:
  web:
    image: {image}
    command: {SLEEP}
    stop_grace_period: 1s
    deploy:
      replicas: {replicas}
      endpoint_mode: dnsrr
      update_config: {{parallelism: 2, delay: 2s, monitor: 1s, order: start-first}}
      rollback_config: {{parallelism: 0, monitor: 1s}}
"""


def test_image_change_rolls_with_parallelism_and_delay(stack: Stack) -> None:
    stack.write(_rolling_file(stack.swarm.image))
    stack.deploy()
    stack.write(_rolling_file(V2_TAG))
    result = json.loads(stack.deploy().stdout)
    assert [a["action"] for a in result["actions"] if a["kind"] == "service"] == ["updated"]

    new = [t for t in _running(stack.tasks("web")) if t["Spec"]["ContainerSpec"]["Image"] == V2_TAG]
    assert len(new) == 4
    created = sorted(parse_time(t["CreatedAt"]) for t in new)
    # two batches of two: each batch together, the second one after the 2 s delay
    assert created[1] - created[0] < 1.5
    assert created[3] - created[2] < 1.5
    assert created[2] - created[1] >= 2.0
    assert stack.service("web")["UpdateStatus"]["State"] == "completed"

    # `stack rollback` returns to the previous image through rollback_config
    stack.run("stack", "rollback", "--host", stack.swarm.host, "web")
    service = stack.service("web")
    assert service["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == stack.swarm.image
    assert service["UpdateStatus"]["State"] == "rollback_completed"
    images = {t["Spec"]["ContainerSpec"]["Image"] for t in _running(stack.tasks("web"))}
    assert images == {stack.swarm.image}


def test_failing_update_rolls_back(stack: Stack) -> None:
    def compose(command: str) -> str:
        return f"""
services:
  web:
    image: {stack.swarm.image}
    command: {command}
    stop_grace_period: 1s
    deploy:
      replicas: 2
      endpoint_mode: dnsrr
      restart_policy: {{condition: none}}
      update_config: {{parallelism: 1, monitor: 2s, failure_action: rollback}}
      rollback_config: {{parallelism: 0, monitor: 1s}}
"""

    stack.write(compose(SLEEP))
    stack.deploy()
    stack.write(compose('["sh", "-c", "exit 3"]'))
    failed = stack.deploy(check=False)
    assert failed.returncode == 13, failed.stderr  # RolledBack
    assert "rolled back" in failed.stderr
    service = stack.service("web")
    assert service["UpdateStatus"]["State"] == "rollback_completed"
    assert service["Spec"]["TaskTemplate"]["ContainerSpec"]["Args"] == SLEEP_ARGS
    running = _running(stack.tasks("web"))
    assert len(running) == 2
    assert all(t["Spec"]["ContainerSpec"]["Args"] == SLEEP_ARGS for t in running)


def test_down_removes_everything(stack: Stack) -> None:
    (stack.root / "key.txt").write_text("k")
    stack.write(
        f"""
services:
  app:
    image: {stack.swarm.image}
    command: {SLEEP}
    stop_grace_period: 1s
    networks: [back]
    secrets: [key]
    configs: [conf]
    deploy: {{endpoint_mode: dnsrr}}
networks:
  back: {{attachable: true}}
secrets:
  key: {{file: ./key.txt}}
configs:
  conf: {{content: "x=1"}}
"""
    )
    stack.deploy()
    api = stack.swarm.client.api
    label = {"label": f"{NAMESPACE}={stack.name}"}
    assert api.services(filters=label) and api.networks(filters=label)
    assert api.secrets(filters=label) and api.configs(filters=label)

    removed = json.loads(
        stack.run("stack", "down", "--host", stack.swarm.host, "--format", "json").stdout
    )["removed"]
    assert sorted(removed) == sorted(
        [
            f"service {stack.name}_app",
            f"network {stack.name}_back",
            f"secret {stack.name}_key",
            f"config {stack.name}_conf",
        ]
    )
    assert api.services(filters=label) == []
    assert api.networks(filters=label) == []
    assert api.secrets(filters=label) == []
    assert api.configs(filters=label) == []
    deadline = time.monotonic() + 15
    while stack.swarm.client.containers.list(all=True, filters=label):
        assert time.monotonic() < deadline, "task containers outlived `stack down`"
        time.sleep(0.2)


@pytest.fixture
def two_nodes(swarm: Swarm) -> Swarm:
    """node2 joined over the veth pair (node1's swarm re-advertised on 10.77.0.1)."""
    added = _script("add-node", swarm.image)
    if added.returncode != 0:
        pytest.fail(f"cannot add the second swarm node: {added.stderr.strip()[-400:]}")
    return swarm


def test_placement_constraint_puts_replicas_on_the_named_node(
    two_nodes: Swarm, tmp_path: Path
) -> None:
    stack = Stack(two_nodes, tmp_path)
    nodes = {n["Description"]["Hostname"]: n["ID"] for n in two_nodes.client.api.nodes()}
    assert set(nodes) == {"pcsw-node1", "pcsw-node2"}
    stack.write(
        f"""
services:
  pinned:
    image: {two_nodes.image}
    command: {SLEEP}
    stop_grace_period: 1s
    deploy:
      replicas: 3
      endpoint_mode: dnsrr
      placement: {{constraints: [node.hostname == pcsw-node2]}}
  labelled:
    image: {two_nodes.image}
    command: {SLEEP}
    stop_grace_period: 1s
    deploy:
      replicas: 2
      endpoint_mode: dnsrr
      placement: {{constraints: [node.labels.pycompose.node == node1]}}
"""
    )
    try:
        stack.deploy()
        pinned = _running(stack.tasks("pinned"))
        labelled = _running(stack.tasks("labelled"))
        assert len(pinned) == 3 and len(labelled) == 2
        assert {t["NodeID"] for t in pinned} == {nodes["pcsw-node2"]}
        assert {t["NodeID"] for t in labelled} == {nodes["pcsw-node1"]}
    finally:
        stack.down()
