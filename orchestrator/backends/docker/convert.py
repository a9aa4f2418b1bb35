"""Pure translation between our types and the Docker Engine API's JSON (API 1.41).

Outbound: a ContainerSpec becomes the body of ``POST /containers/create`` (Config, HostConfig,
NetworkingConfig), a NetworkSpec/VolumeSpec the arguments of their create calls. Inbound: an
inspect document becomes an ObservedContainer, and the multiplexed log stream becomes
LogLines. No I/O here, so every mapping is unit-testable without a daemon.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, Literal, cast, get_args

from orchestrator import labels as L
from orchestrator.backends.base import (
    Attachment,
    ContainerSpec,
    ContainerStatus,
    Health,
    LogLine,
    NetworkSpec,
    ObservedContainer,
    VolumeSpec,
)
from orchestrator.errors import Unsupported
from orchestrator.model import PortConfig, Service, ServiceVolume

NANOS = 1_000_000_000
Stream = Literal["stdout", "stderr"]
_STATUSES: tuple[str, ...] = get_args(ContainerStatus)
_HEALTHS: tuple[str, ...] = get_args(Health)
_ENGINE_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


# --------------------------------------------------------------------------- outbound


def _ns(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * NANOS)


def _drop_none(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v is not None}


def port_key(target: int | str, protocol: str = "tcp") -> str:
    return f"{target}/{protocol}"


def _expose_keys(entry: str) -> list[str]:
    """``"3000"``, ``"3000/udp"``, ``"3000-3002"`` → the engine's ``"<port>/<proto>"`` keys."""
    port, _, proto = entry.partition("/")
    proto = proto or "tcp"
    start, _, end = port.partition("-")
    if not start.isdigit() or (end and not end.isdigit()):
        raise Unsupported(f"expose entry {entry!r} is not a port or a port range")
    last = int(end) if end else int(start)
    return [port_key(p, proto) for p in range(int(start), last + 1)]


def exposed_ports(service: Service) -> dict[str, dict[str, Any]]:
    keys: list[str] = [port_key(p.target, p.protocol) for p in service.ports]
    for entry in service.expose:
        keys.extend(_expose_keys(entry))
    return {key: {} for key in dict.fromkeys(keys)}


def port_bindings(
    ports: tuple[PortConfig, ...], indexes: Iterable[int]
) -> dict[str, list[dict[str, str]]]:
    """Host bindings for the ports this container publishes itself (``publish_ports``).

    ``published`` may be a range ("8000-8010": the engine picks one free port in it) or
    None (the engine picks any free port).
    """
    bindings: dict[str, list[dict[str, str]]] = {}
    for index in indexes:
        port = ports[index]
        bindings.setdefault(port_key(port.target, port.protocol), []).append(
            {"HostIp": port.host_ip or "", "HostPort": port.published or ""}
        )
    return bindings


def _bind_string(volume: ServiceVolume) -> str:
    options: list[str] = ["ro" if volume.read_only else "rw"]
    if volume.bind_propagation:
        options.append(volume.bind_propagation)
    if volume.bind_selinux:
        options.append(volume.bind_selinux)
    return f"{volume.source}:{volume.target}:{','.join(options)}"


def _mount(volume: ServiceVolume, spec: ContainerSpec) -> dict[str, Any]:
    mount: dict[str, Any] = {
        "Type": volume.type,
        "Target": volume.target,
        "ReadOnly": volume.read_only,
    }
    if volume.consistency:
        mount["Consistency"] = volume.consistency
    if volume.type == "bind":
        mount["Source"] = volume.source
        if volume.bind_propagation:
            mount["BindOptions"] = {"Propagation": volume.bind_propagation}
    elif volume.type == "volume":
        options: dict[str, Any] = {}
        if volume.source:
            mount["Source"] = spec.volume_names.get(volume.source, volume.source)
        else:
            # anonymous: label it with the project so `down -v` and test cleanup find it
            options["Labels"] = {L.PROJECT: spec.project}
        if volume.volume_nocopy:
            options["NoCopy"] = True
        if volume.volume_subpath:
            options["Subpath"] = volume.volume_subpath
        if options:
            mount["VolumeOptions"] = options
    elif volume.type == "tmpfs":
        tmpfs = _drop_none({"SizeBytes": volume.tmpfs_size, "Mode": volume.tmpfs_mode})
        if tmpfs:
            mount["TmpfsOptions"] = tmpfs
    return mount


