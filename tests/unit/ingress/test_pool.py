"""Which replicas receive new connections: the rules of ``pool.members`` as a table."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.backends.base import ObservedContainer, ObservedState
from orchestrator.ingress.pool import Member, members, reachable_address
from orchestrator.ingress.routes import Route

ROUTE = Route(service="web", published=5000, target=80)


def container(number: int, **overrides: Any) -> ObservedContainer:
    fields: dict[str, Any] = {
        "id": f"id{number}",
        "name": f"p-web-{number}",
        "project": "p",
        "service": "web",
        "number": number,
        "status": "running",
        "labels": {},
        "addresses": {"p_default": f"172.18.0.{number + 1}"},
    }
    fields.update(overrides)
    return ObservedContainer(**fields)


@pytest.mark.parametrize(
    ("containers", "drained", "expected"),
    [
        pytest.param([], (), [], id="no-containers"),
        pytest.param(
            [container(2), container(1)], (), ["id1", "id2"], id="ordered-by-number"
        ),
        pytest.param(
            [container(1, status="exited"), container(2)], (), ["id2"], id="exited-skipped"
        ),
        pytest.param(
            [container(1, status="created"), container(2, status="restarting")],
            (), [], id="not-running-skipped",
        ),
        pytest.param(
            [container(1, status="paused")], (), [], id="paused-skipped"
        ),
        pytest.param(
            [container(1, health="healthy"), container(2, health="none")],
            (), ["id1", "id2"], id="healthy-and-no-healthcheck-serve",
        ),
        pytest.param(
            [container(1, health="starting"), container(2, health="unhealthy"), container(3)],
            (), ["id3"], id="starting-and-unhealthy-skipped",
        ),
        pytest.param([container(1), container(2)], ("id1",), ["id2"], id="drained-skipped"),
        pytest.param(
            [container(1, oneoff=True), container(2)], (), ["id2"], id="oneoff-skipped"
        ),
        pytest.param(
            [container(1, service="db"), container(2)], (), ["id2"], id="other-service-skipped"
        ),
        pytest.param(
            [container(1, addresses={}), container(2)], (), ["id2"], id="no-address-skipped"
        ),
        pytest.param(
            [container(1, addresses={"p_default": "fe80::1"})], (), [], id="ipv6-only-skipped"
        ),
    ],
)
def test_members_chooses_serving_replicas(
    containers: list[ObservedContainer], drained: tuple[str, ...], expected: list[str]
) -> None:
    observed = ObservedState(project="p", containers=tuple(containers))
    assert [m.container_id for m in members(observed, ROUTE, drained)] == expected


def test_member_carries_address_and_target_port() -> None:
    observed = ObservedState(project="p", containers=(container(1),))
    assert members(observed, ROUTE, ()) == [Member("id1", "172.18.0.2", 80)]


@pytest.mark.parametrize(
    ("addresses", "expected"),
    [
        pytest.param({}, None, id="none"),
        pytest.param({"b": "10.0.0.2", "a": "10.0.0.1"}, "10.0.0.1", id="stable-by-network-name"),
        pytest.param({"a": "", "b": "10.0.0.2"}, "10.0.0.2", id="empty-skipped"),
        pytest.param({"a": "10.0.0.1/24"}, "10.0.0.1", id="mask-dropped"),
        pytest.param({"a": "not-an-ip", "b": "10.0.0.2"}, "10.0.0.2", id="garbage-skipped"),
        pytest.param({"a": "::1", "b": "10.0.0.2"}, "10.0.0.2", id="ipv6-skipped"),
        pytest.param({"a": "0.0.0.0"}, None, id="unspecified-skipped"),
    ],
)
def test_reachable_address(addresses: dict[str, str], expected: str | None) -> None:
    assert reachable_address(container(1, addresses=addresses)) == expected
