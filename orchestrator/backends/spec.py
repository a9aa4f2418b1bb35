"""Service → ContainerSpec: what the core resolves for one replica before a backend sees it.

Backends stay free of compose rules: names, labels, engine-side network and volume names,
the ``service:x`` network mode and the engine restart policy are all settled here, once,
for docker and the namespace runtime alike.

Ports: an ``ingress`` port (the compose default) is published by the ingress proxy, not by
the containers. Two kinds of ingress port cannot be proxied and are bound by each
container instead, as if they were ``mode: host``: one without a published port (the
engine picks a random host port per replica) and an ``sctp`` one (the proxy speaks tcp and
udp only).
"""

from __future__ import annotations

from dataclasses import replace

from orchestrator import __version__, labels
from orchestrator.backends.base import Attachment, ContainerSpec, ObservedState
from orchestrator.errors import ConfigError, DependencyFailed, Problem
from orchestrator.model import PortConfig, Project, Service

_SERVICE_MODE = "service:"


def build_container_spec(
    project: Project,
    service: Service,
    number: int,
    *,
    config_hash: str,
    observed: ObservedState,
    supervised_restarts: bool,
    oneoff: bool = False,
    command: tuple[str, ...] | None = None,
    defer_network_mode: bool = False,
) -> ContainerSpec:
    """The spec of replica ``number`` of ``service``.

    ``defer_network_mode`` keeps ``service:x`` unresolved, for a plan that starts ``x``
    itself: the executor resolves it with ``resolve_network_mode`` once ``x`` runs.
    """
    if service.image is None and service.build is not None:
        # the name `build` tags a service's image with (api.image_name), as compose does
        service = replace(service, image=f"{project.name}-{service.name}")
    network_mode = service.network_mode
    deferred = defer_network_mode
    if network_mode is not None and network_mode.startswith(_SERVICE_MODE) and not deferred:
        network_mode = _shared_network_mode(service.name, network_mode, observed)
    restart, retries = engine_restart(service, supervised_restarts=supervised_restarts)
    return ContainerSpec(
        project=project.name,
        service=service,
        name=container_name(project, service, number, oneoff=oneoff),
        number=number,
        labels=container_labels(project, service, number, config_hash=config_hash, oneoff=oneoff),
        attachments=() if network_mode is not None else _attachments(project, service),
        network_mode=network_mode,
        volume_names=_volume_names(project, service),
        publish_ports=tuple(i for i, port in enumerate(service.ports) if not is_ingress(port)),
        engine_restart=restart,
        engine_restart_max_retries=retries,
        oneoff=oneoff,
        command_override=command,
        secrets={r.source: project.secrets[r.source] for r in service.secrets
                 if r.source in project.secrets},
        configs={r.source: project.configs[r.source] for r in service.configs
                 if r.source in project.configs},
    )


def container_name(project: Project, service: Service, number: int, *, oneoff: bool = False) -> str:
    """``container_name`` when set, else ``<project>-<service>-<n>`` (``-run-<n>`` for run)."""
    if oneoff:
        return f"{project.name}-{service.name}-run-{number}"
    if service.container_name:
        if number != 1:
            raise ConfigError(
                Problem(
                    f"a service with container_name {service.container_name!r} can only have "
                    f"one container, but replica {number} was asked for",
                    path=f"services.{service.name}.container_name",
                    hint="remove container_name to run several replicas",
                )
            )
        return service.container_name
    return labels.container_name(project.name, service.name, number)


def container_labels(
    project: Project, service: Service, number: int, *, config_hash: str, oneoff: bool
) -> dict[str, str]:
    """The service's labels plus the ones every tool reads to group and compare containers."""
    out = dict(service.labels)
    out.update(
        {
            labels.PROJECT: project.name,
            labels.SERVICE: service.name,
            labels.CONTAINER_NUMBER: str(number),
            labels.ONEOFF: "True" if oneoff else "False",
            labels.WORKING_DIR: project.working_dir,
            labels.CONFIG_FILES: ",".join(project.config_files),
            labels.COMPOSE_CONFIG_HASH: config_hash,
            labels.CONFIG_HASH: config_hash,
            labels.VERSION: __version__,
        }
    )
    return out


def resolve_network_mode(spec: ContainerSpec, observed: ObservedState) -> ContainerSpec:
    """``spec`` with a deferred ``service:x`` network mode turned into ``container:<id>``."""
    mode = spec.network_mode
    if mode is None or not mode.startswith(_SERVICE_MODE):
        return spec
    return replace(spec, network_mode=_shared_network_mode(spec.service.name, mode, observed))


