"""The compose model as Docker Swarm objects: pure, so every mapping is a table test.

Output is the Engine API's own JSON (``ServiceSpec``, network and config/secret create
bodies) rather than ``docker.types`` objects: those are the same dicts, but they miss
fields this mapping needs (``Pids`` limits, job modes' completions, ulimits), and plain
dicts compare cleanly in tests. Names follow ``docker stack deploy`` (``<stack>_<key>``,
``com.docker.stack.namespace`` labels) so the docker CLI sees our stacks as its own.

Two traps handled here: compose ``command`` is the service's *args* and compose
``entrypoint`` its *command* (swarm's ContainerSpec.Command replaces the entrypoint); and
ingress-mode ports cannot be combined with ``endpoint_mode: dnsrr``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from orchestrator.errors import ConfigError, Problem
from orchestrator.model import (
    Deploy,
    Healthcheck,
    PortConfig,
    Project,
    Service,
    ServiceFile,
    ServiceVolume,
    UpdateConfig,
)

NAMESPACE_LABEL = "com.docker.stack.namespace"
IMAGE_LABEL = "com.docker.stack.image"
SPEC_HASH_LABEL = "io.pycompose.swarm.spec-hash"
CONTENT_HASH_LABEL = "io.pycompose.swarm.content-hash"

_NS = 1_000_000_000

# Service keys swarm has no place for, with what the user should know.
_IGNORED_SERVICE_KEYS: dict[str, str] = {
    "container_name": "swarm names tasks itself (<stack>_<service>.<slot>.<id>)",
    "links": "services reach each other by name on their networks",
    "external_links": "services reach each other by name on their networks",
    "network_mode": "swarm tasks attach to networks, not to another container's or the host's",
    "volumes_from": "swarm tasks cannot share another container's mounts",
    "privileged": "swarm services cannot run privileged",
    "devices": "swarm services cannot map devices",
    "security_opt": "swarm services take no security options",
    "cpu_shares": "use deploy.resources.reservations.cpus",
    "shm_size": "swarm services cannot size /dev/shm",
    "ipc": "swarm services have no ipc mode",
    "pid": "swarm services have no pid mode",
    "domainname": "swarm services have no domain name",
    "platform": "swarm picks the node's platform",
    "pull_policy": "each node pulls the image when it lacks it",
    "annotations": "swarm services carry labels only",
    "mem_reservation": "use deploy.resources.reservations.memory",
}
_IGNORED_NETWORK_KEYS = ("ipv4_address", "ipv6_address", "link_local_ips", "mac_address")


@dataclass(frozen=True)
class FileObject:
    """A config or secret to create (or, when external, to find) before the services."""

    kind: Literal["config", "secret"]
    key: str
    name: str
    external: bool = False
    file: str | None = None
    environment: str | None = None
    content: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NetworkObject:
    """A network to create (or, when external, to find); ``create`` is the API body."""

    key: str
    name: str
    external: bool
    create: dict[str, Any]


@dataclass(frozen=True)
class ServiceDefinition:
    """One swarm service. ``spec`` is an Engine API ServiceSpec whose secret and config
    references carry names only: their IDs exist once deploy has created them."""

    key: str
    name: str
    spec: dict[str, Any]
    depends_on: tuple[str, ...] = ()
    has_healthcheck: bool = False
    mode: str = "replicated"


@dataclass(frozen=True)
class StackDefinition:
    name: str
    services: dict[str, ServiceDefinition]
    networks: tuple[NetworkObject, ...]
    configs: tuple[FileObject, ...]
    secrets: tuple[FileObject, ...]
    warnings: tuple[Problem, ...] = ()


def nanoseconds(seconds: float) -> int:
    return round(seconds * _NS)


def service_name(stack: str, key: str) -> str:
    return f"{stack}_{key}"


def spec_hash(spec: dict[str, Any]) -> str:
    """Stable digest of a spec: a re-deploy skips services whose digest is unchanged."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- the project -------------------------------------------------------------------------


def convert_project(project: Project) -> StackDefinition:
    """Every swarm object of ``project``; ConfigError lists everything swarm cannot run."""
    stack = project.name
    problems: list[Problem] = []
    warnings: list[Problem] = []
    services: dict[str, ServiceDefinition] = {}
    for key, service in project.services.items():
        try:
            definition, found = convert_service(project, service)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        services[key] = definition
        warnings.extend(found)
    if problems:
        raise ConfigError(problems)
    used_networks = {n for s in project.services.values() for n in s.networks}
    networks = tuple(
        convert_network(stack, key, project)
        for key in sorted(project.networks)
        if key in used_networks
    )
    configs = tuple(
        _file_object("config", stack, obj) for _, obj in sorted(project.configs.items())
    )
    secrets = tuple(
        _file_object("secret", stack, obj) for _, obj in sorted(project.secrets.items())
    )
    return StackDefinition(stack, services, networks, configs, secrets, tuple(warnings))


