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

Networking (``networking.py`` holds the compose rules): one bridge per compose network and
one network namespace ("sandbox") per container, kept by ``runtime.net``'s manager under
``<root>/net``; host-mode ports are DNAT rules of that manager, ingress ports the ingress
proxy's (which balances over the ``addresses`` that ``observe`` reports). Names are served
by ``runtime.dns``'s daemon on every bridge's gateway (state under ``<root>/dns``): its
records are rebuilt from every container of the state root whenever one is started,
stopped, renamed, removed or (dis)connected; a create adds its one member to the view the
last rebuild left (``networking.DnsView``), which is the hot path of every start. Each
container gets ``/etc/hosts``, ``/etc/resolv.conf`` and ``/etc/hostname`` files from its
bundle directory, bind-mounted.

Volumes and files (``files.py`` holds the rules, docs/volumes.md what users see): named
volumes are directories of the records (bind-style ones a symlink to their device);
secrets, configs and anonymous volumes live in the container's bundle under ``mounts/``,
so they go with it; the spawner resolves every mount target inside the root.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import signal as signals
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

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
from orchestrator.backends.namespace.store import Meta, Records, state_root
from orchestrator.errors import Conflict, NotFound, Unsupported
from orchestrator.lazy import lazy_module
from orchestrator.model import Build
from orchestrator.runtime.images import Image, Store

# Networking, conversion to the runtime's config and the runtime itself are imported on
# first use: `build`, `images` and `ps` need none of them, and every CLI run would pay
# ~30 ms for them (issue 7's bench).
if TYPE_CHECKING:
    from orchestrator.backends.namespace import convert
    from orchestrator.backends.namespace import files as nsfiles
    from orchestrator.backends.namespace import networking as netw
    from orchestrator.runtime.config import Mount
    from orchestrator.runtime.container import Container, Runtime
    from orchestrator.runtime.dns import DnsService
    from orchestrator.runtime.net import Endpoint, NetworkManager
else:
    convert = lazy_module("orchestrator.backends.namespace.convert")
    nsfiles = lazy_module("orchestrator.backends.namespace.files")
    netw = lazy_module("orchestrator.backends.namespace.networking")

