"""The public values of the network library: what callers ask for and what they get back.

Plain frozen dataclasses with their JSON form, so the manager's state files hold exactly
what the API returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class NetworkConfig:
    """What a network should be; ``None`` fields take the documented defaults."""

    name: str  # engine-side name, e.g. "vote_backend"
    subnet: str | None = None  # None: the next free /24 of 10.89.0.0/16
    gateway: str | None = None  # None: the first host address of the subnet
    ip_range: str | None = None  # containers' addresses come from here (default: subnet)
    internal: bool = False  # no NAT, nothing forwarded in or out of the bridge
    aux_addresses: Mapping[str, str] = field(default_factory=dict)  # never leased
    labels: Mapping[str, str] = field(default_factory=dict)  # stored, returned as given


@dataclass(frozen=True)
class NetworkInfo:
    name: str
    bridge: str
    subnet: str
    gateway: str
    internal: bool
    labels: Mapping[str, str]


@dataclass(frozen=True)
class Endpoint:
    """One attachment of a sandbox to a network."""

    network: str
    ifname: str  # inside the sandbox: eth0, eth1...
    address: str
    prefixlen: int
    gateway: str
    mac: str
    host_veth: str

    def to_json(self) -> dict[str, Any]:
        return {
            "network": self.network,
            "ifname": self.ifname,
            "address": self.address,
            "prefixlen": self.prefixlen,
            "gateway": self.gateway,
            "mac": self.mac,
            "host_veth": self.host_veth,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Endpoint:
        return cls(
            network=str(data["network"]),
            ifname=str(data["ifname"]),
            address=str(data["address"]),
            prefixlen=int(data["prefixlen"]),
            gateway=str(data["gateway"]),
            mac=str(data["mac"]),
            host_veth=str(data["host_veth"]),
        )


@dataclass(frozen=True)
class PortMapping:
    container_port: int
    protocol: str = "tcp"  # tcp | udp
    host_port: int = 0  # 0: pick a free one (returned resolved)
    host_ip: str = ""  # "" = every host address (127.0.0.1 included)

    def to_json(self) -> dict[str, Any]:
        return {
            "container_port": self.container_port,
            "protocol": self.protocol,
            "host_port": self.host_port,
            "host_ip": self.host_ip,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PortMapping:
        return cls(
            container_port=int(data["container_port"]),
            protocol=str(data["protocol"]),
            host_port=int(data["host_port"]),
            host_ip=str(data["host_ip"]),
        )
