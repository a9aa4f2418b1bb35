"""The balancer itself: one asyncio listener per route, spreading clients over the members.

New connections (TCP) and new client sessions (UDP) go to the members round-robin; the
member list is swapped whole when the pool changes, and what is already flowing stays on
the member it started on, so a drained replica finishes its work before it is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from orchestrator.errors import ConfigError, Conflict, Problem, PycomposeError
from orchestrator.ingress.pool import Member
from orchestrator.ingress.routes import Route

log = logging.getLogger(__name__)

CHUNK = 64 * 1024  # per read, and the most either direction buffers before waiting


def describe(route: Route) -> str:
    """``5000/tcp on 0.0.0.0``: how a route's host side is named in messages."""
    return f"port {route.published}/{route.protocol} on {route.host_ip}"


def bind_error(route: Route, exc: OSError) -> PycomposeError:
    """The typed error for a host port that could not be bound."""
    if exc.errno == errno.EADDRINUSE:
        return Conflict(f"{describe(route)} is already in use")
    if exc.errno == errno.EADDRNOTAVAIL:
        message = (
            f"cannot publish {describe(route)}: {route.host_ip} is not an address of this host"
        )
        hint = "use an address of one of this host's interfaces, or 0.0.0.0"
    elif exc.errno == errno.EACCES:
        message = f"cannot publish {describe(route)}: binding it needs more privileges"
        hint = "publish a port above 1023, or run as root"
    else:
        message = f"cannot publish {describe(route)}: {exc.strerror or exc}"
        hint = ""
    return ConfigError(Problem(message, path=f"services.{route.service}.ports", hint=hint))


def check_bindable(route: Route) -> None:
    """Fail fast, with the error the proxy would give, when ``route`` cannot be bound now."""
    kind = socket.SOCK_STREAM if route.protocol == "tcp" else socket.SOCK_DGRAM
    try:
        infos = socket.getaddrinfo(
            route.host_ip or None, route.published, type=kind, flags=socket.AI_PASSIVE
        )
        family, _, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            if kind == socket.SOCK_STREAM:
                # the proxy listens with SO_REUSEADDR; without it a TIME_WAIT would look busy
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except socket.gaierror as exc:
        raise bind_error(route, OSError(errno.EADDRNOTAVAIL, str(exc))) from exc
    except OSError as exc:
        raise bind_error(route, exc) from exc


