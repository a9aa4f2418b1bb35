"""The namespace backend for real, through the CLI: `pycompose --backend namespace ...`.

Root, namespaces, overlayfs and cgroups on this machine; the busybox test image is copied
from the local Docker engine into a state root of this module (PYCOMPOSE_ROOT under tmp)
by the first `up`. The supervisor (restart policies) runs with its state and pidfile under
tmp too, and is stopped after each test. Every test ends with `down` and checks that no
mount, cgroup, shim or state of its containers is left on the host.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.cli import NamespaceStack

pytestmark = [
    pytest.mark.root,
    pytest.mark.docker,
    pytest.mark.skipif(os.geteuid() != 0, reason="the namespace backend needs root"),
]

CGROUPS = Path("/sys/fs/cgroup")


@pytest.fixture(scope="module")
def state_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pycompose-ns-e2e")


class Stack(NamespaceStack):
    """One project directory and the CLI pointed at it, with tmp state everywhere."""

    def __init__(self, directory: Path, name: str, root: Path, image: str) -> None:
        super().__init__(
            directory, name, image, root=root, env={"PYCOMPOSE_SUPERVISOR_INTERVAL": "0.5"}
        )


def leftovers(root: Path, ids: set[str]) -> dict[str, list[str]]:
    """What of these containers (or of this state root) is on the host: mounts, cgroups,
    processes, state files."""
    mounts = [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if str(root) in line
    ]
    cgroups = [
        str(p) for i in ids for p in (*CGROUPS.glob(f"*/pycompose/{i}"), CGROUPS / "pycompose" / i)
        if p.exists()
    ]
    processes = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            stat = (proc / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if str(root) in cmdline and stat[0] != "Z":
            processes.append(f"{proc.name}: {cmdline}")
    state = [
        str(p)
        for sub in ("containers", "meta", "names", "networks", "volumes")
        for p in (root / sub).glob("*")
    ]
    return {"mounts": mounts, "cgroups": cgroups, "processes": processes, "state": state}


NOTHING: dict[str, list[str]] = {"mounts": [], "cgroups": [], "processes": [], "state": []}


@pytest.fixture
def stack(
    tmp_path: Path, project_name: str, state_root: Path, busybox_image: str
) -> Iterator[Stack]:
    made = Stack(tmp_path, project_name, state_root, busybox_image)
    yield made
    # the supervisor first, so it cannot replace a container while `down` removes it
    made.stop_supervisor()
    if (tmp_path / "compose.yaml").exists():
        made.run("down", "-v", "-t", "0", check=False)


def eventually(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


ISOLATION = """\
services:
  box:
    image: IMAGE
    hostname: boxhost
    command:
      - sh
      - -c
      - >-
        echo pid=$$$$;
        echo host=$$(hostname);
        echo procs=$$(ls /proc | grep -c '^[0-9]');
        echo mounts=$$(awk '{print $$5}' /proc/self/mountinfo | tr '\\n' ' ');
        echo changed > /bin/busybox-was-here; rm /bin/ls; chmod 700 /bin;
        echo ready;
        exec sleep 3600
  frozen:
    image: IMAGE
    read_only: true
    command: ["sh", "-c", "touch /etc/x 2>&1; echo touched=$$?; exec sleep 3600"]
"""

# the network's files are bind-mounted from the container's directory, as docker does
ALLOWED_MOUNTS = ("/", "/proc", "/dev", "/sys", "/etc/hosts", "/etc/resolv.conf", "/etc/hostname")


def image_layers(stack: Stack) -> dict[str, tuple[int, int, int]]:
    """Every path of the image's unpacked layers with (mode, size, mtime), the image
    copied from the Docker engine first."""
    from orchestrator.backends.factory import _docker_export
    from orchestrator.backends.namespace import NamespaceBackend

    backend = NamespaceBackend(stack.root, image_source=_docker_export)
    backend.ensure_image(stack.image)
    out: dict[str, tuple[int, int, int]] = {}
    for layer in backend.images.resolve(stack.image).layers:
        for path in (layer, *Path(layer).rglob("*")):
            st = os.lstat(path)
            out[str(path)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def test_isolation_filesystem_and_cli(stack: Stack) -> None:
    stack.write(ISOLATION)
    layers_before = image_layers(stack)
    stack.run("up", "-d")
    eventually(lambda: "ready" in stack.logs("box"), 20, "the box to report")
    facts = dict(line.partition("=")[::2] for line in stack.logs("box") if "=" in line)

    # PID 1, its own hostname, no host processes, no host mounts
    assert (facts["pid"], facts["host"]) == ("1", "boxhost")
    assert int(facts["procs"]) <= 4  # sh, the $(...) subshell, ls, grep
    points = facts["mounts"].split()
    assert points and all(
        p == "/" or any(p == a or p.startswith(a + "/") for a in ALLOWED_MOUNTS[1:])
        for p in points
    ), points

    # the image layers are untouched: writes went to the container's own layer
    assert any(path.endswith("/bin/ls") for path in layers_before)
    assert image_layers(stack) == layers_before
    # read_only: true makes the root filesystem read-only
    eventually(lambda: any("touched=" in x for x in stack.logs("frozen")), 20, "frozen")
    assert "touched=1" in stack.logs("frozen")

    ps = stack.ps()
    assert {s: r["state"] for s, r in ps.items()} == {"box": "running", "frozen": "running"}
    done = stack.run("exec", "-T", "box", "sh", "-c", "echo in=$(hostname) uid=$(id -u); exit 4",
                     check=False)
    assert (done.returncode, done.stdout.strip()) == (4, "in=boxhost uid=0")
    top = stack.run("top", "box").stdout
    assert "sleep 3600" in top

    ids = {row["id"] for row in ps.values()}
    stack.run("down", "-t", "0")
    assert stack.ps() == {}
    assert leftovers(stack.root, ids) == NOTHING


def test_memory_limit_kills_the_process_that_exceeds_it(stack: Stack) -> None:
    stack.write(
        """\
