"""The Backend protocol shared by the docker and namespace backends (and the fake).

Resource-level and decision-free: the planner decides *what* to do, the executor calls
these methods in order, a backend only knows *how*. Everything a backend reports about the
world comes back through ``observe`` as data, parsed from labels; no backend keeps a state
file the engine does not already hold.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from orchestrator.model import (
    Build,
    ConfigObject,
    Network,
    SecretObject,
    Service,
    Volume,
)

ContainerStatus = Literal[
    "created", "running", "paused", "restarting", "removing", "exited", "dead"
]
Health = Literal["starting", "healthy", "unhealthy", "none"]


@dataclass(frozen=True)
class Capabilities:
    """What a backend can honour, as data. Keys it cannot honour are warned about."""

    name: str
    ingress_ports: bool = True
    healthchecks: bool = True
    restart_policies: tuple[str, ...] = ("no", "always", "on-failure", "unless-stopped")
    # compose service keys this backend ignores; the loader warns when a file uses them
    unsupported_keys: frozenset[str] = frozenset()
    # set_network_attachment can change a connected container's aliases without cutting its
    # endpoint: a rolling update then takes a replica's service name away while it still
    # serves, before disconnecting it (docker's engine can only disconnect and reconnect)
    aliases_in_place: bool = False


@dataclass(frozen=True)
class NetworkSpec:
    """A network to create: the model's Network plus the labels to stamp on it."""

    network: Network
    labels: Mapping[str, str]


@dataclass(frozen=True)
class VolumeSpec:
    volume: Volume
    labels: Mapping[str, str]


@dataclass(frozen=True)
class Attachment:
    """One network a container joins: engine-side network name and the aliases it answers to."""

    network: str
    aliases: tuple[str, ...] = ()
    ipv4_address: str | None = None
    ipv6_address: str | None = None
    mac_address: str | None = None


@dataclass(frozen=True)
class ContainerSpec:
    """Everything a backend needs to create one container of a service.

    ``service`` is the canonical model; the fields beside it are what the core resolved
    for this replica: its name and number, its labels, engine-side network and volume
    names. ``publish_ports`` are the ports this container binds on the host itself
    (``mode: host`` ones); ingress ports are published once, by the ingress proxy.
    ``engine_restart`` is the restart policy the engine applies itself ("no" whenever
    the pycompose supervisor manages restarts, so the two never fight).
    """

    project: str
    service: Service
    name: str
    number: int
    labels: Mapping[str, str]
    attachments: tuple[Attachment, ...] = ()
    network_mode: str | None = None  # resolved: "bridge", "host", "none", "container:<id>"
    volume_names: Mapping[str, str] = field(default_factory=dict)  # volume key -> engine name
    publish_ports: tuple[int, ...] = ()  # indexes into service.ports
    engine_restart: str = "no"
    engine_restart_max_retries: int = 0
    oneoff: bool = False
    command_override: tuple[str, ...] | None = None  # `run SERVICE CMD...`
    # the top-level secrets and configs the service references (by key), for backends
    # that place them in the container themselves
    secrets: Mapping[str, SecretObject] = field(default_factory=dict)
    configs: Mapping[str, ConfigObject] = field(default_factory=dict)


@dataclass(frozen=True)
class ObservedContainer:
    id: str
    name: str
    project: str
    service: str
    number: int
    status: ContainerStatus
    labels: Mapping[str, str]
    image: str = ""
    health: Health = "none"
    exit_code: int | None = None
    created: float = 0.0  # unix seconds
    started_at: float | None = None
    finished_at: float | None = None
    restart_count: int = 0
    oneoff: bool = False
    # network name -> IPv4 address on it (no mask)
    addresses: Mapping[str, str] = field(default_factory=dict)
    # "80/tcp" -> [(host_ip, host_port), ...] for ports the container publishes itself
    published: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)

    @property
    def config_hash(self) -> str:
        from orchestrator import labels

        return self.labels.get(labels.CONFIG_HASH, "")


