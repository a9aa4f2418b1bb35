"""The DNS daemon as the namespace backend leaves it: a real detached process started by
``DnsService``, answering on 127.0.0.1 at a high port over UDP and TCP, reloaded by
``apply``, forwarding to fake upstream servers on other 127.0.0.x addresses, restarted when
it died, and gone without a trace after ``stop``.

Traffic goes only to 127.0.0.x; every process and file is removed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from orchestrator.errors import ConfigError
from orchestrator.runtime.dns import Client, DnsService, Records, Zone
from tests.unit.runtime.dns.fakes import FakeUpstream, fake_upstream, free_port

ROOT = Path(__file__).resolve().parents[2]


def daemons_of(state_dir: Path) -> list[int]:
    """Pids of every live DNS daemon process serving ``state_dir``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if (b"orchestrator.runtime.dns.daemon" in argv and str(state_dir).encode() in argv
                and state not in ("Z", "X")):
            found.append(int(entry.name))
    return found


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with fake_upstream("127.0.0.2") as server:
        yield server


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "dns"
    yield path
    DnsService(path).stop()  # whatever a failed test left behind
    for pid in daemons_of(path):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def service(state_dir: Path, upstream: FakeUpstream, tmp_path: Path) -> DnsService:
    resolv = tmp_path / "resolv.conf"
    # our parser takes addr:port here, so the "host's resolver" can be a fake one
    resolv.write_text(f"search example.org\nnameserver 127.0.0.2:{upstream.port}\n")
    return DnsService(state_dir, port=free_port("127.0.0.1"), resolv_conf=str(resolv))


def records(names: dict[str, tuple[str, ...]], upstream: tuple[str, ...] = ()) -> Records:
    return Records(("127.0.0.1",), (Zone("front", names),),
                   (Client("127.0.0.1", ("front",), upstream),))


def ask(service: DnsService, name: str, *, over: str = "udp",
        source: str = "127.0.0.1") -> dns.message.Message:
    query = dns.message.make_query(name, "A")
    if over == "tcp":
        return dns.query.tcp(query, "127.0.0.1", port=service.port, timeout=3, source=source)
    return dns.query.udp(query, "127.0.0.1", port=service.port, timeout=3, source=source)


def addresses(message: dns.message.Message) -> list[str]:
    return [rd.to_text() for rrset in message.answer for rd in rrset]


def test_answers_a_over_udp_and_tcp_round_robin(service: DnsService) -> None:
    service.apply(records({"redis": ("10.1.0.5", "10.1.0.6"), "web": ("10.1.0.2",)}))
    assert service.running()
    firsts = {addresses(ask(service, "redis"))[0] for _ in range(2)}
    assert firsts == {"10.1.0.5", "10.1.0.6"}
    over_tcp = ask(service, "Redis.", over="tcp")
    assert sorted(addresses(over_tcp)) == ["10.1.0.5", "10.1.0.6"]
    assert over_tcp.flags & dns.flags.AA
    assert addresses(ask(service, "web")) == ["10.1.0.2"]


def test_apply_reloads_and_returns_once_served(
    service: DnsService, upstream: FakeUpstream
) -> None:
    service.apply(records({"web": ("10.1.0.2",)}))
    pid = service.status()["pid"]  # type: ignore[index]
    service.apply(records({"api": ("10.1.0.9",)}))
    assert addresses(ask(service, "api")) == ["10.1.0.9"]
    # web is no name of ours any more: it goes to the (fake) host resolver
    assert addresses(ask(service, "web")) == ["198.51.100.7"]
    assert upstream.seen == [("udp", "web.")]
    status = service.status()
    assert status is not None and status["pid"] == pid and status["generation"] == 2
    assert status["resolvers"] == [f"127.0.0.2:{upstream.port}"]
    # the same records again change nothing
    service.apply(records({"api": ("10.1.0.9",)}))
    assert service.status()["generation"] == 2  # type: ignore[index]


def test_forwards_unknown_names_to_the_clients_upstream(
    service: DnsService, tmp_path: Path
) -> None:
    with fake_upstream("127.0.0.3") as own:
        service.apply(records({"web": ("10.1.0.2",)}, upstream=(f"127.0.0.3:{own.port}",)))
        assert addresses(ask(service, "deb.example")) == ["198.51.100.7"]
        assert addresses(ask(service, "other.example", over="tcp")) == ["198.51.100.7"]
    assert own.seen == [("udp", "deb.example."), ("udp", "other.example.")]


def test_an_unknown_client_only_gets_forwarding(
    service: DnsService, upstream: FakeUpstream
) -> None:
    service.apply(records({"web": ("10.1.0.2",)}))
    assert addresses(ask(service, "web", source="127.0.0.4")) == ["198.51.100.7"]
    assert upstream.seen == [("udp", "web.")]


