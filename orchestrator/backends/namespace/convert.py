"""ContainerSpec (+ the image's config) → the runtime's ContainerConfig. Pure.

The compose rules that decide what a container runs live here, once: Docker's command
rules (a compose ``entrypoint`` drops the image's ``Cmd``), image ``Env`` under the
service's ``environment``, defaults for healthchecks (30 s / 30 s / 3 retries), cgroup
limits from the service keys or ``deploy.resources.limits``, log rotation options.
Whatever touches the host (reading ``/etc/passwd`` in the layers, volume directories,
the copies of secrets and configs) is given in by the caller as a function or as data,
so every rule is unit-tested.
"""

from __future__ import annotations

import posixpath
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from orchestrator.backends.base import ContainerSpec
from orchestrator.backends.namespace.files import anonymous_targets, check_bind_options
from orchestrator.errors import ConfigError, Problem, Unsupported
from orchestrator.model import Healthcheck, Service
from orchestrator.runtime.cgroups.base import Resources
from orchestrator.runtime.config import ContainerConfig, Mount, Namespaces, Rlimit, User
from orchestrator.runtime.config import Healthcheck as RuntimeHealthcheck
from orchestrator.runtime.images import ImageConfig
from orchestrator.units import parse_size

DEFAULT_HEALTH_INTERVAL = 30.0
DEFAULT_HEALTH_TIMEOUT = 30.0
DEFAULT_HEALTH_RETRIES = 3
LOG_DRIVERS = (None, "json-file", "local")
_TMPFS_DATA_OPTIONS = ("size", "mode", "uid", "gid", "nr_inodes", "nr_blocks")


@dataclass(frozen=True)
class Inputs:
    """What the caller resolved on the host for one container."""

    container_id: str
    image: ImageConfig
    lowerdirs: tuple[str, ...]  # topmost layer first
    volume_paths: Mapping[str, str]  # engine-side volume name -> host directory
    resolve_user: Callable[[str], User]
    network_namespace: str = ""  # the path of the network namespace to join (networking)
    anonymous_paths: Mapping[str, str] = field(default_factory=dict)  # target -> host dir
    files: tuple[Mount, ...] = ()  # secrets and configs, bound read-only


def command(spec: ContainerSpec, image: ImageConfig) -> tuple[str, ...]:
    """Docker's rules: entrypoint + cmd, where a compose ``entrypoint`` drops the image's
    Cmd and ``run SERVICE CMD...`` replaces the command."""
    service = spec.service
    entrypoint = service.entrypoint if service.entrypoint is not None else image.entrypoint
    if spec.command_override is not None:
        cmd: tuple[str, ...] | None = spec.command_override
    elif service.command is not None:
        cmd = service.command
    else:
        cmd = image.cmd if service.entrypoint is None else None
    argv = (*(entrypoint or ()), *(cmd or ()))
    if not argv:
        raise Unsupported(
            f"container {spec.name}: no command: the image has no Entrypoint or Cmd and the "
            "service sets neither entrypoint nor command"
        )
    return argv


def environment(service: Service, image: ImageConfig) -> tuple[str, ...]:
    """Image Env, then the service's (a key set to None is left out, as compose does)."""
    env = dict(image.env_map)
    for key, value in service.environment.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return tuple(f"{k}={v}" for k, v in env.items())


def stop_signal(name: str | None) -> int:
    """``SIGTERM``, ``TERM`` or a number."""
    if not name:
        return int(signal.SIGTERM)
    text = name.strip().upper()
    if text.isdigit():
        return int(text)
    if not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return int(signal.Signals[text])
    except KeyError as exc:
        raise Unsupported(f"unknown stop signal {name!r}") from exc