@dataclass(frozen=True)
class ObservedNetwork:
    name: str
    id: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class ObservedVolume:
    name: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class ObservedState:
    """One snapshot of a project's resources on a backend."""

    project: str
    containers: tuple[ObservedContainer, ...] = ()
    networks: tuple[ObservedNetwork, ...] = ()
    volumes: tuple[ObservedVolume, ...] = ()

    def service_containers(self, service: str, *, oneoff: bool = False) -> list[ObservedContainer]:
        """Containers of ``service``, lowest number first."""
        found = [c for c in self.containers if c.service == service and c.oneoff == oneoff]
        return sorted(found, key=lambda c: c.number)


@dataclass(frozen=True)
class LogLine:
    container: str  # container name
    stream: Literal["stdout", "stderr"]
    text: str  # without the trailing newline
    timestamp: float | None = None


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: bytes = b""


@runtime_checkable
class Backend(Protocol):
    """The resource-level contract. Methods raise ``orchestrator.errors`` types only."""

    def capabilities(self) -> Capabilities: ...

    def observe(self, project: str) -> ObservedState: ...

    def list_projects(self) -> list[str]: ...

    def ensure_image(self, image: str, pull_policy: str | None = None) -> None:
        """Make ``image`` present (pull it if the policy says so); NotFound when it cannot."""
        ...

    def create_network(self, spec: NetworkSpec) -> None: ...

    def remove_network(self, name: str) -> None: ...

    def create_volume(self, spec: VolumeSpec) -> None: ...

    def remove_volume(self, name: str) -> None: ...

    def create_container(self, spec: ContainerSpec) -> str:
        """Create (not start) the container; returns its id."""
        ...

    def start_container(self, container_id: str) -> None: ...

    def stop_container(self, container_id: str, timeout: float | None = None) -> None: ...

    def kill_container(self, container_id: str, signal: str = "SIGKILL") -> None: ...

    def remove_container(self, container_id: str, *, force: bool = False) -> None: ...

    def rename_container(self, container_id: str, new_name: str) -> None: ...

    def set_network_attachment(
        self, container_id: str, network: str, attachment: Attachment | None
    ) -> None:
        """Make the container's endpoint on ``network`` be ``attachment`` (aliases,
        addresses), disconnecting it first when it is connected; None only disconnects
        (not being connected is fine). A rolling update uses it so the service name
        resolves only to replicas that are ready, and never to one about to stop."""
        ...

    def pause_container(self, container_id: str) -> None: ...

    def unpause_container(self, container_id: str) -> None: ...

    def inspect_container(self, container_id: str) -> ObservedContainer: ...

    def wait_container(self, container_id: str, timeout: float | None = None) -> int:
        """Block until the container exits; its exit code."""
        ...

    def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        timestamps: bool = False,
    ) -> Iterator[LogLine]: ...

    def exec(
        self,
        container_id: str,
        command: Sequence[str],
        *,
        tty: bool = False,
        interactive: bool = False,
        user: str | None = None,
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ExecResult: ...

    def top(self, container_id: str) -> list[list[str]]:
        """Process table: first row is the header."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ContainerEvent:
    """A change to a container, as an engine pushes it (die, start, health_status …)."""

    project: str
    container_id: str
    action: str
    time: float = 0.0


@runtime_checkable
class ImageBuilder(Protocol):
    """Optional, beside Backend: a backend that builds images from a compose ``build``
    section: the docker engine's builder, or pycompose's own on the namespace backend.
    ``no_cache`` ignores cached steps; ``pull`` fetches base images afresh."""

    def build_image(
        self, build: Build, tag: str, *, no_cache: bool = False, pull: bool = False
    ) -> None: ...


@runtime_checkable
class EventSource(Protocol):
    """Optional, beside Backend: a backend that pushes container changes as they happen.

    The supervisor uses it for promptness (a restart within its delay, not a poll later)
    and still observes periodically, so a backend without it is supervised too.
    """

    def container_events(self) -> Iterator[ContainerEvent]:
        """Block and yield events of containers labelled with a compose project, forever
        (until the engine goes away: then it ends or raises a BackendError)."""
        ...
