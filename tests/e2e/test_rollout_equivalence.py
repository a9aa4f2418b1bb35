"""One compose file, one ``update_config``: the rolling update of ``up`` on one host and of
``deploy --target swarm`` on a (private) swarm, observed the same way and compared.

Both sides run at once: ``pycompose up -d`` against the machine's dockerd and ``pycompose
deploy --target swarm`` against the private swarm of ``tests/support/swarm.py``. Each
rolls 4 replicas with a healthcheck from one tag of the busybox test image to another
(parallelism 2, delay 2s). What is compared comes from the engines' own event streams
(container start, ``health_status: healthy``, die), read the same way on both sides:

- the batches: how many replicas were replaced together;
- the delay: from the last new replica of a batch turning healthy to the next batch's
  first step (an old replica dying, stop-first; a new one starting, start-first);
- the order: whether a slot's old replica died before its new one started;
- how many replicas ran at the least and at the most during the update;
- the end: 4 running replicas of the new image, or, when the update fails, exit code 13
  and 4 running replicas of the old image again.

Batches, order, end state and the rollback are the same; the timings agree within each
engine's own latency, and three differences are asserted as such (docs/swarm.md, "Same
update_config, same behaviour"): one host holds a batch for ``monitor`` (by design,
README) where swarm only counts failures during it; swarm drains a networked task for 2 s
(moby's gossip-converge pause) before stopping it; and swarm starts ``delay`` once the new
tasks run, not once the old ones are gone, so start-first can briefly run more than
replicas + parallelism. Both replace the replicas of a batch at the same time, so both
may dip to replicas - parallelism during a stop-first update. With
PYCOMPOSE_EQUIVALENCE_REPORT=FILE each observation is appended to FILE as a JSON line (the
figures of that table).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator import labels
from tests.support.swarm import (
    V2_TAG,
    Swarm,
    node_sockets,
    swarm_fixture,  # noqa: F401 (the `swarm` fixture)
)

pytestmark = [pytest.mark.docker, pytest.mark.root]

PYCOMPOSE = str(Path(sys.executable).parent / "pycompose")
STACK_LABEL = "com.docker.stack.namespace"
TASK_NAME_LABEL = "com.docker.swarm.task.name"
# busybox sleep as PID 1 ignores SIGTERM; this stops at once, so no stop waits out a grace
SLEEP = '["sh", "-c", "trap \'exit 0\' TERM; sleep 1000 & wait"]'
FAILING = '["sh", "-c", "exit 3"]'
REPLICAS = 4
DELAY = 2.0
# swarm counts a new task's failure only within `monitor` of seeing it run (or fail): with a
# monitor near 0 a task that exits at once can slip through; a zero one means swarm's 5 s
MONITOR = 1.0
# what each engine adds to `delay` between batches (see _delay_honoured), with room for
# two daemons sharing 2 cores
HOST_LATENCY = 1.5
SWARM_LATENCY = 3.8


def compose(image: str, *, order: str, command: str = SLEEP) -> str:
    return f"""
services:
  web:
    image: {image}
    command: {command}
    stop_grace_period: 1s
    healthcheck: {{test: ["CMD", "true"], interval: 1s, timeout: 2s, retries: 3}}
    deploy:
      replicas: {REPLICAS}
      endpoint_mode: dnsrr
      update_config:
        parallelism: 2
        delay: {DELAY:g}s
        monitor: {MONITOR:g}s
        order: {order}
        failure_action: rollback
      rollback_config: {{parallelism: 0, monitor: {MONITOR:g}s}}
"""


# -- one side: a project on one host, or a stack on the swarm --------------------------------


class Side:
    """One compose project applied by the console script; observed through its engine(s)."""

    kind = ""

    def __init__(self, name: str, root: Path) -> None:
        self.name, self.root = name, root
        root.mkdir()

    def write(self, text: str) -> None:
        (self.root / "compose.yaml").write_text(text)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [PYCOMPOSE, "-f", str(self.root / "compose.yaml"), "-p", self.name, *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=180)

    def apply(self) -> subprocess.CompletedProcess[str]:
        raise NotImplementedError

    def down(self) -> None:
        raise NotImplementedError

    def clients(self) -> list[Any]:
        """SDK clients of every engine that runs the project's containers."""
        raise NotImplementedError

    @property
    def label(self) -> str:
        raise NotImplementedError

    def slot(self, attributes: dict[str, str]) -> int:
        raise NotImplementedError

    def running(self) -> list[tuple[str, bool]]:
        """(image, healthy) of each running container of the project, on every engine."""
        found = []
        for client in self.clients():
            for c in client.containers.list(filters={"label": self.label, "status": "running"}):
                health = c.attrs["State"].get("Health", {}).get("Status")
                found.append((_image(c.attrs["Config"]["Image"]), health == "healthy"))
        return sorted(found)