def _shared_network_mode(service: str, mode: str, observed: ObservedState) -> str:
    target = mode[len(_SERVICE_MODE) :]
    for container in observed.service_containers(target):
        if container.status == "running":
            return f"container:{container.id}"
    raise DependencyFailed(
        f"service {service!r} shares the network of service {target!r} "
        f"(network_mode: {mode}), but no container of {target!r} is running"
    )


def _attachments(project: Project, service: Service) -> tuple[Attachment, ...]:
    # docker attaches the highest priority network first; ties in name order
    ordered = sorted(service.networks.items(), key=lambda item: (-item[1].priority, item[0]))
    out: list[Attachment] = []
    for key, settings in ordered:
        network = project.networks.get(key)
        if network is None:
            raise ConfigError(
                Problem(
                    f"service {service.name!r} uses network {key!r}, which is not declared "
                    "under the top-level networks",
                    path=f"services.{service.name}.networks.{key}",
                    hint=f"declare it: networks: {{{key}: {{}}}}",
                )
            )
        aliases = tuple(dict.fromkeys((service.name, *settings.aliases)))
        out.append(
            Attachment(
                network=network.name,
                aliases=aliases,
                ipv4_address=settings.ipv4_address,
                ipv6_address=settings.ipv6_address,
                mac_address=settings.mac_address,
            )
        )
    return tuple(out)


def _volume_names(project: Project, service: Service) -> dict[str, str]:
    out: dict[str, str] = {}
    for index, mount in enumerate(service.volumes):
        if mount.type != "volume" or not mount.source:
            continue  # anonymous volumes get an engine-made name
        volume = project.volumes.get(mount.source)
        if volume is None:
            raise ConfigError(
                Problem(
                    f"service {service.name!r} mounts volume {mount.source!r}, which is not "
                    "declared under the top-level volumes",
                    path=f"services.{service.name}.volumes[{index}]",
                    hint=f"declare it: volumes: {{{mount.source}: {{}}}}",
                )
            )
        out[mount.source] = volume.name
    return out


def engine_restart(service: Service, *, supervised_restarts: bool) -> tuple[str, int]:
    """The engine's restart policy and retry limit for ``service``.

    "no" whenever the pycompose supervisor restarts containers, so the two never fight.
    ``deploy.restart_policy`` wins over ``restart`` (as in the compose spec).
    """
    if supervised_restarts:
        return "no", 0
    policy = service.deploy.restart_policy if service.deploy is not None else None
    if policy is not None:
        if policy.condition == "none":
            return "no", 0
        if policy.condition == "on-failure":
            return "on-failure", policy.max_attempts or 0
        return "always", 0
    if service.restart is None:
        return "no", 0
    if service.restart == "on-failure":
        return "on-failure", service.restart_max_retries or 0
    return service.restart, 0


def restart_warnings(service: Service, *, supervised_restarts: bool) -> list[str]:
    """What of ``deploy.restart_policy`` the engine's own policy cannot honour."""
    policy = service.deploy.restart_policy if service.deploy is not None else None
    if supervised_restarts or policy is None or policy.condition == "none":
        return []
    out: list[str] = []
    where = f"service {service.name!r}: deploy.restart_policy"
    if policy.delay or policy.window:
        out.append(
            f"{where}.delay/window cannot be honoured by the engine's restart policy "
            "(it uses its own back-off); run with the pycompose supervisor to honour them"
        )
    if policy.condition == "any" and policy.max_attempts is not None:
        out.append(
            f"{where}.max_attempts cannot be honoured with condition 'any' by the engine "
            "(it restarts forever); run with the pycompose supervisor to honour it"
        )
    return out


def is_ingress(port: PortConfig) -> bool:
    """True when the ingress proxy publishes ``port`` (so no container binds it)."""
    return port.mode == "ingress" and port.published is not None and port.protocol != "sctp"


def published_ports(port: PortConfig, *, path: str = "") -> list[int]:
    """The host ports ``port.published`` names, a range ("8000-8002") expanded."""
    text = (port.published or "").strip()
    try:
        if "-" in text:
            low, high = (int(part) for part in text.split("-", 1))
        else:
            low = high = int(text)
    except ValueError as exc:
        raise ConfigError(
            Problem(
                f"expected a host port or a range like '8000-8010', got {port.published!r}",
                path=path,
            )
        ) from exc
    if not 0 < low <= high <= 65535:
        raise ConfigError(
            Problem(
                f"expected host ports between 1 and 65535 (low-high), got {port.published!r}",
                path=path,
            )
        )
    return list(range(low, high + 1))
