"""The private swarm daemons of ``scripts/swarm-daemons.sh``, as one session fixture.

Shared by every test module that deploys to a swarm. A module imports the fixture by its
function name (``from tests.support.swarm import swarm_fixture``); tests ask for it as
``swarm``. The daemons are started once; the instance that started them stops them (with
their namespaces, veth and directories) at the end of the session, and an instance that
found them running leaves them running.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "swarm-daemons.sh"
SOCKET = "unix:///run/pycompose-swarm/node1.sock"
# a second tag of the test image on node1: an image change swarm must roll out
V2_TAG = "pycompose-test/busybox:swarm-v2"


@dataclass
class Swarm:
    host: str
    client: Any  # docker SDK client of node1 (the manager)
    image: str


def run_script(command: str, image: str) -> subprocess.CompletedProcess[str]:
    """``scripts/swarm-daemons.sh COMMAND`` with ``image`` to copy into new daemons."""
    env = {**os.environ, "PYCOMPOSE_SWARM_IMAGES": image}
    return subprocess.run(
        ["bash", str(SCRIPT), command], env=env, capture_output=True, text=True, timeout=120
    )


def node_sockets(image: str) -> list[str]:
    """The sockets of the nodes that answer now (node1, and node2 once it was added)."""
    listed = run_script("status", image).stdout.split()
    return [word for word in listed if word.startswith("unix://")]


def cannot_start(reason: str) -> None:
    """Skip, unless PYCOMPOSE_SWARM says the swarm tests must run (CI): then fail."""
    if os.environ.get("PYCOMPOSE_SWARM"):
        pytest.fail(f"PYCOMPOSE_SWARM is set but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session", name="swarm")
def swarm_fixture(request: pytest.FixtureRequest) -> Iterator[Swarm]:
    """node1 for the session; stopped afterwards unless it was already running."""
    import docker

    if os.geteuid() != 0:
        cannot_start("the private swarm daemons need root (network namespaces)")
    try:  # the test image comes from the main daemon
        busybox_image: str = request.getfixturevalue("busybox_image")
    except pytest.skip.Exception as exc:
        cannot_start(f"no test image to load into the swarm daemons ({exc})")
    already = "node1" in run_script("status", busybox_image).stdout
    started = run_script("start", busybox_image)
    if started.returncode != 0:
        cannot_start(f"cannot start the swarm daemons: {started.stderr.strip()[-400:]}")
    client = docker.DockerClient(base_url=SOCKET, version="auto", timeout=60)
    try:
        client.images.get(busybox_image).tag(V2_TAG)
        yield Swarm(SOCKET, client, busybox_image)
    finally:
        client.close()
        if not already:
            stopped = run_script("stop", busybox_image)
            assert stopped.returncode == 0, stopped.stderr