class Host(Side):
    kind = "one host"

    def __init__(self, name: str, root: Path, client: Any) -> None:
        super().__init__(name, root)
        self.client = client

    def apply(self) -> subprocess.CompletedProcess[str]:
        return self.run("--progress", "plain", "up", "-d", "--wait", "--wait-timeout", "60")

    def down(self) -> None:
        self.run("down", "-v", "-t", "1")

    def clients(self) -> list[Any]:
        return [self.client]

    @property
    def label(self) -> str:
        return f"{labels.PROJECT}={self.name}"

    def slot(self, attributes: dict[str, str]) -> int:
        return int(attributes[labels.CONTAINER_NUMBER])


class OnSwarm(Side):
    kind = "swarm"

    def __init__(self, name: str, root: Path, swarm: Swarm) -> None:
        super().__init__(name, root)
        self.swarm = swarm

    def apply(self) -> subprocess.CompletedProcess[str]:
        host = ["--host", self.swarm.host]
        return self.run("deploy", "--target", "swarm", *host, "--wait-timeout", "60")

    def down(self) -> None:
        self.run("stack", "down", "--target", "swarm", "--host", self.swarm.host)

    def clients(self) -> list[Any]:
        import docker

        # node2 exists once the two-node test of test_swarm.py added it: tasks may land there
        others = [s for s in node_sockets(self.swarm.image) if s != self.swarm.host]
        return [self.swarm.client] + [
            docker.DockerClient(base_url=s, version="auto", timeout=30) for s in others
        ]

    @property
    def label(self) -> str:
        return f"{STACK_LABEL}={self.name}"

    def slot(self, attributes: dict[str, str]) -> int:
        return int(attributes[TASK_NAME_LABEL].split(".")[1])  # <stack>_web.<slot>.<task id>


# -- observing -------------------------------------------------------------------------------


def _image(reference: str) -> str:
    return reference.split("@", 1)[0]  # swarm may pin a digest after the tag


@dataclass
class Life:
    """One container during the update, from its engine's events (epoch seconds)."""

    image: str
    slot: int
    started: float | None = None
    healthy: float | None = None
    died: float | None = None


@dataclass(frozen=True)
class Observed:
    batches: tuple[int, ...]  # new replicas started per batch
    gaps: tuple[float, ...]  # last healthy of batch k → first step of batch k+1
    stopped_first: tuple[bool, ...]  # per replaced slot: its old replica died first
    retire_lag: tuple[float, ...]  # per replaced slot: new healthy → old died (start-first)
    fewest: int  # least replicas running at once
    most: int  # most replicas running at once
    returncode: int
    final: tuple[tuple[str, bool], ...]  # (image, healthy) of the running replicas


class Recorder:
    """The project's container events, streamed live from every engine of a side: the
    engines keep only their last 256 events, which healthcheck execs fill in seconds."""

    ACTIONS = ["start", "die", "health_status"]

    def __init__(self, side: Side) -> None:
        self.found: list[dict[str, Any]] = []
        self.streams = [
            client.events(
                filters={"type": "container", "label": side.label, "event": self.ACTIONS},
                decode=True,
            )
            for client in side.clients()
        ]
        self.threads = [
            threading.Thread(target=self._read, args=(stream,), daemon=True)
            for stream in self.streams
        ]
        for thread in self.threads:
            thread.start()

    def _read(self, stream: Any) -> None:
        with contextlib.suppress(Exception):  # closing the stream ends the read abruptly
            for event in stream:
                self.found.append(event)

    def stop(self) -> list[dict[str, Any]]:
        time.sleep(0.5)  # the last events are on their way
        for stream in self.streams:
            stream.close()
        for thread in self.threads:
            thread.join(timeout=10)
        return sorted(self.found, key=lambda e: int(e["timeNano"]))


