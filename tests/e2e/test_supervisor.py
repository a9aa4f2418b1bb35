"""The supervisor on the real Docker daemon: restart policies, unhealthy replicas, survival.

Each test brings a project up through ``Composer`` (which starts the supervisor on
demand, with its state and pidfile in the test's tmp dir) and judges from the engine's own
live event stream: the ``start``/``die`` timestamps of a container are the ground truth for
how many restarts happened and when.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.api import Composer, load
from orchestrator.loader.discover import LoadOptions
from orchestrator.plan.reconcile import UpOptions
from orchestrator.supervisor import client

pytestmark = pytest.mark.docker


@pytest.fixture
def supervised(
    tmp_path: Path, project_name: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Supervisor state and pidfile under tmp; every supervisor started here is stopped.

    Requests ``project_name`` so it is torn down first: the supervisor stops before the
    project's containers are removed.
    """
    monkeypatch.setenv("PYCOMPOSE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PYCOMPOSE_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("PYCOMPOSE_SUPERVISOR_INTERVAL", "0.5")
    monkeypatch.delenv("PYCOMPOSE_SUPERVISOR", raising=False)
    yield tmp_path
    client.stop(timeout=5)
    assert client.running_pid() is None


def compose(tmp_path: Path, project: str, text: str) -> Composer:
    (tmp_path / "compose.yaml").write_text(text)
    result = load(
        LoadOptions(
            files=(str(tmp_path / "compose.yaml"),),
            project_name=project,
            working_directory=str(tmp_path),
        )
    )
    return Composer.open(result.project, "docker")


def container(docker_client: Any, project: str, service: str) -> Any:
    return docker_client.containers.get(f"{project}-{service}-1")


class Recorder:
    """The engine's live event stream for one project, collected from before ``up`` on.

    (The daemon's event history for ``since`` queries is a small ring buffer that a busy
    engine overwrites, so it cannot be trusted after the fact.)
    """

    def __init__(self, docker_client: Any, project: str) -> None:
        import threading

        self.seen: list[tuple[str, str, float]] = []  # (container id, action, time)
        self._stream = docker_client.events(
            decode=True,
            filters={"type": "container", "label": f"com.docker.compose.project={project}"},
        )
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        try:
            for event in self._stream:
                self.seen.append(
                    (event.get("id", ""), event.get("Action", ""), event["timeNano"] / 1e9)
                )
        except Exception:
            return  # closed

    def times(self, container_id: str, action: str) -> list[float]:
        return sorted(t for cid, act, t in list(self.seen) if cid == container_id and act == action)

    def close(self) -> None:
        self._stream.close()
        self._thread.join(timeout=5)


@pytest.fixture
def recorder(docker_client: Any, project_name: str) -> Iterator[Recorder]:
    recording = Recorder(docker_client, project_name)
    yield recording
    recording.close()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


CRASHING = """\
services:
  crash:
    image: {image}
    command: ["sh", "-c", "sleep 0.3; exit 1"]
    deploy:
      restart_policy: {{condition: on-failure, max_attempts: 3, delay: 2s}}
  steady:
    image: {image}
    command: ["sleep", "3600"]
    restart: always
"""


def test_on_failure_restarts_exactly_max_attempts_times_after_the_delay(
    supervised: Path,
    project_name: str,
    busybox_image: str,
    docker_client: Any,
    recorder: Recorder,
) -> None:
    comp = compose(supervised, project_name, CRASHING.format(image=busybox_image))
    comp.up(UpOptions())
    crash = container(docker_client, project_name, "crash")
    assert crash.attrs["HostConfig"]["RestartPolicy"]["Name"] in ("no", "")  # no fighting
    wait_for(lambda: len(recorder.times(crash.id, "start")) >= 4, 20, "three restarts")
    time.sleep(3.0)  # longer than the delay: a fourth restart would have happened by now
    starts = recorder.times(crash.id, "start")
    dies = recorder.times(crash.id, "die")
    assert len(starts) == 4, starts  # the first start and exactly three restarts
    crash.reload()
    assert crash.status == "exited"
    for died, started in zip(dies, starts[1:], strict=False):
        # delay: 2 s honoured (the upper bound leaves room for a loaded 2-core machine)
        assert 1.5 <= started - died <= 3.0, (dies, starts)
    status = client.status()
    assert status.running and project_name in status.projects
    slot = status.slots[f"{project_name}/crash/1"]
    assert slot["restarts"] == 3 and slot["gave_up"]


def test_killed_supervisor_picks_up_where_it_left_off(
    supervised: Path,
    project_name: str,
    busybox_image: str,
    docker_client: Any,
    recorder: Recorder,
) -> None:
    comp = compose(supervised, project_name, CRASHING.format(image=busybox_image))
    comp.up(UpOptions())
    crash = container(docker_client, project_name, "crash")
    steady = container(docker_client, project_name, "steady")
    steady_started = steady.attrs["State"]["StartedAt"]
    # two restarts done, then kill -9 while the third exit waits out its delay
    wait_for(lambda: len(recorder.times(crash.id, "die")) >= 3, 20, "three exits")
    pid = client.running_pid()
    assert pid is not None and pid > 0
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: client.running_pid() is None, 5, "the supervisor to die")
    assert client.start() != pid
    wait_for(lambda: len(recorder.times(crash.id, "start")) >= 4, 15, "restart 3")
    time.sleep(3.0)
    starts = recorder.times(crash.id, "start")
    assert len(starts) == 4, starts  # the restarts before the crash still counted
    steady.reload()
    assert steady.status == "running"
    assert steady.attrs["State"]["StartedAt"] == steady_started  # not restarted needlessly