def test_survives_the_process_that_started_it(service: DnsService, state_dir: Path) -> None:
    script = (
        "import sys; from pathlib import Path\n"
        "from orchestrator.runtime.dns import Client, DnsService, Records, Zone\n"
        f"DnsService(Path({str(state_dir)!r}), port={service.port}).apply(Records(\n"
        "    ('127.0.0.1',), (Zone('front', {'web': ('10.1.0.2',)}),),\n"
        "    (Client('127.0.0.1', ('front',)),)))\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT, timeout=30)
    assert service.running()
    [pid] = daemons_of(state_dir)
    assert os.getsid(pid) == pid  # a session of its own: the terminal's hangup passes it by
    assert addresses(ask(service, "web")) == ["10.1.0.2"]
    service.stop()
    assert daemons_of(state_dir) == []


def test_a_dead_daemon_is_restarted(service: DnsService, state_dir: Path) -> None:
    service.apply(records({"web": ("10.1.0.2",)}))
    [first] = daemons_of(state_dir)
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while service.running() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not service.running()
    service.apply(records({"web": ("10.1.0.2",)}))
    [second] = daemons_of(state_dir)
    assert second != first
    assert addresses(ask(service, "web")) == ["10.1.0.2"]


def test_stops_cleanly(service: DnsService, state_dir: Path) -> None:
    service.apply(records({"web": ("10.1.0.2",)}))
    assert daemons_of(state_dir)
    service.apply(Records(()))  # no listener left: stop
    assert daemons_of(state_dir) == []
    assert not service.running()
    assert list(state_dir.iterdir()) == []
    with pytest.raises(dns.exception.Timeout):
        dns.query.udp(dns.message.make_query("web", "A"), "127.0.0.1", port=service.port,
                      timeout=0.3)
    service.stop()  # stopping twice is fine


def test_bad_records_are_refused_before_anything_changes(
    service: DnsService, state_dir: Path
) -> None:
    service.apply(records({"web": ("10.1.0.2",)}))
    with pytest.raises(ConfigError) as caught:
        service.apply(records({"web": ("not-an-address",)}))
    assert caught.value.problems[0].path == "zones[0].records.web[0]"
    assert addresses(ask(service, "web")) == ["10.1.0.2"]
    assert ask(service, "web").rcode() == dns.rcode.NOERROR


def test_another_port_replaces_the_daemon(service: DnsService, state_dir: Path) -> None:
    service.apply(records({"web": ("10.1.0.2",)}))
    [first] = daemons_of(state_dir)
    other = DnsService(state_dir, port=free_port("127.0.0.1"))
    other.apply(records({"web": ("10.1.0.2",)}))
    [second] = daemons_of(state_dir)
    assert second != first
    assert addresses(ask(other, "web")) == ["10.1.0.2"]
    other.stop()


# ---------------------------------------------------------------- a real network namespace

SUBNET = "10.254.253"
_QUERY = """
import json, sys
import dns.message, dns.query
def ask(how):
    query = dns.message.make_query(sys.argv[1], "A")
    answer = how(query, "{gw}", port=53, timeout=3)
    return [rd.to_text() for rrset in answer.answer for rd in rrset]
print(json.dumps([ask(dns.query.udp), ask(dns.query.udp), ask(dns.query.tcp)]))
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")
def test_a_container_namespace_asks_the_gateway_on_port_53(state_dir: Path) -> None:
    """The production shape: the daemon on the host listens on the gateway address (bound
    before the address exists), a process in another network namespace asks it on port 53
    and is known by its address on that link."""
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True,
                            check=True).stdout
    if f"{SUBNET}." in routes:
        pytest.skip(f"{SUBNET}.0/30 is in use on this host")
    tag = f"{os.getpid() % 100000}"
    netns, host_if, peer_if = f"pcdns{tag}", f"pcdnsh{tag}", f"pcdnsc{tag}"
    gateway, address = f"{SUBNET}.1", f"{SUBNET}.2"
    service = DnsService(state_dir)  # port 53
    try:
        service.apply(Records((gateway,), (Zone("front", {"redis": ("10.1.0.5", "10.1.0.6")}),),
                              (Client(address, ("front",)),)))
        _ip("netns", "add", netns)
        _ip("link", "add", host_if, "type", "veth", "peer", "name", peer_if)
        _ip("link", "set", peer_if, "netns", netns)
        _ip("addr", "add", f"{gateway}/30", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("-n", netns, "addr", "add", f"{address}/30", "dev", peer_if)
        _ip("-n", netns, "link", "set", peer_if, "up")
        _ip("-n", netns, "link", "set", "lo", "up")
        result = subprocess.run(
            ["ip", "netns", "exec", netns, sys.executable, "-c",
             _QUERY.replace("{gw}", gateway), "redis"],
            capture_output=True, text=True, timeout=30, cwd=ROOT,
        )
        assert result.returncode == 0, result.stderr
        answers = json.loads(result.stdout)
        assert {a[0] for a in answers[:2]} == {"10.1.0.5", "10.1.0.6"}
        assert sorted(answers[2]) == ["10.1.0.5", "10.1.0.6"]
    finally:
        service.stop()
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, timeout=10)
        subprocess.run(["ip", "netns", "del", netns], capture_output=True, timeout=10)
    assert daemons_of(state_dir) == []
