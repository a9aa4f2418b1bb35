"""NetworkManager: networks (bridge + firewall + address pool) and sandboxes (a network
namespace with its endpoints and published ports), persistent under one state root.

State layout under ``root``::

    lock                    flock held by every change (one writer at a time, any process)
    ipam.json(.lock)        address pools and leases (see ipam.py)
    networks/<name>.json    what create_network was given, and the bridge it got
    sandboxes/<id>.json     endpoints (in attach order), the default-route network, ports
    netns/<id>              the bind mount that keeps the namespace alive

Every change writes the kernel side first and the state file last, and undoes the kernel
side when a later step fails, so a state file never names something that was not made.
Names of bridges and host veths hash the state root in, so two roots (two test sessions)
never collide on the host.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from orchestrator.errors import Conflict, NotFound, RuntimeFailure, Unsupported
from orchestrator.runtime.net import firewall as fw
from orchestrator.runtime.net import links, ports
from orchestrator.runtime.net.ipam import Ipam
from orchestrator.runtime.net.spec import (
    Endpoint,
    NetworkConfig,
    NetworkInfo,
    PortMapping,
)
from orchestrator.runtime.net.store import locked, read_json, remove_file, write_json

SCHEMA_VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def _check_name(kind: str, name: str) -> None:
    if not _NAME.match(name):
        raise RuntimeFailure(
            f"{kind} name {name!r} is not valid (letters, digits, '_', '.', '-'; at most 128)"
        )


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def mac_for(address: str) -> str:
    """A locally administered MAC derived from the address: a reused address keeps its MAC,
    so neighbours' stale ARP entries stay right."""
    octets = IPv4Address(address).packed
    return "02:5c:" + ":".join(f"{b:02x}" for b in octets)