# keys the namespace backend cannot honour yet; the loader warns per service that uses them
UNSUPPORTED_KEYS = frozenset(
    {
        "external_links",
        "volumes_from",
        "devices",
        "security_opt",
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
        network_manager: NetworkManager | None = None,
        dns: DnsService | None = None,
    ) -> None:
        self.root = root or state_root()
        self._net = network_manager
        self._dns = dns
        self.records = Records(self.root)
        self.images = Store.at_state_root(self.root)
        self._image_source = image_source
        self._runtime = runtime
        self._lock = threading.Lock()
        self._resolved: dict[str, Image] = {}

    @property
    def runtime(self) -> Runtime:
        """Built on first use: the cgroup driver is detected and the spawner compiled."""
        from orchestrator.runtime.container import Runtime
        from orchestrator.runtime.spawner import ensure_spawner

        with self._lock:
            if self._runtime is None:
                self._runtime = Runtime(
                    self.records.containers, spawner=ensure_spawner(self.root / "bin")
                )
            return self._runtime

    @property
    def net(self) -> NetworkManager:
        """Bridges, sandboxes, leases and published ports of this state root."""
        from orchestrator.runtime.net import NetworkManager

        with self._lock:
            if self._net is None:
                self._net = NetworkManager(self.root / "net")
            return self._net

    @property
    def dns(self) -> DnsService:
        from orchestrator.runtime.dns import DnsService

        with self._lock:
            if self._dns is None:
                self._dns = DnsService(netw.dns_state_dir(self.root))
            return self._dns

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
            addresses=self._addresses(meta.id),
            published=self._published(meta.id),
        )

    # ------------------------------------------------------------------ networking

    def _bundle(self, container_id: str) -> Path:
        return self.records.containers / container_id

    def _net_state(self, container_id: str) -> netw.NetState | None:
        return netw.NetState.load(self._bundle(container_id))

    def _own_sandbox(self, container_id: str) -> str:
        """The sandbox ``container_id`` made ("" when it has none: host, none, joined)."""
        state = self._net_state(container_id)
        return state.sandbox if state is not None and state.owner else ""

    def _endpoints(self, sandbox: str) -> list[Endpoint]:
        """In attach order: the first network gives the default route and the nameserver."""
        return self.net.endpoints(sandbox) if sandbox else []

    def _addresses(self, container_id: str) -> dict[str, str]:
        return {e.network: e.address for e in self._endpoints(self._own_sandbox(container_id))}

    def _published(self, container_id: str) -> dict[str, tuple[tuple[str, str], ...]]:
        sandbox = self._own_sandbox(container_id)
        if not sandbox:
            return {}
        try:
            return netw.published_view(self.net.published(sandbox))
        except NotFound:
            return {}

    def _plan_network(
        self, spec: ContainerSpec, container_id: str
    ) -> tuple[netw.NetState, str, tuple[Mount, ...]]:
        """Before anything exists: the container's network record, the namespace it joins
        and the files it gets (its own, or those of the container whose network it shares)."""
        from orchestrator.runtime.config import Mount

        mode = spec.network_mode or "bridge"
        files = self._bundle(container_id)
        if mode.startswith("container:"):
            other = self._id(mode.partition(":")[2])
            theirs = self._net_state(other)
            if theirs is None:
                raise NotFound(f"container {other} has no network to share (network_mode: {mode})")
            state = replace(theirs, owner=False)
            files = self._bundle(other)
        elif mode == "host":
            state = netw.net_state(spec, container_id, sandbox="", owner=True, mode=mode)
        else:  # `none` gets a sandbox too (loopback only), so others can join it
            state = netw.net_state(
                spec, container_id, sandbox=container_id, owner=True,
                mode="none" if mode == "none" else "bridge",
            )
        if state.sandbox:
            path = self.net.sandbox_path(state.sandbox)
        else:
            path = "host" if state.mode == "host" else ""
        mounts = tuple(
            Mount(f"/etc/{name}", str(files / name))
            for name in (netw.HOSTS, netw.RESOLV_CONF, netw.HOSTNAME)
            if state.owner or (files / name).exists()
        )
        return state, path, mounts

    def _connect(self, spec: ContainerSpec, state: netw.NetState) -> tuple[Endpoint, ...]:
        """Sandbox, one endpoint per attachment, host-mode ports: a port in use is a
        Conflict naming it before any of it exists. The endpoints made, in attach order."""
        if not state.owner:
            return ()
        mappings = netw.port_mappings(spec) if state.mode != "host" else ()
        if mappings and state.mode == "none":
            raise Unsupported(f"container {spec.name}: network_mode none cannot publish ports")
        for mapping in mappings:
            if mapping.host_port and not netw.port_is_free(mapping):
                raise Conflict(
                    f"port {mapping.host_port}/{mapping.protocol} on "
                    f"{mapping.host_ip or '0.0.0.0'} is already in use (container {spec.name}, "
                    f"port {mapping.container_port})"
                )
        if not state.sandbox:
            return ()
        self.net.create_sandbox(state.sandbox)
        endpoints = tuple(
            self.net.attach(
                state.sandbox,
                attachment.network,
                address=attachment.ipv4_address,
                mac=attachment.mac_address,
            )
            for attachment in spec.attachments
        )
        if mappings:
            self.net.publish(state.sandbox, mappings)
        return endpoints

    def _write_net_files(
        self,
        container_id: str,
        state: netw.NetState,
        endpoints: Sequence[Endpoint] | None = None,
    ) -> None:
        """The record and, for a container with a network of its own, the files it sees
        (rewritten in place, so a running container sees the change). ``endpoints``: the
        sandbox's, when the caller has just made them (read again otherwise)."""
        directory = self._bundle(container_id)
        state.save(directory)
        if not state.owner:
            return
        host_resolv = netw.host_resolv_conf()
        if state.mode == "host":
            try:
                base = Path("/etc/hosts").read_text()
            except OSError:
                base = netw.LOCALHOST
            hosts = netw.hosts_file(state, (), base=base)
            resolv = netw.resolv_conf(state, None, host_resolv)
        else:
            if endpoints is None:
                endpoints = self._endpoints(state.sandbox)
            gateway = endpoints[0].gateway if endpoints else None
            hosts = netw.hosts_file(
                state, [e.address for e in endpoints], host_gateway=gateway
            )
            resolv = netw.resolv_conf(state, gateway, host_resolv)
        netw.write_files(
            directory,
            {netw.HOSTS: hosts, netw.RESOLV_CONF: resolv, netw.HOSTNAME: netw.hostname_file(state)},
        )

    def _disconnect(self, container_id: str, state: netw.NetState | None) -> None:
        """Everything of the container's own sandbox goes (idempotent: also after a create
        that was interrupted before its record was written)."""
        if state is None or (state.owner and state.sandbox):
            self.net.destroy_sandbox(state.sandbox if state is not None else container_id)

    def _members(self) -> Iterator[netw.Member]:
        for meta in self.records.all_meta():
            state = self._net_state(meta.id)
            if state is None or not state.owner or not state.sandbox:
                continue
            try:
                status = self.runtime.get(meta.id).state().status
            except NotFound:
                continue
            labels = meta.labels
            yield netw.Member(
                id=meta.id,
                name=meta.name,
                project=labels.get(L.PROJECT, ""),
                service=labels.get(L.SERVICE, ""),
                status=status,
                state=state,
                aliases={k: tuple(v) for k, v in meta.attachments.items()},
                addresses={e.network: e.address for e in self._endpoints(state.sandbox)},
            )

    def _refresh_dns(self, added: netw.Member | None = None) -> None:
        """Rebuild every name from the containers as they are now and make the daemon
        serve them. Serialised across threads and processes, so an older view never
        lands after a newer one.

        ``added``: a container just created, known from memory. It joins the members of
        the last rebuild (``DnsView``) when the state root holds exactly those containers
        and it; reading every container again costs more than the rest of a start once
        there are a few dozen. Whatever else changed (a stop, a rename, a crash between a
        change and its refresh) shows as other ids or is rebuilt by its own refresh."""
        lock = self.root / "dns.lock"
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            view_file = self.root / netw.DNS_VIEW
            ids = self.records.container_ids()  # before the scan: see DnsView
            members: tuple[netw.Member, ...] | None = None
            if added is not None:
                view = netw.DnsView.load(view_file)
                members = view.plus(added, ids) if view is not None else None
            if members is None:
                members = tuple(self._members())
            gateways = {n.name: n.gateway for n in self.net.networks()}
            self.dns.apply(netw.dns_records(members, gateways))
            netw.DnsView(frozenset(ids), members).save(view_file)
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ observe

    def capabilities(self) -> Capabilities:
        return Capabilities(
            name="namespace",
            ingress_ports=True,
            restart_policies=("no",),  # the supervisor restarts; the runtime never does
            unsupported_keys=UNSUPPORTED_KEYS,
            aliases_in_place=True,
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
        """In the store already (policy ``missing``); else copied from a Docker engine
        that has it, when one answers; else pulled from its registry. ``always`` pulls
        from the registry even when present (a failed pull is an error, as in compose);
        ``never`` and ``build`` fetch nothing: NotFound with a hint."""
        policy = (pull_policy or "missing").lower()
        try:
            self._image(image)
            present = True
        except NotFound:
            present = False
        if present and policy != "always":
            return
        if policy in _NO_COPY:
            if present:
                return
            raise NotFound(
                f"image {image} is not in the namespace image store ({self.root / 'images'}) "
                f"and pull_policy is {policy!r}: pull it with `pycompose image pull {image}`, "
                "load it with `pycompose image load -i FILE`, or use pull_policy missing"
            )
        from orchestrator.runtime.images import load_docker_save

        copied = False
        if policy != "always" and self._image_source is not None:
            try:
                load_docker_save(self.images, self._image_source(image))
                copied = True
            except NotFound:
                pass
        if not copied:
            # imported here: the HTTP stack costs ~0.15 s, paid only when pulling
            from orchestrator.runtime import registry

            try:
                registry.pull(self.images, image)
            except (NotFound, registry.RegistryError) as exc:
                # a refused login or a corrupted blob says more as it is than as NotFound
                if present or isinstance(exc, registry.AuthenticationFailed | registry.CorruptBlob):
                    raise
                engine = "" if self._image_source is None else " nor in the Docker engine"
                raise NotFound(
                    f"image {image} is neither in the namespace image store{engine}, "
                    f"and it could not be pulled: {exc}"
                ) from exc
        with self._lock:
            self._resolved.pop(image, None)
        self._image(image)

    def build_image(
        self, build: Build, tag: str, *, no_cache: bool = False, pull: bool = False
    ) -> None:
        """Build with pycompose's own builder (``namespace/build.py``), into the store."""
        from orchestrator.backends.namespace.build import build_image

        build_image(self, build, tag, no_cache=no_cache, pull=pull)

    # ------------------------------------------------------------------ networks / volumes

    def create_network(self, spec: NetworkSpec) -> None:
        """A bridge of our own (the record carries the labels ``observe`` reports); an
        ``external`` network must already be one of the manager's."""
        network = spec.network
        if network.external:
            try:
                self.net.network(network.name)
            except NotFound as exc:
                raise NotFound(f"network {network.name} is declared as external, but it does "
                               "not exist on the namespace backend") from exc
            return
        if self.records.network_exists(network.name):
            raise Conflict(f"network with name {network.name} already exists")
        labels = {**network.labels, **spec.labels}
        self.net.create_network(netw.network_config(network, labels))
        try:
            self.records.save_network(network.name, secrets.token_hex(32), labels)
        except BaseException:
            self.net.remove_network(network.name)
            raise

    def remove_network(self, name: str) -> None:
        """Bridge, firewall table and leases; Conflict while a container is attached."""
        if not self.records.network_exists(name):
            raise NotFound(f"network {name} not found")
        self.net.remove_network(name)
        self.records.drop_network(name)

    def create_volume(self, spec: VolumeSpec) -> None:
        volume = spec.volume
        if volume.external:
            if not self.records.volume_exists(volume.name):
                raise NotFound(f"volume {volume.name} is declared as external, but it does "
                               "not exist on the namespace backend")
            return
        device = nsfiles.bind_device(volume)  # Unsupported for what we cannot honour
        if device is not None and not os.path.isdir(device):
            raise NotFound(f"volume {volume.name}: the device {device} is not a directory")
        self.records.save_volume(volume.name, {**volume.labels, **spec.labels})
        if device is not None:
            nsfiles.link_bind_volume(self.records.volume_path(volume.name), device)

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
        from orchestrator.runtime.users import resolve_in_layers

        image_name = spec.service.image or ""
        image = self._image(image_name)
        container_id = secrets.token_hex(32)
        lowerdirs = tuple(str(p) for p in reversed(image.layers))
        volume_paths = {
            engine: str(self.records.volume_path(engine))
            for engine in spec.volume_names.values()
            if self.records.volume_exists(engine)
        }
        # secrets, configs and anonymous volumes live in the container's own directory
        bundle = self.records.containers / container_id
        entries = nsfiles.plan_files(spec.service, spec.secrets, spec.configs, os.environ)
        anonymous = nsfiles.anonymous_targets(spec.service, image.config.volumes)
        net_state, netns, net_mounts = self._plan_network(spec, container_id)
        config = convert.container_config(
            spec,
            convert.Inputs(
                container_id=container_id,
                image=image.config,
                lowerdirs=lowerdirs,
                volume_paths=volume_paths,
                resolve_user=lambda user: resolve_in_layers(user, lowerdirs),
                network_namespace=netns,
                anonymous_paths={
                    target: str(nsfiles.anonymous_path(bundle, index))
                    for index, target in enumerate(anonymous)
                },
                files=nsfiles.file_mounts(bundle, entries),
            ),
        )
        nsfiles.ensure_bind_sources(spec.service)
        # the files of the network first: a volume the service mounts there wins
        config = replace(
            config, hostname=net_state.hostname, mounts=(*net_mounts, *config.mounts)
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
            endpoints = self._connect(spec, net_state)
            self.records.save_meta(meta)
            self.runtime.create(config)
            nsfiles.write_files(bundle, entries)
            nsfiles.make_anonymous(bundle, len(anonymous))
            self._write_net_files(
                container_id, net_state, endpoints if net_state.owner else None
            )
            if net_state.owner and net_state.sandbox:
                self._refresh_dns(
                    netw.Member(
                        id=container_id,
                        name=spec.name,
                        project=labels.get(L.PROJECT, ""),
                        service=labels.get(L.SERVICE, ""),
                        status="created",
                        state=net_state,
                        aliases={k: tuple(v) for k, v in meta.attachments.items()},
                        addresses={e.network: e.address for e in endpoints},
                    )
                )
        except BaseException:
            self.runtime.delete(container_id, force=True)
            self._disconnect(container_id, net_state)
            self.records.drop_meta(container_id)
            self.records.release_name(spec.name, container_id)
            raise
        return container_id

    def start_container(self, container_id: str) -> None:
        _, container = self._container(container_id)
        before = container.state().status
        if before == "running":
            return  # docker: starting a running container is a no-op
        container.start()
        if before != "created":  # a created container is in the records already
            self._refresh_dns()

    def stop_container(self, container_id: str, timeout: float | None = None) -> None:
        _, container = self._container(container_id)
        container.stop(grace=timeout)
        self._refresh_dns()  # a stopped container's names are gone

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
        state = self._net_state(container_id)
        self.runtime.delete(container_id, force=True)
        self._disconnect(container_id, state)
        self.records.release_name(meta.name, container_id)
        self.records.drop_meta(container_id)
        if state is None or (state.owner and state.sandbox):
            self._refresh_dns()

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
        self._refresh_dns()  # the container answers to its new name

    def set_network_attachment(
        self, container_id: str, network: str, attachment: Attachment | None
    ) -> None:
        """Connect or disconnect for real, then the names: without an attachment the
        container's endpoint (and every name on that network) is gone before this
        returns. An attached container whose address does not change keeps its endpoint
        and only gets the new aliases (no connection of it is cut)."""
        container_id = self._id(container_id)
        meta = self.records.load_meta(container_id)
        state = self._net_state(container_id)
        if state is None or not state.owner or state.mode != "bridge":
            raise Unsupported(
                f"container {meta.name} has no bridge networking of its own (network_mode): "
                "it cannot be connected to or disconnected from networks"
            )
        attachments = {k: v for k, v in meta.attachments.items() if k != network}
        current = {e.network: e for e in self._endpoints(state.sandbox)}
        if attachment is None:
            self.net.detach(state.sandbox, network)
        else:
            self.net.network(network)  # NotFound before anything changes
            endpoint = current.get(network)
            wanted = attachment.ipv4_address
            if endpoint is not None and wanted is not None and endpoint.address != wanted:
                self.net.detach(state.sandbox, network)
                endpoint = None
            if endpoint is None:
                self.net.attach(
                    state.sandbox, network, address=wanted, mac=attachment.mac_address
                )
            attachments[network] = list(attachment.aliases)
        self.records.save_meta(
            Meta(meta.id, meta.name, meta.image, meta.labels, meta.created, attachments)
        )
        self._write_net_files(container_id, state)
        self._refresh_dns()

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
        from orchestrator.runtime.users import resolve_in_layers

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