def mounts(spec: ContainerSpec) -> tuple[list[str], list[dict[str, Any]]]:
    """``(Binds, Mounts)``: binds that may create their host path go through the legacy
    ``Binds`` (the only form that creates a missing host directory), everything else
    through ``Mounts``."""
    binds: list[str] = []
    found: list[dict[str, Any]] = []
    for volume in spec.service.volumes:
        if volume.type not in ("bind", "volume", "tmpfs"):
            raise Unsupported(
                f"service {spec.service.name!r}: volume type {volume.type!r} "
                f"(target {volume.target}) is not supported by the docker backend"
            )
        if volume.type == "bind" and volume.bind_create_host_path and not volume.consistency:
            binds.append(_bind_string(volume))
        else:
            found.append(_mount(volume, spec))
    return binds, found


def _split_tmpfs(entry: str) -> tuple[str, str]:
    path, _, options = entry.partition(":")
    return path, options


def _device(entry: str) -> dict[str, str]:
    parts = entry.split(":")
    host = parts[0]
    inner = parts[1] if len(parts) > 1 and parts[1] else host
    perms = parts[2] if len(parts) > 2 else "rwm"
    if len(parts) == 2 and set(parts[1]) <= set("rwm") and not parts[1].startswith("/"):
        inner, perms = host, parts[1]
    return {"PathOnHost": host, "PathInContainer": inner, "CgroupPermissions": perms}


def healthcheck(service: Service) -> dict[str, Any] | None:
    check = service.healthcheck
    if check is None:
        return None
    if check.disable or check.test == ("NONE",):
        return {"Test": ["NONE"]}
    config: dict[str, Any] = _drop_none(
        {
            "Interval": _ns(check.interval),
            "Timeout": _ns(check.timeout),
            "StartPeriod": _ns(check.start_period),
            "StartInterval": _ns(check.start_interval),
            "Retries": check.retries,
        }
    )
    if check.test:
        config["Test"] = list(check.test)
    return config or None


def _device_requests(service: Service) -> list[dict[str, Any]]:
    if service.deploy is None:
        return []
    requests: list[dict[str, Any]] = []
    for device in service.deploy.resources.reservations.devices:
        count = device.get("count")
        requests.append(
            _drop_none(
                {
                    "Driver": device.get("driver"),
                    "Count": -1 if count == "all" else (int(count) if count is not None else None),
                    "DeviceIDs": list(device.get("device_ids") or []) or None,
                    "Capabilities": [list(device.get("capabilities") or [])],
                    "Options": dict(device.get("options") or {}) or None,
                }
            )
        )
    return requests


def _resources(service: Service) -> dict[str, Any]:
    """Limits: ``deploy.resources`` wins over the legacy keys when both are set."""
    limits = service.deploy.resources.limits if service.deploy else None
    reservations = service.deploy.resources.reservations if service.deploy else None
    memory = limits.memory if limits and limits.memory is not None else service.mem_limit
    cpus = limits.cpus if limits and limits.cpus is not None else service.cpus
    pids = limits.pids if limits and limits.pids is not None else service.pids_limit
    reserved = (
        reservations.memory
        if reservations and reservations.memory is not None
        else service.mem_reservation
    )
    return _drop_none(
        {
            "Memory": memory,
            "NanoCpus": round(cpus * NANOS) if cpus is not None else None,
            "PidsLimit": pids,
            "MemoryReservation": reserved,
            "CpuShares": service.cpu_shares,
        }
    )


