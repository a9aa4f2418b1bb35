"""Desired state (Project) + observed state → Plan. Pure: no I/O, no clock, no backend.

Convergence follows docker compose v2: replicas are numbered 1..N; a replica whose config
hash matches and that runs is left alone, a stopped one is started, a changed one is
recreated (stop, remove, create, start), extra ones are removed highest number first;
containers of services the project no longer has are orphans, warned about and removed
only when asked. Running the plan then planning again yields an empty plan.

External networks and volumes are never created nor removed, and not checked here either:
planning has no way to look outside the project's labelled resources, so a missing external
network surfaces as ``NotFound`` from the backend when the first container that uses it is
created (its dependents are then skipped by the executor).

``ingress`` is what the ingress controller serves now (``IngressController.status``); the
plan carries an EnsureIngress only when the routes the project wants differ from it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from orchestrator import __version__, labels
from orchestrator.backends.base import (
    ContainerSpec,
    NetworkSpec,
    ObservedContainer,
    ObservedState,
    VolumeSpec,
)
from orchestrator.backends.spec import build_container_spec, is_ingress, published_ports
from orchestrator.errors import NotFound, PycomposeError, UsageError
from orchestrator.events import Event
from orchestrator.graph import ServiceGraph
from orchestrator.ingress.routes import Route
from orchestrator.model import Project, Service
from orchestrator.model.deploy import UpdateConfig
from orchestrator.model.service import DependsCondition
from orchestrator.plan.hashing import config_hash
from orchestrator.plan.ops import (
    AnyOp,
    AwaitCondition,
    CreateContainer,
    CreateNetwork,
    CreateVolume,
    EnsureImage,
    EnsureIngress,
    Plan,
    RecreateContainer,
    RemoveContainer,
    RemoveIngress,
    RemoveNetwork,
    RemoveVolume,
    ReplicaUpdate,
    RollingUpdate,
    StartContainer,
    StopContainer,
)
from orchestrator.supervisor.specs import decode_service, encode_service, spec_labels

_STOPPABLE = frozenset({"running", "paused", "restarting"})
_STARTABLE = frozenset({"created", "exited"})


@dataclass(frozen=True)
class UpOptions:
    """What `up` was asked for. ``services`` empty means every enabled service."""

    services: tuple[str, ...] = ()
    no_deps: bool = False
    scale: Mapping[str, int] = field(default_factory=dict)
    force_recreate: bool = False
    no_recreate: bool = False
    remove_orphans: bool = False
    pull: str | None = None  # overrides every service's pull_policy
    supervised_restarts: bool = False
    timeout: float | None = None  # stop timeout; None: each service's stop_grace_period

    def __post_init__(self) -> None:
        if self.force_recreate and self.no_recreate:
            raise UsageError("--force-recreate and --no-recreate cannot be used together")
        for name, count in self.scale.items():
            if count < 0:
                raise UsageError(f"--scale {name}={count}: the count cannot be negative")


class _Builder:
    """Collects ops in a readable order and their edges; merges ops added twice by id."""

    def __init__(self, project: str) -> None:
        self.project = project
        self.ops: dict[str, AnyOp] = {}
        self.edges: dict[str, set[str]] = {}
        self.warnings: list[Event] = []

    def add(self, op: AnyOp, needs: Iterable[str] = ()) -> str:
        self.ops.setdefault(op.id, op)
        self.need(op.id, needs)
        return op.id

    def need(self, op_id: str, needs: Iterable[str]) -> None:
        wanted = {n for n in needs if n != op_id}
        if wanted:
            self.edges.setdefault(op_id, set()).update(wanted)

    def warn(self, resource: str, name: str, action: str, message: str) -> None:
        self.warnings.append(Event(resource, name, action, "warning", message, timestamp=0.0))

    def build(self) -> Plan:
        edges = {
            op_id: frozenset(n for n in needs if n in self.ops)
            for op_id, needs in self.edges.items()
            if op_id in self.ops
        }
        return Plan(
            project=self.project,
            ops=tuple(self.ops.values()),
            edges={k: v for k, v in edges.items() if v},
            warnings=tuple(self.warnings),
        )


# -- up ------------------------------------------------------------------------------------


def reconcile(
    project: Project,
    observed: ObservedState,
    options: UpOptions | None = None,
    ingress: Sequence[Route] = (),
) -> Plan:
    """The plan that makes ``observed`` match ``project`` for the selected services."""
    options = options or UpOptions()
    graph = ServiceGraph(project)
    targets = _targets(graph, options)
    for name in options.scale:
        if name not in project.services:
            raise NotFound(f"--scale names no such service: {name!r}")
    order = [name for layer in graph.generations(targets) for name in layer]
    desired = {name: options.scale.get(name, project.services[name].replicas) for name in order}
    names = {
        name: tuple(_replica_name(project, name, n) for n in range(1, count + 1))
        for name, count in desired.items()
    }
    builder = _Builder(project.name)
    resources = _resource_ops(project, observed, order, builder)

    route_services = set(targets) | {
        c.service for c in observed.containers if c.service in project.services
    }
    routes = ingress_routes(project, sorted(route_services))
    drained = {route.service for route in (*ingress, *routes)}

    jobs = _jobs(project)
    recreated: set[str] = set()
    starts: dict[str, list[str]] = {}
    for name in order:
        service = project.services[name]
        ops = _service_ops(
            project,
            observed,
            service,
            desired[name],
            options,
            defer=_deferred_network_mode(service, targets),
            drain=name in drained,
            resources=resources,
            job=name in jobs,
        )
        entry = [
            op.id
            for op, _ in ops
            if isinstance(op, CreateContainer | RecreateContainer | RollingUpdate)
        ]
        entry += [op.id for op, _ in ops if isinstance(op, StartContainer) and op.container_id]
        if not ops:
            ops = _restarts_for_dependencies(observed, service, recreated, starts, options)
            entry = [op.id for op, _ in ops if isinstance(op, StopContainer)]
        if any(isinstance(op, RecreateContainer | RollingUpdate) for op, _ in ops):
            recreated.add(name)
        if entry:
            gates = _awaits(project, graph, name, targets, names, starts, builder)
            for op_id in entry:
                builder.need(op_id, gates)
        for op, needs in ops:
            builder.add(op, needs)
        starts[name] = [
            op.id for op, _ in ops if isinstance(op, StartContainer | RollingUpdate)
        ]

    _orphans(project, observed, options, builder)
    _ingress_op(routes, ingress, builder)
    return builder.build()


def _targets(graph: ServiceGraph, options: UpOptions) -> set[str]:
    if not options.services:
        return set(graph.names)
    return graph.select(options.services, with_dependencies=not options.no_deps)


def _deferred_network_mode(service: Service, targets: set[str]) -> bool:
    mode = service.network_mode or ""
    return mode.startswith("service:") and mode[len("service:") :] in targets


def _resource_ops(
    project: Project, observed: ObservedState, order: list[str], builder: _Builder
) -> dict[str, list[str]]:
    """Create the networks/volumes the services need; service -> ids of those create ops."""
    have_networks = {n.name for n in observed.networks}
    have_volumes = {v.name for v in observed.volumes}
    out: dict[str, list[str]] = {}
    for name in order:
        service = project.services[name]
        needs: list[str] = []
        for key in service.networks:
            network = project.networks.get(key)
            if network is None or network.external or network.name in have_networks:
                continue
            spec = NetworkSpec(
                network, _resource_labels(project, network.labels, labels.NETWORK, key)
            )
            needs.append(
                builder.add(
                    CreateNetwork(id=f"network:{network.name}", reason="missing", spec=spec)
                )
            )
        for mount in service.volumes:
            volume = project.volumes.get(mount.source or "") if mount.type == "volume" else None
            if volume is None or volume.external or volume.name in have_volumes:
                continue
            vspec = VolumeSpec(
                volume, _resource_labels(project, volume.labels, labels.VOLUME, volume.key)
            )
            needs.append(
                builder.add(CreateVolume(id=f"volume:{volume.name}", reason="missing", spec=vspec))
            )
        out[name] = needs
    return out


def plan_resources(project: Project, observed: ObservedState, services: Sequence[str]) -> Plan:
    """Only the networks and volumes ``services`` need (what a one-off `run` needs first)."""
    builder = _Builder(project.name)
    _resource_ops(project, observed, list(services), builder)
    return builder.build()


def _resource_labels(
    project: Project, own: Mapping[str, str], kind_label: str, key: str
) -> dict[str, str]:
    return {**own, labels.PROJECT: project.name, kind_label: key, labels.VERSION: __version__}


def _service_ops(
    project: Project,
    observed: ObservedState,
    service: Service,
    replicas: int,
    options: UpOptions,
    *,
    defer: bool,
    drain: bool,
    resources: Mapping[str, list[str]],
    job: bool = False,
) -> list[tuple[AnyOp, list[str]]]:
    """The ops that converge one service, each with the ids it needs.

    A ``job`` (a service others wait on with ``service_completed_successfully``, or a
    ``*-job`` deploy mode) whose container already exited 0 is done: `up` leaves it alone
    unless its config changed, so running `up` twice does nothing the second time (docker
    compose v2 would run the job again).
    """
    digest = config_hash(service, project)
    timeout = options.timeout if options.timeout is not None else service.stop_grace_period
    existing = observed.service_containers(service.name)
    by_number: dict[int, ObservedContainer] = {}
    extras: list[ObservedContainer] = []
    for container in existing:
        if container.number in by_number or not 1 <= container.number <= replicas:
            extras.append(container)
        else:
            by_number[container.number] = container

    image = service.image or f"{project.name}-{service.name}"
    policy = options.pull or service.pull_policy
    image_id = f"image:{image}"
    base_needs = [image_id, *resources.get(service.name, [])]
    ops: list[tuple[AnyOp, list[str]]] = []

    encoded = encode_service(service)

    def spec_for(number: int, previous: ObservedContainer | None = None) -> ContainerSpec:
        spec = build_container_spec(
            project,
            service,
            number,
            config_hash=digest,
            observed=observed,
            supervised_restarts=options.supervised_restarts,
            defer_network_mode=defer,
        )
        before = previous.labels.get(labels.SPEC) if previous is not None else None
        recorded = {labels.SPEC: encoded}
        if before and previous is not None and previous.config_hash != digest:
            recorded[labels.PREVIOUS_SPEC] = before
        return replace(spec, labels={**spec.labels, **recorded})

    rolling = _rolls(service) and not job
    updates: list[ObservedContainer] = []
    for number in range(1, replicas + 1):
        current = by_number.get(number)
        if current is None:
            spec = spec_for(number)
            create = CreateContainer(id=f"create:{spec.name}", reason="missing", spec=spec)
            ops.append((create, base_needs))
            ops.append((_start(spec.name, service.name, None, "missing"), [create.id]))
            continue
        reason = _recreate_reason(current, digest, options)
        if reason == "config changed" and rolling:
            updates.append(current)
            continue
        if reason:
            spec = spec_for(number, current)
            recreate = RecreateContainer(
                id=f"recreate:{current.name}",
                reason=reason,
                old_id=current.id,
                spec=spec,
                timeout=timeout,
                drain=drain,
            )
            ops.append((recreate, base_needs))
            ops.append((_start(spec.name, service.name, None, reason), [recreate.id]))
        elif current.status in _STARTABLE and not (job and _completed(current)):
            ops.append((_start(current.name, service.name, current.id, "stopped"), []))

    if updates:
        ops.append(
            (
                _rolling_update(
                    project, observed, service, updates, spec_for, options, drain, timeout, defer
                ),
                base_needs,
            )
        )
    if any(isinstance(op, CreateContainer | RecreateContainer | RollingUpdate) for op, _ in ops):
        ops.insert(
            0,
            (
                EnsureImage(
                    id=image_id,
                    reason=f"pull policy {policy or 'missing'}",
                    image=image,
                    pull_policy=policy,
                ),
                [],
            ),
        )
    reason = f"scale {len(existing)}→{replicas}"
    ops.extend(
        _removals(sorted(extras, key=lambda c: -c.number), reason, timeout, drain, chain=True)
    )
    return ops


def _rolls(service: Service) -> bool:
    """Whether a changed service is updated by a rolling update rather than recreated.

    Services with a ``deploy`` section get swarm's semantics, ``update_config`` defaults
    included (one replica at a time, each watched for 5s): writing ``deploy`` is how a
    compose file asks for swarm behaviour. Services without one, and jobs, are recreated
    all at once as docker compose does, so plain compose files keep compose's speed.
    """
    return service.deploy is not None and not service.deploy.mode.endswith("-job")


def _generation(containers: Iterable[ObservedContainer]) -> int:
    """The highest ``io.pycompose.update-generation`` among ``containers`` (0 if none)."""
    found = [0]
    for container in containers:
        text = container.labels.get(labels.UPDATE_GENERATION, "")
        if text.isdigit():
            found.append(int(text))
    return max(found)


def _rollback_spec(
    project: Project,
    observed: ObservedState,
    current: ObservedContainer,
    new_spec: str,
    generation: int,
    options: UpOptions,
    defer: bool,
) -> ContainerSpec | None:
    """The container replica ``current.number`` goes back to on rollback: the config
    ``current`` records, its own config hash; None when it records none (or an unreadable
    one, from another version): that update cannot be rolled back, it pauses instead."""
    text = current.labels.get(labels.SPEC)
    if not text:
        return None
    try:
        old = decode_service(current.service, text)
    except PycomposeError:
        return None
    spec = build_container_spec(
        project,
        old,
        current.number,
        config_hash=current.config_hash,
        observed=observed,
        supervised_restarts=options.supervised_restarts,
        defer_network_mode=defer,
    )
    recorded = {
        **spec_labels(old, new_spec),
        labels.UPDATE_GENERATION: str(generation),
    }
    return replace(spec, labels={**spec.labels, **recorded})


def _rolling_update(
    project: Project,
    observed: ObservedState,
    service: Service,
    updates: list[ObservedContainer],
    spec_for: Callable[[int, ObservedContainer | None], ContainerSpec],
    options: UpOptions,
    drain: bool,
    timeout: float | None,
    defer: bool,
) -> RollingUpdate:
    """One RollingUpdate op for the replicas of ``service`` whose config changed.

    New replicas carry the next update generation (so ``ps`` tells old from new), the
    rollback containers the one after it.
    """
    assert service.deploy is not None
    generation = _generation(observed.service_containers(service.name)) + 1
    replicas: list[ReplicaUpdate] = []
    for current in updates:
        spec = spec_for(current.number, current)
        spec = replace(
            spec, labels={**spec.labels, labels.UPDATE_GENERATION: str(generation)}
        )
        replicas.append(
            ReplicaUpdate(
                number=current.number,
                old_id=current.id,
                old_name=current.name,
                old_running=current.status in _STOPPABLE,
                spec=spec,
                rollback_spec=_rollback_spec(
                    project,
                    observed,
                    current,
                    spec.labels[labels.SPEC],
                    generation + 1,
                    options,
                    defer,
                ),
            )
        )
    return RollingUpdate(
        id=f"update:{service.name}",
        reason="config changed",
        service=service.name,
        replicas=tuple(replicas),
        config=service.deploy.update_config,
        rollback_config=service.deploy.rollback_config,
        drain=drain,
        timeout=timeout,
    )


def plan_rollback(
    project: Project,
    observed: ObservedState,
    service: str,
    previous: Service,
    *,
    config: UpdateConfig | None = None,
    ingress: Sequence[Route] = (),
    timeout: float | None = None,
) -> Plan:
    """``pycompose rollback SERVICE``: roll every replica of ``service`` not already
    running ``previous`` back to it, by ``config`` (default: ``previous``'s own
    ``deploy.rollback_config``). The rollback pauses on failure, never rolls back again."""
    if service not in project.services:
        raise NotFound(f"no such service: {service!r}")
    rolled = replace(project, services={**project.services, service: previous})
    digest = config_hash(previous, rolled)
    existing = observed.service_containers(service)
    generation = _generation(existing) + 1
    encoded = encode_service(previous)
    replicas: list[ReplicaUpdate] = []
    for current in existing:
        if current.config_hash == digest:
            continue
        spec = build_container_spec(
            rolled,
            previous,
            current.number,
            config_hash=digest,
            observed=observed,
            supervised_restarts=False,
        )
        recorded = {
            labels.SPEC: encoded,
            labels.UPDATE_GENERATION: str(generation),
        }
        if current.labels.get(labels.SPEC):
            recorded[labels.PREVIOUS_SPEC] = current.labels[labels.SPEC]
        replicas.append(
            ReplicaUpdate(
                number=current.number,
                old_id=current.id,
                old_name=current.name,
                old_running=current.status in _STOPPABLE,
                spec=replace(spec, labels={**spec.labels, **recorded}),
            )
        )
    builder = _Builder(project.name)
    if not replicas:
        return builder.build()
    if config is None:
        config = previous.deploy.rollback_config if previous.deploy else UpdateConfig()
    image = previous.image or f"{project.name}-{service}"
    image_id = builder.add(
        EnsureImage(id=f"image:{image}", reason="rollback", image=image, pull_policy=None)
    )
    drained = {route.service for route in ingress}
    builder.add(
        RollingUpdate(
            id=f"rollback:{service}",
            reason="rollback requested",
            service=service,
            replicas=tuple(replicas),
            config=config,
            rollback_config=config,
            rollback=True,
            drain=service in drained,
            timeout=timeout if timeout is not None else previous.stop_grace_period,
        ),
        [image_id],
    )
    return builder.build()


def _restarts_for_dependencies(
    observed: ObservedState,
    service: Service,
    recreated: set[str],
    starts: Mapping[str, list[str]],
    options: UpOptions,
) -> list[tuple[AnyOp, list[str]]]:
    """``depends_on: {x: {restart: true}}``: restart this service's running containers
    once a recreated ``x`` has started again (compose's meaning of ``restart``)."""
    causes = sorted(
        dep for dep, cond in service.depends_on.items() if cond.restart and dep in recreated
    )
    if not causes:
        return []
    after = [op_id for dep in causes for op_id in starts.get(dep, [])]
    timeout = options.timeout if options.timeout is not None else service.stop_grace_period
    reason = f"dependency {', '.join(causes)} recreated"
    ops: list[tuple[AnyOp, list[str]]] = []
    for container in observed.service_containers(service.name):
        if container.status != "running":
            continue
        stop = _stop(container, reason, timeout)
        ops.append((stop, after))
        ops.append((_start(container.name, service.name, container.id, reason), [stop.id]))
    return ops


def _jobs(project: Project) -> set[str]:
    """Services that run to completion: waited on with service_completed_successfully, or
    deployed in a job mode."""
    waited = {
        dependency
        for service in project.services.values()
        for dependency, condition in service.depends_on.items()
        if condition.condition == "service_completed_successfully"
    }
    modes = {
        name
        for name, service in project.services.items()
        if service.deploy is not None and service.deploy.mode.endswith("-job")
    }
    return waited | modes


def _completed(container: ObservedContainer) -> bool:
    return container.status == "exited" and container.exit_code == 0


def _recreate_reason(current: ObservedContainer, digest: str, options: UpOptions) -> str:
    if options.force_recreate:
        return "forced"
    if current.status == "dead":
        return "dead"
    if current.config_hash != digest and not options.no_recreate:
        return "config changed"
    return ""


def _stop(
    container: ObservedContainer, reason: str, timeout: float | None, drain: bool = False
) -> StopContainer:
    return StopContainer(
        id=f"stop:{container.name}",
        reason=reason,
        name=container.name,
        service=container.service,
        container_id=container.id,
        timeout=timeout,
        drain=drain,
    )


def _start(name: str, service: str, container_id: str | None, reason: str) -> StartContainer:
    return StartContainer(
        id=f"start:{name}", reason=reason, name=name, service=service, container_id=container_id
    )


def _removals(
    containers: Iterable[ObservedContainer],
    reason: str,
    timeout: float | None,
    drain: bool,
    *,
    chain: bool,
    after: Iterable[str] = (),
) -> list[tuple[AnyOp, list[str]]]:
    """Stop (when running) then remove each container; ``chain`` does them one at a time."""
    ops: list[tuple[AnyOp, list[str]]] = []
    previous: list[str] = list(after)
    for container in containers:
        first_needs = list(previous)
        remove_needs: list[str] = []
        if container.status in _STOPPABLE:
            stop = _stop(container, reason, timeout, drain)
            ops.append((stop, first_needs))
            remove_needs = [stop.id]
        else:
            remove_needs = first_needs
        remove = RemoveContainer(
            id=f"remove:{container.name}",
            reason=reason,
            name=container.name,
            service=container.service,
            container_id=container.id,
            drain=drain,
        )
        ops.append((remove, remove_needs))
        if chain:
            previous = [remove.id]
    return ops


def _awaits(
    project: Project,
    graph: ServiceGraph,
    service: str,
    selected: set[str],
    replicas: Mapping[str, tuple[str, ...]],
    starts: Mapping[str, list[str]],
    builder: _Builder,
) -> list[str]:
    """Add the AwaitCondition ops ``service`` must wait for; their ids."""
    gates: list[str] = []
    depends_on = project.services[service].depends_on
    for dependency in sorted(graph.dependencies(service) & selected):
        setting = depends_on.get(dependency)
        condition: DependsCondition = setting.condition if setting else "service_started"
        required = setting.required if setting else True
        op_id = f"await:{dependency}:{condition}" + ("" if required else ":optional")
        gate = AwaitCondition(
            id=op_id,
            reason=f"{service} depends on it",
            service=dependency,
            condition=condition,
            required=required,
            containers=replicas.get(dependency, ()),
        )
        gates.append(builder.add(gate, starts.get(dependency, [])))
    return gates


def _replica_name(project: Project, service: str, number: int) -> str:
    own = project.services[service].container_name
    return own if own and number == 1 else labels.container_name(project.name, service, number)


def _orphans(
    project: Project, observed: ObservedState, options: UpOptions, builder: _Builder
) -> None:
    known = set(project.services) | set(project.disabled_services)
    orphans = [c for c in observed.containers if not c.oneoff and c.service not in known]
    if not orphans:
        return
    if options.remove_orphans:
        for op, needs in _removals(orphans, "orphan", options.timeout, False, chain=False):
            builder.add(op, needs)
        return
    names = ", ".join(sorted(c.name for c in orphans))
    builder.warn(
        "project",
        project.name,
        "Orphans",
        f"found orphan containers ({names}) for this project; if you removed or renamed "
        "their service in the compose file, run with --remove-orphans to clean them up",
    )


def _ingress_op(routes: list[Route], served: Sequence[Route], builder: _Builder) -> None:
    wanted, current = sorted(set(routes)), sorted(set(served))
    if wanted == current:
        return
    if wanted:
        reason = "missing" if not current else "routes changed"
        builder.add(EnsureIngress(id="ingress", reason=reason, routes=tuple(wanted)))
    else:
        builder.add(RemoveIngress(id="ingress:remove", reason="no ingress ports"))


def ingress_routes(project: Project, services: Iterable[str] | None = None) -> list[Route]:
    """One Route per host port of every ingress port of ``services`` (default: all).

    A published range ("8000-8002") gives one route per host port, all to the same target.
    Ports without a published value, and sctp ones, are bound by the containers instead
    (see ``backends.spec``) and get no route.
    """
    names = sorted(project.services) if services is None else list(services)
    out: list[Route] = []
    for name in names:
        service = project.services.get(name)
        if service is None:
            raise NotFound(f"no such service: {name!r}")
        for index, port in enumerate(service.ports):
            if not is_ingress(port) or port.protocol == "sctp":
                continue
            protocol: Literal["tcp", "udp"] = "udp" if port.protocol == "udp" else "tcp"
            for published in published_ports(port, path=f"services.{name}.ports[{index}]"):
                out.append(
                    Route(
                        service=name,
                        published=published,
                        target=port.target,
                        protocol=protocol,
                        host_ip=port.host_ip or "0.0.0.0",
                    )
                )
    return sorted(set(out))


# -- down / stop / start / restart --------------------------------------------------------


def plan_down(
    project: Project,
    observed: ObservedState,
    *,
    remove_volumes: bool = False,
    remove_orphans: bool = False,
    ingress: Sequence[Route] = (),
    timeout: float | None = None,
) -> Plan:
    """Stop (dependents first) and remove the project's containers, then its networks
    (never external ones) and, with ``remove_volumes``, its volumes (never external ones)."""
    builder = _Builder(project.name)
    first: list[str] = []
    if ingress:
        first.append(builder.add(RemoveIngress(id="ingress:remove", reason="down")))
    graph = ServiceGraph(project, include_disabled=True)
    known = set(graph.names)
    removals: list[str] = []
    for layer in graph.stop_generations():
        for name in layer:
            removals += _remove_service(
                project, observed, graph, name, known, builder, first, timeout, "down", oneoff=True
            )
    orphans = [c for c in observed.containers if c.service not in known]
    if orphans and remove_orphans:
        for op, needs in _removals(orphans, "orphan", timeout, False, chain=False, after=first):
            removals.append(builder.add(op, needs))
    elif orphans:
        names = ", ".join(sorted(c.name for c in orphans))
        builder.warn(
            "project",
            project.name,
            "Orphans",
            f"found orphan containers ({names}); run with --remove-orphans to remove them",
        )
    external_networks = {n.name for n in project.networks.values() if n.external}
    for network in sorted(observed.networks, key=lambda n: n.name):
        if network.name not in external_networks:
            builder.add(
                RemoveNetwork(
                    id=f"network-remove:{network.name}", reason="down", name=network.name
                ),
                removals,
            )
    if remove_volumes:
        external_volumes = {v.name for v in project.volumes.values() if v.external}
        for volume in sorted(observed.volumes, key=lambda v: v.name):
            if volume.name not in external_volumes:
                builder.add(
                    RemoveVolume(
                        id=f"volume-remove:{volume.name}", reason="down", name=volume.name
                    ),
                    removals,
                )
    return builder.build()


def _remove_service(
    project: Project,
    observed: ObservedState,
    graph: ServiceGraph,
    name: str,
    known: set[str],
    builder: _Builder,
    first: list[str],
    timeout: float | None,
    reason: str,
    *,
    oneoff: bool,
) -> list[str]:
    """Stop+remove one service's containers after its dependents' stops; the remove ids."""
    containers = observed.service_containers(name)
    if oneoff:
        containers += observed.service_containers(name, oneoff=True)
    after = list(first) + [
        f"stop:{c.name}"
        for dependent in sorted(graph.dependents(name) & known)
        for c in observed.service_containers(dependent)
    ]
    out: list[str] = []
    for op, needs in _removals(containers, reason, timeout, False, chain=False, after=after):
        builder.add(op, needs)
        if isinstance(op, RemoveContainer):
            out.append(op.id)
    return out


def _selection(graph: ServiceGraph, services: Sequence[str]) -> set[str]:
    if not services:
        return set(graph.names)
    return graph.select(services, with_dependencies=False)


def plan_stop(
    project: Project,
    observed: ObservedState,
    services: Sequence[str] = (),
    *,
    timeout: float | None = None,
    ingress: Sequence[Route] = (),
) -> Plan:
    """Stop the running containers of ``services`` (default: all), dependents first."""
    graph = ServiceGraph(project)
    selected = _selection(graph, services)
    drained = {route.service for route in ingress}
    builder = _Builder(project.name)
    for layer in graph.stop_generations(selected):
        for name in layer:
            after = [
                f"stop:{c.name}"
                for dependent in sorted(graph.dependents(name) & selected)
                for c in observed.service_containers(dependent)
            ]
            wait = timeout if timeout is not None else project.services[name].stop_grace_period
            for container in observed.service_containers(name):
                if container.status in _STOPPABLE:
                    builder.add(
                        _stop(container, "requested", wait, name in drained),
                        after,
                    )
    return builder.build()


def plan_start(project: Project, observed: ObservedState, services: Sequence[str] = ()) -> Plan:
    """Start the stopped containers of ``services`` (default: all), dependencies first,
    each service waiting on the depends_on conditions of the selected ones."""
    return _start_plan(project, observed, services, restart=False, timeout=None, ingress=())


def plan_restart(
    project: Project,
    observed: ObservedState,
    services: Sequence[str] = (),
    *,
    timeout: float | None = None,
    ingress: Sequence[Route] = (),
) -> Plan:
    """Stop (when running) then start every container of ``services`` (default: all)."""
    return _start_plan(project, observed, services, restart=True, timeout=timeout, ingress=ingress)


def _start_plan(
    project: Project,
    observed: ObservedState,
    services: Sequence[str],
    *,
    restart: bool,
    timeout: float | None,
    ingress: Sequence[Route],
) -> Plan:
    graph = ServiceGraph(project)
    selected = _selection(graph, services)
    drained = {route.service for route in ingress}
    reason = "requested"
    builder = _Builder(project.name)
    replicas = {name: tuple(c.name for c in observed.service_containers(name)) for name in selected}
    starts: dict[str, list[str]] = {}
    for layer in graph.generations(selected):
        for name in layer:
            ops: list[tuple[AnyOp, list[str]]] = []
            wait = timeout if timeout is not None else project.services[name].stop_grace_period
            for container in observed.service_containers(name):
                start_needs: list[str] = []
                if restart and container.status in _STOPPABLE:
                    stop = _stop(container, reason, wait, name in drained)
                    ops.append((stop, []))
                    start_needs = [stop.id]
                if restart or container.status in _STARTABLE:
                    ops.append((_start(container.name, name, container.id, reason), start_needs))
            if ops:
                gates = _awaits(project, graph, name, selected, replicas, starts, builder)
                for op, needs in ops:
                    extra = gates if isinstance(op, StartContainer) else []
                    builder.add(op, [*needs, *extra])
            starts[name] = [op.id for op, _ in ops if isinstance(op, StartContainer)]
    return builder.build()
