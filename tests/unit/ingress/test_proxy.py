"""The balancer against in-process echo servers on 127.0.0.1 standing in for replicas."""

from __future__ import annotations

import asyncio
import errno
import socket
import time

import pytest

from orchestrator.errors import ConfigError, Conflict, PycomposeError
from orchestrator.ingress.pool import Member
from orchestrator.ingress.proxy import (
    MemberRing,
    TcpProxy,
    UdpProxy,
    bind_error,
    check_bindable,
    make_proxy,
)
from orchestrator.ingress.routes import Route
from tests.unit.ingress.echo import (
    TcpEcho,
    UdpClient,
    UdpEcho,
    closed_port,
    run,
    servers,
    tcp_hello,
    tcp_name,
)

TCP_ROUTE = Route(service="web", published=0, target=80, host_ip="127.0.0.1")
UDP_ROUTE = Route(service="dns", published=0, target=53, protocol="udp", host_ip="127.0.0.1")


def member(name: str, port: int) -> Member:
    return Member(container_id=name, address="127.0.0.1", port=port)


@pytest.mark.parametrize(
    ("members", "picks", "expected"),
    [
        pytest.param([], 2, [[], []], id="empty"),
        pytest.param(["a"], 2, [["a"], ["a"]], id="one"),
        pytest.param(
            ["a", "b", "c"], 4,
            [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]],
            id="rotates-with-fallbacks",
        ),
    ],
)
def test_ring_candidates_rotate(members: list[str], picks: int, expected: list[list[str]]) -> None:
    async def body() -> list[list[str]]:
        ring = MemberRing()
        ring.replace([member(m, 1) for m in members])
        return [[c.container_id for c in ring.candidates()] for _ in range(picks)]

    assert run(body) == expected


def test_tcp_round_robin_over_two_members() -> None:
    async def body() -> list[str]:
        async with servers(TcpEcho("a").start(), TcpEcho("b").start()) as (a, b):
            proxy = TcpProxy(TCP_ROUTE)
            await proxy.start()
            try:
                proxy.set_members([member("a", a.port), member("b", b.port)])
                port = proxy.address[1]
                return [await tcp_name(port) for _ in range(4)]
            finally:
                await proxy.close(abort_connections=True)

    assert run(body) == ["a", "b", "a", "b"]


def test_tcp_dead_member_is_skipped_without_failing_the_client() -> None:
    async def body() -> list[str]:
        async with servers(TcpEcho("alive").start()) as (alive,):
            proxy = TcpProxy(TCP_ROUTE, connect_timeout=1.0)
            await proxy.start()
            try:
                proxy.set_members([member("dead", closed_port()), member("alive", alive.port)])
                port = proxy.address[1]
                return [await tcp_name(port) for _ in range(3)]
            finally:
                await proxy.close(abort_connections=True)

    assert run(body) == ["alive", "alive", "alive"]


def test_tcp_no_member_answering_closes_the_client() -> None:
    async def body() -> bytes:
        proxy = TcpProxy(TCP_ROUTE, connect_timeout=0.5, empty_wait=0.1)
        await proxy.start()
        try:
            proxy.set_members([member("dead", closed_port())])
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.address[1])
            data = await asyncio.wait_for(reader.read(), 5.0)
            writer.close()
            return data
        finally:
            await proxy.close(abort_connections=True)

    assert run(body) == b""


def test_tcp_drain_keeps_open_connections_and_sends_new_ones_elsewhere() -> None:
    async def body() -> tuple[str, bytes, list[str]]:
        async with servers(TcpEcho("a").start(), TcpEcho("b").start()) as (a, b):
            proxy = TcpProxy(TCP_ROUTE)
            await proxy.start()
            try:
                proxy.set_members([member("a", a.port), member("b", b.port)])
                port = proxy.address[1]
                first, reader, writer = await tcp_hello(port)
                # drain the member the open connection is on
                proxy.set_members([m for m in proxy.ring.members if m.container_id != first])
                newer = [await tcp_name(port) for _ in range(3)]
                writer.write(b"still here")
                writer.write_eof()
                rest = await asyncio.wait_for(reader.read(), 5.0)
                writer.close()
                return first, rest, newer
            finally:
                await proxy.close(abort_connections=True)

    first, rest, newer = run(body)
    other = "b" if first == "a" else "a"
    assert rest == b"still herebye"
    assert newer == [other, other, other]


def test_tcp_half_close_still_delivers_the_reply() -> None:
    async def body() -> bytes:
        async with servers(TcpEcho("a").start()) as (a,):
            proxy = TcpProxy(TCP_ROUTE)
            await proxy.start()
            try:
                proxy.set_members([member("a", a.port)])
                _, reader, writer = await tcp_hello(proxy.address[1])
                writer.write(b"request")
                writer.write_eof()  # the client is done sending, not done reading
                reply = await asyncio.wait_for(reader.read(), 5.0)
                writer.close()
                return reply
            finally:
                await proxy.close(abort_connections=True)

    assert run(body) == b"requestbye"


def test_tcp_large_transfer_arrives_intact() -> None:
    payload = bytes(range(256)) * 8192  # 2 MiB: far beyond the bounded buffers

    async def body() -> bytes:
        async with servers(TcpEcho("a").start()) as (a,):
            proxy = TcpProxy(TCP_ROUTE)
            await proxy.start()
            try:
                proxy.set_members([member("a", a.port)])
                _, reader, writer = await tcp_hello(proxy.address[1])

                async def send() -> None:
                    writer.write(payload)
                    await writer.drain()
                    writer.write_eof()

                sender = asyncio.create_task(send())
                received = await asyncio.wait_for(reader.read(), 10.0)
                await sender
                writer.close()
                return received
            finally:
                await proxy.close(abort_connections=True)

    assert run(body) == payload + b"bye"