def _volumes_from(spec: ContainerSpec) -> list[str]:
    """``service:x[:ro]`` / ``x[:ro]`` name a service (its first replica), ``container:c``
    a container."""
    found: list[str] = []
    for entry in spec.service.volumes_from:
        if entry.startswith("container:"):
            found.append(entry[len("container:") :])
            continue
        name = entry[len("service:") :] if entry.startswith("service:") else entry
        service, _, mode = name.partition(":")
        target = L.container_name(spec.project, service, 1)
        found.append(f"{target}:{mode}" if mode else target)
    return found


def host_config(spec: ContainerSpec) -> dict[str, Any]:
    service = spec.service
    binds, found_mounts = mounts(spec)
    first = first_attachment(spec)
    network_mode = first.network if first is not None else spec.network_mode
    restart: dict[str, Any] = {"Name": spec.engine_restart or "no"}
    if spec.engine_restart == "on-failure":
        restart["MaximumRetryCount"] = spec.engine_restart_max_retries
    config: dict[str, Any] = {
        "Binds": binds or None,
        "Mounts": found_mounts or None,
        "PortBindings": port_bindings(service.ports, spec.publish_ports) or None,
        "NetworkMode": network_mode,
        "RestartPolicy": restart,
        "LogConfig": (
            {"Type": service.logging.driver or "", "Config": dict(service.logging.options)}
            if service.logging is not None
            else None
        ),
        "Init": service.init,
        "CapAdd": list(service.cap_add) or None,
        "CapDrop": list(service.cap_drop) or None,
        "Privileged": service.privileged,
        "ReadonlyRootfs": service.read_only,
        "Tmpfs": dict(_split_tmpfs(t) for t in service.tmpfs) or None,
        "Ulimits": [
            {"Name": name, "Soft": limit.soft, "Hard": limit.hard}
            for name, limit in service.ulimits.items()
        ]
        or None,
        "Sysctls": dict(service.sysctls) or None,
        "ExtraHosts": list(service.extra_hosts) or None,
        "Dns": list(service.dns) or None,
        "DnsSearch": list(service.dns_search) or None,
        "DnsOptions": list(service.dns_opt) or None,
        "PidMode": service.pid,
        "IpcMode": service.ipc,
        "ShmSize": service.shm_size,
        "Devices": [_device(d) for d in service.devices] or None,
        "DeviceRequests": _device_requests(service) or None,
        "SecurityOpt": list(service.security_opt) or None,
        "GroupAdd": list(service.group_add) or None,
        "VolumesFrom": _volumes_from(spec) or None,
        **_resources(service),
    }
    return _drop_none(config)


def links(spec: ContainerSpec) -> list[str]:
    """``links`` (``svc[:alias]``: the service's first replica) and ``external_links``
    (``container[:alias]``) as engine links ``container:alias``. On a user network a link
    is one more DNS name for the target, which is all compose v2 uses them for."""
    found: list[str] = []
    for entry in spec.service.links:
        service, _, alias = entry.partition(":")
        found.append(f"{L.container_name(spec.project, service, 1)}:{alias or service}")
    for entry in spec.service.external_links:
        container, _, alias = entry.partition(":")
        found.append(f"{container}:{alias or container}")
    return found


def endpoint_config(attachment: Attachment, links: list[str] | None = None) -> dict[str, Any]:
    """One ``EndpointsConfig`` entry (also the body of a network connect)."""
    ipam = _drop_none(
        {"IPv4Address": attachment.ipv4_address, "IPv6Address": attachment.ipv6_address}
    )
    return _drop_none(
        {
            "Aliases": list(attachment.aliases) or None,
            "Links": links or None,
            "IPAMConfig": ipam or None,
            # honoured by engines >= API 1.44; older ones use Config.MacAddress (first network)
            "MacAddress": attachment.mac_address,
        }
    )


def first_attachment(spec: ContainerSpec) -> Attachment | None:
    """The network joined at create time: the first attachment, unless ``network_mode``
    names something else (host, none, container:...), which excludes networks."""
    if not spec.attachments:
        return None
    first = spec.attachments[0]
    if spec.network_mode is not None and spec.network_mode != first.network:
        return None
    return first