def observe(side: Side, events: list[dict[str, Any]], new_image: str, returncode: int) -> Observed:
    lives: dict[str, Life] = {}
    running = REPLICAS  # the update starts from 4 running replicas (start() checked)
    fewest = most = running
    for event in events:
        attributes = event["Actor"]["Attributes"]
        life = lives.setdefault(
            event["id"], Life(_image(attributes["image"]), side.slot(attributes))
        )
        at = int(event["timeNano"]) / 1e9
        action = event["Action"]
        if action == "start":
            life.started = at
            running += 1
        elif action == "die":
            life.died = at
            running -= 1
        elif action == "health_status: healthy" and life.healthy is None:
            life.healthy = at
        fewest, most = min(fewest, running), max(most, running)
    new = sorted(
        (life for life in lives.values() if life.image == new_image and life.started),
        key=lambda life: life.started or 0.0,
    )
    old = {life.slot: life for life in lives.values() if life.image != new_image and life.died}
    groups: list[list[Life]] = []
    for life in new:  # a batch: new replicas started within a second of one another
        assert life.started is not None
        if groups and life.started - (groups[-1][-1].started or 0.0) < DELAY / 2 + 0.5:
            groups[-1].append(life)
        else:
            groups.append([life])

    def first_step(group: list[Life]) -> float:
        steps = [life.started or 0.0 for life in group]
        steps += [old[life.slot].died or 0.0 for life in group if life.slot in old]
        return min(steps)

    gaps = tuple(
        round(first_step(after) - max(life.healthy or 0.0 for life in before), 2)
        for before, after in itertools.pairwise(groups)
    )
    replaced = [life for life in new if life.slot in old]
    return Observed(
        batches=tuple(len(group) for group in groups),
        gaps=gaps,
        stopped_first=tuple(
            (old[life.slot].died or 0.0) <= (life.started or 0.0) for life in replaced
        ),
        retire_lag=tuple(
            round((old[life.slot].died or 0.0) - (life.healthy or 0.0), 2)
            for life in replaced
            if life.healthy
        ),
        fewest=fewest,
        most=most,
        returncode=returncode,
        final=tuple(side.running()),
    )


def apply_both(sides: list[Side]) -> list[subprocess.CompletedProcess[str]]:
    """Apply each side's file at the same time (threads: the work is in subprocesses)."""
    results: list[subprocess.CompletedProcess[str] | None] = [None] * len(sides)

    def work(index: int) -> None:
        results[index] = sides[index].apply()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(sides))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=200)
    done = [r for r in results if r is not None]
    assert len(done) == len(sides), "an apply did not finish"
    return done


def update_both(sides: list[Side], text: str, new_image: str) -> list[Observed]:
    """Write ``text`` on every side, apply it, and observe what each engine did."""
    for side in sides:
        side.write(text)
    recorders = [Recorder(side) for side in sides]
    results = apply_both(sides)
    recorded = [recorder.stop() for recorder in recorders]
    for side, result in zip(sides, results, strict=True):
        assert "Traceback" not in result.stderr, f"{side.kind}: {result.stderr}"
    observed = [
        observe(side, events, new_image, result.returncode)
        for side, events, result in zip(sides, recorded, results, strict=True)
    ]
    report = os.environ.get("PYCOMPOSE_EQUIVALENCE_REPORT")
    if report:  # for the table in docs/swarm.md: one JSON line per side and update
        with open(report, "a") as out:
            for side, seen in zip(sides, observed, strict=True):
                out.write(json.dumps({"side": side.kind, **dataclasses.asdict(seen)}) + "\n")
    return observed


@pytest.fixture(scope="module")
def images(swarm: Swarm, docker_client: Any) -> Iterator[tuple[str, str]]:
    """(old, new): the busybox test image and a second tag of it, on both engines (the
    swarm fixture tagged node1; the tag made here on the machine's dockerd is removed)."""
    had = any(V2_TAG in image.tags for image in docker_client.images.list(name=V2_TAG))
    docker_client.images.get(swarm.image).tag(V2_TAG)
    try:
        yield swarm.image, V2_TAG
    finally:
        if not had:
            docker_client.images.remove(V2_TAG, noprune=True)