def healthcheck(service: Service, image: ImageConfig) -> RuntimeHealthcheck | None:
    """The service's healthcheck over the image's (field by field, as docker merges them);
    None when disabled or absent."""
    mine: Healthcheck | None = service.healthcheck
    theirs = image.healthcheck
    if mine is not None and (mine.disable or mine.test[:1] == ("NONE",)):
        return None
    test = mine.test if mine is not None and mine.test else (theirs.test if theirs else ())
    if not test or test[:1] == ("NONE",):
        return None
    if test[0] == "CMD":
        argv = tuple(test[1:])
    elif test[0] == "CMD-SHELL":
        argv = ("/bin/sh", "-c", " ".join(test[1:]))
    else:
        argv = ("/bin/sh", "-c", " ".join(test))

    def pick(own: float | None, image_ns: int, default: float) -> float:
        if own is not None and own > 0:
            return float(own)
        return image_ns / 1e9 if image_ns > 0 else default

    interval = pick(
        mine.interval if mine else None, theirs.interval_ns if theirs else 0,
        DEFAULT_HEALTH_INTERVAL,
    )
    timeout = pick(
        mine.timeout if mine else None, theirs.timeout_ns if theirs else 0,
        DEFAULT_HEALTH_TIMEOUT,
    )
    start = pick(
        mine.start_period if mine else None, theirs.start_period_ns if theirs else 0, 0.0
    )
    retries = (mine.retries if mine and mine.retries else None) or (
        theirs.retries if theirs and theirs.retries else DEFAULT_HEALTH_RETRIES
    )
    return RuntimeHealthcheck(argv, interval, timeout, retries, start)


def resources(service: Service) -> Resources:
    """Service keys win over ``deploy.resources.limits`` (docker compose does the same)."""
    limits = service.deploy.resources.limits if service.deploy is not None else None
    reservations = service.deploy.resources.reservations if service.deploy is not None else None
    return Resources(
        memory=service.mem_limit or (limits.memory if limits else None),
        memory_reservation=service.mem_reservation
        or (reservations.memory if reservations else None),
        cpus=service.cpus or (limits.cpus if limits else None),
        cpu_shares=service.cpu_shares,
        pids_limit=service.pids_limit or (limits.pids if limits else None),
    )


def namespaces(spec: ContainerSpec, network_namespace: str = "") -> Namespaces:
    """The network namespace the backend prepared (``network_namespace``: a path to join,
    or ``host``) when there is one; else ``host`` and ``none`` as asked, and a private
    namespace with loopback only for the rest."""
    mode = spec.network_mode or "bridge"
    if mode.startswith("service:"):
        raise Unsupported(
            f"container {spec.name}: network_mode {mode} must be resolved to a container "
            "before the container is created"
        )
    if network_namespace:
        network = network_namespace
    elif mode in ("host", "none"):
        network = mode
    elif mode.startswith("container:"):
        raise Unsupported(f"container {spec.name}: network_mode {mode}: nothing to join")
    else:
        network = "private"
    pid = "host" if spec.service.pid == "host" else "private"
    ipc = "host" if spec.service.ipc == "host" else "private"
    return Namespaces(network=network, ipc=ipc, pid=pid)


def _tmpfs_options(raw: str) -> str:
    kept = [o for o in raw.split(",") if o.partition("=")[0] in _TMPFS_DATA_OPTIONS]
    return ",".join(kept) or "mode=1777"


def _depth(target: str) -> int:
    return len([part for part in posixpath.normpath(target).split("/") if part])


