"""DockerBackend against the real daemon: what the cross-backend contract suite does not cover.

Traffic goes only to 127.0.0.1 and to containers these tests create.
"""

from __future__ import annotations

import contextlib
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import labels as L
from orchestrator.backends.base import Attachment, ContainerSpec, NetworkSpec, VolumeSpec
from orchestrator.backends.docker import DockerBackend
from orchestrator.errors import Conflict, EngineUnavailable, NotFound, PycomposeError
from orchestrator.model import Network, PortConfig, Service, ServiceVolume, Ulimit, Volume
from tests.support.images import HTTPD_COMMAND

pytestmark = pytest.mark.docker

SLEEP = ("/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait; done")


@pytest.fixture
def backend(docker_client: Any) -> Iterator[DockerBackend]:
    made = DockerBackend.from_env()
    yield made
    made.close()


def make_spec(
    project: str, image: str, *, service: str = "app", number: int = 1, **fields: Any
) -> ContainerSpec:
    extra = {
        k: fields.pop(k) for k in ("attachments", "publish_ports", "volume_names") if k in fields
    }
    fields.setdefault("command", SLEEP)
    return ContainerSpec(
        project=project,
        service=Service(name=service, image=image, **fields),
        name=L.container_name(project, service, number),
        number=number,
        labels={L.PROJECT: project, L.SERVICE: service, L.CONTAINER_NUMBER: str(number)},
        **extra,
    )


def run(backend: DockerBackend, spec: ContainerSpec) -> str:
    container_id = backend.create_container(spec)
    backend.start_container(container_id)
    return container_id


def sh(backend: DockerBackend, container_id: str, script: str) -> tuple[int, str]:
    result = backend.exec(container_id, ["/bin/sh", "-c", script])
    return result.exit_code, result.output.decode().strip()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_alias_resolves_to_every_replica(
    backend: DockerBackend, busybox_image: str, project_name: str
) -> None:
    net = f"{project_name}_default"
    backend.create_network(NetworkSpec(Network("default", net), {L.PROJECT: project_name}))
    on_net = (Attachment(net, aliases=("web",)),)
    ids = [
        run(
            backend,
            make_spec(project_name, busybox_image, service="web", number=n, attachments=on_net),
        )
        for n in (1, 2)
    ]
    client = run(
        backend,
        make_spec(project_name, busybox_image, service="client", attachments=(Attachment(net),)),
    )
    expected = {backend.inspect_container(i).addresses[net] for i in ids}

    code, output = sh(backend, client, "nslookup web 127.0.0.11")

    assert code == 0, output
    answers = output.split("Name:", 1)[-1]
    assert {ip for ip in expected if ip in answers} == expected


def test_bind_mount_and_named_volume(
    backend: DockerBackend, busybox_image: str, project_name: str, tmp_path: Path
) -> None:
    (tmp_path / "greeting").write_text("hi from the host\n")
    volume = f"{project_name}_data"
    backend.create_volume(VolumeSpec(Volume("data", volume), {L.PROJECT: project_name}))
    mounts = (
        ServiceVolume(type="bind", source=str(tmp_path), target="/host", read_only=True),
        ServiceVolume(type="volume", source="data", target="/data"),
    )
    names = {"data": volume}
    writer = run(
        backend,
        make_spec(project_name, busybox_image, volumes=mounts, volume_names=names),
    )

    assert sh(backend, writer, "cat /host/greeting") == (0, "hi from the host")
    assert sh(backend, writer, "touch /host/nope")[0] != 0  # read-only bind
    assert sh(backend, writer, "echo kept > /data/f")[0] == 0
    reader = run(
        backend,
        make_spec(project_name, busybox_image, number=2, volumes=mounts[1:], volume_names=names),
    )
    assert sh(backend, reader, "cat /data/f") == (0, "kept")


def test_bind_mount_creates_a_missing_host_path(
    backend: DockerBackend, busybox_image: str, project_name: str, tmp_path: Path
) -> None:
    """The short syntax (and `create_host_path: true`) has the engine create the path."""
    missing = tmp_path / "made" / "by-engine"
    mount = ServiceVolume(
        type="bind", source=str(missing), target="/m", bind_create_host_path=True
    )
    run(backend, make_spec(project_name, busybox_image, volumes=(mount,)))

    assert missing.is_dir()


