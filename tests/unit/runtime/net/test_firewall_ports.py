"""The rendered firewall rules (pure) and the host-port checks (bound on 127.0.0.1)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from orchestrator.errors import Conflict, RuntimeFailure
from orchestrator.runtime.net.firewall import Forward, Rules, render_iptables, render_nft
from orchestrator.runtime.net.ports import resolve
from orchestrator.runtime.net.spec import PortMapping

RULES = Rules(
    bridge="pc-0123456789ab",
    subnet="10.89.3.0/24",
    forwards=(
        Forward("tcp", 8080, "10.89.3.2", 80),
        Forward("udp", 5353, "10.89.3.2", 53, host_ip="127.0.0.1"),
    ),
)


def test_nft_replaces_its_own_table_whole() -> None:
    script = render_nft(RULES)
    lines = script.splitlines()
    # create-if-missing then delete then define: one transaction, whatever was there
    assert lines[:3] == [
        "table ip pycompose_pc-0123456789ab {}",
        "delete table ip pycompose_pc-0123456789ab",
        "table ip pycompose_pc-0123456789ab {",
    ]
    assert 'ip saddr 10.89.3.0/24 oifname != "pc-0123456789ab" masquerade' in script
    assert 'iifname "pc-0123456789ab" oifname "pc-*" drop' in script
    assert "fib daddr type local tcp dport 8080 dnat to 10.89.3.2:80" in script
    assert "ip daddr 127.0.0.1 udp dport 5353 dnat to 10.89.3.2:53" in script
    assert script.count("dnat to") == 4  # prerouting and output each


def test_nft_internal_has_no_masquerade_no_dnat_and_drops_in_and_out() -> None:
    script = render_nft(Rules(RULES.bridge, RULES.subnet, internal=True, forwards=RULES.forwards))
    assert "oifname !=" not in script
    assert "dnat to" not in script
    assert 'iifname "pc-0123456789ab" drop' in script
    assert 'oifname "pc-0123456789ab" drop' in script


def test_iptables_chains_of_our_own() -> None:
    text = render_iptables(RULES)
    assert ":PCF-pc-0123456789ab - [0:0]" in text
    assert "-A PCN-pc-0123456789ab -s 10.89.3.0/24 ! -o pc-0123456789ab -j MASQUERADE" in text
    assert (
        "-A PCD-pc-0123456789ab -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 8080 "
        "-j DNAT --to-destination 10.89.3.2:80"
    ) in text
    internal = render_iptables(Rules(RULES.bridge, RULES.subnet, internal=True))
    assert "MASQUERADE" in internal  # only the 127.0.0.1 one, towards the bridge
    assert "! -o" not in internal


@pytest.fixture
def busy_tcp() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield int(sock.getsockname()[1])
    sock.close()


def test_busy_port_is_a_conflict_naming_it(busy_tcp: int) -> None:
    with pytest.raises(Conflict, match=f"0.0.0.0:{busy_tcp}/tcp"):
        resolve([PortMapping(80, host_port=busy_tcp)])
    # the same number over udp is another port
    assert resolve([PortMapping(80, "udp", busy_tcp, "127.0.0.1")])[0].host_port == busy_tcp


def test_zero_resolves_to_distinct_free_ports() -> None:
    got = resolve([PortMapping(80), PortMapping(81), PortMapping(53, "UDP", 0, "0.0.0.0")])
    assert len({m.host_port for m in got[:2]}) == 2
    assert all(m.host_port > 0 for m in got)
    assert got[2].protocol == "udp" and got[2].host_ip == ""


def test_ports_we_published_are_taken_even_without_a_socket() -> None:
    taken = [PortMapping(80, host_port=18080, host_ip="127.0.0.1")]
    with pytest.raises(Conflict, match="already published"):
        resolve([PortMapping(81, host_port=18080)], taken)
    with pytest.raises(Conflict):
        resolve([PortMapping(81, host_port=18081), PortMapping(82, host_port=18081)])


def test_impossible_values_are_refused() -> None:
    with pytest.raises(RuntimeFailure, match="protocol"):
        resolve([PortMapping(80, "sctp")])
    with pytest.raises(RuntimeFailure, match="container port"):
        resolve([PortMapping(0)])
    with pytest.raises(RuntimeFailure, match="not an address of this host"):
        resolve([PortMapping(80, host_ip="203.0.113.77")])
