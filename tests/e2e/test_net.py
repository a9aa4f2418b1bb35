"""The runtime's network library for real (root): bridges, veths, namespaces, nftables or
iptables, DOCKER-USER next to a running dockerd, published ports.

Traffic goes only to addresses the tests create and to this host (127.0.0.1 and its
primary address). Every test's manager lives under its own tmp root; the fixture destroys
whatever a test leaves and asserts that no bridge, veth, netns mount, nft table or
iptables rule of it remains.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.errors import Conflict, NotFound
from orchestrator.runtime.net import NetworkConfig, NetworkManager, PortMapping, links

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="bridges and namespaces need root"),
]

# a server in a sandbox: answers every TCP connection / UDP datagram with "ok:<tag>"
SERVER = r"""
import socket, sys
proto, port, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
s = socket.socket(socket.AF_INET, kind)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port))
if proto == "tcp":
    s.listen(16)
print("ready", flush=True)
while True:
    if proto == "tcp":
        c, _ = s.accept(); c.sendall(b"ok:" + tag); c.close()
    else:
        _, peer = s.recvfrom(100); s.sendto(b"ok:" + tag, peer)
"""

# a client in a sandbox: prints what the server said, exits 1 when nothing came
CLIENT = r"""
import socket, sys
proto, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
s = socket.socket(socket.AF_INET, kind); s.settimeout(float(sys.argv[4]))
try:
    s.connect((host, port))
    if proto == "udp":
        s.send(b"hi")
    print(s.recv(100).decode())
except OSError as e:
    print("error:", e); sys.exit(1)
"""


def nsenter(path: str, *argv: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["nsenter", f"--net={path}", *argv], capture_output=True, text=True, timeout=timeout
    )


def ask(path: str | None, host: str, port: int, proto: str = "tcp", wait: float = 3) -> str:
    """What a server at host:port answers, from inside sandbox ``path`` (or the host)."""
    argv = [sys.executable, "-c", CLIENT, proto, host, str(port), str(wait)]
    if path is None:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    else:
        proc = nsenter(path, *argv, timeout=30)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def ping(path: str, address: str) -> bool:
    return nsenter(path, "busybox", "ping", "-c", "1", "-W", "1", address).returncode == 0


def primary_address() -> str:
    """The host's address towards its default route (a UDP connect sends no packet)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("198.51.100.1", 9))
        return str(s.getsockname()[0])


def iptables_save() -> str:
    return subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout


def nft_ruleset() -> str:
    return subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout


def nft_table(bridge: str) -> str:
    """Our table of one network as nft prints it ("" when absent)."""
    argv = ["nft", "list", "table", "ip", f"pycompose_{bridge}"]
    return subprocess.run(argv, capture_output=True, text=True).stdout


def mountinfo() -> str:
    return Path("/proc/self/mountinfo").read_text()