def test_long_syntax_bind_of_a_missing_path_is_refused(
    backend: DockerBackend, busybox_image: str, project_name: str, tmp_path: Path
) -> None:
    """Long syntax without `create_host_path: true`: nothing is created, the engine refuses."""
    missing = tmp_path / "not-there"
    mount = ServiceVolume(type="bind", source=str(missing), target="/m")
    with pytest.raises(PycomposeError, match="does not exist"):
        run(backend, make_spec(project_name, busybox_image, volumes=(mount,)))
    assert not missing.exists()


def test_tmpfs_and_read_only_rootfs(
    backend: DockerBackend, busybox_image: str, project_name: str
) -> None:
    spec = make_spec(
        project_name,
        busybox_image,
        read_only=True,
        tmpfs=("/run:size=65536",),
        volumes=(ServiceVolume(type="tmpfs", target="/scratch", tmpfs_size=131072),),
    )
    container_id = run(backend, spec)

    code, mounts = sh(backend, container_id, "grep -E ' /(run|scratch) ' /proc/mounts")
    assert code == 0
    sizes = {line.split()[1]: line.split()[3] for line in mounts.splitlines()}
    assert "size=64k" in sizes["/run"] and "size=128k" in sizes["/scratch"]
    assert sh(backend, container_id, "touch /root-file")[0] != 0
    assert sh(backend, container_id, "touch /scratch/f && touch /run/f")[0] == 0


def test_host_mode_port_answers_on_localhost(
    backend: DockerBackend, busybox_image: str, project_name: str
) -> None:
    port = free_port()
    spec = make_spec(
        project_name,
        busybox_image,
        command=HTTPD_COMMAND,
        hostname="replica-one",
        ports=(PortConfig(target=80, published=str(port), host_ip="127.0.0.1", mode="host"),),
        publish_ports=(0,),
    )
    container_id = run(backend, spec)

    body = ""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                body = response.read().decode().strip()
            break
        except OSError:
            time.sleep(0.2)
    assert body == "replica-one"
    published = backend.inspect_container(container_id).published
    assert published["80/tcp"] == (("127.0.0.1", str(port)),)


