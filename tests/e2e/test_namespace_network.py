"""Networking of the namespace backend for real, through the CLI, on the voting-app shape.

Two networks (frontend, backend), five services, replicas: names resolve per network and
round-robin over replicas, the networks are isolated from each other, a host-mode port and
an ingress port answer on 127.0.0.1, a container reaches the Debian mirror through NAT (one
HTTP request to deb.debian.org, nothing else), `pycompose port` tells the mappings, a port
in use fails before the container exists, and after `down` nothing of the project is left:
no bridge, veth, sandbox, nft table, lease, proxy or DNS daemon.

Traffic goes to 127.0.0.1, to addresses these tests created, and once to deb.debian.org.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.backends.namespace import NamespaceBackend
from orchestrator.runtime.dns import DnsService
from orchestrator.runtime.net import NetworkManager
from tests.support.cli import PYCOMPOSE, NamespaceStack
from tests.support.images import HTTPD_COMMAND

pytestmark = [
    pytest.mark.root,
    pytest.mark.docker,
    pytest.mark.skipif(os.geteuid() != 0, reason="the namespace backend needs root"),
]

HTTPD = json.dumps(list(HTTPD_COMMAND))
FETCH_MIRROR = (
    "ip=$(nslookup deb.debian.org | awk '/^Address: /{print $2; exit}'); "
    "(printf 'GET /debian/dists/bookworm/Release HTTP/1.1\\r\\nHost: deb.debian.org\\r\\n"
    "Connection: close\\r\\n\\r\\n'; sleep 3) | nc $ip 80 | head -c 2000"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(port: int) -> str:
    """The body of ``GET /``: the hostname of the container that served it."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n")
        chunks = []
        while data := conn.recv(65536):
            chunks.append(data)
    head, _, body = b"".join(chunks).decode(errors="replace").partition("\r\n\r\n")
    assert head.startswith("HTTP/1."), head
    return body.strip()