def later_attachments(spec: ContainerSpec) -> tuple[Attachment, ...]:
    """Networks to connect after create and before start: API 1.41 takes one at create."""
    return spec.attachments[1:] if first_attachment(spec) is not None else ()


def _command(spec: ContainerSpec) -> list[str] | None:
    if spec.command_override is not None:
        return list(spec.command_override)
    if spec.service.command is None:
        return None
    return list(spec.service.command)


def _entrypoint(service: Service) -> list[str] | None:
    if service.entrypoint is None:
        return None
    # the engine reads [""] as "no entrypoint" (what `docker run --entrypoint ""` sends)
    return list(service.entrypoint) or [""]


def container_config(spec: ContainerSpec) -> dict[str, Any]:
    """The body of ``POST /containers/create`` for ``spec``."""
    service = spec.service
    if not service.image:
        raise Unsupported(
            f"service {service.name!r} has no image: build it first (the docker backend "
            "creates containers from images only)"
        )
    first = first_attachment(spec)
    config: dict[str, Any] = {
        "Image": service.image,
        "Cmd": _command(spec),
        "Entrypoint": _entrypoint(service),
        "Env": [f"{k}={v}" for k, v in service.environment.items() if v is not None] or None,
        "ExposedPorts": exposed_ports(service) or None,
        "Hostname": service.hostname,
        "Domainname": service.domainname,
        "User": service.user,
        "WorkingDir": service.working_dir,
        "Labels": {**service.labels, **spec.labels},
        "StopSignal": service.stop_signal,
        "StopTimeout": (
            None if service.stop_grace_period is None else math.ceil(service.stop_grace_period)
        ),
        "Healthcheck": healthcheck(service),
        "Tty": service.tty,
        "OpenStdin": service.stdin_open,
        "AttachStdin": False,
        "MacAddress": first.mac_address if first else None,
        "HostConfig": host_config(spec),
    }
    if first is not None:
        endpoint = endpoint_config(first, links(spec))
        config["NetworkingConfig"] = {"EndpointsConfig": {first.network: endpoint}}
    return _drop_none(config)


def network_create_kwargs(spec: NetworkSpec) -> dict[str, Any]:
    """Keyword arguments for ``APIClient.create_network``."""
    network = spec.network
    ipam: dict[str, Any] | None = None
    if network.ipam_driver or network.ipam_config:
        ipam = {
            "Driver": network.ipam_driver or "default",
            "Config": [
                _drop_none(
                    {
                        "Subnet": pool.get("subnet"),
                        "Gateway": pool.get("gateway"),
                        "IPRange": pool.get("ip_range"),
                        "AuxiliaryAddresses": dict(pool.get("aux_addresses") or {}) or None,
                    }
                )
                for pool in network.ipam_config
            ],
            "Options": {},
        }
    return {
        "name": network.name,
        "driver": network.driver or "bridge",
        "options": dict(network.driver_opts) or None,
        "ipam": ipam,
        "check_duplicate": True,
        "internal": network.internal,
        "labels": {**network.labels, **spec.labels},
        "enable_ipv6": network.enable_ipv6,
        "attachable": network.attachable or None,
    }


def volume_create_kwargs(spec: VolumeSpec) -> dict[str, Any]:
    """Keyword arguments for ``APIClient.create_volume``."""
    volume = spec.volume
    return {
        "name": volume.name,
        "driver": volume.driver or "local",
        "driver_opts": dict(volume.driver_opts) or None,
        "labels": {**volume.labels, **spec.labels},
    }


# --------------------------------------------------------------------------- inbound


def parse_engine_time(value: str | None) -> float | None:
    """Unix seconds of an engine timestamp (RFC 3339, nanoseconds); None for the zero time."""
    if not value or value.startswith("0001-01-01"):
        return None
    match = _ENGINE_TIME.match(value.strip())
    if match is None:
        return None
    base, fraction, zone = match.groups()
    zone = "+00:00" if zone == "Z" else zone
    seconds = datetime.fromisoformat(base + zone).timestamp()
    return seconds + (float(f"0.{fraction}") if fraction else 0.0)


