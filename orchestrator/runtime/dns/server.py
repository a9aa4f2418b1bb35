"""The DNS server's transport: UDP and TCP listeners on each listener address, forwarding.

Every decision is ``answer.Answerer``'s; this module only moves bytes. Listeners are keyed
by address so a reload opens the new ones and closes the removed ones while the others keep
answering. Sockets are bound with ``IP_FREEBIND``: a bridge's gateway address may appear
after the records naming it are applied (or flap while a bridge is re-created), and the
listener must be there the moment it does.

Forwarding passes the asker's bytes through unchanged (EDNS, DNSSEC bits and all), tries the
servers in order with a timeout each, and retries over TCP when a UDP answer comes back
truncated and the asker came over TCP. A truncated answer to a UDP asker is relayed as is:
it retries over TCP to us, and then we forward over TCP.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import dns.exception
import dns.flags
import dns.message

from orchestrator.runtime.dns.answer import Answerer, Drop, Reply, servfail
from orchestrator.runtime.dns.records import Records

log = logging.getLogger("orchestrator.runtime.dns.server")

FORWARD_TIMEOUT = 2.0
TCP_IDLE_TIMEOUT = 10.0
MAX_IN_FLIGHT = 512
_IP_FREEBIND = 15  # linux/in.h; the socket module does not export it
_IPV6_FREEBIND = 78  # linux/in6.h
_HEADER = 12
_TC = 0x02  # the truncation bit in the header's third byte


@dataclass(frozen=True)
class ListenerError:
    """Why a listener address could not be served: ``kind`` is ``conflict`` (the port is
    taken there) or ``failure``."""

    kind: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "message": self.message}


@dataclass
class _Listener:
    address: str
    udp: asyncio.DatagramTransport
    tcp: asyncio.Server
    connections: set[asyncio.StreamWriter] = field(default_factory=set)


class DnsServer:
    """Serves ``Records`` on their listener addresses at ``port`` (UDP and TCP)."""

    def __init__(
        self,
        resolvers: Sequence[str],
        *,
        port: int = 53,
        forward_timeout: float = FORWARD_TIMEOUT,
    ) -> None:
        self.port = port
        self._forward_timeout = forward_timeout
        self._answerer = Answerer(Records(()), resolvers)
        self._listeners: dict[str, _Listener] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._failing: set[tuple[str, int]] = set()

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(self._listeners)

    async def apply(self, records: Records) -> dict[str, ListenerError]:
        """Serve ``records``: open new listeners, close removed ones; the ones that failed."""
        own = [(address, self.port) for address in records.listeners]
        self._answerer.update(records, own=own)
        wanted = set(records.listeners)
        for address in [a for a in self._listeners if a not in wanted]:
            await self._close_listener(self._listeners.pop(address))
            log.info("stopped listening on %s:%d", address, self.port)
        errors: dict[str, ListenerError] = {}
        for address in records.listeners:
            if address in self._listeners:
                continue
            try:
                self._listeners[address] = await self._open(address)
            except OSError as exc:
                kind = "conflict" if exc.errno == 98 else "failure"  # EADDRINUSE
                errors[address] = ListenerError(
                    kind, f"cannot listen on {address} port {self.port}: {exc.strerror}"
                )
                log.error("%s", errors[address].message)
                continue
            log.info("listening on %s:%d (udp, tcp)", address, self.port)
        return errors

    async def close(self) -> None:
        for listener in list(self._listeners.values()):
            await self._close_listener(listener)
        self._listeners.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ------------------------------------------------------------ listeners

    async def _open(self, address: str) -> _Listener:
        loop = asyncio.get_running_loop()
        udp_sock = _bound_socket(address, self.port, socket.SOCK_DGRAM)
        try:
            tcp_sock = _bound_socket(address, self.port, socket.SOCK_STREAM)
        except OSError:
            udp_sock.close()
            raise
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), sock=udp_sock
            )
        except OSError:
            udp_sock.close()
            tcp_sock.close()
            raise
        connections: set[asyncio.StreamWriter] = set()

        async def on_connection(reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> None:
            connections.add(writer)
            try:
                await self._serve_tcp(reader, writer)
            finally:
                connections.discard(writer)

        try:
            tcp_sock.listen(64)
            server = await asyncio.start_server(on_connection, sock=tcp_sock)
        except OSError:
            transport.close()
            tcp_sock.close()
            raise
        return _Listener(address, transport, server, connections)

    async def _close_listener(self, listener: _Listener) -> None:
        listener.udp.close()
        listener.tcp.close()
        for writer in list(listener.connections):
            writer.close()
        with contextlib.suppress(Exception):
            await listener.tcp.wait_closed()

    # ------------------------------------------------------------ queries

    def _spawn_udp(self, data: bytes, addr: Any, transport: asyncio.DatagramTransport) -> None:
        if len(self._tasks) >= MAX_IN_FLIGHT:
            return  # overloaded: the asker retries, as over any lossy UDP path
        task = asyncio.get_running_loop().create_task(self._reply_udp(data, addr, transport))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reply_udp(self, data: bytes, addr: Any,
                         transport: asyncio.DatagramTransport) -> None:
        try:
            response = await self.handle(data, str(addr[0]), tcp=False)
        except Exception:
            log.exception("answering %s failed", addr[0])
            return
        if response is not None and not transport.is_closing():
            transport.sendto(response, addr)

    async def _serve_tcp(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        client = str(peer[0]) if peer else ""
        try:
            while True:
                try:
                    head = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE_TIMEOUT)
                    (length,) = struct.unpack("!H", head)
                    data = await asyncio.wait_for(reader.readexactly(length), TCP_IDLE_TIMEOUT)
                except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                    return
                response = await self.handle(data, client, tcp=True)
                if response is None:
                    return
                writer.write(struct.pack("!H", len(response)) + response)
                await writer.drain()
        except (ConnectionError, OSError):
            return
        except Exception:
            log.exception("answering %s over tcp failed", client)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def handle(self, wire: bytes, client: str, *, tcp: bool) -> bytes | None:
        """The bytes to send back for the query ``wire`` from ``client`` (None: drop it)."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return _format_error(wire)
        outcome = self._answerer.answer(query, client)
        if isinstance(outcome, Drop):
            return None
        if isinstance(outcome, Reply):
            return _encode(outcome.message, query, tcp=tcp)
        for server in outcome.servers:
            response = await self._forward(wire, query, server, tcp=tcp)
            if response is not None:
                return response
        return _encode(servfail(query), query, tcp=tcp)

    async def _forward(self, wire: bytes, query: dns.message.Message,
                       server: tuple[str, int], *, tcp: bool) -> bytes | None:
        try:
            response = await asyncio.wait_for(
                _udp_exchange(wire, query, server), self._forward_timeout
            )
            if tcp and len(response) > 2 and response[2] & _TC:
                response = await asyncio.wait_for(
                    _tcp_exchange(wire, query, server), self._forward_timeout
                )
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            if server not in self._failing:  # once per outage, not once per query
                self._failing.add(server)
                log.warning("forwarding to %s port %d failed: %s", server[0], server[1],
                            "timeout" if isinstance(exc, TimeoutError) else exc)
            return None
        if server in self._failing:
            self._failing.discard(server)
            log.info("forwarding to %s port %d works again", server[0], server[1])
        return response


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self._server = server
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self._transport is not None:
            self._server._spawn_udp(data, addr, self._transport)

    def error_received(self, exc: Exception) -> None:
        log.debug("udp error: %s", exc)