def test_tcp_client_arriving_while_pool_is_empty_waits_for_a_member() -> None:
    async def body() -> str:
        async with servers(TcpEcho("late").start()) as (late,):
            proxy = TcpProxy(TCP_ROUTE, empty_wait=3.0)
            await proxy.start()
            try:
                pending = asyncio.create_task(tcp_name(proxy.address[1]))
                await asyncio.sleep(0.2)
                assert not pending.done()
                proxy.set_members([member("late", late.port)])
                return await pending
            finally:
                await proxy.close(abort_connections=True)

    assert run(body) == "late"


def test_tcp_close_stops_listening_but_open_connections_continue() -> None:
    async def body() -> tuple[bytes, bool]:
        async with servers(TcpEcho("a").start()) as (a,):
            proxy = TcpProxy(TCP_ROUTE)
            await proxy.start()
            proxy.set_members([member("a", a.port)])
            port = proxy.address[1]
            _, reader, writer = await tcp_hello(port)
            await proxy.close()
            writer.write(b"x")
            writer.write_eof()
            reply = await asyncio.wait_for(reader.read(), 5.0)
            writer.close()
            try:
                await asyncio.open_connection("127.0.0.1", port)
                refused = False
            except OSError:
                refused = True
            return reply, refused

    assert run(body) == (b"xbye", True)


def test_udp_round_trip_sticky_per_client_and_balanced() -> None:
    async def body() -> tuple[list[bytes], list[bytes]]:
        async with servers(UdpEcho("a").start(), UdpEcho("b").start()) as (a, b):
            proxy = UdpProxy(UDP_ROUTE)
            await proxy.start()
            first, second = UdpClient(), UdpClient()
            try:
                proxy.set_members([member("a", a.port), member("b", b.port)])
                port = proxy.address[1]
                await first.open(port)
                await second.open(port)
                one = [await first.ask(b"1"), await first.ask(b"2")]
                two = [await second.ask(b"3"), await second.ask(b"4")]
                return one, two
            finally:
                first.close()
                second.close()
                await proxy.close()

    assert run(body) == ([b"a:1", b"a:2"], [b"b:3", b"b:4"])


def test_udp_drain_moves_the_client_to_a_current_member() -> None:
    async def body() -> list[bytes]:
        async with servers(UdpEcho("a").start(), UdpEcho("b").start()) as (a, b):
            proxy = UdpProxy(UDP_ROUTE)
            await proxy.start()
            client = UdpClient()
            try:
                proxy.set_members([member("a", a.port), member("b", b.port)])
                await client.open(proxy.address[1])
                before = await client.ask(b"x")
                proxy.set_members([member("b", b.port)])
                after = await client.ask(b"y")
                return [before, after]
            finally:
                client.close()
                await proxy.close()

    assert run(body) == [b"a:x", b"b:y"]


def test_udp_idle_sessions_expire() -> None:
    async def body() -> tuple[int, int]:
        async with servers(UdpEcho("a").start()) as (a,):
            proxy = UdpProxy(UDP_ROUTE, idle_timeout=30.0)
            await proxy.start()
            client = UdpClient()
            try:
                proxy.set_members([member("a", a.port)])
                await client.open(proxy.address[1])
                await client.ask(b"x")
                before = proxy.session_count
                proxy.expire(time.monotonic() + 3600)
                return before, proxy.session_count
            finally:
                client.close()
                await proxy.close()

    assert run(body) == (1, 0)


def test_udp_without_members_drops_the_datagram() -> None:
    async def body() -> bool:
        proxy = UdpProxy(UDP_ROUTE)
        await proxy.start()
        client = UdpClient()
        try:
            await client.open(proxy.address[1])
            try:
                await client.ask(b"x", timeout=0.3)
            except TimeoutError:
                return proxy.session_count == 0
            return False
        finally:
            client.close()
            await proxy.close()

    assert run(body) is True


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
def test_binding_a_port_in_use_is_a_conflict(protocol: str) -> None:
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as holder:
        holder.bind(("127.0.0.1", 0))
        if protocol == "tcp":
            holder.listen()
        port = holder.getsockname()[1]
        route = Route("web", port, 80, protocol, "127.0.0.1")  # type: ignore[arg-type]

        async def body() -> None:
            proxy = make_proxy(route)
            try:
                await proxy.start()
            finally:
                await proxy.close()

        expected = rf"^port {port}/{protocol} on 127.0.0.1 is already in use$"
        with pytest.raises(Conflict, match=expected):
            run(body)
        with pytest.raises(Conflict, match="already in use"):
            check_bindable(route)


def test_check_bindable_accepts_a_free_port() -> None:
    port = closed_port()
    check_bindable(Route("web", port, 80, "tcp", "127.0.0.1"))  # must not raise


@pytest.mark.parametrize(
    ("code", "kind", "words"),
    [
        pytest.param(errno.EADDRINUSE, Conflict, "port 5000/tcp on 0.0.0.0 is already in use",
                     id="in-use"),
        pytest.param(errno.EADDRNOTAVAIL, ConfigError, "is not an address of this host",
                     id="not-an-address"),
        pytest.param(errno.EACCES, ConfigError, "needs more privileges", id="privileged"),
        pytest.param(errno.EINVAL, ConfigError, "cannot publish port 5000/tcp", id="other"),
    ],
)
def test_bind_error_mapping(code: int, kind: type[PycomposeError], words: str) -> None:
    error = bind_error(Route("web", 5000, 80), OSError(code, "x"))
    assert isinstance(error, kind)
    assert words in str(error)
    if isinstance(error, ConfigError):
        assert error.problems[0].path == "services.web.ports"
