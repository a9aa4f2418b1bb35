"""A compose service in canonical (long) form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from orchestrator.model.deploy import Deploy


@dataclass(frozen=True)
class Build:
    context: str  # absolute path or a URL
    dockerfile: str | None = None
    dockerfile_inline: str | None = None
    args: dict[str, str | None] = field(default_factory=dict)
    target: str | None = None
    tags: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    # cache_from, network, platforms, secrets, ... passed through untouched
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PortConfig:
    """One published or exposed port, long syntax.

    ``published`` is a string because it may be a range ("8000-8010"); None asks the
    engine for a random host port. ``mode`` ingress (the default) publishes once on the
    host and balances over the replicas; host binds per container.
    """

    target: int
    published: str | None = None
    host_ip: str | None = None
    protocol: Literal["tcp", "udp", "sctp"] = "tcp"
    mode: Literal["ingress", "host"] = "ingress"
    name: str | None = None
    app_protocol: str | None = None
    # a short-syntax target range ("8000-8010:80-90") is expanded to one PortConfig each


@dataclass(frozen=True)
class ServiceVolume:
    """A mount, long syntax. ``source`` of a bind is absolute; of a named volume, its key."""

    type: Literal["bind", "volume", "tmpfs", "npipe", "cluster", "image"]
    target: str
    source: str | None = None
    read_only: bool = False
    consistency: str | None = None
    bind_propagation: str | None = None
    bind_create_host_path: bool = False  # the short syntax sets it (docker creates those)
    bind_selinux: str | None = None
    volume_nocopy: bool = False
    volume_subpath: str | None = None
    tmpfs_size: int | None = None  # bytes
    tmpfs_mode: int | None = None


@dataclass(frozen=True)
class ServiceNetwork:
    aliases: tuple[str, ...] = ()
    ipv4_address: str | None = None
    ipv6_address: str | None = None
    link_local_ips: tuple[str, ...] = ()
    mac_address: str | None = None
    priority: int = 0
    driver_opts: dict[str, str] = field(default_factory=dict)


DependsCondition = Literal[
    "service_started", "service_healthy", "service_completed_successfully"
]


@dataclass(frozen=True)
class DependsOn:
    condition: DependsCondition = "service_started"
    required: bool = True
    restart: bool = False


@dataclass(frozen=True)
class Healthcheck:
    """``test`` is canonical: ("CMD", ...), ("CMD-SHELL", "..."), or ("NONE",)."""

    test: tuple[str, ...] = ()
    interval: float | None = None  # seconds; None: engine default (30s)
    timeout: float | None = None
    retries: int | None = None
    start_period: float | None = None
    start_interval: float | None = None
    disable: bool = False


@dataclass(frozen=True)
class Logging:
    driver: str | None = None
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Ulimit:
    soft: int
    hard: int


@dataclass(frozen=True)
class ServiceFile:
    """A service's reference to a top-level secret or config, long syntax."""

    source: str
    target: str | None = None
    uid: str | None = None
    gid: str | None = None
    mode: int | None = None


RestartSetting = Literal["no", "always", "on-failure", "unless-stopped"]


@dataclass(frozen=True)
class Service:
    name: str
    image: str | None = None
    build: Build | None = None
    command: tuple[str, ...] | None = None  # None: image default; () : explicitly empty
    entrypoint: tuple[str, ...] | None = None
    environment: dict[str, str | None] = field(default_factory=dict)  # env_file merged in
    env_file: tuple[str, ...] = ()  # absolute paths, kept for `config` round trips
    ports: tuple[PortConfig, ...] = ()
    expose: tuple[str, ...] = ()
    volumes: tuple[ServiceVolume, ...] = ()
    volumes_from: tuple[str, ...] = ()
    networks: dict[str, ServiceNetwork] = field(default_factory=dict)
    network_mode: str | None = None
    depends_on: dict[str, DependsOn] = field(default_factory=dict)
    links: tuple[str, ...] = ()
    external_links: tuple[str, ...] = ()
    hostname: str | None = None
    domainname: str | None = None
    user: str | None = None
    working_dir: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    logging: Logging | None = None
    init: bool | None = None
    stop_signal: str | None = None
    stop_grace_period: float | None = None  # seconds
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False
    read_only: bool = False
    tmpfs: tuple[str, ...] = ()
    ulimits: dict[str, Ulimit] = field(default_factory=dict)
    sysctls: dict[str, str] = field(default_factory=dict)
    extra_hosts: tuple[str, ...] = ()  # "host:ip"
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_opt: tuple[str, ...] = ()
    pid: str | None = None
    ipc: str | None = None
    shm_size: int | None = None  # bytes
    healthcheck: Healthcheck | None = None
    mem_limit: int | None = None  # bytes
    mem_reservation: int | None = None
    cpus: float | None = None
    cpu_shares: int | None = None
    pids_limit: int | None = None
    restart: RestartSetting | None = None
    restart_max_retries: int | None = None  # the N of "on-failure:N"
    deploy: Deploy | None = None
    scale: int | None = None
    container_name: str | None = None
    profiles: tuple[str, ...] = ()
    secrets: tuple[ServiceFile, ...] = ()
    configs: tuple[ServiceFile, ...] = ()
    stdin_open: bool = False
    tty: bool = False
    platform: str | None = None
    pull_policy: str | None = None
    devices: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()
    group_add: tuple[str, ...] = ()
    # Spec keys we pass through without typing, and x-* extensions, as loaded.
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def replicas(self) -> int:
        """The effective replica count: ``scale``, else ``deploy.replicas``, else 1."""
        if self.scale is not None:
            return self.scale
        if self.deploy is not None and self.deploy.replicas is not None:
            return self.deploy.replicas
        return 1


ReferenceKind = Literal["depends_on", "links", "network_mode", "volumes_from", "ipc", "pid"]


@dataclass(frozen=True)
class ServiceReference:
    """One way a service names another service of the project.

    Kept beside the model so the graph, the semantic checks and the planner agree on what
    counts as a reference. ``path`` is relative to the service (``("links", 0)``,
    ``("depends_on", "db")``, ``("network_mode",)``); ``required`` is false only for a
    ``depends_on`` entry marked ``required: false``.
    """

    kind: ReferenceKind
    target: str
    path: tuple[str | int, ...]
    required: bool = True


def _service_prefixed(value: str | None) -> str | None:
    if value is not None and value.startswith("service:"):
        return value[len("service:") :]
    return None


def service_references(service: Service) -> tuple[ServiceReference, ...]:
    """Every other service ``service`` names: depends_on, links, volumes_from, service:x modes.

    ``container:...`` forms name containers, not services, and are left out.
    """
    refs: list[ServiceReference] = [
        ServiceReference("depends_on", name, ("depends_on", name), dep.required)
        for name, dep in service.depends_on.items()
    ]
    refs.extend(
        ServiceReference("links", link.split(":", 1)[0], ("links", index))
        for index, link in enumerate(service.links)
    )
    modes: tuple[tuple[ReferenceKind, str | None], ...] = (
        ("network_mode", service.network_mode),
        ("ipc", service.ipc),
        ("pid", service.pid),
    )
    for kind, value in modes:
        target = _service_prefixed(value)
        if target:
            refs.append(ServiceReference(kind, target, (kind,)))
    refs.extend(
        ServiceReference("volumes_from", entry.split(":", 1)[0], ("volumes_from", index))
        for index, entry in enumerate(service.volumes_from)
        if not entry.startswith("container:")
    )
    return tuple(refs)