def convert_network(stack: str, key: str, project: Project) -> NetworkObject:
    network = project.networks[key]
    ipam: dict[str, Any] | None = None
    if network.ipam_driver or network.ipam_config:
        ipam = {
            "Driver": network.ipam_driver or "default",
            "Config": [
                {
                    k: v
                    for k, v in {
                        "Subnet": c.get("subnet"),
                        "Gateway": c.get("gateway"),
                        "IPRange": c.get("ip_range"),
                        "AuxiliaryAddresses": c.get("aux_addresses"),
                    }.items()
                    if v
                }
                for c in network.ipam_config
            ],
        }
    create: dict[str, Any] = {
        "Name": network.name,
        "Driver": network.driver or "overlay",
        "Options": dict(network.driver_opts),
        "Attachable": network.attachable,
        "Internal": network.internal,
        "EnableIPv6": network.enable_ipv6,
        "Labels": {**network.labels, NAMESPACE_LABEL: stack},
    }
    if ipam is not None:
        create["IPAM"] = ipam
    return NetworkObject(key, network.name, network.external, create)


def _file_object(kind: Literal["config", "secret"], stack: str, obj: Any) -> FileObject:
    return FileObject(
        kind=kind,
        key=obj.key,
        name=obj.name,
        external=obj.external,
        file=obj.file,
        environment=obj.environment,
        content=obj.content,
        labels={**obj.labels, NAMESPACE_LABEL: stack},
    )


# -- one service -------------------------------------------------------------------------


def convert_service(project: Project, service: Service) -> tuple[ServiceDefinition, list[Problem]]:
    """The ServiceSpec of ``service`` and a warning for each key swarm ignores."""
    stack = project.name
    at = f"services.{service.name}"
    problems: list[Problem] = []
    warnings = ignored_key_warnings(service)
    if service.image is None:
        problems.append(
            Problem(
                "swarm cannot build images: every node pulls the service's image",
                path=f"{at}.build" if service.build else f"{at}.image",
                hint="build and push the image to a registry the nodes reach, then set `image`",
            )
        )
    elif service.build is not None:
        warnings.append(
            Problem(
                "ignored by swarm: the nodes run the pushed image, they do not build",
                path=f"{at}.build",
                hint=f"push {service.image} first",
            )
        )
    deploy = service.deploy or Deploy()
    endpoint, port_problems = endpoint_spec(service, deploy)
    problems.extend(port_problems)
    if problems:
        raise ConfigError(problems)
    container, container_warnings = container_spec(project, service)
    warnings.extend(container_warnings)
    task: dict[str, Any] = {
        "ContainerSpec": container,
        "Resources": resources(service, deploy),
        "Placement": placement(deploy),
        "Networks": task_networks(project, service),
    }
    restart = restart_policy(service, deploy)
    if restart is not None:
        task["RestartPolicy"] = restart
    if service.logging is not None and service.logging.driver:
        task["LogDriver"] = {"Name": service.logging.driver, "Options": service.logging.options}
    labels = {**deploy.labels, NAMESPACE_LABEL: stack, IMAGE_LABEL: service.image or ""}
    spec: dict[str, Any] = {
        "Name": service_name(stack, service.name),
        "Labels": labels,
        "TaskTemplate": task,
        "Mode": service_mode(service, deploy),
        "EndpointSpec": endpoint,
    }
    job = deploy.mode.endswith("-job")
    if job:
        for key in ("update_config", "rollback_config"):
            if getattr(deploy, key) != UpdateConfig():
                warnings.append(
                    Problem("ignored by swarm: jobs are not rolled", path=f"{at}.deploy.{key}")
                )
    else:
        spec["UpdateConfig"] = update_config(deploy.update_config)
        spec["RollbackConfig"] = update_config(deploy.rollback_config)
    spec["Labels"] = {**labels, SPEC_HASH_LABEL: spec_hash(spec)}
    definition = ServiceDefinition(
        key=service.name,
        name=spec["Name"],
        spec=spec,
        depends_on=tuple(sorted(service.depends_on)),
        has_healthcheck=_has_healthcheck(service.healthcheck),
        mode=deploy.mode,
    )
    return definition, warnings