@pytest.fixture
def sides(
    images: tuple[str, str], swarm: Swarm, docker_client: Any, project_name: str, tmp_path: Path
) -> Iterator[list[Side]]:
    made: list[Side] = [
        Host(project_name, tmp_path / "host", docker_client),
        OnSwarm("pyeq" + secrets.token_hex(4), tmp_path / "swarm", swarm),
    ]
    try:
        yield made
    finally:
        for side in made:
            side.down()


def start(sides: list[Side], text: str, image: str) -> None:
    for side in sides:
        side.write(text)
    for side, result in zip(sides, apply_both(sides), strict=True):
        assert result.returncode == 0, f"{side.kind}: {result.stderr}"
        assert side.running() == [(image, True)] * REPLICAS, side.kind


def _report(host: Observed, swarm: Observed) -> str:
    return f"\n  one host: {host}\n  swarm:    {swarm}"


def _delay_honoured(host: Observed, swarm: Observed, why: str) -> None:
    """Both wait at least ``delay`` between a batch being healthy and the next one's first
    step, plus no more than their own latency: on one host the runner's polling, retiring
    and stopping; on swarm the agent reporting "running" to the manager and, before it
    stops a networked task, moby's 2 s gossip-converge pause after taking it out of DNS.
    One host also holds the batch for ``monitor`` first (by design, README); swarm only
    counts failures during it."""
    assert len(host.gaps) == len(swarm.gaps) == 1, why
    assert DELAY + MONITOR - 0.1 <= host.gaps[0] <= DELAY + MONITOR + HOST_LATENCY, why
    assert DELAY - 0.1 <= swarm.gaps[0] <= DELAY + SWARM_LATENCY, why


def test_stop_first_batches_delay_and_order_match(
    sides: list[Side], images: tuple[str, str]
) -> None:
    old, new = images
    start(sides, compose(old, order="stop-first"), old)
    host, swarm = update_both(sides, compose(new, order="stop-first"), new)
    why = _report(host, swarm)

    assert host.returncode == swarm.returncode == 0, why
    assert host.batches == swarm.batches == (2, 2), why
    _delay_honoured(host, swarm, why)
    # stop-first: every old replica died before its successor started; never more than
    # 4 ran, never fewer than 4 - parallelism
    assert host.stopped_first == swarm.stopped_first == (True,) * REPLICAS, why
    assert host.most == swarm.most == REPLICAS, why
    assert min(host.fewest, swarm.fewest) >= REPLICAS - 2, why
    assert host.final == swarm.final == ((new, True),) * REPLICAS, why


def test_start_first_batches_delay_and_order_match(
    sides: list[Side], images: tuple[str, str]
) -> None:
    old, new = images
    start(sides, compose(old, order="start-first"), old)
    host, swarm = update_both(sides, compose(new, order="start-first"), new)
    why = _report(host, swarm)

    assert host.returncode == swarm.returncode == 0, why
    assert host.batches == swarm.batches == (2, 2), why
    _delay_honoured(host, swarm, why)
    # start-first: every new replica started, and turned healthy, before its old one died;
    # never fewer than 4 ran, never more than 4 + parallelism
    assert host.stopped_first == swarm.stopped_first == (False,) * REPLICAS, why
    assert all(lag >= 0 for lag in host.retire_lag + swarm.retire_lag), why
    assert host.fewest == swarm.fewest == REPLICAS, why
    # one host retires a batch's old replicas before the delay starts: at most 4 + 2 ran.
    # Swarm starts the delay once the new tasks run and drains the old ones meanwhile
    # (2 s gossip pause), so with a delay that short the next batch can start beside them
    assert host.most == REPLICAS + 2, why
    assert REPLICAS + 2 <= swarm.most <= REPLICAS + 4, why
    assert host.final == swarm.final == ((new, True),) * REPLICAS, why


def test_failing_update_rolls_back_on_both(sides: list[Side], images: tuple[str, str]) -> None:
    old, new = images
    start(sides, compose(old, order="stop-first"), old)
    broken = compose(new, order="stop-first", command=FAILING)
    host, swarm = update_both(sides, broken, new)
    why = _report(host, swarm)

    assert host.returncode == swarm.returncode == 13, why  # RolledBack
    # only the first batch was tried: its 2 replicas failed (2/4 > max_failure_ratio 0)
    assert host.batches == swarm.batches == (2,), why
    assert host.stopped_first == swarm.stopped_first == (True, True), why
    assert host.final == swarm.final == ((old, True),) * REPLICAS, why
