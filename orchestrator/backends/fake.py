"""An in-memory Backend with a real engine's observable rules, for tests of pure logic.

It keeps containers, networks, volumes and images in dicts, answers ``observe`` from
labels as an engine would, and enforces what an engine enforces: unique names
(``Conflict``), no removing a running container without force (``Conflict``), missing
ids and names (``NotFound``), networks must exist before a container joins them. Tests
steer it: health per service, an exit code per service (its containers then exit as soon
as they start, like one-shot jobs), failures injected per method and resource name
(``fail_on={"start": {"p-db-1"}}``), a delay per call to observe parallelism. Every call
is written to ``calls`` as ``(method, name)``.

Named volumes a container mounts are created on the fly, as the docker engine does.
Thread-safe: the executor calls it from several threads.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from orchestrator import labels
from orchestrator.backends.base import (
    Attachment,
    Capabilities,
    ContainerSpec,
    ContainerStatus,
    ExecResult,
    Health,
    LogLine,
    NetworkSpec,
    ObservedContainer,
    ObservedNetwork,
    ObservedState,
    ObservedVolume,
    VolumeSpec,
)
from orchestrator.errors import BackendError, Conflict, NotFound, WaitTimeout

_RUNNING_LIKE = frozenset({"running", "paused", "restarting"})


@dataclass(frozen=True)
class Program:
    """What the fake pretends a container's process does once started.

    ``exit_code`` None: it runs until stopped or killed; otherwise it exits at once with
    it. ``signal_exit_codes`` are the codes it exits with on signals it traps (the
    others end it with 128 + the signal number, as a shell reports).
    """

    stdout: tuple[str, ...] = ()
    stderr: tuple[str, ...] = ()
    exit_code: int | None = None
    signal_exit_codes: Mapping[str, int] = field(default_factory=dict)


_SIGNALS = {
    "SIGHUP": 1,
    "SIGINT": 2,
    "SIGQUIT": 3,
    "SIGKILL": 9,
    "SIGUSR1": 10,
    "SIGUSR2": 12,
    "SIGTERM": 15,
}


@dataclass
class FakeContainer:
    """The fake engine's record of one container (mutable: the engine changes it)."""

    id: str
    spec: ContainerSpec
    name: str
    status: ContainerStatus = "created"
    health: Health = "none"
    exit_code: int | None = None
    created: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    restart_count: int = 0
    serial: int = 0
    logs: list[LogLine] = field(default_factory=list)


