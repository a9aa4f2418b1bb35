"""One compose service → the main container of its pod.

Docker and Kubernetes name the two halves of a command the other way round: docker's
``entrypoint`` is Kubernetes' ``command`` and docker's ``command`` is ``args``.
"""

from __future__ import annotations

import math
from typing import Any

from orchestrator.model import Healthcheck, Service
from orchestrator.targets.kubernetes.context import RenderContext
from orchestrator.targets.kubernetes.names import port_name
from orchestrator.targets.kubernetes.volumes import quantity

Manifest = dict[str, Any]

# docker's healthcheck defaults (what a probe gets when the compose file is silent)
DOCKER_INTERVAL = 30.0
DOCKER_TIMEOUT = 30.0
DOCKER_RETRIES = 3

_PULL_POLICIES = {
    "always": "Always",
    "never": "Never",
    "missing": "IfNotPresent",
    "if_not_present": "IfNotPresent",
    "build": "IfNotPresent",
}


def image(ctx: RenderContext, service: Service) -> str:
    if service.image:
        return service.image
    name = f"{ctx.project.name}-{service.name}"
    ctx.warn(
        f"services.{service.name}.build",
        f"a cluster cannot build images; the manifest names {name!r}",
        "build and push the image, then set `image`",
    )
    return name


def container(ctx: RenderContext, service: Service, mounts: list[Manifest]) -> Manifest:
    out: Manifest = {"name": ctx.name(service.name), "image": image(ctx, service)}
    if service.entrypoint is not None:
        out["command"] = list(service.entrypoint)
    if service.command is not None:
        out["args"] = list(service.command)
    if service.working_dir:
        out["workingDir"] = service.working_dir
    env = environment(service)
    if env:
        out["env"] = env
    ports = container_ports(ctx, service)
    if ports:
        out["ports"] = ports
    res = resources(ctx, service)
    if res:
        out["resources"] = res
    security = security_context(ctx, service)
    if security:
        out["securityContext"] = security
    out.update(probes(ctx, service))
    if mounts:
        out["volumeMounts"] = mounts
    if service.pull_policy:
        policy = _PULL_POLICIES.get(service.pull_policy)
        if policy:
            out["imagePullPolicy"] = policy
        else:
            ctx.warn(f"services.{service.name}.pull_policy", "not rendered")
    if service.tty:
        out["tty"] = True
    if service.stdin_open:
        out["stdin"] = True
    return out


def environment(service: Service) -> list[Manifest]:
    """``environment`` (env_file already merged in); a variable without value is left out,
    as docker leaves it out when the shell does not set it."""
    return [
        {"name": key, "value": value}
        for key, value in service.environment.items()
        if value is not None
    ]


def container_ports(ctx: RenderContext, service: Service) -> list[Manifest]:
    out: list[Manifest] = []
    seen: set[tuple[int, str]] = set()
    for index, port in enumerate(service.ports):
        proto = port.protocol.upper()
        entry: Manifest = {"containerPort": port.target, "protocol": proto}
        if port.mode == "host" and port.published:
            published = port.published.split("-", 1)[0]
            if published.isdigit():
                entry["hostPort"] = int(published)
            if port.host_ip:
                entry["hostIP"] = port.host_ip
        elif (port.target, proto) in seen:
            continue
        if port.name:
            named = port_name(port.name)
            if named:
                entry["name"] = named
            else:
                ctx.warn(f"services.{service.name}.ports[{index}].name", "not a valid port name")
        seen.add((port.target, proto))
        out.append(entry)
    for item in service.expose:
        number, _, proto = str(item).partition("/")
        first = number.split("-", 1)[0]
        key = (int(first), (proto or "tcp").upper()) if first.isdigit() else None
        if key and key not in seen:
            seen.add(key)
            out.append({"containerPort": key[0], "protocol": key[1]})
    return out