@dataclass(frozen=True)
class _Network:
    info: NetworkInfo
    ip_range: str
    aux: Mapping[str, str]

    def to_json(self) -> dict[str, Any]:
        i = self.info
        return {
            "schema": SCHEMA_VERSION,
            "name": i.name,
            "bridge": i.bridge,
            "subnet": i.subnet,
            "gateway": i.gateway,
            "ip_range": self.ip_range,
            "internal": i.internal,
            "aux": dict(self.aux),
            "labels": dict(i.labels),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> _Network:
        info = NetworkInfo(
            name=str(data["name"]),
            bridge=str(data["bridge"]),
            subnet=str(data["subnet"]),
            gateway=str(data["gateway"]),
            internal=bool(data["internal"]),
            labels={str(k): str(v) for k, v in data["labels"].items()},
        )
        return cls(info=info, ip_range=str(data["ip_range"]), aux=dict(data["aux"]))


@dataclass(frozen=True)
class _Published:
    mapping: PortMapping
    network: str
    dest: str

    def to_json(self) -> dict[str, Any]:
        return {**self.mapping.to_json(), "network": self.network, "dest": self.dest}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> _Published:
        return cls(PortMapping.from_json(data), str(data["network"]), str(data["dest"]))


@dataclass(frozen=True)
class _Sandbox:
    id: str
    path: str
    endpoints: tuple[Endpoint, ...] = ()
    default_network: str | None = None  # whose gateway the default route points at
    ports: tuple[_Published, ...] = field(default=())

    def endpoint(self, network: str) -> Endpoint | None:
        return next((e for e in self.endpoints if e.network == network), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "id": self.id,
            "path": self.path,
            "endpoints": [e.to_json() for e in self.endpoints],
            "default_network": self.default_network,
            "ports": [p.to_json() for p in self.ports],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> _Sandbox:
        return cls(
            id=str(data["id"]),
            path=str(data["path"]),
            endpoints=tuple(Endpoint.from_json(e) for e in data["endpoints"]),
            default_network=data.get("default_network"),
            ports=tuple(_Published.from_json(p) for p in data["ports"]),
        )


class NetworkManager:
    """Networks and sandboxes of one state root; safe to use from several processes."""

    def __init__(self, root: Path, *, firewall: fw.FirewallKind = "auto") -> None:
        self.root = Path(root)
        self._firewall_kind: fw.FirewallKind = firewall
        self._firewall: fw.Firewall | None = None
        self._ipam = Ipam(self.root / "ipam.json")

    # -- names and files -------------------------------------------------------------

    def bridge_name(self, network: str) -> str:
        """``pc-`` + 12 hex digits of (root, network): 15 characters, the kernel's limit."""
        return fw.BRIDGE_PREFIX + _digest(str(self.root.resolve()), network)[:12]

    def _veth_name(self, sandbox_id: str, network: str) -> str:
        return "pcv" + _digest(str(self.root.resolve()), sandbox_id, network)[:12]

    def _network_file(self, name: str) -> Path:
        return self.root / "networks" / f"{name}.json"

    def _sandbox_file(self, sandbox_id: str) -> Path:
        return self.root / "sandboxes" / f"{sandbox_id}.json"

    @property
    def _fw(self) -> fw.Firewall:
        if self._firewall is None:
            self._firewall = fw.select(self._firewall_kind)
        return self._firewall

    @contextlib.contextmanager
    def _locked(self, *, shared: bool = False) -> Iterator[None]:
        with locked(self.root / "lock", shared=shared):
            yield

    def _load_network(self, name: str) -> _Network | None:
        data = read_json(self._network_file(name))
        if data is None:
            return None
        try:
            return _Network.from_json(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RuntimeFailure(f"unreadable state of network {name!r}: {exc}") from exc

    def _load_sandbox(self, sandbox_id: str) -> _Sandbox | None:
        data = read_json(self._sandbox_file(sandbox_id))
        if data is None:
            return None
        try:
            return _Sandbox.from_json(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RuntimeFailure(f"unreadable state of sandbox {sandbox_id!r}: {exc}") from exc

    def _save_sandbox(self, sandbox: _Sandbox) -> None:
        """No fsync: a sandbox's namespace is a bind mount no reboot keeps, so its state
        file needs to be whole for readers, not durable."""
        write_json(self._sandbox_file(sandbox.id), sandbox.to_json(), durable=False)

    def _sandboxes(self) -> list[_Sandbox]:
        folder = self.root / "sandboxes"
        found = sorted(folder.glob("*.json")) if folder.is_dir() else []
        return [s for s in (self._load_sandbox(p.stem) for p in found) if s is not None]

    def _rules(self, net: _Network) -> fw.Rules:
        forwards = tuple(
            fw.Forward(
                protocol=p.mapping.protocol,
                host_port=p.mapping.host_port,
                dest=p.dest,
                dest_port=p.mapping.container_port,
                host_ip=p.mapping.host_ip,
            )
            for sandbox in self._sandboxes()
            for p in sandbox.ports
            if p.network == net.info.name
        )
        return fw.Rules(
            bridge=net.info.bridge,
            subnet=net.info.subnet,
            internal=net.info.internal,
            forwards=forwards,
        )

    # -- networks --------------------------------------------------------------------

    def create_network(self, cfg: NetworkConfig) -> NetworkInfo:
        """The network, made when missing (bridge, firewall, pool); an existing one is
        re-ensured and returned. Conflict when the subnet overlaps another network of ours
        or differs from the existing network's."""
        _check_name("network", cfg.name)
        with self._locked():
            existing = self._load_network(cfg.name)
            if existing is not None:
                if cfg.subnet is not None:
                    self._ipam.add_pool(cfg.name, subnet=cfg.subnet)  # Conflict if different
                self._ensure_network(existing)
                return existing.info
            pool = self._ipam.add_pool(
                cfg.name,
                subnet=cfg.subnet,
                gateway=cfg.gateway,
                ip_range=cfg.ip_range,
                aux=cfg.aux_addresses,
                avoid=links.host_routes(),
            )
            net = _Network(
                info=NetworkInfo(
                    name=cfg.name,
                    bridge=self.bridge_name(cfg.name),
                    subnet=str(pool.subnet),
                    gateway=str(pool.gateway),
                    internal=cfg.internal,
                    labels=dict(cfg.labels),
                ),
                ip_range=str(pool.ip_range),
                aux={k: str(v) for k, v in pool.aux.items()},
            )
            try:
                self._ensure_network(net)
                write_json(self._network_file(cfg.name), net.to_json())
            except BaseException:
                self._teardown_network(net.info.bridge)
                self._ipam.remove_pool(cfg.name)
                raise
            return net.info

    def _ensure_network(self, net: _Network) -> None:
        prefixlen = int(net.info.subnet.split("/")[1])
        links.ensure_bridge(net.info.bridge, net.info.gateway, prefixlen)
        if not net.info.internal:
            links.write_sysctl("net.ipv4.ip_forward", "1")
        self._fw.apply(self._rules(net))

    def _teardown_network(self, bridge: str) -> None:
        self._fw.remove(bridge)
        links.delete_link(bridge)

    def remove_network(self, name: str) -> None:
        """Bridge, firewall rules and pool gone; Conflict while sandboxes are attached."""
        _check_name("network", name)
        with self._locked():
            net = self._load_network(name)
            if net is None:
                return
            users = [s.id for s in self._sandboxes() if s.endpoint(name) is not None]
            if users:
                raise Conflict(f"network {name!r} still has endpoints: {', '.join(users)}")
            self._teardown_network(net.info.bridge)
            self._ipam.remove_pool(name)
            remove_file(self._network_file(name))

    def network(self, name: str) -> NetworkInfo:
        _check_name("network", name)
        with self._locked(shared=True):
            net = self._load_network(name)
        if net is None:
            raise NotFound(f"network {name!r} not found")
        return net.info

    def networks(self) -> list[NetworkInfo]:
        folder = self.root / "networks"
        with self._locked(shared=True):
            found = sorted(folder.glob("*.json")) if folder.is_dir() else []
            nets = [self._load_network(p.stem) for p in found]
        return [n.info for n in nets if n is not None]

    # -- sandboxes -------------------------------------------------------------------

    def sandbox_path(self, sandbox_id: str) -> str:
        """Where the sandbox's namespace is (or will be) bound; no check that it exists."""
        _check_name("sandbox", sandbox_id)
        return str(self.root / "netns" / sandbox_id)

    def create_sandbox(self, sandbox_id: str) -> str:
        """A network namespace with lo up, kept by a bind mount; the same one again when it
        exists. Returns the path a process joins (``setns`` / ``nsenter --net=``)."""
        path = self.sandbox_path(sandbox_id)
        with self._locked():
            links.create_netns(Path(path))
            if self._load_sandbox(sandbox_id) is None:
                self._save_sandbox(_Sandbox(sandbox_id, path))
        return path

    def _require_sandbox(self, sandbox_id: str) -> _Sandbox:
        sandbox = self._load_sandbox(sandbox_id)
        if sandbox is None:
            raise NotFound(f"network sandbox {sandbox_id!r} not found")
        if not links.is_netns(sandbox.path):
            raise RuntimeFailure(
                f"the namespace of sandbox {sandbox_id!r} is gone ({sandbox.path})"
            )
        return sandbox

    def _require_network(self, name: str) -> _Network:
        net = self._load_network(name)
        if net is None:
            raise NotFound(f"network {name!r} not found")
        return net

    def attach(
        self,
        sandbox_id: str,
        network: str,
        *,
        address: str | None = None,
        mac: str | None = None,
    ) -> Endpoint:
        """Connect the sandbox to the network as ``eth<N>``; the endpoint it already has
        there when attached. The first non-internal network gives the default route."""
        _check_name("sandbox", sandbox_id)
        _check_name("network", network)
        with self._locked():
            sandbox = self._require_sandbox(sandbox_id)
            net = self._require_network(network)
            current = sandbox.endpoint(network)
            if current is not None:
                self._fw.ensure(net.info.bridge)
                return current
            used = {e.ifname for e in sandbox.endpoints}
            ifname = next(f"eth{n}" for n in range(len(used) + 1) if f"eth{n}" not in used)
            leased = str(self._ipam.lease(network, sandbox_id, address))
            prefixlen = int(net.info.subnet.split("/")[1])
            endpoint = Endpoint(
                network=network,
                ifname=ifname,
                address=leased,
                prefixlen=prefixlen,
                gateway=net.info.gateway,
                mac=(mac or mac_for(leased)).lower(),
                host_veth=self._veth_name(sandbox_id, network),
            )
            route = sandbox.default_network is None and not net.info.internal
            try:
                links.add_endpoint(
                    endpoint.host_veth, net.info.bridge, sandbox.path, ifname, endpoint.mac,
                    leased, prefixlen, net.info.gateway if route else None,
                )
                self._fw.ensure(net.info.bridge)  # docker may have started since
                updated = replace(
                    sandbox,
                    endpoints=(*sandbox.endpoints, endpoint),
                    default_network=network if route else sandbox.default_network,
                )
                self._save_sandbox(updated)
            except BaseException:
                with contextlib.suppress(Exception):
                    links.delete_link(endpoint.host_veth)
                self._ipam.release(network, sandbox_id)
                raise
            return endpoint

    def detach(self, sandbox_id: str, network: str) -> None:
        """Remove the endpoint (its ports too) and release its address; not attached is
        fine. The default route moves to another non-internal network when there is one."""
        _check_name("sandbox", sandbox_id)
        with self._locked():
            sandbox = self._load_sandbox(sandbox_id)
            if sandbox is None or sandbox.endpoint(network) is None:
                return
            self._detach(sandbox, network)

    def _detach(self, sandbox: _Sandbox, network: str) -> _Sandbox:
        endpoint = sandbox.endpoint(network)
        assert endpoint is not None
        dropped = [p for p in sandbox.ports if p.network == network]
        remaining = tuple(e for e in sandbox.endpoints if e.network != network)
        updated = replace(
            sandbox,
            endpoints=remaining,
            ports=tuple(p for p in sandbox.ports if p.network != network),
        )
        if sandbox.default_network == network:
            updated = replace(updated, default_network=None)
            if links.is_netns(sandbox.path):
                for other in remaining:
                    other_net = self._load_network(other.network)
                    if other_net is not None and not other_net.info.internal:
                        links.set_default_route(sandbox.path, other.ifname, other.gateway)
                        updated = replace(updated, default_network=other.network)
                        break
        self._save_sandbox(updated)
        links.delete_link(endpoint.host_veth)
        self._ipam.release(network, sandbox.id)
        if dropped:
            net = self._load_network(network)
            if net is not None:
                self._fw.apply(self._rules(net))
        return updated

    def endpoints(self, sandbox_id: str) -> list[Endpoint]:
        """In attach order; empty for an unknown sandbox."""
        _check_name("sandbox", sandbox_id)
        with self._locked(shared=True):
            sandbox = self._load_sandbox(sandbox_id)
        return list(sandbox.endpoints) if sandbox else []

    # -- published ports -------------------------------------------------------------

    def publish(self, sandbox_id: str, ports_: Sequence[PortMapping]) -> list[PortMapping]:
        """DNAT host ports to the sandbox's first endpoint, all or nothing: every port is
        checked (bound) before any rule changes; Conflict names the first busy one."""
        _check_name("sandbox", sandbox_id)
        with self._locked():
            sandbox = self._require_sandbox(sandbox_id)
            if not sandbox.endpoints:
                raise RuntimeFailure(f"sandbox {sandbox_id!r} has no network to publish on")
            first = sandbox.endpoints[0]
            net = self._require_network(first.network)
            if net.info.internal:
                raise Unsupported(
                    f"network {first.network!r} is internal: ports cannot be published on it"
                )
            taken = [p.mapping for s in self._sandboxes() for p in s.ports]
            resolved = ports.resolve(ports_, taken)
            added = tuple(_Published(m, first.network, first.address) for m in resolved)
            updated = replace(sandbox, ports=(*sandbox.ports, *added))
            self._save_sandbox(updated)
            try:
                self._fw.apply(self._rules(net))
            except BaseException:
                self._save_sandbox(sandbox)
                with contextlib.suppress(Exception):
                    self._fw.apply(self._rules(net))
                raise
            return resolved

    def unpublish(self, sandbox_id: str) -> None:
        _check_name("sandbox", sandbox_id)
        with self._locked():
            sandbox = self._load_sandbox(sandbox_id)
            if sandbox is not None and sandbox.ports:
                self._unpublish(sandbox)

    def _unpublish(self, sandbox: _Sandbox) -> _Sandbox:
        networks = {p.network for p in sandbox.ports}
        updated = replace(sandbox, ports=())
        self._save_sandbox(updated)
        for name in sorted(networks):
            net = self._load_network(name)
            if net is not None:
                self._fw.apply(self._rules(net))
        return updated

    def published(self, sandbox_id: str) -> list[PortMapping]:
        """Host ports resolved; empty for an unknown sandbox."""
        _check_name("sandbox", sandbox_id)
        with self._locked(shared=True):
            sandbox = self._load_sandbox(sandbox_id)
        return [p.mapping for p in sandbox.ports] if sandbox else []

    def destroy_sandbox(self, sandbox_id: str) -> None:
        """Ports, endpoints, namespace and state gone; an absent sandbox is fine."""
        path = Path(self.sandbox_path(sandbox_id))
        with self._locked():
            sandbox = self._load_sandbox(sandbox_id)
            if sandbox is not None:
                if sandbox.ports:
                    sandbox = self._unpublish(sandbox)
                for endpoint in list(sandbox.endpoints):
                    sandbox = self._detach(sandbox, endpoint.network)
            links.remove_netns(path)
            remove_file(self._sandbox_file(sandbox_id))
