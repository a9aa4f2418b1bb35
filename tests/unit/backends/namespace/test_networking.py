"""Compose networking → runtime.net / runtime.dns data, and the files a container sees.

Pure functions (the only host contact, probing a port, is injected or done on 127.0.0.1)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from orchestrator.backends.base import ContainerSpec
from orchestrator.backends.namespace import networking as netw
from orchestrator.errors import ConfigError, Unsupported
from orchestrator.model import Network, PortConfig, Service
from orchestrator.runtime.dns import Client
from orchestrator.runtime.net import NetworkConfig, PortMapping

# ---------------------------------------------------------------------- networks


def test_a_network_without_ipam_lets_the_manager_choose() -> None:
    cfg = netw.network_config(Network(key="back", name="p_back"), {"l": "1"})
    assert cfg == NetworkConfig(name="p_back", labels={"l": "1"})


def test_ipam_config_is_honoured() -> None:
    network = Network(
        key="back",
        name="p_back",
        internal=True,
        ipam_config=(
            {"subnet": "fd00::/64"},
            {
                "subnet": "10.77.1.0/24",
                "gateway": "10.77.1.254",
                "ip_range": "10.77.1.128/25",
                "aux_addresses": {"router": "10.77.1.2"},
            },
        ),
    )
    cfg = netw.network_config(network, {})
    assert (cfg.subnet, cfg.gateway, cfg.ip_range, dict(cfg.aux_addresses), cfg.internal) == (
        "10.77.1.0/24", "10.77.1.254", "10.77.1.128/25", {"router": "10.77.1.2"}, True,
    )


@pytest.mark.parametrize(
    ("entry", "path"),
    [
        ({"subnet": "10.77.1.0/33"}, "networks.back.ipam.config[0].subnet"),
        ({"subnet": "10.77.1.0/24", "gateway": "10.77.2.1"},
         "networks.back.ipam.config[0].gateway"),
        ({"subnet": "10.77.1.0/24", "ip_range": "10.78.0.0/25"},
         "networks.back.ipam.config[0].ip_range"),
        ({"subnet": "10.77.1.0/24", "aux_addresses": {"r": "nope"}},
         "networks.back.ipam.config[0].aux_addresses.r"),
        ({"gateway": "10.77.1.1"}, "networks.back.ipam.config[0].subnet"),
    ],
)
def test_bad_ipam_is_a_config_error_with_its_path(entry: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as caught:
        netw.network_config(Network(key="back", name="p_back", ipam_config=(entry,)), {})
    assert caught.value.problems[0].path == path


def test_other_drivers_are_refused() -> None:
    with pytest.raises(Unsupported, match="overlay"):
        netw.network_config(Network(key="n", name="p_n", driver="overlay"), {})


# ---------------------------------------------------------------------- ports


def spec(
    *ports: PortConfig, publish: tuple[int, ...] | None = None, **service: Any
) -> ContainerSpec:
    return ContainerSpec(
        project="p",
        service=Service(name="web", image="img", ports=ports, **service),
        name="p-web-1",
        number=1,
        labels={},
        publish_ports=tuple(range(len(ports))) if publish is None else publish,
    )


def test_host_ports_become_mappings() -> None:
    got = netw.port_mappings(
        spec(
            PortConfig(target=80, published="8080", mode="host"),
            PortConfig(target=53, published="5353", host_ip="127.0.0.1", protocol="udp"),
            PortConfig(target=9000),
            PortConfig(target=81, published="8081", host_ip="::", mode="host"),
        )
    )
    assert got == (
        PortMapping(80, "tcp", 8080, ""),
        PortMapping(53, "udp", 5353, "127.0.0.1"),
        PortMapping(9000, "tcp", 0, ""),
        PortMapping(81, "tcp", 8081, ""),
    )


def test_only_the_ports_the_container_publishes_itself() -> None:
    ingress = PortConfig(target=80, published="8080")
    host = PortConfig(target=81, published="8081", mode="host")
    assert netw.port_mappings(spec(ingress, host, publish=(1,))) == (
        PortMapping(81, "tcp", 8081, ""),
    )


def test_a_published_range_takes_its_first_free_port() -> None:
    taken = {9000, 9001}
    got = netw.port_mappings(
        spec(PortConfig(target=80, published="9000-9003", mode="host")),
        is_free=lambda m: m.host_port not in taken,
    )
    assert got == (PortMapping(80, "tcp", 9002, ""),)


def test_a_full_range_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="9000-9001/tcp is already in use"):
        netw.port_mappings(
            spec(PortConfig(target=80, published="9000-9001", mode="host")),
            is_free=lambda m: False,
        )


def test_sctp_and_ipv6_host_addresses_are_refused() -> None:
    with pytest.raises(Unsupported, match="sctp"):
        netw.port_mappings(spec(PortConfig(target=80, protocol="sctp")))
    with pytest.raises(Unsupported, match="IPv6"):
        netw.port_mappings(spec(PortConfig(target=80, published="80", host_ip="::1", mode="host")))


def test_port_is_free_sees_a_bound_port() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert not netw.port_is_free(PortMapping(80, "tcp", port, "127.0.0.1"))
    assert netw.port_is_free(PortMapping(80, "tcp", port, "127.0.0.1"))


def test_published_view_is_what_observe_reports() -> None:
    view = netw.published_view(
        [PortMapping(80, "tcp", 8080, ""), PortMapping(80, "tcp", 8081, "127.0.0.1"),
         PortMapping(53, "udp", 5353, "")]
    )
    assert view == {
        "80/tcp": (("0.0.0.0", "8080"), ("127.0.0.1", "8081")),
        "53/udp": (("0.0.0.0", "5353"),),
    }


# ---------------------------------------------------------------------- files


def state(**changes: Any) -> netw.NetState:
    base = netw.net_state(
        spec(
            hostname="web",
            domainname="example.org",
            dns=("9.9.9.9",),
            dns_search=("corp.example",),
            dns_opt=("ndots:2",),
            extra_hosts=("db.local:10.1.2.3", "gw=host-gateway"),
            links=("db:database", "cache"),
        ),
        "c" * 64,
        sandbox="c" * 64,
        owner=True,
    )
    return netw.NetState(**{**base.__dict__, **changes})


def test_net_state_reads_the_service() -> None:
    s = state()
    assert (s.hostname, s.domainname, s.upstream, s.search, s.options) == (
        "web", "example.org", ("9.9.9.9",), ("corp.example",), ("ndots:2",)
    )
    assert s.extra_hosts == (("db.local", "10.1.2.3"), ("gw", "host-gateway"))
    assert s.links == (("db", "database"), ("cache", "cache"))
    assert netw.net_state(spec(), "ab" * 32, sandbox="", owner=True).hostname == "ab" * 6


@pytest.mark.parametrize(
    ("key", "value", "path"),
    [
        ("extra_hosts", ("nocolon",), "services.web.extra_hosts[0]"),
        ("extra_hosts", ("h:not-an-ip",), "services.web.extra_hosts[0]"),
        ("dns", ("resolver.example",), "services.web.dns[0]"),
    ],
)
def test_bad_names_settings_are_config_errors(key: str, value: Any, path: str) -> None:
    with pytest.raises(ConfigError) as caught:
        netw.net_state(spec(**{key: value}), "c" * 64, sandbox="", owner=True)
    assert caught.value.problems[0].path == path


def test_net_state_round_trips(tmp_path: Path) -> None:
    s = state()
    s.save(tmp_path)
    assert netw.NetState.load(tmp_path) == s
    assert netw.NetState.load(tmp_path / "missing") is None


def test_hosts_file() -> None:
    text = netw.hosts_file(state(), ["10.89.0.5", "10.89.1.7"], host_gateway="10.89.0.1")
    assert text.startswith("127.0.0.1\tlocalhost\n")
    lines = text.splitlines()
    assert "10.1.2.3\tdb.local" in lines
    assert "10.89.0.1\tgw" in lines
    assert "10.89.0.5\tweb.example.org web" in lines
    assert "10.89.1.7\tweb.example.org web" in lines


def test_host_gateway_without_a_network_is_left_out() -> None:
    assert "\tgw" not in netw.hosts_file(state(), [])


HOST_RESOLV = (
    "# generated\nnameserver 192.168.1.1\nnameserver 192.168.1.2\nsearch lan\noptions edns0\n"
)


def test_resolv_conf_points_at_the_gateway_with_the_services_search_and_options() -> None:
    assert netw.resolv_conf(state(), "10.89.0.1", HOST_RESOLV) == (
        "nameserver 10.89.0.1\nsearch corp.example\noptions ndots:2\n"
    )


def test_resolv_conf_keeps_the_hosts_search_and_options_by_default() -> None:
    plain = state(search=(), options=(), upstream=())
    assert netw.resolv_conf(plain, "10.89.0.1", HOST_RESOLV) == (
        "nameserver 10.89.0.1\nsearch lan\noptions edns0\n"
    )
    # without a network of ours: the host's servers, or the service's `dns`
    assert netw.resolv_conf(plain, None, HOST_RESOLV).startswith(
        "nameserver 192.168.1.1\nnameserver 192.168.1.2\n"
    )
    assert netw.resolv_conf(state(), None, HOST_RESOLV).startswith("nameserver 9.9.9.9\n")


def test_files_are_rewritten_in_place(tmp_path: Path) -> None:
    netw.write_files(tmp_path, {"hosts": "a long first version\n"})
    inode = (tmp_path / "hosts").stat().st_ino
    netw.write_files(tmp_path, {"hosts": "short\n"})
    assert (tmp_path / "hosts").read_text() == "short\n"
    assert (tmp_path / "hosts").stat().st_ino == inode  # a bind mount keeps seeing it


# ---------------------------------------------------------------------- DNS


def member(
    number: int,
    service: str,
    addresses: dict[str, str],
    *,
    status: str = "running",
    upstream: tuple[str, ...] = (),
    links: tuple[tuple[str, str], ...] = (),
    project: str = "vote",
) -> netw.Member:
    cid = f"{service[0]}{number}".ljust(64, "0")
    return netw.Member(
        id=cid,
        name=f"{project}-{service}-{number}",
        project=project,
        service=service,
        status=status,
        state=netw.NetState(sandbox=cid, owner=True, hostname=cid[:12], upstream=upstream,
                            links=links),
        aliases={n: (service,) for n in addresses},
        addresses=addresses,
    )


GATEWAYS = {"vote_front": "10.89.0.1", "vote_back": "10.89.1.1", "idle": "10.89.9.1"}


def zones(records: Any) -> dict[str, dict[str, tuple[str, ...]]]:
    return {z.network: dict(z.records) for z in records.zones}


def test_replicas_share_the_service_name_on_their_network() -> None:
    records = netw.dns_records(
        [
            member(1, "redis", {"vote_back": "10.89.1.2"}),
            member(2, "redis", {"vote_back": "10.89.1.3"}),
            member(1, "vote", {"vote_front": "10.89.0.2", "vote_back": "10.89.1.4"}),
        ],
        GATEWAYS,
    )
    back, front = zones(records)["vote_back"], zones(records)["vote_front"]
    assert back["redis"] == ("10.89.1.2", "10.89.1.3")
    assert back["vote-redis-1"] == ("10.89.1.2",)
    assert back["r10000000000"] == ("10.89.1.2",)  # short id (and default hostname)
    assert "redis" not in front  # a frontend-only container cannot resolve it
    assert front["vote"] == ("10.89.0.2",) and back["vote"] == ("10.89.1.4",)
    assert records.listeners == ("10.89.0.1", "10.89.1.1")  # not the idle network


def test_every_address_is_a_client_seeing_all_its_containers_networks() -> None:
    records = netw.dns_records(
        [member(1, "vote", {"vote_front": "10.89.0.2", "vote_back": "10.89.1.4"},
                upstream=("9.9.9.9",))],
        GATEWAYS,
    )
    assert set(records.clients) == {
        Client("10.89.0.2", ("vote_back", "vote_front"), ("9.9.9.9",)),
        Client("10.89.1.4", ("vote_back", "vote_front"), ("9.9.9.9",)),
    }


def test_stopped_containers_have_no_names() -> None:
    records = netw.dns_records(
        [
            member(1, "redis", {"vote_back": "10.89.1.2"}, status="exited"),
            member(2, "redis", {"vote_back": "10.89.1.3"}, status="created"),
        ],
        GATEWAYS,
    )
    assert zones(records)["vote_back"]["redis"] == ("10.89.1.3",)
    assert [c.address for c in records.clients] == ["10.89.1.3"]


def test_nothing_live_means_no_listener() -> None:
    records = netw.dns_records([member(1, "redis", {"vote_back": "10.89.1.2"},
                                       status="exited")], GATEWAYS)
    assert (records.listeners, records.zones, records.clients) == ((), (), ())


def test_links_add_an_alias_on_shared_networks_of_the_same_project() -> None:
    records = netw.dns_records(
        [
            member(1, "db", {"vote_back": "10.89.1.2"}),
            member(1, "db", {"vote_back": "10.89.1.9"}, project="other"),
            member(1, "worker", {"vote_back": "10.89.1.3"}, links=(("db", "database"),)),
        ],
        GATEWAYS,
    )
    assert zones(records)["vote_back"]["database"] == ("10.89.1.2",)


def test_names_are_case_insensitive_and_hostnames_answer() -> None:
    m = member(1, "Web", {"vote_front": "10.89.0.2"})
    m = netw.Member(**{**m.__dict__, "state": netw.NetState(
        sandbox=m.id, owner=True, hostname="Front", domainname="example.org")})
    front = zones(netw.dns_records([m], GATEWAYS))["vote_front"]
    assert front["web"] == front["front"] == front["front.example.org"] == ("10.89.0.2",)


def test_names_dns_cannot_hold_are_left_out_not_fatal() -> None:
    m = member(1, "web", {"vote_front": "10.89.0.2"})
    bad = {"vote_front": ("web", "Web.", "a..b", "x" * 64, "has space", "")}
    m = netw.Member(**{**m.__dict__, "aliases": bad})
    front = zones(netw.dns_records([m], GATEWAYS))["vote_front"]
    assert front["web"] == ("10.89.0.2",)
    assert not [n for n in front if ".." in n or " " in n or len(n) > 63]
