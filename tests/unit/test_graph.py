"""ServiceGraph: edges of every reference kind, selections, start/stop order, cycles."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.errors import ConfigError, NotFound
from orchestrator.graph import ServiceGraph, format_cycle
from orchestrator.model import DependsOn, Project, Service

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"


def svc(name: str, *deps: str, **fields: Any) -> Service:
    """A service whose positional args are required depends_on entries."""
    depends = {d: DependsOn() for d in deps}
    depends.update(fields.pop("depends_on", {}))
    return Service(name=name, image="img", depends_on=depends, **fields)


def project(*services: Service, disabled: tuple[Service, ...] = ()) -> Project:
    return Project(
        name="p",
        working_dir="/tmp/p",
        services={s.name: s for s in services},
        disabled_services={s.name: s for s in disabled},
    )


@pytest.mark.parametrize(
    ("services", "expected"),
    [
        ([svc("web", "db"), svc("db")], [("web", "db", "depends_on")]),
        (
            [svc("web", links=("db", "cache:redis")), svc("db"), svc("cache")],
            [("web", "cache", "links"), ("web", "db", "links")],
        ),
        (
            [svc("sidecar", network_mode="service:app"), svc("app")],
            [("sidecar", "app", "network_mode")],
        ),
        ([svc("a", network_mode="container:abc"), svc("b")], []),
        ([svc("a", network_mode="host"), svc("b")], []),
        (
            [svc("a", volumes_from=("b", "c:ro", "container:x")), svc("b"), svc("c")],
            [("a", "b", "volumes_from"), ("a", "c", "volumes_from")],
        ),
        (
            [svc("a", ipc="service:b", pid="service:b"), svc("b")],
            [("a", "b", "ipc"), ("a", "b", "pid")],
        ),
        ([svc("a", ipc="shareable", pid="host"), svc("b")], []),
        # references outside the project are the checks' business, not the graph's
        ([svc("a", "ghost", links=("phantom",))], []),
        (
            [svc("a", "b", links=("b",)), svc("b")],
            [("a", "b", "depends_on"), ("a", "b", "links")],
        ),
    ],
)
def test_edges_cover_every_reference_kind(
    services: list[Service], expected: list[tuple[str, str, str]]
) -> None:
    assert ServiceGraph(project(*services)).edges() == expected


STACK = project(
    svc("web", "api", links=("cache",)),
    svc("api", "db", "queue"),
    svc("worker", "queue", "db"),
    svc("db"),
    svc("queue"),
    svc("cache"),
)


@pytest.mark.parametrize(
    ("service", "dependencies", "dependents"),
    [
        ("web", {"api", "cache"}, set()),
        ("api", {"db", "queue"}, {"web"}),
        ("db", set(), {"api", "worker"}),
        ("cache", set(), {"web"}),
    ],
)
def test_direct_dependencies_and_dependents(
    service: str, dependencies: set[str], dependents: set[str]
) -> None:
    graph = ServiceGraph(STACK)
    assert graph.dependencies(service) == dependencies
    assert graph.dependents(service) == dependents


@pytest.mark.parametrize(
    ("names", "with_dependencies", "expected"),
    [
        (["web"], True, {"web", "api", "cache", "db", "queue"}),
        (["web"], False, {"web"}),
        (["worker"], True, {"worker", "db", "queue"}),
        (["db", "cache"], True, {"db", "cache"}),
        ([], True, set()),
    ],
)
def test_select_adds_transitive_dependencies(
    names: list[str], with_dependencies: bool, expected: set[str]
) -> None:
    assert ServiceGraph(STACK).select(names, with_dependencies=with_dependencies) == expected


def test_select_includes_optional_dependencies_that_exist() -> None:
    graph = ServiceGraph(
        project(svc("web", depends_on={"db": DependsOn(required=False)}), svc("db"))
    )
    assert graph.select(["web"]) == {"web", "db"}


@pytest.mark.parametrize(
    ("call", "fragments"),
    [
        (lambda g: g.select(["wbe"]), ["'wbe'", 'did you mean "web"', "known services:"]),
        (lambda g: g.dependencies("nope"), ["no such service: 'nope'", "api, cache, db"]),
        (lambda g: g.dependents("dbb"), ['did you mean "db"']),
        (lambda g: g.generations(["web", "x"]), ["no such service: 'x'"]),
    ],
)
def test_unknown_service_is_not_found_with_a_suggestion(
    call: Any, fragments: list[str]
) -> None:
    with pytest.raises(NotFound) as caught:
        call(ServiceGraph(STACK))
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_not_found_names_the_profiles_of_a_disabled_service() -> None:
    graph = ServiceGraph(project(svc("web"), disabled=(svc("debug", profiles=("dev",)),)))
    with pytest.raises(NotFound, match=r"disabled by profiles \(dev\)"):
        graph.select(["debug"])


def test_include_disabled_adds_disabled_services_and_their_edges() -> None:
    p = project(svc("web", "db"), disabled=(svc("db", "seed", profiles=("x",)), svc("seed")))
    assert ServiceGraph(p).edges() == []
    assert ServiceGraph(p, include_disabled=True).edges() == [
        ("db", "seed", "depends_on"),
        ("web", "db", "depends_on"),
    ]


@pytest.mark.parametrize(
    ("services", "subset", "expected"),
    [
        (STACK, None, [["cache", "db", "queue"], ["api", "worker"], ["web"]]),
        (STACK, ["web", "api", "db"], [["db"], ["api"], ["web"]]),
        (STACK, ["worker", "cache"], [["cache", "worker"]]),
        (project(svc("b"), svc("a"), svc("c")), None, [["a", "b", "c"]]),
        (project(svc("a", "b"), svc("b", "c"), svc("c")), None, [["c"], ["b"], ["a"]]),
        (
            project(svc("a", "c"), svc("b", "c"), svc("c", network_mode="service:d"), svc("d")),
            None,
            [["d"], ["c"], ["a", "b"]],
        ),
        (project(), None, []),
    ],
)
def test_generations_start_dependencies_first(
    services: Project, subset: list[str] | None, expected: list[list[str]]
) -> None:
    graph = ServiceGraph(services)
    assert graph.generations(subset) == expected
    assert graph.stop_generations(subset) == list(reversed(expected))


@pytest.mark.parametrize(
    ("services", "expected"),
    [
        (STACK, None),
        (project(svc("a", "b"), svc("b", "c"), svc("c", "a")), ["a", "b", "c", "a"]),
        (project(svc("c", "a"), svc("b", "c"), svc("a", "b")), ["a", "b", "c", "a"]),
        (project(svc("a", "a")), ["a", "a"]),
        (project(svc("x", links=("y",)), svc("y", volumes_from=("x",))), ["x", "y", "x"]),
    ],
)
def test_cycle(services: Project, expected: list[str] | None) -> None:
    assert ServiceGraph(services).cycle() == expected


def test_cycles_lists_each_distinct_cycle() -> None:
    graph = ServiceGraph(project(svc("a", "b"), svc("b", "a", "c"), svc("c", "b"), svc("d")))
    assert graph.cycles() == [["a", "b", "a"], ["b", "c", "b"]]
    assert graph.cycles(limit=1) in ([["a", "b", "a"]], [["b", "c", "b"]])


def test_generations_of_a_cyclic_graph_raise_config_error() -> None:
    graph = ServiceGraph(project(svc("a", "b"), svc("b", "a"), svc("c")))
    with pytest.raises(ConfigError, match="dependency cycle: a → b → a"):
        graph.generations()


def test_two_hundred_services_order_fast() -> None:
    # a layered fan-in: service i depends on the (up to) three services before it
    services = [
        svc(f"s{i:03d}", *(f"s{j:03d}" for j in range(max(0, i - 3), i))) for i in range(200)
    ]
    started = time.perf_counter()
    graph = ServiceGraph(project(*services))
    layers = graph.generations()
    selected = graph.select(["s199"])
    assert graph.cycle() is None
    elapsed = time.perf_counter() - started
    assert [len(layer) for layer in layers] == [1] * 200
    assert layers[0] == ["s000"] and layers[-1] == ["s199"]
    assert len(selected) == 200
    assert elapsed < 2.0


@pytest.mark.corpus
def test_compose_go_cycle_fixture_reports_the_cycle() -> None:
    path = CORPUS / "compose-spec__compose-go__loader__testdata__compose-depends-on-cycle.yaml"
    raw = yaml.safe_load(path.read_text())
    services = [svc(name, *body.get("depends_on", ())) for name, body in raw["services"].items()]
    cycle = ServiceGraph(project(*services)).cycle()
    assert cycle is not None
    assert format_cycle(cycle) == "dependency cycle: service1 → service2 → service3 → service1"
