"""The answer logic as a table: who sees which names, in which order, and what is forwarded."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.reversename
import pytest

from orchestrator.runtime.dns import Client, Records, Zone
from orchestrator.runtime.dns.answer import Answerer, Drop, Forward, Outcome, Reply

FRONT = Zone("front", {"Web": ("10.1.0.2",), "redis": ("10.1.0.5", "10.1.0.6"),
                       "shared": ("10.1.0.9",), "db.local": ("10.1.0.7",)})
BACK = Zone("back", {"db": ("10.2.0.2",), "shared": ("10.2.0.9", "10.1.0.9")})
RECORDS = Records(
    listeners=("10.1.0.1", "10.2.0.1"),
    zones=(FRONT, BACK),
    clients=(
        Client("10.1.0.2", ("front",)),
        Client("10.2.0.3", ("back",)),
        Client("10.1.0.3", ("front", "back")),
        Client("10.1.0.4", ("front",), upstream=("9.9.9.9", "192.0.2.53:5353")),
        Client("10.1.0.8", ("front",), upstream=("10.1.0.1",)),
    ),
)
HOST = ("192.0.2.1", "192.0.2.2:5353")


def ask(answerer: Answerer, name: str, rdtype: str = "A", client: str = "10.1.0.2",
        ) -> Outcome:
    return answerer.answer(dns.message.make_query(name, rdtype), client)


def addresses(outcome: Outcome) -> list[str]:
    assert isinstance(outcome, Reply), outcome
    assert outcome.message.rcode() == dns.rcode.NOERROR
    return [rd.to_text() for rrset in outcome.message.answer for rd in rrset]


@dataclass(frozen=True)
class Case:
    what: str
    client: str
    name: str
    rdtype: str
    expect: list[str] | tuple[tuple[str, int], ...]  # addresses (Reply) or servers (Forward)


CASES = [
    Case("own zone", "10.1.0.2", "web", "A", ["10.1.0.2"]),
    Case("case-insensitive", "10.1.0.2", "WEB", "A", ["10.1.0.2"]),
    Case("trailing dot", "10.1.0.2", "web.", "A", ["10.1.0.2"]),
    Case("name with dots", "10.1.0.2", "DB.Local.", "A", ["10.1.0.7"]),
    Case("other network's zone not visible", "10.1.0.2", "db", "A",
         (("192.0.2.1", 53), ("192.0.2.2", 5353))),
    Case("own zone from the other side", "10.2.0.3", "db", "A", ["10.2.0.2"]),
    Case("front names invisible from back", "10.2.0.3", "web", "A",
         (("192.0.2.1", 53), ("192.0.2.2", 5353))),
    Case("two networks merge, no duplicates", "10.1.0.3", "shared", "A",
         ["10.1.0.9", "10.2.0.9"]),
    Case("AAAA of our name is empty", "10.1.0.2", "web", "AAAA", []),
    Case("MX of our name is empty", "10.1.0.2", "web", "MX", []),
    Case("unknown name forwards to the host", "10.1.0.2", "deb.debian.org", "A",
         (("192.0.2.1", 53), ("192.0.2.2", 5353))),
    Case("unknown client only forwards", "10.1.0.99", "web", "A",
         (("192.0.2.1", 53), ("192.0.2.2", 5353))),
    Case("per-client upstream", "10.1.0.4", "example.org", "A",
         (("9.9.9.9", 53), ("192.0.2.53", 5353))),
    Case("per-client upstream does not hide our names", "10.1.0.4", "web", "A",
         ["10.1.0.2"]),
    Case("never forwards to our own listener", "10.1.0.8", "example.org", "A", ()),
    Case("PTR of our address", "10.1.0.3", "2.0.2.10.in-addr.arpa", "PTR", ["db."]),
    Case("PTR of an address with two names", "10.1.0.3", "9.0.1.10.in-addr.arpa", "PTR",
         ["shared."]),
    Case("PTR of an address outside visible zones forwards", "10.1.0.2",
         "2.0.2.10.in-addr.arpa", "PTR", (("192.0.2.1", 53), ("192.0.2.2", 5353))),
]


@pytest.mark.parametrize("case", CASES, ids=[c.what for c in CASES])
def test_answer_table(case: Case) -> None:
    answerer = Answerer(RECORDS, HOST, own=[("10.1.0.1", 53), ("10.2.0.1", 53)])
    outcome = ask(answerer, case.name, case.rdtype, case.client)
    if isinstance(case.expect, list):
        assert isinstance(outcome, Reply), outcome
        assert sorted(addresses(outcome)) == sorted(case.expect)
        assert outcome.message.flags & dns.flags.AA
    else:
        assert outcome == Forward(case.expect)


def test_round_robin_puts_every_address_first_once_in_n_queries() -> None:
    zone = Zone("front", {"redis": ("10.1.0.5", "10.1.0.6", "10.1.0.7")})
    answerer = Answerer(Records(("10.1.0.1",), (zone,), (Client("10.1.0.2", ("front",)),)))
    answers = [addresses(ask(answerer, "redis")) for _ in range(3)]
    assert sorted(a[0] for a in answers) == ["10.1.0.5", "10.1.0.6", "10.1.0.7"]
    assert all(sorted(a) == ["10.1.0.5", "10.1.0.6", "10.1.0.7"] for a in answers)
    # the order is a rotation, not a shuffle: the same cycle again
    assert [addresses(ask(answerer, "REDIS.")) for _ in range(3)] == answers


def test_rotation_is_kept_across_updates_of_the_same_name() -> None:
    zone = Zone("front", {"redis": ("10.1.0.5", "10.1.0.6")})
    records = Records(("10.1.0.1",), (zone,), (Client("10.1.0.2", ("front",)),))
    answerer = Answerer(records)
    first = addresses(ask(answerer, "redis"))[0]
    answerer.update(records)
    assert addresses(ask(answerer, "redis"))[0] != first


def test_answers_have_ttl_zero_and_offer_recursion() -> None:
    outcome = ask(Answerer(RECORDS, HOST), "redis")
    assert isinstance(outcome, Reply)
    assert [rrset.ttl for rrset in outcome.message.answer] == [0]
    assert outcome.message.flags & dns.flags.RA
    assert outcome.message.answer[0].rdtype == dns.rdatatype.A


def test_update_replaces_names() -> None:
    answerer = Answerer(RECORDS, HOST)
    answerer.update(Records(("10.1.0.1",), (Zone("front", {"api": ("10.1.0.20",)}),),
                            (Client("10.1.0.2", ("front",)),)))
    assert addresses(ask(answerer, "api")) == ["10.1.0.20"]
    assert isinstance(ask(answerer, "web"), Forward)


def test_default_host_resolver_is_localhost() -> None:
    assert ask(Answerer(RECORDS), "example.org") == Forward((("127.0.0.1", 53),))


def _notify(query: dns.message.Message) -> None:
    query.set_opcode(dns.opcode.NOTIFY)


def _two_questions(query: dns.message.Message) -> None:
    query.question.append(query.question[0])


@pytest.mark.parametrize(("mutate", "rcode"), [
    (_notify, dns.rcode.NOTIMP),
    (_two_questions, dns.rcode.FORMERR),
])
def test_malformed_queries_get_errors(
    mutate: Callable[[dns.message.Message], None], rcode: int
) -> None:
    query = dns.message.make_query("web", "A")
    mutate(query)
    outcome = Answerer(RECORDS, HOST).answer(query, "10.1.0.2")
    assert isinstance(outcome, Reply)
    assert outcome.message.rcode() == rcode


def test_a_response_is_never_answered() -> None:
    """Answering responses would let two servers bounce a packet between them forever."""
    message = dns.message.make_response(dns.message.make_query("web", "A"))
    assert Answerer(RECORDS, HOST).answer(message, "10.1.0.2") == Drop()