def test_taken_host_port_is_a_conflict_naming_the_port(
    backend: DockerBackend, busybox_image: str, project_name: str
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        spec = make_spec(
            project_name,
            busybox_image,
            ports=(PortConfig(target=80, published=str(port), host_ip="127.0.0.1", mode="host"),),
            publish_ports=(0,),
        )
        container_id = backend.create_container(spec)

        with pytest.raises(Conflict, match=str(port)):
            backend.start_container(container_id)


def test_ulimits_sysctls_and_dropped_caps_are_visible_inside(
    backend: DockerBackend, busybox_image: str, project_name: str
) -> None:
    spec = make_spec(
        project_name,
        busybox_image,
        ulimits={"nofile": Ulimit(soft=1111, hard=2222)},
        sysctls={"net.ipv4.ip_unprivileged_port_start": "123"},
        cap_drop=("ALL",),
    )
    container_id = run(backend, spec)

    assert sh(backend, container_id, "ulimit -n; ulimit -Hn") == (0, "1111\n2222")
    assert sh(backend, container_id, "cat /proc/sys/net/ipv4/ip_unprivileged_port_start") == (
        0,
        "123",
    )
    assert sh(backend, container_id, "grep CapEff /proc/self/status") == (
        0,
        "CapEff:\t0000000000000000",
    )


def test_engine_side_settings(
    backend: DockerBackend, busybox_image: str, project_name: str, docker_client: Any
) -> None:
    spec = make_spec(
        project_name,
        busybox_image,
        mem_limit=64 << 20,
        cpus=0.5,
        pids_limit=64,
        stop_signal="SIGINT",
        stop_grace_period=7,
        init=True,
        environment={"GREETING": "hello"},
        working_dir="/tmp",
        user="65534",
    )
    container_id = backend.create_container(spec)

    attrs = docker_client.api.inspect_container(container_id)
    host, config = attrs["HostConfig"], attrs["Config"]
    assert (host["Memory"], host["NanoCpus"], host["PidsLimit"], host["Init"]) == (
        64 << 20,
        500_000_000,
        64,
        True,
    )
    assert (config["StopSignal"], config["StopTimeout"], config["WorkingDir"], config["User"]) == (
        "SIGINT",
        7,
        "/tmp",
        "65534",
    )
    assert "GREETING=hello" in config["Env"]


def test_exec_user_workdir_env(
    backend: DockerBackend, busybox_image: str, project_name: str
) -> None:
    container_id = run(backend, make_spec(project_name, busybox_image))

    result = backend.exec(
        container_id,
        ["/bin/sh", "-c", 'echo "$(id -u) $(pwd) $X"'],
        user="65534",
        workdir="/bin",
        env={"X": "y"},
    )

    assert (result.exit_code, result.output) == (0, b"65534 /bin y\n")


def test_logs_tail_timestamps_and_follow(
    backend: DockerBackend, busybox_image: str, project_name: str
) -> None:
    spec = make_spec(
        project_name, busybox_image, command=("/bin/sh", "-c", "echo a; echo b; echo c")
    )
    container_id = run(backend, spec)
    backend.wait_container(container_id, timeout=30)

    assert [x.text for x in backend.logs(container_id, tail=1)] == ["c"]
    stamped = list(backend.logs(container_id, timestamps=True))
    assert [x.text for x in stamped] == ["a", "b", "c"]
    assert all(x.timestamp is not None and x.timestamp > 1e9 for x in stamped)
    # follow on an exited container ends by itself
    assert [x.text for x in backend.logs(container_id, follow=True)] == ["a", "b", "c"]


def test_pause_unpause_and_top(
    backend: DockerBackend, busybox_image: str, project_name: str
) -> None:
    container_id = run(backend, make_spec(project_name, busybox_image))

    table = backend.top(container_id)
    backend.pause_container(container_id)
    paused = backend.inspect_container(container_id).status
    backend.unpause_container(container_id)

    assert "PID" in table[0] and len(table) > 1
    assert (paused, backend.inspect_container(container_id).status) == ("paused", "running")


def test_wait_with_timeout_on_a_running_container(
    backend: DockerBackend, busybox_image: str, project_name: str
) -> None:
    from orchestrator.errors import WaitTimeout

    container_id = run(backend, make_spec(project_name, busybox_image))

    with pytest.raises(WaitTimeout):
        backend.wait_container(container_id, timeout=1)


@pytest.mark.parametrize("policy", [None, "missing", "never"])
def test_missing_image_that_cannot_be_pulled(backend: DockerBackend, policy: str | None) -> None:
    image = "pycompose-test/does-not-exist:1"
    with pytest.raises(NotFound, match=f"image {image} not found locally and could not be pulled"):
        backend.ensure_image(image, policy)


def test_present_image_needs_no_pull(backend: DockerBackend, busybox_image: str) -> None:
    backend.ensure_image(busybox_image, "never")
    backend.ensure_image(busybox_image, None)


def test_external_network_that_does_not_exist(backend: DockerBackend, project_name: str) -> None:
    network = Network("outside", f"{project_name}_outside", external=True)
    with pytest.raises(NotFound, match="external"):
        backend.create_network(NetworkSpec(network, {}))


def test_volume_in_use_is_a_conflict(
    backend: DockerBackend, busybox_image: str, project_name: str
) -> None:
    volume = f"{project_name}_busy"
    backend.create_volume(VolumeSpec(Volume("busy", volume), {L.PROJECT: project_name}))
    mount = ServiceVolume(type="volume", source="busy", target="/b")
    backend.create_container(
        make_spec(project_name, busybox_image, volumes=(mount,), volume_names={"busy": volume})
    )

    with pytest.raises(Conflict):
        backend.remove_volume(volume)


def test_unreachable_daemon_is_engine_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent")

    with pytest.raises(
        EngineUnavailable, match="cannot reach the Docker engine at unix:///nonexistent"
    ):
        DockerBackend.from_env()


def test_engine_going_away_mid_session_is_engine_unavailable() -> None:
    backend = DockerBackend(_unreachable_api(), "unix:///nonexistent")
    with contextlib.closing(backend), pytest.raises(EngineUnavailable):
        backend.observe("anything")


def _unreachable_api() -> Any:
    import docker

    return docker.APIClient(base_url="unix:///nonexistent", version="1.41")


def test_links_resolve_on_a_user_network(
    backend: DockerBackend, busybox_image: str, project_name: str
) -> None:
    net = f"{project_name}_default"
    backend.create_network(NetworkSpec(Network("default", net), {L.PROJECT: project_name}))
    second = f"{project_name}_other"
    backend.create_network(NetworkSpec(Network("other", second), {L.PROJECT: project_name}))
    both = (Attachment(net), Attachment(second))
    web = run(backend, make_spec(project_name, busybox_image, service="web", attachments=both))
    client = run(
        backend,
        make_spec(
            project_name, busybox_image, service="client", links=("web:backend",), attachments=both
        ),
    )
    address = backend.inspect_container(web).addresses[second]

    code, output = sh(backend, client, f"nslookup backend 127.0.0.11 && ping -c1 -W2 {address}")

    assert code == 0, output
    assert backend.inspect_container(web).addresses[net] in output.split("Name:", 1)[-1]