def eventually(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check()
            if found:
                return found
        except (OSError, AssertionError):
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


class Stack(NamespaceStack):
    """Its own state root, run dir and supervisor under tmp (so its DNS daemon and ingress
    proxy are its own)."""

    def __init__(self, directory: Path, name: str, image: str) -> None:
        super().__init__(directory, name, image)

    def backend(self) -> NamespaceBackend:
        return NamespaceBackend(self.root)

    def addresses(self) -> dict[str, dict[str, str]]:
        """container name -> network -> address, as observe reports them."""
        observed = self.backend().observe(self.name)
        return {c.name: dict(c.addresses) for c in observed.containers}


@pytest.fixture
def stack(tmp_path: Path, project_name: str, busybox_image: str) -> Iterator[Stack]:
    made = Stack(tmp_path, project_name, busybox_image)
    yield made
    subprocess.run([PYCOMPOSE, "supervisor", "stop"], env=made.env, capture_output=True,
                   timeout=30, check=False)
    if (tmp_path / "compose.yaml").exists():
        made.run("down", "-v", "-t", "0", check=False)
    # whatever a failed test left: every network of this state root, then the DNS daemon
    manager = NetworkManager(made.root / "net")
    for network in manager.networks():
        subprocess.run(["ip", "link", "del", network.bridge], capture_output=True, check=False)
    DnsService(made.root / "dns").stop()


def voting_app(ingress: int, published: int) -> str:
    sleeper = '["sleep", "3600"]'
    return f"""\
services:
  vote:
    image: IMAGE
    command: {HTTPD}
    deploy: {{replicas: 2}}
    networks: [frontend, backend]
    ports: ["127.0.0.1:{ingress}:80"]
  redis:
    image: IMAGE
    command: {sleeper}
    deploy: {{replicas: 2}}
    networks: [backend]
  worker:
    image: IMAGE
    command: {sleeper}
    networks: [backend]
  db:
    image: IMAGE
    command: {sleeper}
    hostname: database
    networks: [backend]
    dns_search: [example.internal]
    extra_hosts: ["mirror.local:10.1.2.3"]
  result:
    image: IMAGE
    command: {HTTPD}
    networks: [frontend]
    ports:
      - {{target: 80, published: "{published}", host_ip: 127.0.0.1, mode: host}}
  probe:
    image: IMAGE
    command: {sleeper}
    network_mode: "service:result"
  lonely:
    image: IMAGE
    command: {sleeper}
    network_mode: none
  hostnet:
    image: IMAGE
    command: {sleeper}
    network_mode: host
    extra_hosts: ["extra.local:10.1.2.4"]
networks:
  frontend: {{}}
  backend: {{}}
"""


def http_get(address: str) -> str:
    """A shell command fetching ``/`` from ``address``: nc, since this static busybox's
    wget crashes (under docker too) once connected."""
    return f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {address} 80"


def lookup(stack: Stack, service: str, name: str) -> list[str]:
    """The addresses busybox nslookup prints for ``name``, in the order it got them."""
    out = stack.sh(service, f"nslookup {name}").stdout
    _, _, answer = out.partition("Name:")
    return [line.split()[-1] for line in answer.splitlines() if line.strip().startswith("Address")]


def host_links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def nft_tables() -> str:
    if shutil.which("nft") is None:
        return ""
    return subprocess.run(["nft", "list", "tables"], capture_output=True, text=True,
                          check=False).stdout


def test_voting_app_networking(stack: Stack) -> None:
    ingress, published = free_port(), free_port()
    stack.write(voting_app(ingress, published))
    stack.run("up", "-d")
    by_name = stack.addresses()
    p = stack.name
    frontend, backend = f"{p}_frontend", f"{p}_backend"
    redis = {by_name[f"{p}-redis-{n}"][backend] for n in (1, 2)}
    assert set(by_name[f"{p}-vote-1"]) == {frontend, backend}
    assert set(by_name[f"{p}-result-1"]) == {frontend}

    # a vote replica resolves `redis` to both replicas, rotated between lookups
    firsts = set()
    for _ in range(4):
        got = lookup(stack, "vote", "redis")
        assert set(got) == redis, got
        firsts.add(got[0])
    assert firsts == redis
    # container names and hostnames resolve too; a container gets the search path of its
    # service and its extra_hosts
    assert lookup(stack, "worker", f"{p}-db-1") == [by_name[f"{p}-db-1"][backend]]
    assert lookup(stack, "worker", "database") == [by_name[f"{p}-db-1"][backend]]
    files = stack.sh("db", "cat /etc/resolv.conf /etc/hosts /etc/hostname").stdout
    assert "search example.internal" in files and "10.1.2.3\tmirror.local" in files
    assert f"{by_name[f'{p}-db-1'][backend]}\tdatabase" in files

    # networks are isolated: backend-only cannot resolve or reach frontend-only
    result_ip = by_name[f"{p}-result-1"][frontend]
    assert lookup(stack, "vote", "result") == [result_ip]
    result_host = stack.sh("result", "hostname").stdout.strip()
    assert result_host in stack.sh("vote", http_get(result_ip)).stdout
    assert lookup(stack, "worker", "result") == []
    reach = stack.sh("worker", http_get(result_ip))
    assert reach.returncode != 0 and result_host not in reach.stdout, reach

    # `network_mode: service:result` shares result's network namespace (and its names)
    assert result_host in stack.sh("probe", http_get("127.0.0.1")).stdout
    assert stack.sh("probe", "hostname").stdout.strip() == result_host

    # `none`: loopback only; `host`: the host's interfaces and resolvers, plus extra_hosts
    assert stack.sh("lonely", "ls /sys/class/net").stdout.split() == ["lo"]
    seen = stack.sh("hostnet", "ls /sys/class/net; cat /etc/hosts").stdout
    assert set(os.listdir("/sys/class/net")) & set(seen.split()) >= {"lo"} | {
        n.bridge for n in NetworkManager(stack.root / "net").networks()
        if n.name in (frontend, backend)
    }
    assert "10.1.2.4\textra.local" in seen

    # the host-mode port and the ingress port answer on 127.0.0.1
    assert eventually(lambda: get(published), 10, "the published port") == result_host
    voters = {stack.sh("vote", "hostname", index=n).stdout.strip() for n in (1, 2)}
    served = {eventually(lambda: get(ingress), 10, "the ingress port") for _ in range(6)}
    assert served <= voters and served

    # `pycompose port` tells both mappings
    assert stack.run("port", "result", "80").stdout.strip() == f"127.0.0.1:{published}"
    assert stack.run("port", "vote", "80").stdout.strip() == f"127.0.0.1:{ingress}"

    # outbound through NAT, the name forwarded to the host's resolvers: one request (with
    # nc: this static busybox's wget crashes on the mirror's answer, under docker too)
    fetched = stack.sh("worker", FETCH_MIRROR)
    assert "Origin: Debian" in fetched.stdout, fetched

    # after `down`, nothing of the project is left on the host
    manager = NetworkManager(stack.root / "net")
    ours = [n for n in manager.networks() if n.name in (frontend, backend)]
    bridges = {n.bridge for n in ours}
    sandboxes = {c.id: stack.backend().net.sandbox_path(c.id)
                 for c in stack.backend().observe(p).containers}
    veths = {e.host_veth for cid in sandboxes for e in manager.endpoints(cid)}
    assert len(bridges) == 2 and len(veths) == 9 and bridges | veths <= host_links()
    stack.run("down", "-t", "0")
    assert not (bridges | veths) & host_links()
    assert not [n for n in manager.networks() if n.name in (frontend, backend)]
    mounts = Path("/proc/self/mountinfo").read_text()
    assert not [s for s in sandboxes.values() if os.path.exists(s) or s in mounts]
    assert not [b for b in bridges if f"pycompose_{b}" in nft_tables()]
    leases = [
        str(f) for f in (stack.root / "net").rglob("*")
        if f.is_file() and any(n in f.read_text(errors="replace") for n in (frontend, backend))
    ]
    assert leases == []
    assert not list((stack.run_dir / "ingress").glob("*.pid"))
    assert not DnsService(stack.root / "dns").running()


def test_a_port_in_use_fails_before_the_container_exists(stack: Stack) -> None:
    port = free_port()
    stack.write(f"""\
services:
  web:
    image: IMAGE
    command: {HTTPD}
    ports:
      - {{target: 80, published: "{port}", host_ip: 127.0.0.1, mode: host}}
""")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        result = stack.run("up", "-d", check=False)
    assert result.returncode != 0
    assert f"port {port}/tcp on 127.0.0.1 is already in use" in result.stderr
    assert json.loads(stack.run("ps", "-a", "--format", "json").stdout) == []
    assert list((stack.root / "meta").glob("*.json")) == []


def test_connect_and_disconnect_move_names_and_endpoints(
    tmp_path: Path, project_name: str, busybox_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a rolling update relies on: disconnecting a replica takes its endpoint and its
    names away at once; connecting it again with aliases brings both back."""
    from orchestrator import labels as L
    from orchestrator.backends.base import Attachment, ContainerSpec, NetworkSpec
    from orchestrator.backends.factory import _docker_export
    from orchestrator.model import Network, Service

    monkeypatch.setenv("PYCOMPOSE_RUN_DIR", str(tmp_path / "run"))
    backend = NamespaceBackend(tmp_path / "state", image_source=_docker_export)
    backend.ensure_image(busybox_image)
    network = f"{project_name}_default"
    backend.create_network(NetworkSpec(Network(key="default", name=network),
                                       {L.PROJECT: project_name}))
    ids: list[str] = []

    def container(service: str, number: int) -> str:
        spec = ContainerSpec(
            project=project_name,
            service=Service(name=service, image=busybox_image, command=("sleep", "3600"),
                            stop_grace_period=0),
            name=f"{project_name}-{service}-{number}",
            number=number,
            labels={L.PROJECT: project_name, L.SERVICE: service,
                    L.CONTAINER_NUMBER: str(number), L.ONEOFF: "False"},
            attachments=(Attachment(network, aliases=(service,)),),
        )
        ids.append(backend.create_container(spec))
        backend.start_container(ids[-1])
        return ids[-1]

    def names(name: str) -> set[str]:
        out = backend.exec(client, ["nslookup", name]).output.decode(errors="replace")
        print(name, out)  # shown when an assertion fails
        answer = out.partition("Name:")[2]
        return {w.split()[-1] for w in answer.splitlines() if w.strip().startswith("Address")}

    try:
        first, second = container("web", 1), container("web", 2)
        client = container("client", 1)
        a1 = backend.inspect_container(first).addresses[network]
        a2 = backend.inspect_container(second).addresses[network]
        assert names("web") == {a1, a2}

        backend.set_network_attachment(first, network, None)
        assert backend.inspect_container(first).addresses == {}
        assert names("web") == {a2}
        assert names(f"{project_name}-web-1") == set()

        backend.set_network_attachment(first, network, Attachment(network, aliases=("web",)))
        again = backend.inspect_container(first).addresses[network]
        assert names("web") == {again, a2}
        # aliases change in place: the endpoint (and its address) stays
        backend.set_network_attachment(first, network, Attachment(network, aliases=("w",)))
        assert backend.inspect_container(first).addresses[network] == again
        assert (names("web"), names("w")) == ({a2}, {again})
        # a stopped container answers to nothing
        backend.stop_container(second, 0)
        assert names("web") == set()
    finally:
        for container_id in ids:
            backend.remove_container(container_id, force=True)
        backend.remove_network(network)
    assert not DnsService(tmp_path / "state" / "dns").running()
    assert not NetworkManager(tmp_path / "state" / "net").networks()
