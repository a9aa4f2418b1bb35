"""The server's transport in-process, on 127.0.0.x only: UDP and TCP, truncation,
forwarding (with TCP retry and timeouts), and listeners added and removed on reload."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import pytest

from orchestrator.runtime.dns import Client, Records, Zone
from orchestrator.runtime.dns.server import DnsServer
from tests.unit.runtime.dns.fakes import BIG, SILENT, fake_upstream, free_port

ZONE = Zone("n1", {"web": ("10.9.0.2",),
                   "many": tuple(f"10.9.1.{i}" for i in range(1, 61))})


def records(*listeners: str, upstream: tuple[str, ...] = ()) -> Records:
    return Records(listeners, (ZONE,), (Client("127.0.0.1", ("n1",), upstream),))


def run(test: Callable[[DnsServer], Awaitable[None]], port: int, *,
        resolvers: tuple[str, ...] = ("127.0.0.1:1",), timeout: float = 2.0) -> None:
    async def main() -> None:
        server = DnsServer(resolvers, port=port, forward_timeout=timeout)
        try:
            await test(server)
        finally:
            await server.close()

    asyncio.run(main())


async def udp(name: str, port: int, host: str = "127.0.0.1", rdtype: str = "A",
              timeout: float = 3.0) -> dns.message.Message:
    return await dns.asyncquery.udp(dns.message.make_query(name, rdtype), host, port=port,
                                    timeout=timeout)


async def tcp(name: str, port: int, host: str = "127.0.0.1") -> dns.message.Message:
    return await dns.asyncquery.tcp(dns.message.make_query(name, "A"), host, port=port,
                                    timeout=3.0)


def addresses(message: dns.message.Message) -> set[str]:
    return {rd.to_text() for rrset in message.answer for rd in rrset}


def test_answers_over_udp_and_tcp() -> None:
    port = free_port("127.0.0.1")

    async def test(server: DnsServer) -> None:
        assert await server.apply(records("127.0.0.1")) == {}
        assert addresses(await udp("web", port)) == {"10.9.0.2"}
        assert addresses(await tcp("WEB.", port)) == {"10.9.0.2"}

    run(test, port)


def test_a_big_answer_is_truncated_over_udp_and_whole_over_tcp() -> None:
    port = free_port("127.0.0.1")

    async def test(server: DnsServer) -> None:
        await server.apply(records("127.0.0.1"))
        over_udp = await udp("many", port)
        assert over_udp.flags & dns.flags.TC
        assert len(addresses(await tcp("many", port))) == 60

    run(test, port)


def test_forwards_to_the_clients_upstream() -> None:
    port = free_port("127.0.0.1")
    with fake_upstream() as upstream:
        async def test(server: DnsServer) -> None:
            await server.apply(records("127.0.0.1",
                                       upstream=(f"{upstream.host}:{upstream.port}",)))
            assert addresses(await udp("example.org", port)) == {"198.51.100.7"}
            assert addresses(await tcp("example.net", port)) == {"198.51.100.7"}

        run(test, port)
    assert upstream.seen == [("udp", "example.org."), ("udp", "example.net.")]


def test_a_tcp_asker_gets_the_whole_answer_after_a_truncated_udp_one() -> None:
    port = free_port("127.0.0.1")
    with fake_upstream() as upstream:
        async def test(server: DnsServer) -> None:
            await server.apply(records("127.0.0.1",
                                       upstream=(f"{upstream.host}:{upstream.port}",)))
            assert len(addresses(await tcp(BIG, port))) == 60
            # a UDP asker gets the truncated answer relayed, to retry over TCP itself
            assert (await udp(BIG, port)).flags & dns.flags.TC

        run(test, port)
    assert upstream.seen == [("udp", BIG), ("tcp", BIG), ("udp", BIG)]


def test_a_silent_upstream_times_out_and_the_next_one_answers() -> None:
    port = free_port("127.0.0.1")
    with fake_upstream("127.0.0.2") as first, fake_upstream("127.0.0.3") as second:
        async def test(server: DnsServer) -> None:
            await server.apply(records("127.0.0.1"))
            assert addresses(await udp(SILENT, port)) == set()  # nobody answers: SERVFAIL
            response = await udp(SILENT, port)
            assert response.rcode() == dns.rcode.SERVFAIL
            assert addresses(await udp("example.org", port)) == {"198.51.100.7"}

        run(test, port, resolvers=(f"127.0.0.2:{first.port}", f"127.0.0.3:{second.port}"),
            timeout=0.3)
    assert ("udp", SILENT) in first.seen and ("udp", SILENT) in second.seen
    assert first.seen[-1] == ("udp", "example.org.")
    assert ("udp", "example.org.") not in second.seen


def test_no_upstream_left_is_servfail() -> None:
    port = free_port("127.0.0.1")

    async def test(server: DnsServer) -> None:
        await server.apply(records("127.0.0.1"))
        # the host resolver is 127.0.0.1:1, where nothing listens
        assert (await udp("example.org", port)).rcode() == dns.rcode.SERVFAIL

    run(test, port)


def test_garbage_gets_formerr_and_responses_get_nothing() -> None:
    port = free_port("127.0.0.1")

    async def test(server: DnsServer) -> None:
        await server.apply(records("127.0.0.1"))
        assert await server.handle(b"\x12\x34\x01\x00" + b"\x00\x01" + b"\xff" * 10, "x",
                                   tcp=False) == b"\x12\x34\x81\x01" + b"\0" * 8
        assert await server.handle(b"\x12\x34", "x", tcp=False) is None
        response = dns.message.make_response(dns.message.make_query("web", "A"))
        assert await server.handle(response.to_wire(), "127.0.0.1", tcp=False) is None

    run(test, port)


def test_reload_adds_and_removes_listeners_without_dropping_the_others() -> None:
    port = free_port("127.0.0.1", "127.0.0.2")

    async def test(server: DnsServer) -> None:
        await server.apply(records("127.0.0.1"))
        connection = socket.create_connection(("127.0.0.1", port))  # kept across the reload
        await server.apply(records("127.0.0.1", "127.0.0.2"))
        assert server.addresses == ("127.0.0.1", "127.0.0.2")
        assert addresses(await udp("web", port, "127.0.0.2")) == {"10.9.0.2"}
        query = dns.message.make_query("web", "A").to_wire()
        connection.sendall(len(query).to_bytes(2, "big") + query)
        connection.settimeout(3)
        assert await asyncio.to_thread(connection.recv, 2)  # the old listener still answers
        connection.close()
        await server.apply(records("127.0.0.2"))
        assert list(server.addresses) == ["127.0.0.2"]
        assert addresses(await udp("web", port, "127.0.0.2")) == {"10.9.0.2"}
        with pytest.raises((dns.exception.Timeout, ConnectionError, OSError)):
            await udp("web", port, "127.0.0.1", timeout=0.3)

    run(test, port)


def test_a_taken_port_is_a_conflict_and_the_other_listeners_serve() -> None:
    port = free_port("127.0.0.1", "127.0.0.3")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.3", port))

        async def test(server: DnsServer) -> None:
            errors = await server.apply(records("127.0.0.1", "127.0.0.3"))
            assert list(errors) == ["127.0.0.3"]
            assert errors["127.0.0.3"].kind == "conflict"
            assert addresses(await udp("web", port)) == {"10.9.0.2"}

        run(test, port)


def test_a_listener_address_not_yet_on_the_host_binds_anyway() -> None:
    """A bridge's gateway may appear after the records naming it (IP_FREEBIND)."""
    port = free_port("127.0.0.1")

    async def test(server: DnsServer) -> None:
        assert await server.apply(records("192.0.2.250")) == {}
        assert server.addresses == ("192.0.2.250",)

    run(test, port)