# ---------------------------------------------------------------- helpers


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET


def _bound_socket(address: str, port: int, kind: socket.SocketKind) -> socket.socket:
    family = _family(address)
    sock = socket.socket(family, kind)
    try:
        if kind == socket.SOCK_STREAM:
            # TIME_WAIT of a previous daemon must not block a restart; for UDP it would let
            # two servers share the port silently, so a taken port must fail there
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_FREEBIND, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IP, _IP_FREEBIND, 1)
        sock.setblocking(False)
        sock.bind((address, port))
    except OSError:
        sock.close()
        raise
    return sock


def _encode(message: dns.message.Message, query: dns.message.Message, *, tcp: bool) -> bytes:
    # dnspython shuffles records by default; our order is the round-robin rotation
    if tcp:
        return message.to_wire(want_shuffle=False)
    limit = max(512, query.payload) if query.edns >= 0 else 512
    return message.to_wire(max_size=limit, prefer_truncation=True, want_shuffle=False)


def _format_error(wire: bytes) -> bytes | None:
    """FORMERR for bytes that do not parse, if they at least carry a header to answer."""
    if len(wire) < _HEADER or wire[2] & 0x80:
        return None  # too short to answer, or a response: never answer those (loops)
    opcode_and_rd = wire[2] & 0x79  # both are copied into a response
    return wire[:2] + bytes([0x80 | opcode_and_rd, 0x01]) + b"\0" * 8


def _is_answer(data: bytes, query: dns.message.Message) -> bool:
    try:
        response = dns.message.from_wire(data, question_only=True)
    except dns.exception.DNSException:
        return False
    return bool(response.flags & dns.flags.QR) and response.id == query.id and (
        response.question == query.question
    )


async def _udp_exchange(wire: bytes, query: dns.message.Message,
                        server: tuple[str, int]) -> bytes:
    loop = asyncio.get_running_loop()
    with socket.socket(_family(server[0]), socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.connect(server)  # the kernel then drops datagrams from anyone else
        await loop.sock_sendall(sock, wire)
        while True:
            data = await loop.sock_recv(sock, 65535)
            if _is_answer(data, query):
                return data


async def _tcp_exchange(wire: bytes, query: dns.message.Message,
                        server: tuple[str, int]) -> bytes:
    reader, writer = await asyncio.open_connection(server[0], server[1])
    try:
        writer.write(struct.pack("!H", len(wire)) + wire)
        await writer.drain()
        while True:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            data = await reader.readexactly(length)
            if _is_answer(data, query):
                return data
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
