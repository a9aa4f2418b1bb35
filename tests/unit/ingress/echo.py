"""In-process stand-ins for replicas: TCP and UDP echo servers on 127.0.0.1 that say who
they are, so a test can tell which member a connection reached."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar, cast

T = TypeVar("T")


def run(test: Callable[[], Awaitable[T]], timeout: float = 15.0) -> T:
    """Run an async test body with a hard timeout, so a hang fails instead of stalling."""

    async def bounded() -> T:
        return await asyncio.wait_for(test(), timeout)

    return asyncio.run(bounded())


def closed_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (connecting is refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TcpEcho:
    """Sends ``<name>\\n`` on connect, echoes what it reads, sends ``bye`` after the
    client's EOF and only then closes: a proxy that mishandles half-close loses ``bye``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.connections = 0
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> TcpEcho:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            writer.write(self.name.encode() + b"\n")
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            writer.write(b"bye")
            await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class _UdpEchoProtocol(asyncio.DatagramProtocol):
    def __init__(self, name: str) -> None:
        self.name = name
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        assert self.transport is not None
        self.transport.sendto(self.name.encode() + b":" + data, addr)


class UdpEcho:
    """Answers each datagram with ``<name>:<datagram>``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._transport: asyncio.DatagramTransport | None = None

    @property
    def port(self) -> int:
        assert self._transport is not None
        return int(self._transport.get_extra_info("sockname")[1])

    async def start(self) -> UdpEcho:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpEchoProtocol(self.name), local_addr=("127.0.0.1", 0)
        )
        return self

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class _UdpClientProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.received.put_nowait(data)


class UdpClient:
    """One client address talking to the proxy."""

    def __init__(self) -> None:
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol: _UdpClientProtocol | None = None

    async def open(self, port: int) -> UdpClient:
        loop = asyncio.get_running_loop()
        self._transport, self._protocol = await loop.create_datagram_endpoint(
            _UdpClientProtocol, remote_addr=("127.0.0.1", port)
        )
        return self

    async def ask(self, data: bytes, timeout: float = 3.0) -> bytes:
        assert self._transport is not None and self._protocol is not None
        self._transport.sendto(data)
        return await asyncio.wait_for(self._protocol.received.get(), timeout)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def tcp_hello(port: int) -> tuple[str, asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to the proxy; the name of the member that answered, and the open streams."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    line = await asyncio.wait_for(reader.readline(), 5.0)
    return line.decode().strip(), reader, writer


async def tcp_name(port: int) -> str:
    """Which member one new connection reaches (the connection is closed again)."""
    name, _, writer = await tcp_hello(port)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return name


@contextlib.asynccontextmanager
async def servers(*started: Awaitable[Any]) -> AsyncIterator[list[Any]]:
    """Start echo servers, close them all afterwards whatever happens."""
    running: list[Any] = []
    try:
        for item in started:
            running.append(await item)
        yield running
    finally:
        for server in running:
            await server.close()
