"""A start-first rolling update on the namespace backend serves *by service name* without a
failed request: the retiring replica loses its name while it still serves (the backend
changes aliases in place), and loses its endpoint only after a grace period. A client
container resolves `web` afresh for every request during the whole update.

(On the Docker backend the engine can only drop a name by disconnecting, which frees the
address at once; there the published ingress port is the zero-failure path.)
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.backends.namespace import NamespaceBackend
from tests.support.cli import NamespaceStack as Stack
from tests.support.images import HTTPD_COMMAND

pytestmark = [
    pytest.mark.root,
    pytest.mark.docker,
    pytest.mark.skipif(os.geteuid() != 0, reason="the namespace backend needs root"),
]


@pytest.fixture
def stack(tmp_path: Path, project_name: str, busybox_image: str) -> Iterator[Stack]:
    made = Stack(tmp_path, project_name, busybox_image)
    yield made
    made.stop_supervisor()
    made.run("down", "-v", "-t", "0", check=False)


def web_ids(stack: Stack) -> dict[str, str]:
    observed = NamespaceBackend(stack.root).observe(stack.name)
    return {c.name: c.id for c in observed.containers if c.service == "web"}


def eventually(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.2)

WEB = """\
services:
  web:
    image: IMAGE
    command: HTTPD
    environment: {GENERATION: "GEN"}
    deploy:
      replicas: 2
      update_config: {parallelism: 1, order: start-first, delay: 0s}
    healthcheck:
      test: ["CMD-SHELL", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc 127.0.0.1 80 | grep -q 200"]
      interval: 1s
      retries: 30
  client:
    image: IMAGE
    depends_on:
      web: {condition: service_healthy}
    command:
      - sh
      - -c
      - >-
        while true; do
        if printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 web 80 | grep -q '200 OK';
        then echo ok; else echo FAIL; fi; sleep 0.05; done
"""


def tally(stack: Stack) -> tuple[int, int]:
    lines = stack.run("logs", "--no-log-prefix", "client").stdout.split()
    return lines.count("ok"), lines.count("FAIL")


def test_start_first_update_serves_by_name_without_a_failed_request(
    stack: Stack, tmp_path: Path
) -> None:
    def write(generation: str) -> None:
        text = WEB.replace("HTTPD", json.dumps(list(HTTPD_COMMAND))).replace("GEN", generation)
        stack.write(text)

    write("1")
    stack.run("up", "-d", "--wait", "--wait-timeout", "60")
    before = web_ids(stack)
    eventually(lambda: tally(stack)[0] >= 10, 30, "the client's first answers")
    ok_before, failed_before = tally(stack)

    write("2")
    stack.run("up", "-d", "--wait", "--wait-timeout", "120")
    time.sleep(1.0)
    ok_after, failed_after = tally(stack)

    after = web_ids(stack)
    assert set(after) == set(before) and not set(after.values()) & set(before.values()), (
        "both replicas should have been replaced under their own names"
    )
    assert ok_after - ok_before > 20, "the client made too few requests during the update"
    failed = failed_after - failed_before
    assert failed == 0, f"{failed} requests by name failed during the update"

