"""Records cross a process boundary as JSON: the round-trip is exact and bad records are
refused with the path of what is wrong."""

from __future__ import annotations

import json

import pytest

from orchestrator.runtime.dns import Client, Records, Zone
from orchestrator.runtime.dns.daemon import parse_resolv_conf
from orchestrator.runtime.dns.records import normalize_name, parse_server, problems
from orchestrator.runtime.dns.state import records_from_file, records_to_file

RECORDS = Records(
    listeners=("10.1.0.1", "10.2.0.1"),
    zones=(Zone("front", {"Web": ("10.1.0.2",), "redis": ("10.1.0.5", "10.1.0.6")}),
           Zone("back", {})),
    clients=(Client("10.1.0.2", ("front",)),
             Client("10.2.0.3", ("back", "front"), upstream=("9.9.9.9", "[fd00::1]:5353"))),
)


def test_json_round_trip_is_exact() -> None:
    text = json.dumps(RECORDS.to_json())
    assert Records.from_json(json.loads(text)) == RECORDS


def test_records_file_carries_the_generation() -> None:
    assert records_from_file(json.loads(json.dumps(records_to_file(7, RECORDS)))) == (
        7, RECORDS)
    with pytest.raises(ValueError, match="generation"):
        records_from_file({"generation": True, "records": RECORDS.to_json()})


@pytest.mark.parametrize(("data", "message"), [
    ([], "JSON object"),
    ({"listeners": "10.0.0.1"}, "listeners: expected a list"),
    ({"listeners": [], "zones": [{"records": {}}]}, "zones\\[0\\]"),
    ({"listeners": [], "zones": [{"network": "n", "records": {"a": "10.0.0.1"}}]},
     "zones\\[0\\].records.a"),
    ({"listeners": [], "clients": [{"address": "10.0.0.2", "networks": [1]}]},
     "clients\\[0\\].networks"),
    ({"listeners": ["nope"]}, "not an IP address"),
])
def test_from_json_says_what_is_wrong(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Records.from_json(data)


@pytest.mark.parametrize(("records", "path"), [
    (Records(("10.0.0.1", "10.0.0.1")), "listeners"),
    (Records(("10.0.0.1",), (Zone("n", {"a": ("10.0.0.300",)}),)), "zones[0].records.a[0]"),
    (Records(("10.0.0.1",), (Zone("n", {"a": ("fd00::1",)}),)), "zones[0].records.a[0]"),
    (Records(("10.0.0.1",), (Zone("n", {"a..b": ("10.0.0.2",)}),)), "zones[0].records.a..b"),
    (Records(("10.0.0.1",), (Zone("n", {"a b": ("10.0.0.2",)}),)), "zones[0].records.a b"),
    (Records(("10.0.0.1",), (Zone("n", {"x" * 64: ("10.0.0.2",)}),)),
     f"zones[0].records.{'x' * 64}"),
    (Records(("10.0.0.1",), (Zone("n", {"A": (), "a.": ()}),)), "zones[0].records.a."),
    (Records(("10.0.0.1",), (Zone("n"), Zone("n"))), "zones[1].network"),
    (Records(("10.0.0.1",), (), (Client("10.0.0.2", ()), Client("10.0.0.2", ()))),
     "clients[1].address"),
    (Records(("10.0.0.1",), (), (Client("host", ()),)), "clients[0].address"),
    (Records(("10.0.0.1",), (), (Client("10.0.0.2", (), ("dns.google",)),)),
     "clients[0].upstream[0]"),
    (Records(("10.0.0.1",), (), (Client("10.0.0.2", (), ("1.1.1.1:99999",)),)),
     "clients[0].upstream[0]"),
])
def test_problems_name_the_path(records: Records, path: str) -> None:
    assert [p.path for p in problems(records)] == [path]


def test_valid_records_have_no_problems() -> None:
    assert problems(RECORDS) == []


@pytest.mark.parametrize(("text", "expected"), [
    ("10.0.0.1", ("10.0.0.1", 53)),
    ("10.0.0.1:5353", ("10.0.0.1", 5353)),
    ("fd00::1", ("fd00::1", 53)),
    ("[fd00::1]:5353", ("fd00::1", 5353)),
])
def test_parse_server(text: str, expected: tuple[str, int]) -> None:
    assert parse_server(text) == expected


def test_names_compare_without_case_or_root_dot() -> None:
    assert normalize_name("Web.Example.") == normalize_name("web.example") == "web.example"


@pytest.mark.parametrize(("text", "expected"), [
    ("nameserver 10.0.0.53\nnameserver 10.0.0.54\n", ("10.0.0.53", "10.0.0.54")),
    ("# comment\nsearch example.org\noptions ndots:2\n", ("127.0.0.1",)),
    ("", ("127.0.0.1",)),
    ("nameserver fe80::1%eth0\nnameserver ::1\n", ("fe80::1%eth0", "::1")),
    ("nameserver resolver.example\n", ("127.0.0.1",)),
    ("nameserver\nnameserver 192.0.2.1 extra\n", ("192.0.2.1",)),
])
def test_resolv_conf(text: str, expected: tuple[str, ...]) -> None:
    assert parse_resolv_conf(text) == expected
