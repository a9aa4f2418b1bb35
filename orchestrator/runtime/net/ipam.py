"""IPv4 address management: one pool per network, persistent leases, file-locked.

The pure half (:func:`make_pool`, :func:`free_subnet`, :func:`allocate`, :func:`reserve`,
:func:`release`) decides; :class:`Ipam` only loads, calls it and saves under one lock, so
two processes allocating at once never hand out the same address or overlapping subnets.

Addresses are handed out after the last one given (wrapping around), not lowest-first:
an address just released is the last to be reused, so stale ARP entries and conntrack
state of a removed container rarely meet its successor.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from orchestrator.errors import Conflict, NotFound, RuntimeFailure
from orchestrator.runtime.net.store import locked, read_json, write_json

SCHEMA_VERSION = 1
DEFAULT_BASE = "10.89.0.0/16"
DEFAULT_PREFIXLEN = 24


@dataclass(frozen=True)
class Pool:
    """The addresses of one network and who holds which."""

    network: str
    subnet: IPv4Network
    gateway: IPv4Address
    ip_range: IPv4Network
    aux: Mapping[str, IPv4Address] = field(default_factory=dict)
    leases: Mapping[IPv4Address, str] = field(default_factory=dict)  # address -> owner
    cursor: IPv4Address | None = None  # the last address handed out

    def lease_of(self, owner: str) -> IPv4Address | None:
        for address, holder in self.leases.items():
            if holder == owner:
                return address
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "subnet": str(self.subnet),
            "gateway": str(self.gateway),
            "ip_range": str(self.ip_range),
            "aux": {k: str(v) for k, v in self.aux.items()},
            "leases": {str(k): v for k, v in self.leases.items()},
            "cursor": str(self.cursor) if self.cursor is not None else None,
        }

    @classmethod
    def from_json(cls, network: str, data: Mapping[str, Any]) -> Pool:
        cursor = data.get("cursor")
        return cls(
            network=network,
            subnet=IPv4Network(data["subnet"]),
            gateway=IPv4Address(data["gateway"]),
            ip_range=IPv4Network(data["ip_range"]),
            aux={k: IPv4Address(v) for k, v in data.get("aux", {}).items()},
            leases={IPv4Address(k): v for k, v in data.get("leases", {}).items()},
            cursor=IPv4Address(cursor) if cursor else None,
        )


def _network(text: str, what: str) -> IPv4Network:
    try:
        return IPv4Network(text, strict=False)
    except ValueError as exc:
        raise RuntimeFailure(f"{what} {text!r} is not an IPv4 CIDR") from exc


def _address(text: str, what: str) -> IPv4Address:
    try:
        return IPv4Address(text.split("/")[0])
    except ValueError as exc:
        raise RuntimeFailure(f"{what} {text!r} is not an IPv4 address") from exc


def make_pool(
    network: str,
    subnet: str,
    *,
    gateway: str | None = None,
    ip_range: str | None = None,
    aux: Mapping[str, str] | None = None,
) -> Pool:
    """A pool with nothing leased; RuntimeFailure when the pieces do not fit together."""
    net = _network(subnet, "subnet")
    if net.num_addresses < 4:
        raise RuntimeFailure(f"subnet {net} of network {network!r} is too small (at least /30)")
    gw = _address(gateway, "gateway") if gateway else net.network_address + 1
    if gw not in net or gw in (net.network_address, net.broadcast_address):
        raise RuntimeFailure(f"gateway {gw} is not a host address of subnet {net}")
    rng = _network(ip_range, "ip_range") if ip_range else net
    if not rng.subnet_of(net):
        raise RuntimeFailure(f"ip_range {rng} is not inside subnet {net}")
    reserved: dict[str, IPv4Address] = {}
    for host, text in (aux or {}).items():
        addr = _address(text, f"aux address {host!r}")
        if addr not in net:
            raise RuntimeFailure(f"aux address {host}={addr} is outside subnet {net}")
        reserved[host] = addr
    return Pool(network=network, subnet=net, gateway=gw, ip_range=rng, aux=reserved)


def free_subnet(
    taken: Iterable[IPv4Network],
    *,
    base: str = DEFAULT_BASE,
    prefixlen: int = DEFAULT_PREFIXLEN,
) -> IPv4Network:
    """The first ``/prefixlen`` of ``base`` that overlaps none of ``taken`` (our networks and
    the host's routes). Conflict when every one is taken."""
    used = list(taken)
    for candidate in IPv4Network(base).subnets(new_prefix=prefixlen):
        if not any(candidate.overlaps(other) for other in used):
            return candidate
    raise Conflict(f"no free /{prefixlen} left in {base}: every one overlaps a route or network")


def _unusable(pool: Pool) -> set[IPv4Address]:
    return {
        pool.subnet.network_address,
        pool.subnet.broadcast_address,
        pool.gateway,
        *pool.aux.values(),
    }


def allocate(pool: Pool, owner: str) -> tuple[Pool, IPv4Address]:
    """Lease the next free address of ``ip_range`` to ``owner`` (its current one when it
    already holds one). Conflict when the range is exhausted."""
    held = pool.lease_of(owner)
    if held is not None:
        return pool, held
    unusable = _unusable(pool)
    first = int(pool.ip_range.network_address)
    size = pool.ip_range.num_addresses
    start = 0
    if pool.cursor is not None and pool.cursor in pool.ip_range:
        start = int(pool.cursor) - first + 1
    for step in range(size):
        candidate = IPv4Address(first + (start + step) % size)
        if candidate in unusable or candidate in pool.leases:
            continue
        leases = {**pool.leases, candidate: owner}
        return replace(pool, leases=leases, cursor=candidate), candidate
    raise Conflict(f"no free address left in {pool.ip_range} of network {pool.network!r}")


def reserve(pool: Pool, owner: str, address: str) -> tuple[Pool, IPv4Address]:
    """Lease the given address (anywhere in the subnet, as docker allows outside ip_range).
    Conflict when it is outside the subnet, reserved, or held by someone else."""
    addr = _address(address, "address")
    if addr not in pool.subnet:
        raise Conflict(f"address {addr} is outside subnet {pool.subnet} of {pool.network!r}")
    if addr in _unusable(pool):
        raise Conflict(f"address {addr} is reserved in network {pool.network!r}")
    holder = pool.leases.get(addr)
    if holder == owner:
        return pool, addr
    if holder is not None:
        raise Conflict(f"address {addr} of network {pool.network!r} is already in use")
    held = pool.lease_of(owner)
    if held is not None:
        raise Conflict(f"{owner!r} already holds {held} in network {pool.network!r}")
    return replace(pool, leases={**pool.leases, addr: owner}), addr


def release(pool: Pool, owner: str) -> Pool:
    """Drop whatever ``owner`` holds; nothing held is fine."""
    return replace(pool, leases={a: o for a, o in pool.leases.items() if o != owner})


class Ipam:
    """The pools of every network, in one JSON file next to its lock file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = path.with_name(path.name + ".lock")

    def _load(self) -> dict[str, Pool]:
        data = read_json(self.path)
        if data is None:
            return {}
        if data.get("schema") != SCHEMA_VERSION:
            raise RuntimeFailure(f"IPAM state {self.path} has schema {data.get('schema')!r}")
        try:
            return {n: Pool.from_json(n, p) for n, p in data["pools"].items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise RuntimeFailure(f"unreadable IPAM state {self.path}: {exc}") from exc

    def _save(self, pools: Mapping[str, Pool], *, durable: bool = True) -> None:
        """``durable=False`` for a lease or a release: a lease lives as long as a sandbox,
        which no reboot keeps, so it does not pay an fsync (the rename still keeps the
        file whole for every reader)."""
        write_json(
            self.path,
            {"schema": SCHEMA_VERSION, "pools": {n: p.to_json() for n, p in pools.items()}},
            durable=durable,
        )

    def add_pool(
        self,
        network: str,
        *,
        subnet: str | None = None,
        gateway: str | None = None,
        ip_range: str | None = None,
        aux: Mapping[str, str] | None = None,
        avoid: Iterable[IPv4Network] = (),
        base: str = DEFAULT_BASE,
        prefixlen: int = DEFAULT_PREFIXLEN,
    ) -> Pool:
        """The network's pool, created when missing: the given subnet (Conflict when it
        overlaps another pool) or the first free one of ``base`` that overlaps neither a
        pool nor ``avoid``. An existing pool is returned as it is unless a different subnet
        is asked for (Conflict)."""
        with locked(self._lock):
            pools = self._load()
            existing = pools.get(network)
            if existing is not None:
                if subnet is not None and _network(subnet, "subnet") != existing.subnet:
                    raise Conflict(
                        f"network {network!r} already has subnet {existing.subnet}, not {subnet}"
                    )
                return existing
            others = [p.subnet for n, p in pools.items() if n != network]
            if subnet is None:
                chosen = str(free_subnet([*others, *avoid], base=base, prefixlen=prefixlen))
            else:
                chosen = subnet
            pool = make_pool(network, chosen, gateway=gateway, ip_range=ip_range, aux=aux)
            for name, other in pools.items():
                if other.subnet.overlaps(pool.subnet):
                    raise Conflict(
                        f"subnet {pool.subnet} of network {network!r} overlaps "
                        f"{other.subnet} of network {name!r}"
                    )
            pools[network] = pool
            self._save(pools)
            return pool

    def remove_pool(self, network: str) -> None:
        with locked(self._lock):
            pools = self._load()
            if pools.pop(network, None) is not None:
                self._save(pools)

    def pool(self, network: str) -> Pool:
        with locked(self._lock, shared=True):
            pools = self._load()
        if network not in pools:
            raise NotFound(f"no address pool for network {network!r}")
        return pools[network]

    def pools(self) -> list[Pool]:
        with locked(self._lock, shared=True):
            return list(self._load().values())

    def lease(self, network: str, owner: str, address: str | None = None) -> IPv4Address:
        """An address for ``owner`` in ``network``: the given one (reserved) or the next
        free one; the same one again when ``owner`` already holds it."""
        with locked(self._lock):
            pools = self._load()
            if network not in pools:
                raise NotFound(f"no address pool for network {network!r}")
            if address is None:
                pool, addr = allocate(pools[network], owner)
            else:
                pool, addr = reserve(pools[network], owner, address)
            if pool is not pools[network]:
                pools[network] = pool
                self._save(pools, durable=False)
            return addr

    def release(self, network: str, owner: str) -> None:
        with locked(self._lock):
            pools = self._load()
            if network not in pools:
                return
            pool = release(pools[network], owner)
            if pool != pools[network]:
                pools[network] = pool
                self._save(pools, durable=False)
