"""Host ports for published container ports: validated, checked free by binding them, and
resolved (host port 0 becomes a free port the kernel picks).

A DNAT rule holds no socket, so the kernel cannot tell us about ports we published
ourselves: the caller passes those as ``taken``. The sockets of one request stay bound
until every mapping is checked, so two ``0`` ports never resolve to the same number.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Iterable, Sequence
from dataclasses import replace
from ipaddress import IPv4Address

from orchestrator.errors import Conflict, RuntimeFailure
from orchestrator.runtime.net.spec import PortMapping

PROTOCOLS = ("tcp", "udp")


def normalize(mapping: PortMapping) -> PortMapping:
    """Lower-case protocol, ``0.0.0.0`` as ``""``; RuntimeFailure for impossible values."""
    protocol = mapping.protocol.lower()
    if protocol not in PROTOCOLS:
        raise RuntimeFailure(f"protocol {mapping.protocol!r} is not one of tcp, udp")
    if not 1 <= mapping.container_port <= 65535:
        raise RuntimeFailure(f"container port {mapping.container_port} is out of 1-65535")
    if not 0 <= mapping.host_port <= 65535:
        raise RuntimeFailure(f"host port {mapping.host_port} is out of 0-65535")
    host_ip = mapping.host_ip.strip()
    if host_ip:
        try:
            parsed = IPv4Address(host_ip)
        except ValueError as exc:
            raise RuntimeFailure(f"host address {host_ip!r} is not an IPv4 address") from exc
        host_ip = "" if parsed.is_unspecified else str(parsed)
    return replace(mapping, protocol=protocol, host_ip=host_ip)


def describe(mapping: PortMapping) -> str:
    where = mapping.host_ip or "0.0.0.0"
    return f"{where}:{mapping.host_port}/{mapping.protocol}"


def clashes(a: PortMapping, b: PortMapping) -> bool:
    """Same protocol and port on overlapping addresses ("" overlaps every address)."""
    return (
        a.protocol == b.protocol
        and a.host_port == b.host_port
        and (not a.host_ip or not b.host_ip or a.host_ip == b.host_ip)
    )


def _bind(mapping: PortMapping) -> socket.socket:
    kind = socket.SOCK_STREAM if mapping.protocol == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(socket.AF_INET, kind)
    try:
        if kind == socket.SOCK_STREAM:  # TIME_WAIT leftovers do not make a port busy
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((mapping.host_ip or "0.0.0.0", mapping.host_port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise Conflict(f"host port {describe(mapping)} is already in use") from exc
        if exc.errno == errno.EADDRNOTAVAIL:
            raise RuntimeFailure(
                f"cannot publish {describe(mapping)}: {mapping.host_ip} is not an address "
                "of this host"
            ) from exc
        raise RuntimeFailure(f"cannot check host port {describe(mapping)}: {exc}") from exc
    return sock


def resolve(ports: Sequence[PortMapping], taken: Iterable[PortMapping] = ()) -> list[PortMapping]:
    """The mappings normalized, each host port checked free (Conflict naming the first one
    that is not) and ``0`` replaced by a free port."""
    busy = list(taken)
    result: list[PortMapping] = []
    with contextlib.ExitStack() as stack:
        for raw in ports:
            mapping = normalize(raw)
            if mapping.host_port:
                for other in busy:
                    if clashes(mapping, other):
                        raise Conflict(f"host port {describe(mapping)} is already published")
            if mapping.host_port:
                stack.enter_context(_bind(mapping))
            else:
                mapping = _free(mapping, busy, stack)
            busy.append(mapping)
            result.append(mapping)
    return result


def _free(
    mapping: PortMapping, busy: Sequence[PortMapping], stack: contextlib.ExitStack
) -> PortMapping:
    """A port the kernel picks that none of ours uses either (a port we published holds no
    socket, so the kernel may offer it: keep that socket open and ask again)."""
    for _ in range(64):
        sock = stack.enter_context(_bind(mapping))
        candidate = replace(mapping, host_port=int(sock.getsockname()[1]))
        if not any(clashes(candidate, other) for other in busy):
            return candidate
    raise Conflict(f"no free host port for {describe(mapping)}")