def ignored_key_warnings(service: Service) -> list[Problem]:
    """A warning naming each set key swarm would ignore: never silently."""
    at = f"services.{service.name}"
    found: list[Problem] = []
    defaults = {f.name: _default(f) for f in dataclasses.fields(Service)}
    for key, why in _IGNORED_SERVICE_KEYS.items():
        if getattr(service, key) != defaults[key]:
            found.append(Problem(f"ignored by swarm: {why}", path=f"{at}.{key}"))
    for name, attachment in service.networks.items():
        for key in _IGNORED_NETWORK_KEYS:
            if getattr(attachment, key):
                found.append(
                    Problem(
                        "ignored by swarm: swarm assigns task addresses",
                        path=f"{at}.networks.{name}.{key}",
                    )
                )
    for index, port in enumerate(service.ports):
        if port.host_ip:
            found.append(
                Problem(
                    "ignored by swarm: published ports listen on every address of the node",
                    path=f"{at}.ports[{index}].host_ip",
                )
            )
    for index, volume in enumerate(service.volumes):
        if volume.volume_subpath:
            found.append(
                Problem(
                    "ignored by swarm: this engine API has no volume subpath",
                    path=f"{at}.volumes[{index}].volume.subpath",
                )
            )
    if service.deploy is not None and service.deploy.resources.reservations.devices:
        found.append(
            Problem(
                "ignored by swarm: services cannot reserve devices",
                path=f"{at}.deploy.resources.reservations.devices",
            )
        )
    for key in sorted(service.extras):
        if not key.startswith("x-"):
            found.append(Problem("ignored by swarm: not a key swarm knows", path=f"{at}.{key}"))
    return found


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _has_healthcheck(check: Healthcheck | None) -> bool:
    return check is not None and not check.disable and bool(check.test) and check.test[0] != "NONE"


def container_spec(project: Project, service: Service) -> tuple[dict[str, Any], list[Problem]]:
    """ContainerSpec. compose ``command`` → Args and ``entrypoint`` → Command: swarm's
    Command replaces the image's entrypoint, so mapping command there would drop it."""
    stack = project.name
    spec: dict[str, Any] = {
        "Image": service.image,
        "Labels": {**service.labels, NAMESPACE_LABEL: stack},
        "Env": [f"{k}={v}" for k, v in sorted(service.environment.items()) if v is not None],
    }
    if service.command is not None:
        spec["Args"] = list(service.command)
    if service.entrypoint is not None:
        spec["Command"] = list(service.entrypoint)
    optional: dict[str, Any] = {
        "Hostname": service.hostname,
        "Dir": service.working_dir,
        "User": service.user,
        "StopSignal": service.stop_signal,
        "Init": service.init,
    }
    spec.update({k: v for k, v in optional.items() if v is not None})
    flags = {"TTY": service.tty, "OpenStdin": service.stdin_open, "ReadOnly": service.read_only}
    spec.update({k: True for k, v in flags.items() if v})
    if service.stop_grace_period is not None:
        spec["StopGracePeriod"] = nanoseconds(service.stop_grace_period)
    if service.cap_add:
        spec["CapabilityAdd"] = list(service.cap_add)
    if service.cap_drop:
        spec["CapabilityDrop"] = list(service.cap_drop)
    if service.sysctls:
        spec["Sysctls"] = dict(service.sysctls)
    if service.group_add:
        spec["Groups"] = list(service.group_add)
    if service.extra_hosts:
        spec["Hosts"] = [_host_entry(entry) for entry in service.extra_hosts]
    if service.dns or service.dns_search or service.dns_opt:
        spec["DNSConfig"] = {
            "Nameservers": list(service.dns),
            "Search": list(service.dns_search),
            "Options": list(service.dns_opt),
        }
    if service.ulimits:
        spec["Ulimits"] = [
            {"Name": name, "Soft": limit.soft, "Hard": limit.hard}
            for name, limit in sorted(service.ulimits.items())
        ]
    if service.healthcheck is not None:
        spec["Healthcheck"] = healthcheck(service.healthcheck)
    mounts = [mount(project, v) for v in service.volumes]
    mounts += [{"Type": "tmpfs", "Target": path.split(":", 1)[0]} for path in service.tmpfs]
    if mounts:
        spec["Mounts"] = mounts
    if service.secrets:
        spec["Secrets"] = [file_reference(project, "secret", ref) for ref in service.secrets]
    if service.configs:
        spec["Configs"] = [file_reference(project, "config", ref) for ref in service.configs]
    return spec, []


