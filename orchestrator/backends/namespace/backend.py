"""NamespaceBackend: the Backend protocol over pycompose's own runtime (no Docker engine).

Containers are the runtime's (``orchestrator.runtime``: a C spawner, one shim per
container that outlives the CLI, overlayfs, namespaces, cgroups); images come from the
local store (``orchestrator.runtime.images``), copied from a Docker engine on first use
when one answers (``image_source``, given by the factory, so the docker SDK stays out of
this package). Compose metadata (name, labels) is kept in records beside the runtime's
state (``store.Records``) and parsed by ``observe`` exactly as the docker backend parses
engine labels.

Healthchecks are run by each container's shim (interval, timeout, retries, start period;
the probe enters the container like ``exec``) and written to a status file that
``observe`` and ``inspect_container`` read, so they keep running after the CLI exits.
Restart policies are the supervisor's (the runtime never restarts on its own).

Not yet (issue 6): bridge networks, DNS, published ports. Networks are recorded (labels,
observe) but a container gets loopback only, or the host's network with
``network_mode: host``; the capabilities list these keys, so every use is warned about.
"""

from __future__ import annotations

import contextlib
import secrets
import signal as signals
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path

from orchestrator import labels as L
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
from orchestrator.backends.namespace import convert
from orchestrator.backends.namespace.store import Meta, Records, state_root
from orchestrator.errors import Conflict, NotFound, Unsupported
from orchestrator.runtime.container import Container, Runtime
from orchestrator.runtime.images import Image, Store, load_docker_save
from orchestrator.runtime.spawner import ensure_spawner
from orchestrator.runtime.users import resolve_in_layers

# keys the namespace backend cannot honour yet; the loader warns per service that uses them
UNSUPPORTED_KEYS = frozenset(
    {
        "networks",
        "ports",
        "expose",
        "links",
        "external_links",
        "extra_hosts",
        "dns",
        "dns_search",
        "dns_opt",
        "domainname",
        "volumes_from",
        "devices",
        "security_opt",
        "secrets",
        "configs",
        "shm_size",
        "tty",
        "stdin_open",
        "group_add",
        "platform",
        "credential_spec",
        "deploy.placement",
        "deploy.endpoint_mode",
        "deploy.resources.reservations.generic_resources",
    }
)
_NO_COPY = ("never", "build")

ImageSource = Callable[[str], Iterable[bytes]]
"""A ``docker save`` archive of an image, as chunks (None: no engine to copy from)."""