ALWAYS = """\
services:
  app:
    image: {image}
    command: ["sleep", "3600"]
    restart: always
"""


def restarted_since(app: Any, previous: str) -> Callable[[], bool]:
    def check() -> bool:
        app.reload()
        return bool(app.status == "running" and app.attrs["State"]["StartedAt"] != previous)

    return check


def test_always_restarts_a_killed_container_but_not_a_stopped_one(
    supervised: Path, project_name: str, busybox_image: str, docker_client: Any
) -> None:
    comp = compose(supervised, project_name, ALWAYS.format(image=busybox_image))
    comp.up(UpOptions())
    app = container(docker_client, project_name, "app")
    app.kill()  # from outside: the supervisor restarts it
    wait_for(restarted_since(app, app.attrs["State"]["StartedAt"]), 10, "a restart")
    comp.stop(timeout=1)  # on purpose: it stays stopped
    time.sleep(2.0)
    app.reload()
    assert app.status == "exited"
    comp.start()  # a manual start makes it supervised again
    app.reload()
    assert app.status == "running"
    app.kill()
    wait_for(restarted_since(app, app.attrs["State"]["StartedAt"]), 10, "a restart after start")
    comp.down(timeout=1)
    wait_for(lambda: client.running_pid() is None, 10, "the idle supervisor to exit")


UNHEALTHY = """\
services:
  web:
    image: {image}
    command: ["sh", "-c", "touch /ok; exec sleep 3600"]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "test", "-f", "/ok"]
      interval: 1s
      retries: 1
  kept:
    image: {image}
    command: ["sh", "-c", "touch /ok; exec sleep 3600"]
    stop_grace_period: 1s
    labels: {{io.pycompose.replace-unhealthy: "false"}}
    healthcheck:
      test: ["CMD", "test", "-f", "/ok"]
      interval: 1s
      retries: 1
"""


def test_an_unhealthy_replica_is_replaced_unless_the_service_opts_out(
    supervised: Path, project_name: str, busybox_image: str, docker_client: Any
) -> None:
    comp = compose(supervised, project_name, UNHEALTHY.format(image=busybox_image))
    comp.up(UpOptions(), wait=True, wait_timeout=30)
    web = container(docker_client, project_name, "web")
    kept = container(docker_client, project_name, "kept")
    for replica in (web, kept):
        assert replica.exec_run(["rm", "/ok"]).exit_code == 0

    def replaced() -> bool:
        now = container(docker_client, project_name, "web")
        return bool(now.id != web.id and now.attrs["State"].get("Health", {}).get("Status"))

    wait_for(replaced, 20, "the unhealthy replica to be replaced")
    new = container(docker_client, project_name, "web")
    wait_for(
        lambda: (new.reload() or new.attrs["State"]["Health"]["Status"]) == "healthy",
        10,
        "the replacement to be healthy",
    )
    assert new.labels["com.docker.compose.service"] == "web"
    kept.reload()
    assert kept.attrs["State"]["Health"]["Status"] == "unhealthy"
    assert container(docker_client, project_name, "kept").id == kept.id  # opted out


def test_cli_start_status_stop(supervised: Path) -> None:
    import json
    import subprocess
    import sys

    pycompose = str(Path(sys.executable).parent / "pycompose")

    def run(*args: str) -> str:
        done = subprocess.run(
            [pycompose, "supervisor", *args], capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "running (pid" in run("start")
    info = json.loads(run("status", "--format", "json"))
    assert info["running"] and info["pid"] == client.running_pid()
    assert info["state_dir"] == str(supervised / "state")
    assert run("stop") == "supervisor stopped\n"
    assert json.loads(run("status", "--format", "json"))["running"] is False
    assert run("stop") == "no supervisor was running\n"