class FakeBackend:
    """See the module docstring. ``clock`` stamps created/started/finished times."""

    def __init__(
        self,
        *,
        name: str = "fake",
        health: Mapping[str, Health] | None = None,
        exit_codes: Mapping[str, int] | None = None,
        fail_on: Mapping[str, Collection[str]] | None = None,
        missing_images: Collection[str] = (),
        images: Collection[str] | None = None,
        call_delay: float = 0.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._name = name
        self.health: dict[str, Health] = dict(health or {})
        self.exit_codes: dict[str, int] = dict(exit_codes or {})
        self.fail_on: dict[str, set[str]] = {k: set(v) for k, v in (fail_on or {}).items()}
        self.missing_images = set(missing_images)
        self.call_delay = call_delay
        self._clock = clock or time.time
        self.containers: dict[str, FakeContainer] = {}
        self.networks: dict[str, ObservedNetwork] = {}
        self.volumes: dict[str, ObservedVolume] = {}
        # None: every image is present locally, as after a pull
        self.images: set[str] | None = None if images is None else set(images)
        self.pulled: list[str] = []
        self.programs: dict[str, Program] = {}
        # what ``exec`` answers per command line; anything else: exit 0, no output
        self.exec_results: dict[tuple[str, ...], ExecResult] = {}
        self.calls: list[tuple[str, str]] = []
        self.max_concurrent_calls = 0
        self._in_flight = 0
        self._serial = 0
        self._lock = threading.RLock()

    # -- test helpers ---------------------------------------------------------------------

    def add_network(self, name: str, labels_: Mapping[str, str] | None = None) -> None:
        """A network that exists outside any project (an ``external`` one)."""
        with self._lock:
            self.networks[name] = ObservedNetwork(name, self._new_id(name), dict(labels_ or {}))

    def add_volume(self, name: str, labels_: Mapping[str, str] | None = None) -> None:
        with self._lock:
            self.volumes[name] = ObservedVolume(name, dict(labels_ or {}))

    def set_health(self, service: str, health: Health) -> None:
        """The health the service's running containers report from now on."""
        with self._lock:
            self.health[service] = health
            for record in self.containers.values():
                if record.spec.service.name == service and record.status == "running":
                    record.health = health

    def exit_container(self, name_or_id: str, exit_code: int = 0) -> None:
        """The container's process ends by itself with ``exit_code``."""
        with self._lock:
            record = self._find(name_or_id)
            record.status, record.exit_code = "exited", exit_code
            record.finished_at = self._now()

    def set_program(self, container_name: str, program: Program) -> None:
        """What the container called ``container_name`` does when started (create it later)."""
        with self._lock:
            self.programs[container_name] = program

    def container(self, name_or_id: str) -> FakeContainer:
        with self._lock:
            return self._find(name_or_id)

    def calls_to(self, method: str) -> list[str]:
        """The names ``method`` was called on, in call order."""
        with self._lock:
            return [name for called, name in self.calls if called == method]

    # -- the protocol ---------------------------------------------------------------------

    def capabilities(self) -> Capabilities:
        return Capabilities(name=self._name)

    def observe(self, project: str) -> ObservedState:
        with self._call("observe", project):
            containers = tuple(
                self._observed(r)
                for r in sorted(self.containers.values(), key=lambda r: r.name)
                if r.spec.labels.get(labels.PROJECT) == project
            )
            networks = tuple(
                n
                for _, n in sorted(self.networks.items())
                if n.labels.get(labels.PROJECT) == project
            )
            volumes = tuple(
                v
                for _, v in sorted(self.volumes.items())
                if v.labels.get(labels.PROJECT) == project
            )
            return ObservedState(project, containers, networks, volumes)

    def list_projects(self) -> list[str]:
        with self._call("list_projects", ""):
            found = {r.spec.labels.get(labels.PROJECT, "") for r in self.containers.values()}
            return sorted(p for p in found if p)

    def ensure_image(self, image: str, pull_policy: str | None = None) -> None:
        with self._call("ensure_image", image):
            if image in self.missing_images:
                raise NotFound(f"image {image!r} not found: pull access denied or no such image")
            present = self.images is None or image in self.images
            if pull_policy == "never" and not present:
                raise NotFound(f"image {image!r} is not present and pull_policy is 'never'")
            if not present or pull_policy == "always":
                self.pulled.append(image)
            if self.images is not None:
                self.images.add(image)

    def create_network(self, spec: NetworkSpec) -> None:
        name = spec.network.name
        with self._call("create_network", name):
            if name in self.networks:
                raise Conflict(f"network {name!r} already exists")
            merged = {**spec.network.labels, **spec.labels}
            self.networks[name] = ObservedNetwork(name, self._new_id(name), merged)

    def remove_network(self, name: str) -> None:
        with self._call("remove_network", name):
            if name not in self.networks:
                raise NotFound(f"no such network: {name!r}")
            users = [
                r.name
                for r in self.containers.values()
                if r.status in _RUNNING_LIKE and name in {a.network for a in r.spec.attachments}
            ]
            if users:
                raise Conflict(f"network {name!r} has active endpoints: {', '.join(users)}")
            del self.networks[name]

    def create_volume(self, spec: VolumeSpec) -> None:
        name = spec.volume.name
        with self._call("create_volume", name):
            if name in self.volumes:
                raise Conflict(f"volume {name!r} already exists")
            self.volumes[name] = ObservedVolume(name, {**spec.volume.labels, **spec.labels})

    def remove_volume(self, name: str) -> None:
        with self._call("remove_volume", name):
            if name not in self.volumes:
                raise NotFound(f"no such volume: {name!r}")
            users = [
                r.name for r in self.containers.values() if name in r.spec.volume_names.values()
            ]
            if users:
                raise Conflict(f"volume {name!r} is in use by {', '.join(users)}")
            del self.volumes[name]

    def create_container(self, spec: ContainerSpec) -> str:
        with self._call("create", spec.name):
            if any(r.name == spec.name for r in self.containers.values()):
                raise Conflict(f"container name {spec.name!r} is already in use")
            for attachment in spec.attachments:
                if attachment.network not in self.networks:
                    raise NotFound(f"network {attachment.network!r} not found")
            mode = spec.network_mode or ""
            if mode.startswith("service:"):
                raise BackendError(f"network_mode {mode!r} must be resolved before create")
            if mode.startswith("container:"):
                self._find(mode[len("container:") :])
            for volume in spec.volume_names.values():
                self.volumes.setdefault(volume, ObservedVolume(volume, {}))
            container_id = self._new_id(spec.name)
            self.containers[container_id] = FakeContainer(
                container_id, spec, spec.name, created=self._now(), serial=self._serial
            )
            return container_id

    def start_container(self, container_id: str) -> None:
        with self._call("start", self._name_of(container_id)):
            record = self._find(container_id)
            if record.status in ("running", "restarting"):
                return  # the engine answers "already started" and changes nothing
            if record.status == "paused":
                raise Conflict(f"container {record.name!r} is paused; unpause it instead")
            mode = record.spec.network_mode or ""
            if mode.startswith("container:"):
                shared = self._find(mode[len("container:") :])
                if shared.status != "running":
                    raise Conflict(f"cannot join the network of {shared.name!r}: it is not running")
            service = record.spec.service
            record.status, record.exit_code = "running", None
            record.started_at, record.finished_at = self._now(), None
            if service.name in self.health:
                record.health = self.health[service.name]
            elif service.healthcheck is not None and not service.healthcheck.disable:
                record.health = "healthy"  # no process here that could fail its check
            else:
                record.health = "none"
            program = self.programs.get(record.name, Program())
            record.logs += [LogLine(record.name, "stdout", text) for text in program.stdout]
            record.logs += [LogLine(record.name, "stderr", text) for text in program.stderr]
            exit_code = self.exit_codes.get(service.name, program.exit_code)
            if exit_code is not None:
                record.status, record.exit_code = "exited", exit_code
                record.finished_at = self._now()

    def stop_container(self, container_id: str, timeout: float | None = None) -> None:
        with self._call("stop", self._name_of(container_id)):
            record = self._find(container_id)
            if record.status in _RUNNING_LIKE:
                program = self.programs.get(record.name, Program())
                code = program.signal_exit_codes.get("SIGTERM", 0)
                record.status, record.exit_code = "exited", code
                record.finished_at = self._now()

    def kill_container(self, container_id: str, signal: str = "SIGKILL") -> None:
        with self._call("kill", self._name_of(container_id)):
            record = self._find(container_id)
            if record.status not in _RUNNING_LIKE:
                raise Conflict(f"container {record.name!r} is not running")
            program = self.programs.get(record.name, Program())
            code = program.signal_exit_codes.get(signal, 128 + _SIGNALS.get(signal, 9))
            record.status, record.exit_code = "exited", code
            record.finished_at = self._now()

    def remove_container(self, container_id: str, *, force: bool = False) -> None:
        with self._call("remove", self._name_of(container_id)):
            record = self._find(container_id)
            if record.status in _RUNNING_LIKE and not force:
                raise Conflict(
                    f"cannot remove container {record.name!r}: it is {record.status}; "
                    "stop it first or force the removal"
                )
            del self.containers[record.id]

    def rename_container(self, container_id: str, new_name: str) -> None:
        with self._call("rename", self._name_of(container_id)):
            record = self._find(container_id)
            if any(r.name == new_name for r in self.containers.values() if r is not record):
                raise Conflict(f"container name {new_name!r} is already in use")
            record.name = new_name

    def set_network_attachment(
        self, container_id: str, network: str, attachment: Attachment | None
    ) -> None:
        with self._call("set_network_attachment", self._name_of(container_id)):
            record = self._find(container_id)
            if attachment is not None and attachment.network != network:
                raise BackendError(f"attachment for {attachment.network!r} given for {network!r}")
            if attachment is not None and network not in self.networks:
                raise NotFound(f"network {network!r} not found")
            kept = tuple(a for a in record.spec.attachments if a.network != network)
            added = (attachment,) if attachment is not None else ()
            record.spec = replace(record.spec, attachments=kept + added)

    def pause_container(self, container_id: str) -> None:
        with self._call("pause", self._name_of(container_id)):
            record = self._find(container_id)
            if record.status != "running":
                raise Conflict(f"container {record.name!r} is not running")
            record.status = "paused"

    def unpause_container(self, container_id: str) -> None:
        with self._call("unpause", self._name_of(container_id)):
            record = self._find(container_id)
            if record.status != "paused":
                raise Conflict(f"container {record.name!r} is not paused")
            record.status = "running"

    def inspect_container(self, container_id: str) -> ObservedContainer:
        with self._call("inspect", self._name_of(container_id)):
            return self._observed(self._find(container_id))

    def wait_container(self, container_id: str, timeout: float | None = None) -> int:
        """The exit code of an exited container; a running one never exits by itself here."""
        with self._call("wait", self._name_of(container_id)):
            record = self._find(container_id)
            if record.status in ("exited", "dead"):
                return record.exit_code if record.exit_code is not None else 0
            raise WaitTimeout(f"container {record.name!r} is still {record.status}")

    def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        timestamps: bool = False,
    ) -> Iterator[LogLine]:
        with self._call("logs", self._name_of(container_id)):
            lines = list(self._find(container_id).logs)
        if tail is not None:
            lines = lines[-tail:] if tail > 0 else []
        return iter(lines)

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
    ) -> ExecResult:
        with self._call("exec", self._name_of(container_id)):
            record = self._find(container_id)
            if record.status != "running":
                raise Conflict(f"container {record.name!r} is not running")
            return self.exec_results.get(tuple(command), ExecResult(0))

    def top(self, container_id: str) -> list[list[str]]:
        with self._call("top", self._name_of(container_id)):
            record = self._find(container_id)
            if record.status != "running":
                raise Conflict(f"container {record.name!r} is not running")
            command = " ".join(record.spec.command_override or record.spec.service.command or ())
            return [["PID", "CMD"], ["1", command]]

    def close(self) -> None:
        with self._lock:
            self.calls.append(("close", ""))

    # -- internals ------------------------------------------------------------------------

    def _call(self, method: str, name: str) -> _Call:
        return _Call(self, method, name)

    def _find(self, name_or_id: str) -> FakeContainer:
        record = self.containers.get(name_or_id)
        if record is not None:
            return record
        for candidate in self.containers.values():
            if candidate.name == name_or_id:
                return candidate
        raise NotFound(f"no such container: {name_or_id!r}")

    def _name_of(self, name_or_id: str) -> str:
        with self._lock:
            record = self.containers.get(name_or_id)
            return record.name if record is not None else name_or_id

    def _new_id(self, seed: str) -> str:
        self._serial += 1
        return hashlib.sha256(f"{seed}/{self._serial}".encode()).hexdigest()

    def _now(self) -> float:
        return self._clock()

    def _observed(self, record: FakeContainer) -> ObservedContainer:
        spec = record.spec
        addresses = {
            a.network: a.ipv4_address
            or f"10.{index}.{record.serial // 250}.{record.serial % 250 + 2}"
            for index, a in enumerate(spec.attachments, start=1)
        }
        return ObservedContainer(
            id=record.id,
            name=record.name,
            project=spec.project,
            service=spec.service.name,
            number=spec.number,
            status=record.status,
            labels=dict(spec.labels),
            image=spec.service.image or "",
            health=record.health if record.status == "running" else "none",
            exit_code=record.exit_code,
            created=record.created,
            started_at=record.started_at,
            finished_at=record.finished_at,
            restart_count=record.restart_count,
            oneoff=spec.oneoff,
            addresses=addresses,
        )


class _Call:
    """Logs one call, applies the injected delay and failure, and holds the lock inside."""

    def __init__(self, backend: FakeBackend, method: str, name: str) -> None:
        self.backend, self.method, self.name = backend, method, name

    def __enter__(self) -> None:
        backend = self.backend
        with backend._lock:
            backend.calls.append((self.method, self.name))
            backend._in_flight += 1
            backend.max_concurrent_calls = max(backend.max_concurrent_calls, backend._in_flight)
        try:
            if backend.call_delay:
                time.sleep(backend.call_delay)
            if self.name in backend.fail_on.get(self.method, ()):
                raise BackendError(f"injected failure: {self.method} {self.name}")
        except BaseException:
            self._leave()
            raise
        backend._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self.backend._lock.release()
        self._leave()

    def _leave(self) -> None:
        with self.backend._lock:
            self.backend._in_flight -= 1
