"""The service dependency graph: what must start before what, and what `up web` pulls in.

Every way a service names another one orders them (depends_on, links, volumes_from,
``service:x`` network/ipc/pid modes), since each needs the other's container to exist.
References to services outside the graph are dropped here; the loader's checks report
them. This is the only module that imports networkx, so the algorithms can change without
touching callers.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import networkx as nx

from orchestrator.errors import ConfigError, NotFound, Problem
from orchestrator.model import Project
from orchestrator.model.service import service_references

_LISTED_NAMES = 20


def format_cycle(cycle: list[str]) -> str:
    """``["a", "b", "a"]`` -> ``dependency cycle: a → b → a`` (one wording everywhere)."""
    return "dependency cycle: " + " → ".join(cycle)


class ServiceGraph:
    """The services of a project as a DAG (edges point from a dependency to its dependents).

    Disabled services (profiles) are left out unless ``include_disabled``: an enabled
    service's reference to a disabled one then orders nothing, as in docker compose where
    an optional dependency on a disabled service is skipped.
    """

    def __init__(self, project: Project, *, include_disabled: bool = False) -> None:
        services = dict(project.services)
        if include_disabled:
            services.update(project.disabled_services)
        self._disabled = {
            name: svc.profiles
            for name, svc in project.disabled_services.items()
            if name not in services
        }
        self._edges: list[tuple[str, str, str]] = []
        # start-order graph: dependency -> dependent
        self._graph: nx.DiGraph = nx.DiGraph()
        self._graph.add_nodes_from(services)
        for name, service in services.items():
            for ref in service_references(service):
                if ref.target not in services:
                    continue
                self._edges.append((name, ref.target, ref.kind))
                self._graph.add_edge(ref.target, name)
        self._edges = sorted(set(self._edges))

    # -- lookups -------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """The services in the graph, sorted."""
        return sorted(self._graph.nodes)

    def dependencies(self, service: str) -> set[str]:
        """The services ``service`` names directly."""
        self._require(service)
        return set(self._graph.predecessors(service))

    def dependents(self, service: str) -> set[str]:
        """The services that name ``service`` directly."""
        self._require(service)
        return set(self._graph.successors(service))

    def edges(self) -> list[tuple[str, str, str]]:
        """``(service, dependency, kind)`` for every reference inside the graph, sorted."""
        return list(self._edges)

    def select(self, names: Iterable[str], *, with_dependencies: bool = True) -> set[str]:
        """What `up NAMES` must touch: the named services plus, by default, everything they
        transitively depend on (optional dependencies included, when present)."""
        wanted = list(names)
        for name in wanted:
            self._require(name)
        selected = set(wanted)
        if with_dependencies:
            for name in wanted:
                selected |= nx.ancestors(self._graph, name)
        return selected

    # -- ordering ------------------------------------------------------------------------

    def generations(self, services: Iterable[str] | None = None) -> list[list[str]]:
        """Start order as layers: each layer only needs the layers before it; sorted by name.

        ``services`` restricts the order to those services (dependencies are not added: use
        ``select`` first). A cycle raises ConfigError.
        """
        graph = self._subgraph(services)
        try:
            return [sorted(layer) for layer in nx.topological_generations(graph)]
        except nx.NetworkXUnfeasible as exc:
            cycle = _find_cycle(graph) or []
            raise ConfigError(Problem(format_cycle(cycle), path="services")) from exc

    def stop_generations(self, services: Iterable[str] | None = None) -> list[list[str]]:
        """Stop order: dependents before the services they depend on."""
        return list(reversed(self.generations(services)))

    def cycle(self) -> list[str] | None:
        """One dependency cycle as ``[a, b, c, a]`` (a depends on b ...), or None."""
        return _find_cycle(self._graph)

    def cycles(self, limit: int = 20) -> list[list[str]]:
        """Up to ``limit`` distinct cycles, each starting at its smallest name, sorted."""
        found: list[list[str]] = []
        # simple_cycles on the reversed (dependent -> dependency) graph walks "depends on"
        for cycle in nx.simple_cycles(self._graph.reverse(copy=False)):
            found.append(_rotate(list(cycle)))
            if len(found) >= limit:
                break
        return sorted(found)

    # -- helpers -------------------------------------------------------------------------

    def _subgraph(self, services: Iterable[str] | None) -> nx.DiGraph:
        if services is None:
            return self._graph
        wanted = list(services)
        for name in wanted:
            self._require(name)
        return self._graph.subgraph(wanted)

    def _require(self, name: str) -> None:
        if name in self._graph:
            return
        raise NotFound(self._not_found_message(name))

    def _not_found_message(self, name: str) -> str:
        known = self.names
        message = f"no such service: {name!r}"
        if name in self._disabled:
            profiles = ", ".join(self._disabled[name]) or "none"
            return f"{message}; it is disabled by profiles ({profiles}), enable one with --profile"
        close = difflib.get_close_matches(name, known, n=1)
        if close:
            message += f'; did you mean "{close[0]}"?'
        if not known:
            return message + " (the project has no services)"
        listed = ", ".join(known[:_LISTED_NAMES])
        if len(known) > _LISTED_NAMES:
            listed += f", … ({len(known) - _LISTED_NAMES} more)"
        return f"{message} (known services: {listed})"


def _find_cycle(graph: nx.DiGraph) -> list[str] | None:
    try:
        edges = nx.find_cycle(graph.reverse(copy=False))
    except nx.NetworkXNoCycle:
        return None
    nodes = [str(edge[0]) for edge in edges]
    return _rotate(nodes)


def _rotate(nodes: list[str]) -> list[str]:
    """A cycle given by its nodes, started at the smallest name and closed: [a, b, a]."""
    start = nodes.index(min(nodes))
    ordered = nodes[start:] + nodes[:start]
    return [*ordered, ordered[0]]