def _host_entry(entry: str) -> str:
    """compose ``host:ip`` (or ``host=ip``) → swarm's /etc/hosts form ``ip host``."""
    sep = "=" if "=" in entry else ":"
    host, _, address = entry.partition(sep)
    return f"{address} {host}"


def healthcheck(check: Healthcheck) -> dict[str, Any]:
    if check.disable or (check.test and check.test[0] == "NONE"):
        return {"Test": ["NONE"]}
    result: dict[str, Any] = {"Test": list(check.test)}
    durations = {
        "Interval": check.interval,
        "Timeout": check.timeout,
        "StartPeriod": check.start_period,
        "StartInterval": check.start_interval,
    }
    result.update({k: nanoseconds(v) for k, v in durations.items() if v is not None})
    if check.retries is not None:
        result["Retries"] = check.retries
    return result


def mount(project: Project, volume: ServiceVolume) -> dict[str, Any]:
    result: dict[str, Any] = {"Type": volume.type, "Target": volume.target}
    if volume.read_only:
        result["ReadOnly"] = True
    if volume.type == "volume":
        declared = project.volumes.get(volume.source or "")
        result["Source"] = declared.name if declared is not None else (volume.source or "")
        options: dict[str, Any] = {}
        if volume.volume_nocopy:
            options["NoCopy"] = True
        if declared is not None:
            options["Labels"] = {**declared.labels, NAMESPACE_LABEL: project.name}
            if declared.driver:
                options["DriverConfig"] = {
                    "Name": declared.driver,
                    "Options": dict(declared.driver_opts),
                }
        if options:
            result["VolumeOptions"] = options
    elif volume.type == "bind":
        result["Source"] = volume.source
        if volume.bind_propagation:
            result["BindOptions"] = {"Propagation": volume.bind_propagation}
    elif volume.type == "tmpfs":
        tmpfs: dict[str, Any] = {}
        if volume.tmpfs_size is not None:
            tmpfs["SizeBytes"] = volume.tmpfs_size
        if volume.tmpfs_mode is not None:
            tmpfs["Mode"] = volume.tmpfs_mode
        if tmpfs:
            result["TmpfsOptions"] = tmpfs
    else:
        result["Source"] = volume.source
    return result


def file_reference(
    project: Project, kind: Literal["config", "secret"], ref: ServiceFile
) -> dict[str, Any]:
    """A secret lands in /run/secrets/<target>, a config at /<source> unless targeted;
    uid/gid default to root and mode to 0444, as in swarm."""
    declared = (project.secrets if kind == "secret" else project.configs).get(ref.source)
    name = declared.name if declared is not None else ref.source
    default_target = ref.source if kind == "secret" else f"/{ref.source}"
    prefix = "Secret" if kind == "secret" else "Config"
    return {
        "File": {
            "Name": ref.target or default_target,
            "UID": ref.uid or "0",
            "GID": ref.gid or "0",
            "Mode": ref.mode if ref.mode is not None else 0o444,
        },
        f"{prefix}ID": "",
        f"{prefix}Name": name,
    }


def task_networks(project: Project, service: Service) -> list[dict[str, Any]]:
    """Each attachment, with the service key as an alias (as docker stack deploy does)."""
    result: list[dict[str, Any]] = []
    for key in sorted(service.networks, key=lambda k: (-service.networks[k].priority, k)):
        attachment = service.networks[key]
        declared = project.networks.get(key)
        entry: dict[str, Any] = {
            "Target": declared.name if declared is not None else key,
            "Aliases": [service.name, *attachment.aliases],
        }
        if attachment.driver_opts:
            entry["DriverOpts"] = dict(attachment.driver_opts)
        result.append(entry)
    return result


def resources(service: Service, deploy: Deploy) -> dict[str, Any]:
    """deploy.resources, falling back on the service-level cpus / mem_limit / pids_limit."""
    limits = deploy.resources.limits
    reservations = deploy.resources.reservations
    result: dict[str, Any] = {}
    limit: dict[str, Any] = {}
    cpus = limits.cpus if limits.cpus is not None else service.cpus
    memory = limits.memory if limits.memory is not None else service.mem_limit
    pids = limits.pids if limits.pids is not None else service.pids_limit
    if cpus is not None:
        limit["NanoCPUs"] = nanoseconds(cpus)
    if memory is not None:
        limit["MemoryBytes"] = memory
    if pids is not None:
        limit["Pids"] = pids
    if limit:
        result["Limits"] = limit
    reserve: dict[str, Any] = {}
    if reservations.cpus is not None:
        reserve["NanoCPUs"] = nanoseconds(reservations.cpus)
    if reservations.memory is not None:
        reserve["MemoryBytes"] = reservations.memory
    if reservations.generic_resources:
        reserve["GenericResources"] = [_generic_resource(r) for r in reservations.generic_resources]
    if reserve:
        result["Reservations"] = reserve
    return result


