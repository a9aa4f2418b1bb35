"""What the embedded DNS server serves: the data types, their JSON form, their checks.

The daemon is driven through a file, so these types cross a process boundary: ``to_json``
and ``from_json`` are exact inverses, and ``problems`` is the one place that says what a
well-formed set of records is (the service refuses bad records before the daemon sees them,
the daemon refuses a bad file without dropping what it serves).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import Problem

DNS_PORT = 53
_MAX_NAME = 253
_MAX_LABEL = 63


@dataclass(frozen=True)
class Zone:
    """The names of one network: name (any case, no trailing dot) -> IPv4 addresses."""

    network: str
    records: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Client:
    """One container address that asks questions, and what it may see.

    ``upstream`` entries are IP addresses, optionally with a port (``10.0.0.2:5353``,
    ``[fd00::1]:5353``); ``()`` means the host's resolvers.
    """

    address: str
    networks: tuple[str, ...]
    upstream: tuple[str, ...] = ()


@dataclass(frozen=True)
class Records:
    """Everything one DNS daemon serves; ``listeners`` are the addresses it answers on."""

    listeners: tuple[str, ...]
    zones: tuple[Zone, ...] = ()
    clients: tuple[Client, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "listeners": list(self.listeners),
            "zones": [
                {
                    "network": zone.network,
                    "records": {name: list(addrs) for name, addrs in zone.records.items()},
                }
                for zone in self.zones
            ],
            "clients": [
                {
                    "address": client.address,
                    "networks": list(client.networks),
                    "upstream": list(client.upstream),
                }
                for client in self.clients
            ],
        }

    @classmethod
    def from_json(cls, data: Any) -> Records:
        """Parse ``to_json``'s output; ValueError saying what is wrong (shape or content)."""
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        listeners = _strings(data.get("listeners", []), "listeners")
        zones: list[Zone] = []
        for i, raw in enumerate(_list(data.get("zones", []), "zones")):
            if not isinstance(raw, dict) or not isinstance(raw.get("network"), str):
                raise ValueError(f"zones[{i}]: expected an object with a 'network' string")
            raw_records = raw.get("records", {})
            if not isinstance(raw_records, dict):
                raise ValueError(f"zones[{i}].records: expected an object")
            records = {
                str(name): _strings(addrs, f"zones[{i}].records.{name}")
                for name, addrs in raw_records.items()
            }
            zones.append(Zone(raw["network"], records))
        clients: list[Client] = []
        for i, raw in enumerate(_list(data.get("clients", []), "clients")):
            if not isinstance(raw, dict) or not isinstance(raw.get("address"), str):
                raise ValueError(f"clients[{i}]: expected an object with an 'address' string")
            clients.append(Client(
                raw["address"],
                _strings(raw.get("networks", []), f"clients[{i}].networks"),
                _strings(raw.get("upstream", []), f"clients[{i}].upstream"),
            ))
        records_ = cls(listeners, tuple(zones), tuple(clients))
        found = problems(records_)
        if found:
            raise ValueError("; ".join(str(p) for p in found))
        return records_


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{path}: expected a list")
    return value


def _strings(value: Any, path: str) -> tuple[str, ...]:
    items = _list(value, path)
    if not all(isinstance(item, str) for item in items):
        raise ValueError(f"{path}: expected a list of strings")
    return tuple(items)


# ---------------------------------------------------------------- checks


def normalize_name(name: str) -> str:
    """The form names are compared in: DNS names are case-insensitive, the root dot optional."""
    return name.rstrip(".").lower()


def parse_server(text: str, default_port: int = DNS_PORT) -> tuple[str, int]:
    """``addr``, ``addr:port`` or ``[v6addr]:port`` -> (address, port); ValueError if not."""
    host, port = text, default_port
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r} is not an address or [address]:port")
        if rest:
            port = _port(rest[1:], text)
    elif text.count(":") == 1:
        host, _, raw_port = text.partition(":")
        port = _port(raw_port, text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address") from None
    return host, port


def _port(raw: str, text: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"{text!r} has an invalid port")
    return int(raw)


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _name_problem(name: str) -> str:
    """Why ``name`` cannot be a DNS name, or ``""``."""
    bare = name[:-1] if name.endswith(".") else name
    if not bare:
        return "is empty"
    if len(bare.encode()) > _MAX_NAME:
        return f"is longer than {_MAX_NAME} bytes"
    for label in bare.split("."):
        if not label:
            return "has an empty label (two dots in a row, or a leading dot)"
        if len(label.encode()) > _MAX_LABEL:
            return f"has a label longer than {_MAX_LABEL} bytes"
        if any(c.isspace() or c in "\\\"()" or not c.isprintable() for c in label):
            return "contains whitespace or a character DNS names cannot hold"
    return ""


def problems(records: Records) -> list[Problem]:
    """Every problem of ``records``, each with the dotted path of the value at fault."""
    found: list[Problem] = []
    for i, listener in enumerate(records.listeners):
        try:
            ipaddress.ip_address(listener)
        except ValueError:
            found.append(Problem(f"{listener!r} is not an IP address", path=f"listeners[{i}]"))
    if len(set(records.listeners)) != len(records.listeners):
        found.append(Problem("an address is listed twice", path="listeners"))
    networks: set[str] = set()
    for i, zone in enumerate(records.zones):
        if not zone.network:
            found.append(Problem("the network name is empty", path=f"zones[{i}].network"))
        if zone.network in networks:
            found.append(Problem(f"network {zone.network!r} has two zones",
                                 path=f"zones[{i}].network", hint="merge their records"))
        networks.add(zone.network)
        seen: set[str] = set()
        for name, addresses in zone.records.items():
            path = f"zones[{i}].records.{name}"
            why = _name_problem(name)
            if why:
                found.append(Problem(f"the name {name!r} {why}", path=path))
            if normalize_name(name) in seen:
                found.append(Problem(f"the name {name!r} is given twice (names ignore case)",
                                     path=path))
            seen.add(normalize_name(name))
            for j, address in enumerate(addresses):
                if not _is_ipv4(address):
                    found.append(Problem(f"{address!r} is not an IPv4 address",
                                         path=f"{path}[{j}]"))
    addresses_seen: set[str] = set()
    for i, client in enumerate(records.clients):
        if not _is_ipv4(client.address):
            found.append(Problem(f"{client.address!r} is not an IPv4 address",
                                 path=f"clients[{i}].address"))
        if client.address in addresses_seen:
            found.append(Problem(f"two clients have the address {client.address}",
                                 path=f"clients[{i}].address"))
        addresses_seen.add(client.address)
        for j, server in enumerate(client.upstream):
            try:
                parse_server(server)
            except ValueError as exc:
                found.append(Problem(str(exc), path=f"clients[{i}].upstream[{j}]"))
    return found