def _parse_time(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")[:26] + "+00:00").timestamp()
    except ValueError:
        return None


def _signal_number(name: str) -> int:
    text = name.strip().upper()
    if text.isdigit():
        return int(text)
    try:
        return int(signals.Signals[text if text.startswith("SIG") else "SIG" + text])
    except KeyError as exc:
        raise Unsupported(f"unknown signal {name!r}") from exc


class NamespaceBackend:
    """Containers of the built-in runtime under ``root`` (the state root)."""

    def __init__(
        self,
        root: Path | None = None,
        *,
        image_source: ImageSource | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        self.root = root or state_root()
        self.records = Records(self.root)
        self.images = Store.at_state_root(self.root)
        self._image_source = image_source
        self._runtime = runtime
        self._lock = threading.Lock()
        self._resolved: dict[str, Image] = {}

    @property
    def runtime(self) -> Runtime:
        """Built on first use: the cgroup driver is detected and the spawner compiled."""
        with self._lock:
            if self._runtime is None:
                self._runtime = Runtime(
                    self.records.containers, spawner=ensure_spawner(self.root / "bin")
                )
            return self._runtime

    # ------------------------------------------------------------------ helpers

    def _id(self, ref: str) -> str:
        """A container id from an id, a name or an id prefix of 12+ characters."""
        if (self.records.meta / f"{ref}.json").exists() and "/" not in ref:
            return ref
        owner = self.records.name_owner(ref)
        if owner is not None and (self.records.meta / f"{owner}.json").exists():
            return owner
        if len(ref) >= 12:
            found = [i for i in self.records.container_ids() if i.startswith(ref)]
            if len(found) == 1:
                return found[0]
        raise NotFound(f"no such container: {ref}")

    def _container(self, ref: str) -> tuple[Meta, Container]:
        container_id = self._id(ref)
        meta = self.records.load_meta(container_id)
        return meta, self.runtime.get(container_id)

    def _image(self, name: str) -> Image:
        with self._lock:
            cached = self._resolved.get(name)
        if cached is not None:
            return cached
        image = self.images.resolve(name)
        with self._lock:
            self._resolved[name] = image
        return image

    def _observed(self, meta: Meta) -> ObservedContainer:
        labels = dict(meta.labels)
        status: ContainerStatus = "dead"
        health: Health = "none"
        exit_code: int | None = None
        started = finished = None
        try:
            container = self.runtime.get(meta.id)
        except NotFound:
            container = None  # an interrupted create or remove: `rm` finishes it
        if container is not None:
            state = container.state()
            status = state.status
            exit_code = state.exit_code
            started, finished = state.started_at, state.finished_at
            probe = container.health()
            if container.config.healthcheck is not None:
                health = probe.status if probe is not None else "starting"  # type: ignore[assignment]
                if status != "running" and probe is None:
                    health = "none"
        return ObservedContainer(
            id=meta.id,
            name=meta.name,
            project=labels.get(L.PROJECT, ""),
            service=labels.get(L.SERVICE, ""),
            number=int(labels.get(L.CONTAINER_NUMBER, "0") or 0),
            status=status,
            labels=labels,
            image=meta.image,
            health=health,
            exit_code=exit_code,
            created=meta.created,
            started_at=started,
            finished_at=finished,
            oneoff=labels.get(L.ONEOFF, "False").lower() == "true",
        )

    # ------------------------------------------------------------------ observe

    def capabilities(self) -> Capabilities:
        return Capabilities(
            name="namespace",
            ingress_ports=False,
            restart_policies=("no",),  # the supervisor restarts; the runtime never does
            unsupported_keys=UNSUPPORTED_KEYS,
        )

    def observe(self, project: str) -> ObservedState:
        containers = [
            self._observed(m) for m in self.records.all_meta() if m.labels.get(L.PROJECT) == project
        ]
        return ObservedState(
            project=project,
            containers=tuple(sorted(containers, key=lambda c: (c.service, c.number, c.name))),
            networks=tuple(
                ObservedNetwork(name=name, id=nid, labels=labels)
                for name, nid, labels in self.records.networks_all()
                if labels.get(L.PROJECT) == project
            ),
            volumes=tuple(
                ObservedVolume(name=name, labels=labels)
                for name, labels in self.records.volumes_all()
                if labels.get(L.PROJECT) == project
            ),
        )

    def list_projects(self) -> list[str]:
        return sorted(
            {m.labels[L.PROJECT] for m in self.records.all_meta() if m.labels.get(L.PROJECT)}
        )

    # ------------------------------------------------------------------ images

    def ensure_image(self, image: str, pull_policy: str | None = None) -> None:
        """In the store already; else copied from a Docker engine when one answers (unless
        the policy forbids fetching); else NotFound."""
        policy = (pull_policy or "missing").lower()
        try:
            self._image(image)
            present = True
        except NotFound:
            present = False
        if present and policy != "always":
            return
        if policy in _NO_COPY or self._image_source is None:
            if present:
                return
            why = f"pull_policy is {policy!r}" if policy in _NO_COPY else "no Docker engine"
            raise NotFound(
                f"image {image} is not in the namespace image store ({self.root / 'images'}) "
                f"and cannot be copied ({why}): load it with `pycompose image load -i FILE`"
            )
        try:
            load_docker_save(self.images, self._image_source(image))
        except NotFound:
            if present:
                return
            raise
        with self._lock:
            self._resolved.pop(image, None)
        self._image(image)

    # ------------------------------------------------------------------ networks / volumes

    def create_network(self, spec: NetworkSpec) -> None:
        network = spec.network
        if network.external:
            if not self.records.network_exists(network.name):
                raise NotFound(f"network {network.name} is declared as external, but it does "
                               "not exist on the namespace backend")
            return
        self.records.save_network(
            network.name, secrets.token_hex(32), {**network.labels, **spec.labels}
        )

    def remove_network(self, name: str) -> None:
        self.records.drop_network(name)

    def create_volume(self, spec: VolumeSpec) -> None:
        volume = spec.volume
        if volume.external:
            if not self.records.volume_exists(volume.name):
                raise NotFound(f"volume {volume.name} is declared as external, but it does "
                               "not exist on the namespace backend")
            return
        if volume.driver not in (None, "local") or volume.driver_opts:
            raise Unsupported(f"volume {volume.name}: only local directories are supported")
        self.records.save_volume(volume.name, {**volume.labels, **spec.labels})

    def remove_volume(self, name: str) -> None:
        in_use = [
            m.name for m in self.records.all_meta()
            if self._uses_volume(m.id, str(self.records.volume_path(name)))
        ]
        if in_use:
            raise Conflict(f"volume {name} is in use by {', '.join(in_use)}")
        self.records.drop_volume(name)

    def _uses_volume(self, container_id: str, path: str) -> bool:
        try:
            return any(m.source == path for m in self.runtime.get(container_id).config.mounts)
        except NotFound:
            return False

    # ------------------------------------------------------------------ containers

    def create_container(self, spec: ContainerSpec) -> str:
        image_name = spec.service.image or ""
        image = self._image(image_name)
        container_id = secrets.token_hex(32)
        lowerdirs = tuple(str(p) for p in reversed(image.layers))
        volume_paths = {
            engine: str(self.records.volume_path(engine))
            for engine in spec.volume_names.values()
            if self.records.volume_exists(engine)
        }
        config = convert.container_config(
            spec,
            convert.Inputs(
                container_id=container_id,
                image=image.config,
                lowerdirs=lowerdirs,
                volume_paths=volume_paths,
                resolve_user=lambda user: resolve_in_layers(user, lowerdirs),
            ),
        )
        labels = {**image.config.labels, **spec.labels}
        meta = Meta(
            id=container_id,
            name=spec.name,
            image=image_name,
            labels=labels,
            created=time.time(),
            attachments={a.network: list(a.aliases) for a in spec.attachments},
        )
        self.records.claim_name(spec.name, container_id)
        try:
            self.records.save_meta(meta)
            self.runtime.create(config)
        except BaseException:
            self.runtime.delete(container_id, force=True)
            self.records.drop_meta(container_id)
            self.records.release_name(spec.name, container_id)
            raise
        return container_id

    def start_container(self, container_id: str) -> None:
        _, container = self._container(container_id)
        if container.state().status == "running":
            return  # docker: starting a running container is a no-op
        container.start()

    def stop_container(self, container_id: str, timeout: float | None = None) -> None:
        _, container = self._container(container_id)
        container.stop(grace=timeout)

    def kill_container(self, container_id: str, signal: str = "SIGKILL") -> None:
        _, container = self._container(container_id)
        number = _signal_number(signal)
        container.kill(number)
        if number == signals.SIGKILL:
            container.runtime.cgroups.kill_all(container.id)

    def remove_container(self, container_id: str, *, force: bool = False) -> None:
        container_id = self._id(container_id)
        meta = self.records.load_meta(container_id)
        with contextlib.suppress(NotFound):
            container = self.runtime.get(container_id)
            if container.state().status == "running":
                if not force:
                    raise Conflict(
                        f"container {meta.name} is running: stop it before removing it, "
                        "or force the removal"
                    )
                self.runtime.cgroups.kill_all(container_id)
                container.wait(10)
        self.runtime.delete(container_id, force=True)
        self.records.release_name(meta.name, container_id)
        self.records.drop_meta(container_id)

    def rename_container(self, container_id: str, new_name: str) -> None:
        container_id = self._id(container_id)
        meta = self.records.load_meta(container_id)
        if new_name == meta.name:
            return
        self.records.claim_name(new_name, container_id)
        self.records.save_meta(
            Meta(meta.id, new_name, meta.image, meta.labels, meta.created, meta.attachments)
        )
        self.records.release_name(meta.name, container_id)

    def set_network_attachment(
        self, container_id: str, network: str, attachment: Attachment | None
    ) -> None:
        """Recorded only: a container has no network endpoints before issue 6."""
        container_id = self._id(container_id)
        meta = self.records.load_meta(container_id)
        attachments = {k: v for k, v in meta.attachments.items() if k != network}
        if attachment is not None:
            if not self.records.network_exists(network):
                raise NotFound(f"network {network} not found")
            attachments[network] = list(attachment.aliases)
        self.records.save_meta(
            Meta(meta.id, meta.name, meta.image, meta.labels, meta.created, attachments)
        )

    def pause_container(self, container_id: str) -> None:
        self._id(container_id)
        raise Unsupported("pause is not supported by the namespace backend yet")

    def unpause_container(self, container_id: str) -> None:
        self._id(container_id)
        raise Unsupported("unpause is not supported by the namespace backend yet")

    def inspect_container(self, container_id: str) -> ObservedContainer:
        return self._observed(self.records.load_meta(self._id(container_id)))

    def wait_container(self, container_id: str, timeout: float | None = None) -> int:
        _, container = self._container(container_id)
        return container.wait(timeout)

    def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        timestamps: bool = False,
    ) -> Iterator[LogLine]:
        meta, container = self._container(container_id)
        return self._log_lines(meta.name, container, follow, tail)

    @staticmethod
    def _log_lines(
        name: str, container: Container, follow: bool, tail: int | None
    ) -> Iterator[LogLine]:
        for entry in container.logs(follow=follow, tail=tail):
            text = entry.text[:-1] if entry.text.endswith("\n") else entry.text
            stamp = _parse_time(entry.time)
            if entry.stream == "stderr":
                yield LogLine(name, "stderr", text, stamp)
            else:
                yield LogLine(name, "stdout", text, stamp)

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
        """Output is stdout then stderr (no TTY: interactive sessions are not there yet)."""
        _, container = self._container(container_id)
        who = resolve_in_layers(user, container.config.lowerdirs) if user else None
        result = container.exec(
            tuple(command),
            env=tuple(f"{k}={v}" for k, v in (env or {}).items()),
            user=who,
            working_dir=workdir,
        )
        return ExecResult(exit_code=result.exit_code, output=result.stdout + result.stderr)

    def top(self, container_id: str) -> list[list[str]]:
        _, container = self._container(container_id)
        if container.state().status != "running":
            raise Conflict(f"container {container_id} is not running")
        rows = [["UID", "PID", "PPID", "STAT", "CMD"]]
        for p in container.top():
            rows.append([str(p.uid), str(p.pid), str(p.ppid), p.state, p.command])
        return rows

    def close(self) -> None:
        """Nothing held open: every call reads the state root afresh."""