def _status(value: Any) -> ContainerStatus:
    return cast(ContainerStatus, value) if value in _STATUSES else "dead"


def _health(state: Mapping[str, Any]) -> Health:
    health = (state.get("Health") or {}).get("Status")
    return cast(Health, health) if health in _HEALTHS else "none"


def _number(labels: Mapping[str, str]) -> int:
    try:
        return int(labels.get(L.CONTAINER_NUMBER, "0"))
    except ValueError:
        return 0


def observed_container(inspect: Mapping[str, Any]) -> ObservedContainer:
    """An ObservedContainer from a ``GET /containers/{id}/json`` document."""
    config = inspect.get("Config") or {}
    state = inspect.get("State") or {}
    settings = inspect.get("NetworkSettings") or {}
    labels: dict[str, str] = dict(config.get("Labels") or {})
    status = _status(state.get("Status"))
    created = parse_engine_time(inspect.get("Created")) or 0.0
    published = {
        key: tuple((b.get("HostIp", ""), b.get("HostPort", "")) for b in bindings)
        for key, bindings in (settings.get("Ports") or {}).items()
        if bindings
    }
    addresses = {
        name: endpoint.get("IPAddress", "")
        for name, endpoint in (settings.get("Networks") or {}).items()
        if endpoint and endpoint.get("IPAddress")
    }
    exited = status in ("exited", "dead")
    return ObservedContainer(
        id=str(inspect.get("Id", "")),
        name=str(inspect.get("Name", "")).lstrip("/"),
        project=labels.get(L.PROJECT, ""),
        service=labels.get(L.SERVICE, ""),
        number=_number(labels),
        status=status,
        labels=labels,
        image=str(config.get("Image", "")),
        health=_health(state),
        exit_code=int(state.get("ExitCode", 0)) if exited else None,
        created=created,
        started_at=parse_engine_time(state.get("StartedAt")),
        finished_at=parse_engine_time(state.get("FinishedAt")),
        restart_count=int(inspect.get("RestartCount", 0)),
        oneoff=labels.get(L.ONEOFF, "False").lower() == "true",
        addresses=addresses,
        published=published,
    )


def demux_frames(chunks: Iterable[bytes]) -> Iterator[tuple[Stream, bytes]]:
    """Split the engine's multiplexed stream (8-byte headers: stream, 3 pad, big-endian
    length) into ``(stream, payload)``, whatever the chunk boundaries."""
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= 8:
            kind, length = struct.unpack(">BxxxL", buffer[:8])
            if len(buffer) < 8 + length:
                break
            payload, buffer = buffer[8 : 8 + length], buffer[8 + length :]
            yield ("stderr" if kind == 2 else "stdout"), payload


def _log_line(container: str, stream: Stream, raw: bytes, timestamps: bool) -> LogLine:
    text = raw.decode("utf-8", "replace").rstrip("\r")
    stamp: float | None = None
    if timestamps:
        head, sep, rest = text.partition(" ")
        stamp = parse_engine_time(head)
        if stamp is not None and sep:
            text = rest
        elif stamp is not None:
            text = ""
    return LogLine(container=container, stream=stream, text=text, timestamp=stamp)


def log_lines(
    container: str, frames: Iterable[tuple[Stream, bytes]], *, timestamps: bool = False
) -> Iterator[LogLine]:
    """Whole lines per stream; a frame may carry part of a line or many lines."""
    pending: dict[Stream, bytes] = {"stdout": b"", "stderr": b""}
    for stream, payload in frames:
        data = pending[stream] + payload
        *complete, pending[stream] = data.split(b"\n")
        for raw in complete:
            yield _log_line(container, stream, raw, timestamps)
    for stream, rest in pending.items():
        if rest:
            yield _log_line(container, stream, rest, timestamps)
