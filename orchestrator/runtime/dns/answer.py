"""The decision for one DNS query: answer it from our zones, or forward it, and where.

Pure apart from the round-robin counters: no sockets, no clock, so every rule of service
discovery is testable as a table. The server (``server.py``) owns the transport.

Rules, as docker's embedded DNS behaves for containers:

- the asker is identified by its source address; an address we do not know gets
  forwarding only (it sees none of our names);
- a name in a zone of one of the asker's networks answers A with every address (from all
  its networks, without duplicates), rotated one step per query so each address comes first
  in turn; TTL 0 since replicas come and go; AAAA and other types answer an empty NOERROR
  (the name exists, it has no such record), so resolvers do not fall through to the
  internet;
- PTR for an address of a visible zone names its owners;
- everything else goes to the asker's upstream servers, or the host's resolvers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset

from orchestrator.runtime.dns.records import Client, Records, normalize_name, parse_server

TTL = 0


@dataclass(frozen=True)
class Reply:
    """Send this message back to the asker."""

    message: dns.message.Message


@dataclass(frozen=True)
class Forward:
    """Ask these servers (in order, the first that answers wins); none left: SERVFAIL."""

    servers: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Drop:
    """Send nothing: the message is itself a response (answering it could loop)."""


Outcome = Reply | Forward | Drop


class Answerer:
    """Answers queries from one set of records; ``update`` swaps them, keeping rotation."""

    def __init__(
        self,
        records: Records,
        resolvers: Sequence[str] = ("127.0.0.1",),
        *,
        own: Sequence[tuple[str, int]] = (),
    ) -> None:
        """``resolvers`` are the host's (``addr`` or ``addr:port``); ``own`` are the
        sockets this server listens on, never forwarded to (a query would loop)."""
        self._resolvers = _servers(resolvers)
        self._own = frozenset(own)
        self._rotation: dict[str, int] = {}
        self._names: dict[str, dict[str, tuple[str, ...]]] = {}
        self._owners: dict[str, dict[str, tuple[str, ...]]] = {}
        self._clients: dict[str, Client] = {}
        self.update(records)

    def update(self, records: Records, *, own: Sequence[tuple[str, int]] | None = None) -> None:
        if own is not None:
            self._own = frozenset(own)
        names: dict[str, dict[str, tuple[str, ...]]] = {}
        owners: dict[str, dict[str, tuple[str, ...]]] = {}
        for zone in records.zones:
            table = names.setdefault(zone.network, {})
            reverse: dict[str, list[str]] = {}
            for name, addresses in zone.records.items():
                key = normalize_name(name)
                table[key] = _unique(table.get(key, ()) + tuple(addresses))
                for address in addresses:
                    reverse.setdefault(address, []).append(key)
            owners[zone.network] = {a: tuple(sorted(set(n))) for a, n in reverse.items()}
        self._names, self._owners = names, owners
        self._clients = {client.address: client for client in records.clients}
        # forget counters of names gone, so the table cannot grow without bound
        known = {name for table in names.values() for name in table}
        self._rotation = {n: c for n, c in self._rotation.items() if n in known}

    # ------------------------------------------------------------ the decision

    def answer(self, query: dns.message.Message, client: str) -> Outcome:
        if query.flags & dns.flags.QR:
            return Drop()
        if query.opcode() != dns.opcode.QUERY:
            return Reply(_error(query, dns.rcode.NOTIMP))
        if len(query.question) != 1:
            return Reply(_error(query, dns.rcode.FORMERR))
        asker = self._clients.get(client)
        question = query.question[0]
        if asker is not None and question.rdclass == dns.rdataclass.IN:
            name = normalize_name(question.name.to_text(omit_final_dot=True))
            addresses = self._lookup(asker, name)
            if addresses is not None:
                return Reply(self._addresses(query, name, addresses))
            if question.rdtype == dns.rdatatype.PTR:
                owners = self._reverse(asker, question.name)
                if owners:
                    return Reply(_ptr(query, owners))
        return self._forward(asker)

    def _lookup(self, asker: Client, name: str) -> tuple[str, ...] | None:
        found: tuple[str, ...] = ()
        known = False
        for network in asker.networks:
            addresses = self._names.get(network, {}).get(name)
            if addresses is not None:
                known = True
                found += addresses
        return _unique(found) if known else None

    def _reverse(self, asker: Client, qname: dns.name.Name) -> tuple[str, ...]:
        try:
            address = dns.reversename.to_address(qname)
        except (dns.exception.SyntaxError, ValueError):
            return ()
        names: list[str] = []
        for network in asker.networks:
            names.extend(self._owners.get(network, {}).get(address, ()))
        return _unique(tuple(names))

    def _addresses(
        self, query: dns.message.Message, name: str, addresses: tuple[str, ...]
    ) -> dns.message.Message:
        response = _response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        if question.rdtype in (dns.rdatatype.A, dns.rdatatype.ANY) and addresses:
            turn = self._rotation.get(name, 0)
            self._rotation[name] = (turn + 1) % len(addresses)
            start = turn % len(addresses)
            rotated = addresses[start:] + addresses[:start]
            response.answer.append(dns.rrset.from_text_list(
                question.name, TTL, dns.rdataclass.IN, dns.rdatatype.A, list(rotated)
            ))
        return response

    def _forward(self, asker: Client | None) -> Outcome:
        servers = _servers(asker.upstream) if asker is not None and asker.upstream else ()
        chosen = servers or self._resolvers
        return Forward(tuple(s for s in chosen if s not in self._own))


# ---------------------------------------------------------------- helpers


def _servers(texts: Sequence[str]) -> tuple[tuple[str, int], ...]:
    servers: list[tuple[str, int]] = []
    for text in texts:
        try:
            servers.append(parse_server(text))
        except ValueError:
            continue  # checked before; a resolv.conf line we cannot use is skipped
    return tuple(servers)


def _unique(items: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _response(query: dns.message.Message) -> dns.message.Message:
    return dns.message.make_response(query, recursion_available=True)


def _error(query: dns.message.Message, rcode: int) -> dns.message.Message:
    response = _response(query)
    response.set_rcode(dns.rcode.Rcode.make(rcode))
    return response


def _ptr(query: dns.message.Message, owners: tuple[str, ...]) -> dns.message.Message:
    response = _response(query)
    response.flags |= dns.flags.AA
    question = query.question[0]
    targets = [dns.name.from_text(owner).to_text() for owner in owners]
    response.answer.append(dns.rrset.from_text_list(
        question.name, TTL, dns.rdataclass.IN, dns.rdatatype.PTR, targets
    ))
    return response


def servfail(query: dns.message.Message) -> dns.message.Message:
    """The answer when every upstream server failed or none is left."""
    return _error(query, dns.rcode.SERVFAIL)