def mounts(
    spec: ContainerSpec,
    volume_paths: Mapping[str, str],
    *,
    anonymous: Mapping[str, str] | None = None,
    image_volumes: Sequence[str] = (),
    files: Sequence[Mount] = (),
) -> tuple[Mount, ...]:
    """Bind mounts, named volumes (directories of ours, bound in), anonymous volumes (the
    service's and the image's ``VOLUME``\\ s: ``anonymous`` maps their targets to the
    container's own directories), tmpfs, then the secrets and configs in ``files``.

    Volumes get Docker's copy-up unless ``nocopy``. The result is sorted parents first
    (as Docker sorts by depth), so a secret under a volume's target is not hidden by it.
    """
    anonymous = anonymous or {}
    out: list[Mount] = []
    service = spec.service
    check_bind_options(service)

    def anonymous_dir(target: str) -> str:
        path = anonymous.get(posixpath.normpath(target))
        if path is None:
            raise Unsupported(f"container {spec.name}: no directory for the volume at {target}")
        return path

    for volume in service.volumes:
        if volume.type == "bind" and volume.source:
            out.append(Mount(volume.target, volume.source, "bind", volume.read_only))
        elif volume.type == "volume" and volume.source:
            engine = spec.volume_names.get(volume.source, volume.source)
            path = volume_paths.get(engine)
            if path is None:
                raise Unsupported(f"container {spec.name}: volume {engine} does not exist")
            out.append(
                Mount(volume.target, path, "bind", volume.read_only,
                      copy_up=not volume.volume_nocopy)
            )
        elif volume.type == "volume":
            out.append(
                Mount(volume.target, anonymous_dir(volume.target), "bind", volume.read_only,
                      copy_up=not volume.volume_nocopy)
            )
        elif volume.type == "tmpfs":
            options = [f"size={volume.tmpfs_size}"] if volume.tmpfs_size else []
            mode = volume.tmpfs_mode
            options.append(f"mode={mode:o}" if mode is not None else "mode=1777")
            out.append(Mount(volume.target, kind="tmpfs", options=",".join(options)))
        else:
            raise Unsupported(
                f"container {spec.name}: {volume.type} mounts are not supported by the "
                "namespace backend"
            )
    served = {posixpath.normpath(v.target) for v in service.volumes}
    for target in anonymous_targets(service, image_volumes):
        if target not in served:
            out.append(Mount(target, anonymous_dir(target), "bind", copy_up=True))
    for entry in service.tmpfs:
        target, _, raw = entry.partition(":")
        out.append(Mount(target, kind="tmpfs", options=_tmpfs_options(raw)))
    out.extend(files)
    return tuple(sorted(out, key=lambda m: _depth(m.target)))


def logging(service: Service) -> tuple[int, int]:
    """(max-size bytes, max-file) of the json-file log; other drivers are refused."""
    log = service.logging
    if log is None:
        return 0, 1
    if log.driver not in LOG_DRIVERS:
        raise Unsupported(
            f"service {service.name}: logging driver {log.driver!r}: the namespace backend "
            "writes json-file logs only"
        )
    try:
        size = parse_size(log.options["max-size"]) if "max-size" in log.options else 0
        files = int(log.options.get("max-file", "1"))
    except ValueError as exc:
        raise ConfigError(
            Problem(f"logging options: {exc}", path=f"services.{service.name}.logging.options")
        ) from exc
    return size, max(1, files)


def container_config(spec: ContainerSpec, given: Inputs) -> ContainerConfig:
    service = spec.service
    image = given.image
    user_spec = service.user or image.user
    user = given.resolve_user(user_spec) if user_spec else User()
    log_size, log_files = logging(service)
    grace = service.stop_grace_period
    return ContainerConfig(
        id=given.container_id,
        command=command(spec, image),
        lowerdirs=given.lowerdirs,
        env=environment(service, image),
        working_dir=service.working_dir or image.working_dir or "/",
        user=user,
        hostname=service.hostname or "",
        read_only=service.read_only,
        namespaces=namespaces(spec, given.network_namespace),
        resources=resources(service),
        rlimits=tuple(Rlimit(k, u.soft, u.hard) for k, u in sorted(service.ulimits.items())),
        sysctls=tuple(sorted(service.sysctls.items())),
        cap_add=service.cap_add,
        cap_drop=service.cap_drop,
        privileged=service.privileged,
        init=bool(service.init),
        mounts=mounts(
            spec,
            given.volume_paths,
            anonymous=given.anonymous_paths,
            image_volumes=image.volumes,
            files=given.files,
        ),
        log_max_size=log_size,
        log_max_file=log_files,
        stop_signal=stop_signal(service.stop_signal or image.stop_signal),
        stop_grace=10.0 if grace is None else grace,
        healthcheck=healthcheck(service, image),
    )
