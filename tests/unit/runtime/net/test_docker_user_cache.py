"""The DOCKER-USER check runs (a process) only when the ruleset generation moved since it
last found our rules complete; an insert, a removal or no generation to read all make the
next call look again."""

from __future__ import annotations

import pytest

from orchestrator.runtime.net import firewall as fw
from orchestrator.runtime.net import nfgen


class Host:
    """The chain and the generation, faked; counts the listings."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, generation: int | None = 1) -> None:
        self.generation = generation
        self.rules: list[str] | None = []
        self.listings = 0
        monkeypatch.setattr(nfgen, "generation", lambda: self.generation)
        monkeypatch.setattr(nfgen, "iptables_is_nft", lambda: True)
        monkeypatch.setattr(fw, "_docker_user_rules", self.listing)
        monkeypatch.setattr(fw, "_ensure_rule", self.insert)

    def listing(self) -> list[str] | None:
        self.listings += 1
        return None if self.rules is None else list(self.rules)

    def insert(self, table: str, chain: str, spec: list[str]) -> None:
        assert self.rules is not None
        self.rules.append(fw._listed(spec))
        if self.generation is not None:
            self.generation += 1


def test_checked_once_while_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    host = Host(monkeypatch)
    cache = fw.DockerUserCache()
    fw.ensure_docker_user("pc-a", "ACCEPT", cache)  # inserts both rules
    assert len(host.rules or []) == 2
    fw.ensure_docker_user("pc-a", "ACCEPT", cache)  # looks again: it changed the ruleset
    fw.ensure_docker_user("pc-a", "ACCEPT", cache)
    fw.ensure_docker_user("pc-a", "ACCEPT", cache)
    assert host.listings == 2


def test_a_rule_lost_elsewhere_is_put_back(monkeypatch: pytest.MonkeyPatch) -> None:
    host = Host(monkeypatch)
    cache = fw.DockerUserCache()
    fw.ensure_docker_user("pc-a", "ACCEPT", cache)
    fw.ensure_docker_user("pc-a", "ACCEPT", cache)
    assert host.rules is not None
    host.rules.pop()
    host.generation = (host.generation or 0) + 1  # someone flushed a rule: a transaction
    fw.ensure_docker_user("pc-a", "ACCEPT", cache)
    assert len(host.rules) == 2


def test_another_bridge_and_a_removed_one_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    host = Host(monkeypatch)
    host.rules = None  # no DOCKER-USER chain (no docker): nothing to insert
    cache = fw.DockerUserCache()
    fw.ensure_docker_user("pc-a", "ACCEPT", cache)
    fw.ensure_docker_user("pc-a", "ACCEPT", cache)
    assert host.listings == 1
    fw.ensure_docker_user("pc-b", "ACCEPT", cache)
    assert host.listings == 2
    fw.remove_docker_user("pc-a", "ACCEPT", cache)
    fw.ensure_docker_user("pc-a", "ACCEPT", cache)
    assert host.listings == 4  # the removal listed once, the ensure again


def test_without_a_generation_every_call_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    host = Host(monkeypatch, generation=None)
    cache = fw.DockerUserCache()
    for _ in range(3):
        fw.ensure_docker_user("pc-a", "ACCEPT", cache)
    assert host.listings == 3
