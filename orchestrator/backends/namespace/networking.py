"""Compose networking → the runtime's networks (``runtime.net``) and names (``runtime.dns``).

The compose rules of the namespace backend's networking live here, as functions of data:
a top-level network → a ``NetworkConfig``; a service's host-mode ports → ``PortMapping``s;
every container of the state root → the DNS ``Records`` (one zone per network: service
names and aliases, container names, hostnames, short ids; one client per container
address, with its ``dns`` upstream); the ``/etc/hosts``, ``/etc/resolv.conf`` and
``/etc/hostname`` a container sees. ``backend.py`` does the acting; what touches the host
here is small and injectable (probing a port, reading the host's resolv.conf).

Why a DNS daemon on each bridge's gateway instead of docker's 127.0.0.11 inside every
namespace: one process serves every container of the host, a container's resolver is a
plain ``nameserver`` line that works in any image, and no process has to enter a
namespace. Names are scoped by the asking address, so a container sees only the names of
its own networks, as with docker.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.backends.base import ContainerSpec
from orchestrator.backends.spec import published_ports
from orchestrator.errors import ConfigError, Problem, RuntimeFailure, Unsupported
from orchestrator.model import Network, PortConfig
from orchestrator.runtime import atomic
from orchestrator.runtime.dns import Client, Records, Zone
from orchestrator.runtime.net import NetworkConfig, PortMapping

NET_STATE = "net.json"
DNS_VIEW = "dns-view.json"  # under the state root, beside dns.lock
HOSTS, RESOLV_CONF, HOSTNAME = "hosts", "resolv.conf", "hostname"
_DRIVERS = (None, "bridge")
_LIVE = ("created", "running", "restarting", "paused")
LOCALHOST = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)
HOST_GATEWAY = "host-gateway"


def dns_state_dir(root: Path) -> Path:
    """The DNS service's files, under the state root: one daemon per state root, serving
    every container of it. (Keyed by the run dir instead, two CLIs with different run dirs
    over one state root would start two daemons fighting for the same gateways.)"""
    return root / "dns"


# ---------------------------------------------------------------------- networks


def network_config(network: Network, labels: Mapping[str, str]) -> NetworkConfig:
    """The bridge of a compose network: the first IPv4 ``ipam.config`` entry decides the
    subnet, gateway, ip_range and reserved addresses; without one, the manager picks."""
    where = f"networks.{network.key}"
    if network.driver not in _DRIVERS:
        raise Unsupported(
            f"network {network.name}: driver {network.driver!r}: the namespace backend makes "
            "bridge networks only"
        )
    if network.ipam_driver not in (None, "default"):
        raise Unsupported(
            f"network {network.name}: ipam driver {network.ipam_driver!r}: the namespace "
            "backend has its own address management only"
        )
    chosen: dict[str, Any] = {}
    index = 0
    for index, entry in enumerate(network.ipam_config):
        subnet = entry.get("subnet")
        if subnet is None or _version(str(subnet), f"{where}.ipam.config[{index}].subnet") == 4:
            chosen = entry
            break
    path = f"{where}.ipam.config[{index}]"
    subnet = _cidr(chosen.get("subnet"), f"{path}.subnet")
    ip_range = _cidr(chosen.get("ip_range"), f"{path}.ip_range")
    gateway = _address(chosen.get("gateway"), f"{path}.gateway")
    aux = {
        str(k): str(_address(v, f"{path}.aux_addresses.{k}"))
        for k, v in (chosen.get("aux_addresses") or {}).items()
    }
    if subnet is not None:
        net = ipaddress.ip_network(subnet)
        inside = [("gateway", gateway), *((f"aux_addresses.{k}", v) for k, v in aux.items())]
        for what, value in inside:
            if value is not None and ipaddress.ip_address(value) not in net:
                raise ConfigError(
                    Problem(f"{value} is outside the subnet {subnet}", path=f"{path}.{what}")
                )
        if ip_range is not None and not ipaddress.ip_network(ip_range).subnet_of(net):  # type: ignore[arg-type]
            raise ConfigError(
                Problem(f"ip_range {ip_range} is not inside the subnet {subnet}",
                        path=f"{path}.ip_range")
            )
    elif gateway is not None or ip_range is not None:
        raise ConfigError(
            Problem("a gateway or ip_range needs a subnet", path=f"{path}.subnet",
                    hint="give the subnet too, e.g. subnet: 10.90.0.0/24")
        )
    return NetworkConfig(
        name=network.name,
        subnet=subnet,
        gateway=gateway,
        ip_range=ip_range,
        internal=network.internal,
        aux_addresses=aux,
        labels=dict(labels),
    )


def _version(text: str, path: str) -> int:
    try:
        return ipaddress.ip_network(text, strict=False).version
    except ValueError as exc:
        raise ConfigError(Problem(f"{text!r} is not a subnet (CIDR)", path=path)) from exc


def _cidr(value: object, path: str) -> str | None:
    if value is None:
        return None
    try:
        net = ipaddress.ip_network(str(value), strict=False)
    except ValueError as exc:
        raise ConfigError(Problem(f"{value!r} is not a subnet (CIDR)", path=path)) from exc
    if net.version != 4:
        raise ConfigError(Problem(f"{value} is not an IPv4 subnet", path=path))
    return str(net)


def _address(value: object, path: str) -> str | None:
    if value is None:
        return None
    try:
        address = ipaddress.ip_address(str(value))
    except ValueError as exc:
        raise ConfigError(Problem(f"{value!r} is not an IP address", path=path)) from exc
    if address.version != 4:
        raise ConfigError(Problem(f"{value} is not an IPv4 address", path=path))
    return str(address)


# ---------------------------------------------------------------------- ports


def port_is_free(mapping: PortMapping) -> bool:
    """Whether ``mapping``'s host port can be bound now (probing it, as the manager will)."""
    kind = socket.SOCK_DGRAM if mapping.protocol == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as probe:
        try:
            probe.bind((mapping.host_ip or "0.0.0.0", mapping.host_port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise RuntimeFailure(
                f"cannot probe port {mapping.host_port}/{mapping.protocol}: {exc}"
            ) from exc
    return True


def port_mappings(
    spec: ContainerSpec, *, is_free: Callable[[PortMapping], bool] = port_is_free
) -> tuple[PortMapping, ...]:
    """The ports this container publishes itself (``spec.publish_ports``).

    No published port: a random one. A published range for one container port: the first
    free port of the range (docker's rule, so replicas of a service spread over it).
    """
    out: list[PortMapping] = []
    for index in spec.publish_ports:
        port: PortConfig = spec.service.ports[index]
        path = f"services.{spec.service.name}.ports[{index}]"
        if port.protocol not in ("tcp", "udp"):
            raise Unsupported(
                f"container {spec.name}: {port.protocol} ports cannot be published by the "
                "namespace backend (tcp and udp only)"
            )
        host_ip = _host_ip(port.host_ip, path)
        base = PortMapping(port.target, port.protocol, 0, host_ip)
        if port.published is None or not port.published.strip():
            out.append(base)
            continue
        hosts = published_ports(port, path=path)
        if len(hosts) == 1:
            out.append(PortMapping(port.target, port.protocol, hosts[0], host_ip))
            continue
        taken = {(m.host_port, m.protocol) for m in out}
        for number in hosts:
            candidate = PortMapping(port.target, port.protocol, number, host_ip)
            if (number, port.protocol) not in taken and is_free(candidate):
                out.append(candidate)
                break
        else:
            raise ConfigError(
                Problem(
                    f"every host port of {port.published}/{port.protocol} is already in use",
                    path=f"{path}.published",
                    hint="widen the range or stop what holds those ports",
                )
            )
    return tuple(out)


def _host_ip(text: str | None, path: str) -> str:
    if text is None or text.strip() in ("", "0.0.0.0"):
        return ""
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError as exc:
        raise ConfigError(Problem(f"{text!r} is not a host IP address", path=path)) from exc
    if address.version != 4:
        if address.is_unspecified:
            return ""  # "::" means every address: ours are IPv4
        raise Unsupported(f"{path}: IPv6 host address {text} (the namespace backend is IPv4)")
    return str(address)


def published_view(mappings: Iterable[PortMapping]) -> dict[str, tuple[tuple[str, str], ...]]:
    """``ObservedContainer.published``: ``"80/tcp" -> ((host_ip, host_port), ...)``."""
    out: dict[str, list[tuple[str, str]]] = {}
    for m in mappings:
        out.setdefault(f"{m.container_port}/{m.protocol}", []).append(
            (m.host_ip or "0.0.0.0", str(m.host_port))
        )
    return {key: tuple(value) for key, value in out.items()}


# ---------------------------------------------------------------------- per container


@dataclass(frozen=True)
class NetState:
    """What the backend keeps of one container's networking (``net.json`` in its bundle):
    whose network namespace it lives in and what its names and resolver are."""

    sandbox: str  # the sandbox id its processes join ("" with the host network or none)
    owner: bool  # it made the sandbox: removing it destroys the sandbox
    hostname: str
    mode: str = "bridge"  # bridge | host | none (of the sandbox's owner when joined)
    domainname: str = ""
    upstream: tuple[str, ...] = ()  # compose `dns`
    links: tuple[tuple[str, str], ...] = ()  # (service, alias)
    search: tuple[str, ...] = ()  # compose `dns_search`
    options: tuple[str, ...] = ()  # compose `dns_opt`
    extra_hosts: tuple[tuple[str, str], ...] = ()  # (name, address or host-gateway)

    def to_json(self) -> dict[str, Any]:
        return {
            "sandbox": self.sandbox,
            "owner": self.owner,
            "hostname": self.hostname,
            "mode": self.mode,
            "domainname": self.domainname,
            "upstream": list(self.upstream),
            "links": [list(link) for link in self.links],
            "search": list(self.search),
            "options": list(self.options),
            "extra_hosts": [list(entry) for entry in self.extra_hosts],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NetState:
        return cls(
            sandbox=str(data.get("sandbox", "")),
            owner=bool(data.get("owner", False)),
            hostname=str(data.get("hostname", "")),
            mode=str(data.get("mode", "bridge")),
            domainname=str(data.get("domainname", "")),
            upstream=tuple(str(x) for x in data.get("upstream", ())),
            links=tuple((str(a), str(b)) for a, b in data.get("links", ())),
            search=tuple(str(x) for x in data.get("search", ())),
            options=tuple(str(x) for x in data.get("options", ())),
            extra_hosts=tuple((str(a), str(b)) for a, b in data.get("extra_hosts", ())),
        )

    def save(self, directory: Path) -> None:
        """Whole or not at all (a rename): the DNS rebuild of a parallel create may read
        it at any moment. (Only the bind-mounted /etc files are rewritten in place.)"""
        atomic.write_json(directory / NET_STATE, self.to_json(), durable=False)

    @classmethod
    def load(cls, directory: Path) -> NetState | None:
        try:
            data = json.loads((directory / NET_STATE).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise RuntimeFailure(f"unreadable network record {directory / NET_STATE}") from exc
        return cls.from_json(data) if isinstance(data, dict) else None


def net_state(
    spec: ContainerSpec, container_id: str, *, sandbox: str, owner: bool, mode: str = "bridge"
) -> NetState:
    """The container's names and resolver settings, checked."""
    service = spec.service
    return NetState(
        sandbox=sandbox,
        owner=owner,
        hostname=service.hostname or container_id[:12],
        mode=mode,
        domainname=service.domainname or "",
        upstream=tuple(_nameserver(s, f"services.{service.name}.dns[{i}]")
                       for i, s in enumerate(service.dns)),
        links=tuple(_link(text) for text in service.links),
        search=tuple(service.dns_search),
        options=tuple(service.dns_opt),
        extra_hosts=tuple(
            extra_host(text, f"services.{service.name}.extra_hosts[{i}]")
            for i, text in enumerate(service.extra_hosts)
        ),
    )


def _nameserver(text: str, path: str) -> str:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError as exc:
        raise ConfigError(Problem(f"{text!r} is not a DNS server address", path=path)) from exc
    if address.version != 4:
        raise Unsupported(f"{path}: IPv6 DNS server {text} (the namespace backend is IPv4)")
    return str(address)


def _link(text: str) -> tuple[str, str]:
    service, _, alias = text.partition(":")
    return service, alias or service


def extra_host(text: str, path: str) -> tuple[str, str]:
    """``"name:address"``, ``"name=address"`` or ``"name:host-gateway"``."""
    if "=" in text:
        name, _, address = text.partition("=")
    else:
        name, _, address = text.partition(":")
    name, address = name.strip(), address.strip().strip("[]")
    if not name or not address:
        raise ConfigError(
            Problem(f"expected 'host:address', got {text!r}", path=path,
                    hint="e.g. somehost:162.242.195.82")
        )
    if address != HOST_GATEWAY:
        try:
            address = str(ipaddress.ip_address(address))
        except ValueError as exc:
            raise ConfigError(
                Problem(f"{address!r} is not an IP address (in {text!r})", path=path)
            ) from exc
    return name, address


def hosts_file(
    state: NetState,
    addresses: Sequence[str],
    *,
    host_gateway: str | None = None,
    base: str = LOCALHOST,
) -> str:
    """``/etc/hosts``: ``base`` (localhost; the host's file with the host network), then
    ``extra_hosts`` (``host-gateway`` is the gateway of the first network: the host seen
    from the container), then the container's own names on each of its addresses, as
    docker writes it."""
    lines = [base if base.endswith("\n") or not base else base + "\n"]
    for name, address in state.extra_hosts:
        if address == HOST_GATEWAY:
            if host_gateway is None:
                continue
            address = host_gateway
        lines.append(f"{address}\t{name}\n")
    names = state.hostname
    if state.domainname:
        names = f"{state.hostname}.{state.domainname} {state.hostname}"
    for address in addresses:
        lines.append(f"{address}\t{names}\n")
    return "".join(lines)


def host_resolv_conf(path: Path = Path("/etc/resolv.conf")) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def resolv_conf(state: NetState, nameserver: str | None, host_text: str) -> str:
    """``/etc/resolv.conf``: our DNS daemon (on the first network's gateway) answers and
    forwards; ``dns_search``/``dns_opt`` replace the host's search and options. Without a
    network of ours (host network, ``none``): the host's servers, or ``dns`` when given."""
    host_search: list[str] = []
    host_options: list[str] = []
    host_servers: list[str] = []
    for raw in host_text.splitlines():
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        if words[0] == "nameserver" and len(words) > 1:
            host_servers.append(words[1])
        elif words[0] in ("search", "domain"):
            host_search = words[1:]
        elif words[0] == "options":
            host_options += words[1:]
    if nameserver is not None:
        servers = [nameserver]
    elif state.upstream:
        servers = list(state.upstream)
    else:
        servers = host_servers
    search = list(state.search) if state.search else host_search
    options = list(state.options) if state.options else host_options
    out = [f"nameserver {s}\n" for s in servers]
    if search:
        out.append("search " + " ".join(search) + "\n")
    if options:
        out.append("options " + " ".join(options) + "\n")
    return "".join(out)


def hostname_file(state: NetState) -> str:
    return state.hostname + "\n"


def write_files(directory: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        _write_in_place(directory / name, text)


def _write_in_place(path: Path, text: str) -> None:
    """Truncate and write the same inode: the file is bind-mounted into the container, and
    a rename would leave the container seeing the old one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


# ---------------------------------------------------------------------- DNS


@dataclass(frozen=True)
class Member:
    """One container as the DNS sees it."""

    id: str
    name: str
    project: str
    service: str
    status: str
    state: NetState
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # network -> aliases
    addresses: Mapping[str, str] = field(default_factory=dict)  # network -> IPv4

    @property
    def live(self) -> bool:
        return self.status in _LIVE

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "project": self.project,
            "service": self.service,
            "status": self.status,
            "state": self.state.to_json(),
            "aliases": {k: list(v) for k, v in self.aliases.items()},
            "addresses": dict(self.addresses),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Member:
        return cls(
            id=str(data["id"]),
            name=str(data["name"]),
            project=str(data["project"]),
            service=str(data["service"]),
            status=str(data["status"]),
            state=NetState.from_json(data["state"]),
            aliases={str(k): tuple(str(a) for a in v) for k, v in data["aliases"].items()},
            addresses={str(k): str(v) for k, v in data["addresses"].items()},
        )


@dataclass(frozen=True)
class DnsView:
    """The members the DNS was last built from, and every container id there was then
    (members or not: host network, joined namespaces). Kept beside the DNS lock so that a
    create adds its one member to it instead of reading every container again; any other
    change, or ids that differ from the state root's, rebuilds it from the containers."""

    ids: frozenset[str]
    members: tuple[Member, ...]

    def plus(self, member: Member, ids: Iterable[str]) -> tuple[Member, ...] | None:
        """The members with ``member`` added, when ``ids`` (the state root's containers
        now) are this view's plus ``member``'s; None when anything else changed."""
        if set(ids) != self.ids | {member.id}:
            return None
        # in id order, as a rebuild reads them: the same records, not merely equivalent
        return tuple(sorted((*(m for m in self.members if m.id != member.id), member),
                            key=lambda m: m.id))

    @classmethod
    def load(cls, path: Path) -> DnsView | None:
        """None when missing or unreadable: the caller rebuilds."""
        try:
            data = json.loads(path.read_bytes())
            return cls(
                ids=frozenset(str(i) for i in data["ids"]),
                members=tuple(Member.from_json(m) for m in data["members"]),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def save(self, path: Path) -> None:
        """Whole or not at all (a rename); no fsync: a lost view is only a slower rebuild."""
        data = {"ids": sorted(self.ids), "members": [m.to_json() for m in self.members]}
        atomic.write_json(path, data, durable=False)


def dns_records(members: Iterable[Member], gateways: Mapping[str, str]) -> Records:
    """Every network with a live container gets a zone (its gateway listens); every
    address of a live container is a client that sees the zones of its networks.

    A container answers to its name, its short id, its hostname and the aliases of its
    attachment (the service name among them; a rolling update takes them away before a
    replica stops). ``links`` add a name the linked service answers to, on the networks
    the two share.
    """
    zones: dict[str, dict[str, list[str]]] = {}
    clients: list[Client] = []
    live = [m for m in members if m.live and m.addresses]
    for m in live:
        for network, address in sorted(m.addresses.items()):
            names = {m.name, m.id[:12], m.state.hostname, *m.aliases.get(network, ())}
            if m.state.domainname:
                names.add(f"{m.state.hostname}.{m.state.domainname}")
            zone = zones.setdefault(network, {})
            for name in sorted({_dns_name(n) for n in names} - {""}):
                if address not in zone.setdefault(name, []):
                    zone[name].append(address)
        clients.extend(
            Client(address=address, networks=tuple(sorted(m.addresses)), upstream=m.state.upstream)
            for address in sorted(m.addresses.values())
        )
    for m in live:
        for service, alias in m.state.links:
            alias = _dns_name(alias)
            if alias in ("", service.lower()):
                continue
            for target in live:
                if target.project != m.project or target.service != service:
                    continue
                for network in set(m.addresses) & set(target.addresses):
                    found = zones[network].setdefault(alias, [])
                    if target.addresses[network] not in found:
                        found.append(target.addresses[network])
    listeners = tuple(sorted({gateways[n] for n in zones if n in gateways}))
    return Records(
        listeners=listeners,
        zones=tuple(
            Zone(network=n, records={k: tuple(v) for k, v in sorted(zones[n].items())})
            for n in sorted(zones)
            if n in gateways
        ),
        clients=tuple(c for c in clients if set(c.networks) & set(gateways)),
    )


def _dns_name(name: str) -> str:
    """``name`` as the DNS holds it (lower case, no root dot), or "" when DNS cannot hold
    it: such an alias is left out rather than failing every other name."""
    bare = name.strip().rstrip(".").lower()
    labels = bare.split(".")
    if not bare or len(bare) > 253 or any(not part or len(part) > 63 for part in labels):
        return ""
    if any(c.isspace() or c in '\\"()' or not c.isprintable() for c in bare):
        return ""
    return bare