services:
  hog:
    image: IMAGE
    mem_limit: 24m
    command:
      - sh
      - -c
      - "echo start; x=$$(head -c 300000000 /dev/zero | tr '\\\\0' a); echo survived"
"""
    )
    stack.run("up", "-d")
    eventually(lambda: stack.ps()["hog"]["state"] == "exited", 60, "the hog to die")
    assert stack.ps()["hog"]["exit_code"] == 137  # SIGKILL from the OOM killer
    assert stack.logs("hog") == ["start"]


def test_restart_on_failure_restarts_a_crashing_process(stack: Stack) -> None:
    stack.write(
        """\
services:
  crash:
    image: IMAGE
    command: ["sh", "-c", "echo run; sleep 0.2; exit 3"]
    restart: on-failure
"""
    )
    stack.run("up", "-d")
    # the supervisor (started by `up`, it outlives the CLI) starts it again and again
    eventually(lambda: stack.logs("crash").count("run") >= 3, 30, "two restarts")


def test_stop_kills_a_process_that_ignores_sigterm_after_the_grace_period(
    stack: Stack,
) -> None:
    stack.write(
        """\
services:
  stubborn:
    image: IMAGE
    stop_grace_period: 1s
    command: ["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"]
"""
    )
    stack.run("up", "-d")
    eventually(lambda: "ready" in stack.logs("stubborn"), 20, "the trap to be set")
    started = time.monotonic()
    stack.run("stop")
    took = time.monotonic() - started
    assert 1.0 <= took < 8.0
    row = stack.ps()["stubborn"]
    assert (row["state"], row["exit_code"]) == ("exited", 137)


def test_healthchecks_run_after_the_cli_exits(stack: Stack) -> None:
    stack.write(
        """\
services:
  good:
    image: IMAGE
    command: ["sleep", "3600"]
    healthcheck: {test: ["CMD", "true"], interval: 300ms}
  bad:
    image: IMAGE
    command: ["sleep", "3600"]
    healthcheck: {test: ["CMD-SHELL", "exit 1"], interval: 200ms, retries: 2}
    labels: {io.pycompose.replace-unhealthy: "false"}
  slow:
    image: IMAGE
    command: ["sleep", "3600"]
    healthcheck: {test: ["CMD", "sleep", "5"], interval: 200ms, timeout: 300ms, retries: 1}
    labels: {io.pycompose.replace-unhealthy: "false"}
"""
    )
    stack.run("up", "-d")
    eventually(
        lambda: {s: r["health"] for s, r in stack.ps().items()}
        == {"good": "healthy", "bad": "unhealthy", "slow": "unhealthy"},
        20,
        "healthy, unhealthy, and unhealthy by timeout",
    )


def test_down_leaves_nothing_behind(stack: Stack) -> None:
    stack.write(
        """\
services:
  web:
    image: IMAGE
    command: ["sleep", "3600"]
    tmpfs: ["/scratch"]
    volumes: ["data:/data", "./conf:/conf:ro"]
    healthcheck: {test: ["CMD", "true"], interval: 200ms}
    deploy: {replicas: 2}
  job:
    image: IMAGE
    command: ["sh", "-c", "cat /conf/x"]
    volumes: ["./conf:/conf:ro"]
volumes:
  data: {}
"""
    )
    (stack.dir / "conf").mkdir()
    (stack.dir / "conf" / "x").write_text("from the host\n")
    before = leftovers(stack.root, set())
    stack.run("up", "-d")
    eventually(lambda: stack.ps().get("job", {}).get("state") == "exited", 20, "the job")
    assert stack.logs("job") == ["from the host"]
    ids = {row["id"] for row in json.loads(stack.run("ps", "-a", "--format", "json").stdout)}
    assert len(ids) == 3
    during = leftovers(stack.root, ids)
    assert during["cgroups"] and during["processes"] and during["state"]

    stack.run("down", "-v", "-t", "0")

    assert before == NOTHING
    assert leftovers(stack.root, ids) == NOTHING
