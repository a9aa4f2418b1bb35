"""A fake upstream DNS server for the DNS tests, and a port free for both UDP and TCP."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import dns.flags
import dns.message
import dns.rrset

BIG = "big.example."  # over UDP: truncated; over TCP: 60 addresses
SILENT = "silent.example."  # never answered


def free_port(*hosts: str) -> int:
    """A port free on every host for both UDP and TCP (tests run beside others)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((hosts[0], 0))
            port = int(probe.getsockname()[1])
        try:
            for host in hosts:
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    with socket.socket(socket.AF_INET, kind) as check:
                        check.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port")


def _answer(wire: bytes, tcp: bool, seen: list[tuple[str, str]]) -> bytes | None:
    query = dns.message.from_wire(wire)
    name = query.question[0].name.to_text().lower()
    seen.append(("tcp" if tcp else "udp", name))
    if name == SILENT:
        return None
    response = dns.message.make_response(query)
    if name == BIG and not tcp:
        response.flags |= dns.flags.TC
        return response.to_wire()
    addresses = [f"198.51.100.{i}" for i in range(1, 61)] if name == BIG else ["198.51.100.7"]
    response.answer.append(dns.rrset.from_text_list(
        query.question[0].name, 30, "IN", "A", addresses))
    return response.to_wire()


class FakeUpstream:
    """Answers every name with 198.51.100.7 on UDP and TCP, in a thread of its own; records
    (transport, name) of each query in ``seen``."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.seen: list[tuple[str, str]] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._closers: list[Any] = []

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._open())
        self._ready.set()
        self._loop.run_forever()

    async def _open(self) -> None:
        seen = self.seen

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport: Any) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                reply = _answer(data, False, seen)
                if reply is not None:
                    self.transport.sendto(reply, addr)

        async def tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                reply = _answer(await reader.readexactly(length), True, seen)
                if reply is not None:
                    writer.write(struct.pack("!H", len(reply)) + reply)
                    await writer.drain()
            writer.close()

        transport, _ = await self._loop.create_datagram_endpoint(
            Udp, local_addr=(self.host, self.port))
        server = await asyncio.start_server(tcp, self.host, self.port)
        self._closers = [transport, server]

    def __enter__(self) -> FakeUpstream:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        async def close() -> None:
            for closer in self._closers:
                closer.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


@contextlib.contextmanager
def fake_upstream(host: str = "127.0.0.2") -> Iterator[FakeUpstream]:
    with FakeUpstream(host, free_port(host)) as upstream:
        yield upstream