class MemberRing:
    """The current members and a round-robin cursor; replaced whole, never edited in place."""

    def __init__(self) -> None:
        self._members: tuple[Member, ...] = ()
        self._cursor = 0
        self._filled = asyncio.Event()

    @property
    def members(self) -> tuple[Member, ...]:
        return self._members

    def replace(self, members: Sequence[Member]) -> None:
        self._members = tuple(members)
        if self._members:
            self._filled.set()
        else:
            self._filled.clear()

    def candidates(self) -> list[Member]:
        """Every member once, starting at the next one in turn (the rest are fallbacks)."""
        current = self._members
        if not current:
            return []
        start = self._cursor % len(current)
        self._cursor = start + 1
        return list(current[start:] + current[:start])

    async def wait_filled(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for a member, so a client arriving mid-replacement is served."""
        if self._members:
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._filled.wait(), timeout)
        return bool(self._members)


class TcpProxy:
    """Accepts on the route's host port and splices each connection to one member."""

    def __init__(
        self,
        route: Route,
        *,
        connect_timeout: float = 1.0,
        empty_wait: float = 3.0,
    ) -> None:
        self.route = route
        self.ring = MemberRing()
        self._connect_timeout = connect_timeout
        self._empty_wait = empty_wait
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> tuple[str, int]:
        """Where the listener is bound (the real port when the route asked for port 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the proxy is not listening")
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    @property
    def active_connections(self) -> int:
        return len(self._connections)

    def set_members(self, members: Sequence[Member]) -> None:
        self.ring.replace(members)

    async def start(self) -> None:
        """Bind and listen; Conflict when the port is taken."""
        try:
            self._server = await asyncio.start_server(
                self._accepted,
                host=self.route.host_ip or None,
                port=self.route.published,
                reuse_address=True,
                backlog=1024,
                limit=CHUNK,
            )
        except OSError as exc:
            raise bind_error(self.route, exc) from exc

    async def close(self, *, abort_connections: bool = False) -> None:
        """Stop listening; open connections carry on unless ``abort_connections``."""
        if self._server is not None:
            self._server.close()
            self._server = None
        if abort_connections:
            tasks = list(self._connections)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            _abort(writer)
            raise
        except Exception:  # one client's failure must never take the listener down
            log.exception("connection on %s failed", describe(self.route))
            _abort(writer)
        finally:
            self._connections.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = await self._connect()
        if upstream is None:
            log.warning("no member of %s answered; closing the client", self.route.service)
            _abort(writer)
            return
        up_reader, up_writer = upstream
        await splice(reader, writer, up_reader, up_writer)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """Open a connection to the next member that accepts one."""
        await self.ring.wait_filled(self._empty_wait)
        for member in self.ring.candidates():
            try:
                return await asyncio.wait_for(
                    asyncio.open_connection(member.address, member.port, limit=CHUNK),
                    self._connect_timeout,
                )
            except (OSError, TimeoutError) as exc:
                log.info("member %s (%s:%d) refused: %s; trying the next one",
                         member.container_id[:12], member.address, member.port, exc)
        return None


async def splice(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    member_reader: asyncio.StreamReader,
    member_writer: asyncio.StreamWriter,
) -> None:
    """Copy both ways until both sides have finished sending; a reset ends both at once."""
    to_member = asyncio.create_task(_pump(client_reader, member_writer))
    to_client = asyncio.create_task(_pump(member_reader, client_writer))
    try:
        done, pending = await asyncio.wait({to_member, to_client}, return_when="FIRST_EXCEPTION")
        if any(task.exception() is not None for task in done):
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            _abort(client_writer)
            _abort(member_writer)
            return
    except asyncio.CancelledError:
        to_member.cancel()
        to_client.cancel()
        await asyncio.gather(to_member, to_client, return_exceptions=True)
        _abort(client_writer)
        _abort(member_writer)
        raise
    await _close(client_writer)
    await _close(member_writer)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One direction: copy until EOF, then pass the EOF on (half-close) instead of closing."""
    while True:
        data = await reader.read(CHUNK)
        if not data:
            break
        writer.write(data)
        await writer.drain()  # bounded: waits while the other side is slower than this one
    if writer.can_write_eof() and not writer.is_closing():
        with contextlib.suppress(OSError):
            writer.write_eof()


def _abort(writer: asyncio.StreamWriter) -> None:
    transport = writer.transport
    if not transport.is_closing():
        transport.abort()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


@dataclass
class _UdpSession:
    """One client's datagrams, pinned to one member until the client goes quiet."""

    client: tuple[str, int]
    member: Member
    last_active: float
    transport: asyncio.DatagramTransport | None = None
    pending: list[bytes] = field(default_factory=list)
    closed: bool = False

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class _ListenerProtocol(asyncio.DatagramProtocol):
    def __init__(self, proxy: UdpProxy) -> None:
        self._proxy = proxy
        # the socket is only closed a loop iteration after transport.close(); rebinding the
        # same port (a route whose target changed) must wait for it
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self._proxy.from_client(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        log.info("udp listener error: %s", exc)


class _MemberProtocol(asyncio.DatagramProtocol):
    def __init__(self, proxy: UdpProxy, session: _UdpSession) -> None:
        self._proxy = proxy
        self._session = session

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self._proxy.from_member(self._session, data)

    def error_received(self, exc: Exception) -> None:
        # an ICMP "port unreachable": this member is gone, let the next datagram pick another
        self._proxy.forget(self._session)


class UdpProxy:
    """Maps each client address to one member for as long as it keeps talking."""

    MAX_PENDING = 64  # datagrams held per session while its member socket opens

    def __init__(
        self,
        route: Route,
        *,
        idle_timeout: float = 30.0,
        max_sessions: int = 4096,
        retire_grace: float = 5.0,
    ) -> None:
        self.route = route
        self.ring = MemberRing()
        self._idle_timeout = idle_timeout
        self._max_sessions = max_sessions
        self._retire_grace = retire_grace
        self._transport: asyncio.DatagramTransport | None = None
        self._listener: _ListenerProtocol | None = None
        self._sessions: dict[tuple[str, int], _UdpSession] = {}
        self._retired: list[_UdpSession] = []
        self._sweeper: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> tuple[str, int]:
        if self._transport is None:
            raise RuntimeError("the proxy is not listening")
        host, port = self._transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    @property
    def session_count(self) -> int:
        return len(self._sessions)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport, listener = await loop.create_datagram_endpoint(
                lambda: _ListenerProtocol(self),
                local_addr=(self.route.host_ip or "0.0.0.0", self.route.published),
            )
        except OSError as exc:
            raise bind_error(self.route, exc) from exc
        self._transport, self._listener = transport, listener
        self._sweeper = asyncio.create_task(self._sweep())

    def set_members(self, members: Sequence[Member]) -> None:
        """Swap the pool; sessions on a member that left are retired, not cut.

        A retired session still relays late replies for a short grace, but the client's next
        datagram opens a session on a current member, since a drained member is about to stop.
        """
        self.ring.replace(members)
        current = set(members)
        now = time.monotonic()
        for client, session in list(self._sessions.items()):
            if session.member not in current:
                del self._sessions[client]
                session.last_active = now
                self._retired.append(session)

    async def close(self, *, abort_connections: bool = False) -> None:
        """Stop listening and drop every session (datagrams have no connection to finish)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None
        for session in [*self._sessions.values(), *self._retired]:
            session.close()
        self._sessions.clear()
        self._retired.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._transport is not None and self._listener is not None:
            self._transport.close()
            await self._listener.closed
            self._transport = self._listener = None

    def from_client(self, data: bytes, client: tuple[str, int]) -> None:
        session = self._sessions.get(client)
        if session is None:
            candidates = self.ring.candidates()
            if not candidates:
                log.debug("udp datagram from %s dropped: no member", client)
                return
            if len(self._sessions) >= self._max_sessions:
                self._evict_oldest()
            session = _UdpSession(client, candidates[0], time.monotonic())
            self._sessions[client] = session
            task = asyncio.create_task(self._open(session))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        session.last_active = time.monotonic()
        if session.transport is None:
            if len(session.pending) < self.MAX_PENDING:
                session.pending.append(data)
        else:
            session.transport.sendto(data)

    def from_member(self, session: _UdpSession, data: bytes) -> None:
        session.last_active = time.monotonic()
        if self._transport is not None and not session.closed:
            self._transport.sendto(data, session.client)

    def forget(self, session: _UdpSession) -> None:
        if self._sessions.get(session.client) is session:
            del self._sessions[session.client]
        session.close()

    async def _open(self, session: _UdpSession) -> None:
        loop = asyncio.get_running_loop()
        member = session.member
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _MemberProtocol(self, session),
                remote_addr=(member.address, member.port),
            )
        except OSError as exc:
            log.info("udp member %s unreachable: %s", member.container_id[:12], exc)
            self.forget(session)
            return
        if session.closed:
            transport.close()
            return
        session.transport = transport
        for data in session.pending:
            transport.sendto(data)
        session.pending.clear()

    def _evict_oldest(self) -> None:
        client = min(self._sessions, key=lambda c: self._sessions[c].last_active)
        self._sessions.pop(client).close()

    async def _sweep(self) -> None:
        period = max(0.05, min(self._idle_timeout, self._retire_grace) / 2)
        while True:
            await asyncio.sleep(period)
            self.expire(time.monotonic())

    def expire(self, now: float) -> None:
        """Close sessions quiet for longer than the idle timeout (retired ones sooner)."""
        for client, session in list(self._sessions.items()):
            if now - session.last_active > self._idle_timeout:
                del self._sessions[client]
                session.close()
        keep: list[_UdpSession] = []
        for session in self._retired:
            if now - session.last_active > self._retire_grace:
                session.close()
            else:
                keep.append(session)
        self._retired = keep


Proxy = TcpProxy | UdpProxy


def make_proxy(route: Route) -> Proxy:
    """The listener kind ``route.protocol`` asks for, not yet started."""
    if route.protocol == "udp":
        return UdpProxy(route)
    return TcpProxy(route)
