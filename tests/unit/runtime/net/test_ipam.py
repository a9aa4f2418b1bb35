"""IPAM: the pure allocation rules, and the persistent, file-locked store."""

from __future__ import annotations

import multiprocessing
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from orchestrator.errors import Conflict, NotFound, RuntimeFailure
from orchestrator.runtime.net.ipam import Ipam, allocate, free_subnet, make_pool, release, reserve


def test_defaults_gateway_first_host_and_range_whole_subnet() -> None:
    pool = make_pool("n", "10.1.2.0/24")
    assert pool.gateway == IPv4Address("10.1.2.1")
    assert pool.ip_range == IPv4Network("10.1.2.0/24")


def test_allocation_skips_network_gateway_and_aux_and_goes_on_after_the_last() -> None:
    pool = make_pool("n", "10.1.2.0/24", aux={"router": "10.1.2.2"})
    pool, a = allocate(pool, "a")
    pool, b = allocate(pool, "b")
    assert (a, b) == (IPv4Address("10.1.2.3"), IPv4Address("10.1.2.4"))
    pool = release(pool, "a")
    pool, c = allocate(pool, "c")
    assert c == IPv4Address("10.1.2.5")  # the released .3 is not handed out at once


def test_allocation_is_idempotent_per_owner() -> None:
    pool, a = allocate(make_pool("n", "10.1.2.0/24"), "a")
    again, b = allocate(pool, "a")
    assert a == b and again == pool


def test_exhaustion_is_a_conflict_and_a_release_frees_one() -> None:
    pool = make_pool("n", "10.9.0.0/29")  # .1 gateway, .0 and .7 unusable: 5 addresses
    for owner in "abcde":
        pool, _ = allocate(pool, owner)
    with pytest.raises(Conflict, match="no free address"):
        allocate(pool, "f")
    pool = release(pool, "c")
    pool, got = allocate(pool, "f")
    assert got == IPv4Address("10.9.0.4")


def test_ip_range_bounds_the_allocation_and_wraps_around() -> None:
    pool = make_pool("n", "10.1.0.0/16", ip_range="10.1.5.0/30", gateway="10.1.0.1")
    seen = []
    for owner in "abcd":
        pool, addr = allocate(pool, owner)
        seen.append(str(addr))
    assert seen == ["10.1.5.0", "10.1.5.1", "10.1.5.2", "10.1.5.3"]
    with pytest.raises(Conflict):
        allocate(pool, "e")
    pool = release(pool, "b")
    pool, addr = allocate(pool, "e")
    assert addr == IPv4Address("10.1.5.1")


def test_given_address_reserved_or_refused() -> None:
    pool = make_pool("n", "10.1.2.0/24", ip_range="10.1.2.128/25", aux={"x": "10.1.2.9"})
    pool, addr = reserve(pool, "a", "10.1.2.50")  # outside ip_range, inside the subnet: ok
    assert addr == IPv4Address("10.1.2.50")
    assert reserve(pool, "a", "10.1.2.50")[0] == pool  # idempotent
    with pytest.raises(Conflict, match="already in use"):
        reserve(pool, "b", "10.1.2.50")
    with pytest.raises(Conflict, match="outside subnet"):
        reserve(pool, "b", "10.1.3.1")
    for taken in ("10.1.2.1", "10.1.2.9", "10.1.2.0", "10.1.2.255"):
        with pytest.raises(Conflict, match="reserved"):
            reserve(pool, "b", taken)
    # a leased address given by hand is never allocated to someone else
    pool, _ = reserve(pool, "c", "10.1.2.128")
    pool, nxt = allocate(pool, "d")
    assert nxt == IPv4Address("10.1.2.129")


def test_bad_pool_pieces_are_refused() -> None:
    with pytest.raises(RuntimeFailure, match="gateway"):
        make_pool("n", "10.1.2.0/24", gateway="10.1.3.1")
    with pytest.raises(RuntimeFailure, match="ip_range"):
        make_pool("n", "10.1.2.0/24", ip_range="10.1.0.0/16")
    with pytest.raises(RuntimeFailure, match="aux"):
        make_pool("n", "10.1.2.0/24", aux={"h": "192.168.1.1"})
    with pytest.raises(RuntimeFailure, match="CIDR"):
        make_pool("n", "not-a-subnet")


def test_free_subnet_avoids_networks_and_routes() -> None:
    taken = [IPv4Network(n) for n in ("10.89.0.0/24", "10.89.1.128/25", "10.89.2.0/23")]
    assert free_subnet(taken) == IPv4Network("10.89.4.0/24")
    with pytest.raises(Conflict, match="no free"):
        free_subnet([IPv4Network("10.0.0.0/8")])


def test_store_persists_pools_and_leases(tmp_path: Path) -> None:
    path = tmp_path / "ipam.json"
    ipam = Ipam(path)
    pool = ipam.add_pool("a", avoid=[IPv4Network("10.89.0.0/24")])
    assert pool.subnet == IPv4Network("10.89.1.0/24")
    first = ipam.lease("a", "s1")
    ipam.lease("a", "s2", "10.89.1.77")
    again = Ipam(path)  # another process would see the same
    assert again.pool("a").leases == {first: "s1", IPv4Address("10.89.1.77"): "s2"}
    assert again.lease("a", "s1") == first
    assert again.add_pool("b").subnet == IPv4Network("10.89.0.0/24")  # avoid is per call
    again.release("a", "s1")
    assert first not in Ipam(path).pool("a").leases


def test_store_overlap_and_subnet_change_are_conflicts(tmp_path: Path) -> None:
    ipam = Ipam(tmp_path / "ipam.json")
    ipam.add_pool("a", subnet="172.30.0.0/16")
    with pytest.raises(Conflict, match="overlaps"):
        ipam.add_pool("b", subnet="172.30.5.0/24")
    with pytest.raises(Conflict, match="already has subnet"):
        ipam.add_pool("a", subnet="172.31.0.0/16")
    assert ipam.add_pool("a").subnet == IPv4Network("172.30.0.0/16")
    ipam.remove_pool("a")
    ipam.remove_pool("a")  # absent is fine
    with pytest.raises(NotFound):
        ipam.pool("a")
    assert ipam.add_pool("b", subnet="172.30.5.0/24").subnet == IPv4Network("172.30.5.0/24")


def _lease_many(path: str, prefix: str, count: int, out: multiprocessing.Queue[list[str]]) -> None:
    ipam = Ipam(Path(path))
    out.put([str(ipam.lease("n", f"{prefix}{i}")) for i in range(count)])


def test_two_processes_never_get_the_same_address(tmp_path: Path) -> None:
    path = tmp_path / "ipam.json"
    Ipam(path).add_pool("n", subnet="10.7.0.0/24")
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[list[str]] = ctx.Queue()
    procs = [ctx.Process(target=_lease_many, args=(str(path), p, 60, out)) for p in "ab"]
    for proc in procs:
        proc.start()
    got = out.get(timeout=60) + out.get(timeout=60)
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    assert len(got) == 120 and len(set(got)) == 120
    assert len(Ipam(path).pool("n").leases) == 120