def _generic_resource(resource: dict[str, Any]) -> dict[str, Any]:
    if "discrete_resource_spec" in resource:
        spec = resource["discrete_resource_spec"]
        return {"DiscreteResourceSpec": {"Kind": spec.get("kind"), "Value": spec.get("value")}}
    spec = resource.get("named_resource_spec", {})
    return {"NamedResourceSpec": {"Kind": spec.get("kind"), "Value": spec.get("value")}}


def placement(deploy: Deploy) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if deploy.placement.constraints:
        result["Constraints"] = list(deploy.placement.constraints)
    if deploy.placement.preferences:
        result["Preferences"] = [
            {"Spread": {"SpreadDescriptor": descriptor}}
            for preference in deploy.placement.preferences
            for strategy, descriptor in preference.items()
            if strategy == "spread"
        ]
    if deploy.placement.max_replicas_per_node is not None:
        result["MaxReplicas"] = deploy.placement.max_replicas_per_node
    return result


def restart_policy(service: Service, deploy: Deploy) -> dict[str, Any] | None:
    """deploy.restart_policy, else the service's ``restart`` in swarm's words."""
    policy = deploy.restart_policy
    if policy is not None:
        return {
            "Condition": policy.condition,
            "Delay": nanoseconds(policy.delay),
            "MaxAttempts": policy.max_attempts or 0,
            "Window": nanoseconds(policy.window),
        }
    if service.restart is None:
        return None
    condition = {"no": "none", "always": "any", "unless-stopped": "any"}.get(
        service.restart, "on-failure"
    )
    result: dict[str, Any] = {"Condition": condition}
    if service.restart_max_retries:
        result["MaxAttempts"] = service.restart_max_retries
    return result


def service_mode(service: Service, deploy: Deploy) -> dict[str, Any]:
    if deploy.mode == "global":
        return {"Global": {}}
    if deploy.mode == "global-job":
        return {"GlobalJob": {}}
    if deploy.mode == "replicated-job":
        return {
            "ReplicatedJob": {
                "MaxConcurrent": service.replicas,
                "TotalCompletions": service.replicas,
            }
        }
    return {"Replicated": {"Replicas": service.replicas}}


def update_config(config: UpdateConfig) -> dict[str, Any]:
    """update_config / rollback_config, every field written out (swarm's defaults are the
    model's defaults, so an unset key still means what it means on one host)."""
    return {
        "Parallelism": config.parallelism,
        "Delay": nanoseconds(config.delay),
        "FailureAction": config.failure_action,
        "Monitor": nanoseconds(config.monitor),
        "MaxFailureRatio": config.max_failure_ratio,
        "Order": config.order,
    }


def endpoint_spec(service: Service, deploy: Deploy) -> tuple[dict[str, Any], list[Problem]]:
    mode = deploy.endpoint_mode or "vip"
    problems: list[Problem] = []
    ports: list[dict[str, Any]] = []
    for index, port in enumerate(service.ports):
        at = f"services.{service.name}.ports[{index}]"
        if mode == "dnsrr" and port.mode == "ingress":
            problems.append(
                Problem(
                    "swarm cannot publish an ingress-mode port with endpoint_mode dnsrr",
                    path=at,
                    hint="use `mode: host` for this port, or endpoint_mode vip",
                )
            )
            continue
        converted = _port(port)
        if converted is None:
            problems.append(
                Problem(
                    f"swarm publishes one host port per target port, not {port.published!r}",
                    path=f"{at}.published",
                )
            )
            continue
        ports.append(converted)
    result: dict[str, Any] = {"Mode": mode}
    if ports:
        result["Ports"] = ports
    return result, problems


def _port(port: PortConfig) -> dict[str, Any] | None:
    result: dict[str, Any] = {
        "Protocol": port.protocol,
        "TargetPort": port.target,
        "PublishMode": port.mode,
    }
    if port.name:
        result["Name"] = port.name
    if port.published:
        start, _, end = port.published.partition("-")
        if end and end != start:
            return None
        result["PublishedPort"] = int(start)
    return result
