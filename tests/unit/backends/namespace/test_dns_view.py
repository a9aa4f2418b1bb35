"""The DNS view a create extends: members survive their JSON form, a create joins only a
view whose containers are exactly the state root's, and a bad file means a rebuild."""

from __future__ import annotations

from pathlib import Path

from orchestrator.backends.namespace import networking as netw


def member(cid: str, status: str = "running") -> netw.Member:
    state = netw.NetState(sandbox=cid, owner=True, hostname=cid[:12], domainname="d",
                          upstream=("1.1.1.1",), links=(("db", "database"),))
    return netw.Member(id=cid, name=f"p-{cid}", project="p", service="web", status=status,
                       state=state, aliases={"p_default": ("web", "w")},
                       addresses={"p_default": "10.89.0.3"})


def test_a_member_round_trips_through_json() -> None:
    m = member("a" * 64)
    assert netw.Member.from_json(m.to_json()) == m


def test_a_create_joins_a_view_of_the_same_containers(tmp_path: Path) -> None:
    path = tmp_path / netw.DNS_VIEW
    netw.DnsView(frozenset({"a", "h"}), (member("a"),)).save(path)
    view = netw.DnsView.load(path)
    assert view is not None
    assert view.plus(member("b"), ["a", "b", "h"]) == (member("a"), member("b"))
    # in id order, as a rebuild reads the containers
    assert view.plus(member("0"), ["0", "a", "h"]) == (member("0"), member("a"))


def test_other_containers_than_the_view_knew_mean_a_rebuild(tmp_path: Path) -> None:
    view = netw.DnsView(frozenset({"a", "c"}), (member("a"), member("c")))
    assert view.plus(member("b"), ["a", "b"]) is None  # c went without a refresh
    assert view.plus(member("b"), ["a", "b", "c", "d"]) is None  # d came without one


def test_a_missing_or_unreadable_view_is_none(tmp_path: Path) -> None:
    path = tmp_path / netw.DNS_VIEW
    assert netw.DnsView.load(path) is None
    path.write_text('{"ids": ["a"], "members": [{"id": "a"}]}')
    assert netw.DnsView.load(path) is None