class Stack:
    """One manager plus the servers its test started."""

    def __init__(self, manager: NetworkManager) -> None:
        self.m = manager
        self.servers: list[subprocess.Popen[str]] = []
        self.bridges: set[str] = set()
        self.veths: set[str] = set()
        self.paths: set[str] = set()

    def network(self, name: str, **kw: object) -> str:
        info = self.m.create_network(NetworkConfig(name, **kw))  # type: ignore[arg-type]
        self.bridges.add(info.bridge)
        return info.bridge

    def sandbox(self, sid: str, *networks: str) -> str:
        path = self.m.create_sandbox(sid)
        self.paths.add(path)
        for net in networks:
            self.veths.add(self.m.attach(sid, net).host_veth)
        return path

    def serve(self, path: str, port: int, tag: str, proto: str = "tcp") -> None:
        proc = subprocess.Popen(
            ["nsenter", f"--net={path}", sys.executable, "-c", SERVER, proto, str(port), tag],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.servers.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"

    def address(self, sid: str, network: str) -> str:
        return next(e.address for e in self.m.endpoints(sid) if e.network == network)

    def close(self) -> None:
        for proc in self.servers:
            proc.kill()
            proc.wait()
        sandboxes = self.m.root / "sandboxes"
        for f in sandboxes.glob("*.json") if sandboxes.is_dir() else []:
            self.m.destroy_sandbox(f.stem)
        for info in self.m.networks():
            self.m.remove_network(info.name)

    def assert_gone(self) -> None:
        """Nothing of this stack is left on the host."""
        host_links = set(links.links_with_prefix("pc"))
        assert not (self.bridges | self.veths) & host_links
        info = mountinfo()
        assert not [p for p in self.paths if f" {p} " in info]
        assert not [p for p in self.paths if os.path.exists(p)]
        ruleset, saved = nft_ruleset(), iptables_save()
        for bridge in self.bridges:
            assert bridge not in ruleset
            assert bridge not in saved


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = Stack(NetworkManager(tmp_path / "net"))
    try:
        yield s
    finally:
        s.close()
    s.assert_gone()


@pytest.fixture
def ipt_stack(tmp_path: Path) -> Iterator[Stack]:
    s = Stack(NetworkManager(tmp_path / "net", firewall="iptables"))
    try:
        yield s
    finally:
        s.close()
    s.assert_gone()


def test_two_sandboxes_on_one_network_ping_and_talk_tcp(stack: Stack) -> None:
    stack.network("front")
    a = stack.sandbox("a", "front")
    b = stack.sandbox("b", "front")
    ep_a, ep_b = stack.m.endpoints("a")[0], stack.m.endpoints("b")[0]
    info = stack.m.network("front")
    assert (ep_a.ifname, ep_a.prefixlen, ep_a.gateway) == ("eth0", 24, info.gateway)
    # the automatic subnet is a /24 of 10.89.0.0/16 that no host route covers yet
    assert info.subnet.startswith("10.89.") and info.subnet.endswith(".0/24")
    assert info.gateway == info.subnet.replace(".0/24", ".1")
    assert ep_a.address != ep_b.address
    assert ping(a, ep_b.address) and ping(b, ep_a.address)
    stack.serve(b, 7000, "b")
    assert ask(a, ep_b.address, 7000) == "ok:b"
    # lo is up and the default route goes through the gateway
    assert ping(a, "127.0.0.1")
    routes = nsenter(a, "cat", "/proc/net/route").stdout
    assert any(line.split()[:2] == ["eth0", "00000000"] for line in routes.splitlines())
    # attach is idempotent; a taken address is a conflict; endpoints keep the network busy
    assert stack.m.attach("a", "front") == ep_a
    stack.m.create_sandbox("c")
    with pytest.raises(Conflict, match="already in use"):
        stack.m.attach("c", "front", address=ep_a.address)
    with pytest.raises(Conflict, match="still has endpoints"):
        stack.m.remove_network("front")
    with pytest.raises(NotFound):
        stack.m.attach("c", "nowhere")


def test_given_address_mac_and_a_second_network(stack: Stack) -> None:
    stack.network("one", subnet="172.29.8.0/24", ip_range="172.29.8.128/25")
    stack.network("two")
    path = stack.m.create_sandbox("x")
    stack.paths.add(path)
    first = stack.m.attach("x", "one", address="172.29.8.9", mac="02:00:00:aa:bb:cc")
    second = stack.m.attach("x", "two")
    stack.veths |= {first.host_veth, second.host_veth}
    assert (first.address, first.mac, first.ifname) == ("172.29.8.9", "02:00:00:aa:bb:cc", "eth0")
    assert second.ifname == "eth1"
    assert links.netns_links(path) == ["lo", "eth0", "eth1"]
    stack.m.detach("x", "one")
    stack.m.detach("x", "one")  # not attached is fine
    assert not links.link_exists(first.host_veth)
    assert links.netns_links(path) == ["lo", "eth1"]
    routes = nsenter(path, "cat", "/proc/net/route").stdout  # the default route moved
    assert any(line.split()[:2] == ["eth1", "00000000"] for line in routes.splitlines())
    assert stack.m.network("one").subnet == "172.29.8.0/24"
    with pytest.raises(Conflict, match="overlaps"):
        stack.m.create_network(NetworkConfig("three", subnet="172.29.0.0/16"))


def test_other_network_and_internal_network_are_cut_off(stack: Stack) -> None:
    stack.network("front")
    stack.network("back")
    stack.network("vault", internal=True)
    a = stack.sandbox("a", "front")
    o = stack.sandbox("o", "back")
    v = stack.sandbox("v", "vault")
    stack.serve(a, 7000, "a")
    addr_a = stack.address("a", "front")
    # another network: routed through the host, dropped by our forward rules
    assert ask(o, addr_a, 7000, wait=1) == ""
    assert not ping(o, addr_a)
    # internal: no default route at all ...
    routes = nsenter(v, "cat", "/proc/net/route").stdout
    assert not any(line.split()[1:2] == ["00000000"] for line in routes.splitlines()[1:])
    # ... no masquerade in its table, and even a route by hand gets nothing through
    table = nft_table(stack.m.network("vault").bridge)
    assert "masquerade" in table  # only towards the bridge, for 127.0.0.1 sources
    assert "oifname !=" not in table
    gateway = stack.m.network("vault").gateway
    assert nsenter(v, "ip", "route", "add", "default", "via", gateway).returncode == 0
    assert ask(v, addr_a, 7000, wait=1) == ""


def test_published_tcp_and_udp_ports_reach_the_sandbox(stack: Stack) -> None:
    stack.network("front")
    s = stack.sandbox("web", "front")
    stack.serve(s, 80, "tcp")
    stack.serve(s, 53, "udp", proto="udp")
    got = stack.m.publish("web", [PortMapping(80), PortMapping(53, "udp")])
    tcp_port, udp_port = got[0].host_port, got[1].host_port
    assert tcp_port > 0 and udp_port > 0
    assert stack.m.published("web") == got
    assert ask(None, "127.0.0.1", tcp_port) == "ok:tcp"
    assert ask(None, primary_address(), tcp_port) == "ok:tcp"
    assert ask(None, "127.0.0.1", udp_port, "udp") == "ok:udp"
    # a sandbox of the same network reaches it through the host's address (hairpin NAT)
    c = stack.sandbox("client", "front")
    assert ask(c, primary_address(), tcp_port) == "ok:tcp"
    stack.m.unpublish("web")
    assert stack.m.published("web") == []
    assert ask(None, "127.0.0.1", tcp_port, wait=1) == ""


def test_port_in_use_is_a_conflict_before_any_rule(stack: Stack) -> None:
    bridge = stack.network("front")
    stack.sandbox("web", "front")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(Conflict, match=f":{port}/tcp"):
            stack.m.publish("web", [PortMapping(81, host_port=0), PortMapping(80, host_port=port)])
    assert stack.m.published("web") == []
    assert "chain prerouting" in nft_table(bridge)
    assert "dnat to" not in nft_table(bridge)
    mine = stack.m.publish("web", [PortMapping(80)])
    stack.sandbox("other", "front")
    with pytest.raises(Conflict, match="already published"):
        stack.m.publish("other", [PortMapping(80, host_port=mine[0].host_port)])


def iptables_lines(chain: str) -> list[str] | None:
    """``iptables -S chain``; None when the chain does not exist."""
    proc = subprocess.run(["iptables", "-w", "-S", chain], capture_output=True, text=True)
    return proc.stdout.splitlines() if proc.returncode == 0 else None


def bridged_traffic_filtered() -> bool:
    """br_netfilter hands bridged packets to FORWARD (dockerd turns it on)."""
    flag = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
    return flag.exists() and flag.read_text().strip() == "1"


@pytest.fixture
def docker_user() -> None:
    if iptables_lines("DOCKER-USER") is None:
        if os.environ.get("PYCOMPOSE_REQUIRE_DOCKER") == "1":
            pytest.fail("PYCOMPOSE_REQUIRE_DOCKER=1 but no DOCKER-USER chain: is dockerd up?")
        pytest.skip("no DOCKER-USER chain: dockerd is not managing iptables here")


@pytest.mark.usefixtures("docker_user")
def test_traffic_flows_beside_docker_through_our_docker_user_rules(stack: Stack) -> None:
    assert "-P FORWARD DROP" in (iptables_lines("FORWARD") or [])
    bridge = stack.network("front")
    stack.network("back")
    a = stack.sandbox("a", "front")
    b = stack.sandbox("b", "front")
    o = stack.sandbox("o", "back")
    stack.serve(b, 7000, "b")
    addr_b = stack.address("b", "front")
    ours = [f"-A DOCKER-USER -{d} {bridge} -m comment --comment pycompose -j ACCEPT" for d in "io"]
    rules = [line for line in iptables_lines("DOCKER-USER") or [] if bridge in line]
    assert sorted(rules) == sorted(ours)
    assert ask(a, addr_b, 7000) == "ok:b"  # bridged, seen by FORWARD (br_netfilter)
    # routed across bridges through a published port (FORWARD, DNAT)
    port = stack.m.publish("b", [PortMapping(7000)])[0].host_port
    assert ask(o, stack.m.network("back").gateway, port) == "ok:b"
    # without our DOCKER-USER rules docker's DROP policy wins; the next attach puts them back
    for rule in ours:
        subprocess.run(["iptables", "-w", "-D", *rule.split()[1:]], check=True)
    if bridged_traffic_filtered():
        assert ask(a, addr_b, 7000, wait=1) == ""
    stack.sandbox("c", "front")
    assert ask(a, addr_b, 7000) == "ok:b"
    stack.close()
    assert bridge not in iptables_save()


def test_iptables_fallback_isolates_forwards_and_cleans_up(ipt_stack: Stack) -> None:
    bridge = ipt_stack.network("front")
    ipt_stack.network("back")
    a = ipt_stack.sandbox("a", "front")
    b = ipt_stack.sandbox("b", "front")
    o = ipt_stack.sandbox("o", "back")
    assert f"pycompose_{bridge}" not in nft_ruleset()
    assert f":PCF-{bridge}" in iptables_save()
    ipt_stack.serve(b, 7000, "b")
    addr_b = ipt_stack.address("b", "front")
    assert ask(a, addr_b, 7000) == "ok:b"
    assert ask(o, addr_b, 7000, wait=1) == ""
    port = ipt_stack.m.publish("b", [PortMapping(7000)])[0].host_port
    assert ask(None, "127.0.0.1", port) == "ok:b"
    assert ask(None, primary_address(), port) == "ok:b"
    ipt_stack.close()
    assert "PCF-" + bridge not in iptables_save()


def test_destroy_and_remove_leave_nothing(stack: Stack) -> None:
    bridge = stack.network("front")
    path = stack.sandbox("a", "front")
    veth = stack.m.endpoints("a")[0].host_veth
    stack.m.publish("a", [PortMapping(80)])
    assert links.link_exists(bridge) and links.link_exists(veth) and links.is_netns(path)
    stack.m.destroy_sandbox("a")
    stack.m.destroy_sandbox("a")  # idempotent
    assert not links.link_exists(veth) and not os.path.exists(path)
    assert f" {path} " not in mountinfo()
    assert stack.m.endpoints("a") == []
    stack.m.remove_network("front")
    stack.m.remove_network("front")  # absent is fine
    assert not links.link_exists(bridge)
    assert f"pycompose_{bridge}" not in nft_ruleset()
    assert bridge not in iptables_save()
    assert stack.m.networks() == []
    assert not stack.m._ipam.pools()
