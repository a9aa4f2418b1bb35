"""Semantic checks on the bound project: what the schema cannot see.

Every problem is collected (the caller raises one ConfigError with all of them), named by
its dotted path and located in the original YAML through ``Positions``.

Profiles follow docker compose (compose-go ``checkConsistency`` and its service graph):

- a ``depends_on`` entry naming a service that is declared but disabled by profiles is an
  error while the dependency is required ("service db is required by web but is
  disabled"); with ``required: false`` it is skipped and orders nothing;
- links, volumes_from and ``service:x`` network/ipc/pid modes are required dependencies
  (compose turns them into ``depends_on``), so a disabled target is always an error;
- a ``depends_on`` entry naming a service declared nowhere is an error unless it is
  ``required: false`` (the spec's "only warn when the dependency is not available";
  compose-go is stricter here, rejecting it anyway, so we accept a superset).

Cycles are found here without the graph module (the layers keep loader and graph apart):
each elementary cycle is one Problem, up to a bound, so a dense knot of services cannot
make loading slow.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from orchestrator.errors import Location, Problem
from orchestrator.loader.document import PathKey, Positions, dotted, locate
from orchestrator.loader.suggest import did_you_mean
from orchestrator.model import PortConfig, Project, Service, ServiceNetwork
from orchestrator.model.service import ServiceReference, service_references

MAX_CYCLES = 20
_CYCLE_SEARCH_STEPS = 100_000
# compose creates the project's default network itself; services may always name it
_IMPLICIT_NETWORKS = frozenset({"default"})
_NO_REPLICAS = ("global", "global-job")


def check_project(project: Project, positions: Positions) -> list[Problem]:
    """Every semantic problem of ``project``; empty when it is consistent."""
    problems: list[Problem] = []
    for name, service in project.services.items():
        problems.extend(_service_references(project, name, service, positions))
        problems.extend(_resource_references(project, name, service, positions))
        problems.extend(_replica_problems(name, service, positions))
        problems.extend(_network_mode_with_networks(name, service, positions))
    problems.extend(_duplicate_container_names(project, positions))
    problems.extend(_cycles(project, positions))
    return problems


def unsupported_key_warnings(
    project: Project, unsupported: Collection[str], backend: str, positions: Positions
) -> list[Problem]:
    """One warning per service and key the chosen backend cannot honour, never silence.

    A key is a Service field name or a dotted sub-path (``deploy.placement``); it counts
    as used when its value differs from the dataclass default, or when it sits in
    ``Service.extras`` (keys the model passes through untyped).
    """
    warnings: list[Problem] = []
    keys = sorted(unsupported)
    for name, service in project.services.items():
        for key in keys:
            if not _is_set(service, key.split(".")) or _implicit_default_network(service, key):
                continue
            raw: PathKey = ("services", name, *key.split("."))
            warnings.append(
                Problem(
                    f"service {name!r} sets `{key}`, which the {backend} backend cannot "
                    "honour; it is ignored",
                    path=dotted(raw),
                    location=locate(positions, raw),
                    hint=f"remove `{key}` or choose a backend that supports it",
                )
            )
    return warnings


def _implicit_default_network(service: Service, key: str) -> bool:
    """The normaliser attaches network-less services to `default`: that is not the user
    setting `networks`, so it is not warned about once per service."""
    return key == "networks" and service.networks == {"default": ServiceNetwork()}


# -- references to other services ---------------------------------------------------------


def _service_references(
    project: Project, name: str, service: Service, positions: Positions
) -> Iterable[Problem]:
    # One problem per missing service, even when several keys name it (depends_on and
    # links, say): the required entry with a known position is the one worth pointing at.
    candidates: dict[str, list[tuple[ServiceReference, str, Location | None, bool]]] = {}
    for ref in service_references(service):
        if ref.target not in project.services:
            candidates.setdefault(ref.target, []).append(
                (ref, *_ref_where(name, service, ref, positions))
            )
    for found in candidates.values():
        required = [c for c in found if c[0].required] or found
        ref, path, location, _ = next((c for c in required if c[3]), required[0])
        problem = _reference_problem(project, name, ref, path, location)
        if problem is not None:
            yield problem


def _reference_problem(
    project: Project, name: str, ref: ServiceReference, path: str, location: Location | None
) -> Problem | None:
    what = f"service {name!r} {_describe(ref)}"
    disabled = project.disabled_services.get(ref.target)
    if disabled is not None:
        if not ref.required:
            return None
        profiles = ", ".join(disabled.profiles)
        hint = f"activate it with --profile {disabled.profiles[0]}" if disabled.profiles else ""
        if ref.kind == "depends_on" and hint:
            hint += " or mark the dependency `required: false`"
        return Problem(
            f"{what} service {ref.target!r}, which is disabled: none of its profiles "
            f"({profiles}) is active",
            path=path,
            location=location,
            hint=hint,
        )
    if not ref.required:
        return None
    return Problem(
        f"{what} undefined service {ref.target!r}",
        path=path,
        location=location,
        hint=_did_you_mean(
            ref.target, [*project.services, *project.disabled_services], "services"
        ),
    )


def _describe(ref: ServiceReference) -> str:
    return {
        "depends_on": "depends on",
        "links": "links to",
        "volumes_from": "mounts volumes from",
        "network_mode": "shares the network stack of",
        "ipc": "shares the IPC namespace of",
        "pid": "shares the PID namespace of",
    }[ref.kind]


def _ref_where(
    name: str, service: Service, ref: ServiceReference, positions: Positions
) -> tuple[str, Location | None, bool]:
    """The dotted path of a reference, where it was written, and whether that place is the
    entry itself (True) or only an enclosing key."""
    base: PathKey = ("services", name, ref.kind)
    canonical: PathKey = ("services", name, *ref.path)
    if ref.kind == "depends_on":
        order = list(service.depends_on).index(ref.target)
        where = _entry_path(positions, base, ref.target, order, len(service.depends_on))
    elif isinstance(ref.path[-1], int):
        count = len(getattr(service, ref.kind))
        where = _index_path(positions, base, ref.path[-1], count)
    else:
        where = canonical if canonical in positions else None
    if where is not None:
        return dotted(canonical), positions[where], True
    return dotted(canonical), locate(positions, canonical), False


# -- networks, volumes, secrets, configs ----------------------------------------------------


def _resource_references(
    project: Project, name: str, service: Service, positions: Positions
) -> Iterable[Problem]:
    svc: PathKey = ("services", name)
    declared_networks = [*project.networks, *_IMPLICIT_NETWORKS]
    for order, network in enumerate(service.networks):
        if network in project.networks or network in _IMPLICIT_NETWORKS:
            continue
        base: PathKey = (*svc, "networks")
        yield Problem(
            f"service {name!r} joins undefined network {network!r}",
            path=dotted((*base, network)),
            location=_entry_location(positions, base, network, order, len(service.networks)),
            hint=_did_you_mean(network, declared_networks, "networks"),
        )
    for index, mount in enumerate(service.volumes):
        if mount.type != "volume" or mount.source is None or mount.source in project.volumes:
            continue
        yield Problem(
            f"service {name!r} mounts undefined volume {mount.source!r}",
            path=dotted((*svc, "volumes", index)),
            location=_index_location(positions, (*svc, "volumes"), index, len(service.volumes)),
            hint=_did_you_mean(mount.source, project.volumes, "volumes"),
        )
    for kind, declared in (("secrets", project.secrets), ("configs", project.configs)):
        files = service.secrets if kind == "secrets" else service.configs
        for index, ref in enumerate(files):
            if ref.source in declared:
                continue
            yield Problem(
                f"service {name!r} uses undefined {kind[:-1]} {ref.source!r}",
                path=dotted((*svc, kind, index)),
                location=_index_location(positions, (*svc, kind), index, len(files)),
                hint=_did_you_mean(ref.source, declared, kind),
            )


def _did_you_mean(name: str, declared: Iterable[str], section: str) -> str:
    names = sorted(set(declared))
    close = did_you_mean(name, names)
    if close:
        return close
    if section == "services":
        return f"defined services: {', '.join(names)}" if names else ""
    if not names:
        return f"declare it under the top-level `{section}:`"
    return f"declare it under the top-level `{section}:` (declared: {', '.join(names)})"


# -- replicas, ports, container names ------------------------------------------------------


def _replica_problems(name: str, service: Service, positions: Positions) -> Iterable[Problem]:
    svc: PathKey = ("services", name)
    deploy = service.deploy
    deploy_replicas = deploy.replicas if deploy is not None else None
    if service.scale is not None and deploy_replicas not in (None, service.scale):
        yield Problem(
            f"scale ({service.scale}) and deploy.replicas ({deploy_replicas}) disagree",
            path=dotted((*svc, "scale")),
            location=locate(positions, (*svc, "scale")),
            hint="set only one of them",
        )
    if deploy is not None and deploy_replicas is not None and deploy.mode in _NO_REPLICAS:
        raw: PathKey = (*svc, "deploy", "replicas")
        yield Problem(
            "deploy.replicas can only be used with mode replicated or replicated-job, "
            f"not {deploy.mode}",
            path=dotted(raw),
            location=locate(positions, raw),
            hint=f"a {deploy.mode} service runs one container per host; remove replicas",
        )
    replicas = service.replicas
    if service.container_name is not None and replicas > 1:
        attr = "scale" if service.scale is not None else "deploy.replicas"
        raw = (*svc, "container_name")
        yield Problem(
            f"container_name {service.container_name!r} cannot be used with {replicas} "
            f"replicas ({attr}): container names must be unique",
            path=dotted(raw),
            location=locate(positions, raw),
            hint=f"remove container_name or set {attr} to 1",
        )
    if replicas > 1:
        for index, port in enumerate(service.ports):
            problem = _host_port_problem(port, replicas)
            if problem is None:
                continue
            base: PathKey = (*svc, "ports")
            yield Problem(
                problem,
                path=dotted((*base, index)),
                location=_index_location(positions, base, index, len(service.ports)),
                hint="use mode ingress (the default, published once and balanced), drop "
                f"`published` for a random port per replica, or publish a range of at "
                f"least {replicas} ports",
            )


def _host_port_problem(port: PortConfig, replicas: int) -> str | None:
    """Why ``port`` cannot be bound by every replica, or None when it can."""
    if port.mode != "host" or port.published is None or port.published == "":
        return None
    first, _, last = port.published.partition("-")
    try:
        size = int(last) - int(first) + 1 if last else 1
    except ValueError:
        size = 1
    if size >= replicas:
        return None
    if size == 1:
        return (
            f"host port {port.published} is published in mode host by {replicas} replicas; "
            "only one container can bind it"
        )
    return (
        f"host port range {port.published} has {size} ports for {replicas} replicas "
        "in mode host"
    )


def _duplicate_container_names(project: Project, positions: Positions) -> Iterable[Problem]:
    owners: dict[str, list[str]] = defaultdict(list)
    for name, service in project.services.items():
        if service.container_name is not None:
            owners[service.container_name].append(name)
    for container_name, services in owners.items():
        for name in services[1:]:
            raw: PathKey = ("services", name, "container_name")
            yield Problem(
                f"container_name {container_name!r} is also used by service {services[0]!r}",
                path=dotted(raw),
                location=locate(positions, raw),
                hint="container names must be unique on the engine; rename one",
            )


def _network_mode_with_networks(
    name: str, service: Service, positions: Positions
) -> Iterable[Problem]:
    if service.network_mode is None or not service.networks:
        return
    raw: PathKey = ("services", name, "networks")
    yield Problem(
        f"network_mode {service.network_mode!r} and networks cannot be used together",
        path=dotted(raw),
        location=locate(positions, raw),
        hint="network_mode replaces the service's own networking; remove one of them",
    )


# -- cycles ----------------------------------------------------------------------------------


def _cycles(project: Project, positions: Positions) -> Iterable[Problem]:
    refs: dict[str, dict[str, ServiceReference]] = {}
    for name, service in project.services.items():
        first: dict[str, ServiceReference] = {}
        for ref in service_references(service):
            if ref.target in project.services:
                first.setdefault(ref.target, ref)
        refs[name] = first
    adjacency = {name: sorted(targets) for name, targets in refs.items()}
    cycles, complete = _elementary_cycles(adjacency)
    for number, cycle in enumerate(cycles):
        start, nxt = cycle[0], cycle[1]
        ref = refs[start][nxt]
        path, location, _ = _ref_where(start, project.services[start], ref, positions)
        last = number == len(cycles) - 1
        yield Problem(
            "dependency cycle: " + " → ".join(cycle),
            path=path,
            location=location,
            hint="" if complete or not last else "further cycles may exist",
        )


def _elementary_cycles(adjacency: Mapping[str, Sequence[str]]) -> tuple[list[list[str]], bool]:
    """Distinct simple cycles ``[a, b, a]``, each started at its smallest node.

    Bounded by MAX_CYCLES and a step budget; the flag says whether the search finished.
    """
    found: list[list[str]] = []
    steps = 0
    for component in _strong_components(adjacency):
        members = set(component)
        for start in sorted(component):
            # only nodes after ``start`` may appear, so each cycle is found from its minimum
            allowed = {n for n in members if n >= start}
            path = [start]
            on_path = {start}
            stack = [iter(adjacency[start])]
            while stack:
                steps += 1
                if steps > _CYCLE_SEARCH_STEPS or len(found) >= MAX_CYCLES:
                    return sorted(found), False
                nxt = next(stack[-1], None)
                if nxt is None:
                    stack.pop()
                    on_path.discard(path.pop())
                elif nxt == start:
                    found.append([*path, start])
                elif nxt in allowed and nxt not in on_path:
                    path.append(nxt)
                    on_path.add(nxt)
                    stack.append(iter(adjacency[nxt]))
    return sorted(found), True


def _strong_components(adjacency: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components that can hold a cycle (size > 1 or a loop)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []
    counter = 0
    for root in adjacency:
        if root in index:
            continue
        work: list[tuple[str, Any]] = [(root, iter(adjacency[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(adjacency[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in adjacency[node]:
                    result.append(sorted(component))
    return result


# -- locating entries in the raw YAML ------------------------------------------------------


def _entry_path(
    positions: Positions, base: PathKey, key: str, order: int, count: int
) -> PathKey | None:
    """Where a mapping entry was written: by key (long syntax) or, for a short-syntax list,
    by its index when the list still has exactly the entries the model has."""
    if (*base, key) in positions:
        return (*base, key)
    return _index_path(positions, base, order, count)


def _index_path(positions: Positions, base: PathKey, index: int, count: int) -> PathKey | None:
    """The list item at ``index`` when the raw list matches the model one for one (short
    syntax can expand one item into several, and then only the list itself is known)."""
    same_length = (*base, count - 1) in positions and (*base, count) not in positions
    if same_length and (*base, index) in positions:
        return (*base, index)
    return None


def _entry_location(
    positions: Positions, base: PathKey, key: str, order: int, count: int
) -> Location | None:
    found = _entry_path(positions, base, key, order, count)
    return positions[found] if found is not None else locate(positions, base)


def _index_location(positions: Positions, base: PathKey, index: int, count: int) -> Location | None:
    found = _index_path(positions, base, index, count)
    return positions[found] if found is not None else locate(positions, base)


# -- "is this key set" for unsupported-key warnings ----------------------------------------


_MISSING = object()


def _is_set(obj: Any, parts: list[str]) -> bool:
    head, rest = parts[0], parts[1:]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = {f.name: f for f in dataclasses.fields(obj)}
        if head not in fields:
            extras = getattr(obj, "extras", None)
            if isinstance(extras, dict) and head in extras:
                return _is_set_plain(extras[head], rest)
            return False
        value = getattr(obj, head)
        if value is None:
            return False
        if not rest:
            return not _is_default(value, fields[head])
        return _is_set(value, rest)
    return _is_set_plain(obj, parts)


def _is_set_plain(value: Any, rest: list[str]) -> bool:
    """Inside untyped extras: present counts as set."""
    for part in rest:
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    return True


def _is_default(value: Any, field: dataclasses.Field[Any]) -> bool:
    """Equal to the field's default, or an all-defaults section (``deploy: {}`` once a
    normalizer filled it in says nothing a backend must honour)."""
    if value == _default_of(field):
        return True
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        try:
            return bool(value == type(value)())
        except TypeError:  # the section has required fields: not a default
            return False
    return False


def _default_of(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return _MISSING
