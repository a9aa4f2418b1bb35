"""ServiceGraph without networkx: the cycle each walk reports (and so each error message) is
the one networkx's find_cycle reported; cycles() finds every elementary cycle, bounded.

Expected values were recorded from the networkx implementation before it was replaced.
"""

from __future__ import annotations

import math

import pytest

from orchestrator.errors import ConfigError
from orchestrator.graph import ServiceGraph
from orchestrator.model import DependsOn, Project, Service


def svc(name: str, *deps: str) -> Service:
    return Service(name=name, image="img", depends_on={d: DependsOn() for d in deps})


def project(*services: Service) -> Project:
    return Project(name="p", working_dir="/tmp/p", services={s.name: s for s in services})


@pytest.mark.parametrize(
    ("services", "cycle", "cycles"),
    [
        # the walk starts at "web" and meets the api/db knot before the web/cache one
        (
            project(svc("web", "api", "cache"), svc("api", "db"), svc("db", "api"),
                    svc("cache", "web")),
            ["api", "db", "api"],
            [["api", "db", "api"], ["cache", "web", "cache"]],
        ),
        # a → b → d is a dead end; the walk backs up and closes c → e → c, not a → c → e → a
        (
            project(svc("a", "b", "c"), svc("b", "d"), svc("d"), svc("c", "e"), svc("e", "c", "a")),
            ["c", "e", "c"],
            [["a", "c", "e", "a"], ["c", "e", "c"]],
        ),
        (
            project(svc("z", "y"), svc("y", "x"), svc("x", "z"), svc("m", "m")),
            ["x", "z", "y", "x"],
            [["m", "m"], ["x", "z", "y", "x"]],
        ),
    ],
)
def test_the_reported_cycle_is_the_one_networkx_reported(
    services: Project, cycle: list[str], cycles: list[list[str]]
) -> None:
    graph = ServiceGraph(services)
    assert graph.cycle() == cycle
    assert graph.cycles() == cycles
    with pytest.raises(ConfigError) as caught:
        graph.generations()
    assert str(caught.value) == "services: dependency cycle: " + " → ".join(cycle)


def test_a_restricted_order_reports_a_cycle_among_the_named_services_only() -> None:
    graph = ServiceGraph(project(svc("a", "b"), svc("b", "a"), svc("c", "d"), svc("d", "c")))
    with pytest.raises(ConfigError, match="c → d → c"):
        graph.generations(["d", "c"])
    assert graph.generations(["a"]) == [["a"]]


def test_cycles_of_a_complete_graph_are_all_found_and_bounded_by_limit() -> None:
    names = [f"s{i}" for i in range(5)]
    graph = ServiceGraph(project(*(svc(n, *(m for m in names if m != n)) for n in names)))
    # every ordered selection of 2..5 services closed into a ring, counted once per rotation
    expected = sum(
        math.comb(len(names), k) * math.factorial(k - 1) for k in range(2, len(names) + 1)
    )
    found = graph.cycles(limit=1000)
    assert len(found) == expected == len({tuple(c) for c in found})
    assert all(c[0] == min(c) and c[-1] == c[0] for c in found)
    assert found == sorted(found)
    limited = graph.cycles(limit=7)
    assert len(limited) == 7 and all(c in found for c in limited)