def resources(ctx: RenderContext, service: Service) -> Manifest:
    """deploy.resources limits/reservations → limits/requests (service-level keys as fallback)."""
    res = service.deploy.resources if service.deploy else None
    cpu_limit = res.limits.cpus if res and res.limits.cpus is not None else service.cpus
    mem_limit = res.limits.memory if res and res.limits.memory is not None else service.mem_limit
    cpu_request = res.reservations.cpus if res else None
    mem_request = res.reservations.memory if res and res.reservations.memory else None
    if mem_request is None:
        mem_request = service.mem_reservation
    out: Manifest = {}
    limits = _amounts(cpu_limit, mem_limit)
    requests = _amounts(cpu_request, mem_request)
    if limits:
        out["limits"] = limits
    if requests:
        out["requests"] = requests
    base = f"services.{service.name}"
    if (res and res.limits.pids is not None) or service.pids_limit is not None:
        ctx.warn(
            f"{base}.deploy.resources.limits.pids", "Kubernetes has no per-container pid limit"
        )
    if res and (res.reservations.devices or res.reservations.generic_resources):
        ctx.warn(
            f"{base}.deploy.resources.reservations.devices",
            "device reservations are not rendered",
            "request the device plugin's extended resource under resources.limits",
        )
    if service.cpu_shares is not None:
        ctx.warn(f"{base}.cpu_shares", "not rendered; use deploy.resources.reservations.cpus")
    return out


def _amounts(cpus: float | None, memory: int | None) -> Manifest:
    out: Manifest = {}
    if cpus is not None and cpus > 0:
        out["cpu"] = f"{max(1, round(cpus * 1000))}m"
    if memory:
        out["memory"] = quantity(memory)
    return out


def security_context(ctx: RenderContext, service: Service) -> Manifest:
    out: Manifest = {}
    if service.user:
        user, _, group = service.user.partition(":")
        if user.isdigit():
            out["runAsUser"] = int(user)
        else:
            ctx.warn(
                f"services.{service.name}.user",
                f"user {user!r} is a name; Kubernetes needs a numeric uid, so it is not rendered",
            )
        if group.isdigit():
            out["runAsGroup"] = int(group)
        elif group:
            ctx.warn(f"services.{service.name}.user", f"group {group!r} is not numeric")
    caps: Manifest = {}
    if service.cap_add:
        caps["add"] = [_capability(c) for c in service.cap_add]
    if service.cap_drop:
        caps["drop"] = [_capability(c) for c in service.cap_drop]
    if caps:
        out["capabilities"] = caps
    if service.privileged:
        out["privileged"] = True
    if service.read_only:
        out["readOnlyRootFilesystem"] = True
    return out


def _capability(name: str) -> str:
    upper = name.upper()
    return upper[4:] if upper.startswith("CAP_") else upper


def _seconds(value: float | None, default: float, minimum: int = 1) -> int:
    return max(minimum, math.ceil(default if value is None else value))


def probes(ctx: RenderContext, service: Service) -> Manifest:
    """healthcheck → readiness and liveness probes with the same exec test.

    ``start_period`` delays only the liveness probe: docker counts no failure during it, but
    a passing check may still make the container healthy (ready) early.
    """
    check = service.healthcheck
    if check is None or check.disable or not check.test or check.test[0] == "NONE":
        return {}
    command = _probe_command(check)
    if command is None:
        ctx.warn(f"services.{service.name}.healthcheck.test", "not an exec test; not rendered")
        return {}
    readiness: Manifest = {
        "exec": {"command": command},
        "periodSeconds": _seconds(check.interval, DOCKER_INTERVAL),
        "timeoutSeconds": _seconds(check.timeout, DOCKER_TIMEOUT),
        "failureThreshold": max(1, check.retries if check.retries is not None else DOCKER_RETRIES),
    }
    liveness = dict(readiness)
    if check.start_period:
        liveness["initialDelaySeconds"] = _seconds(check.start_period, 0, minimum=0)
    if check.start_interval is not None:
        ctx.warn(
            f"services.{service.name}.healthcheck.start_interval",
            "Kubernetes probes have one period; start_interval is not rendered",
        )
    return {"readinessProbe": readiness, "livenessProbe": liveness}


def _probe_command(check: Healthcheck) -> list[str] | None:
    kind, *rest = check.test
    if kind == "CMD":
        return list(rest)
    if kind == "CMD-SHELL":
        return ["sh", "-c", " ".join(rest)]
    return None
