"""Kubernetes Services: the DNS name other services reach, and the published ports.

Every long-running compose service gets a Service of its own name, so that ``db:5432``
resolves in the cluster as on a compose network. Its kind:

- ClusterIP on the container ports (``ports[].target`` and ``expose``);
- headless (``clusterIP: None``) for ``endpoint_mode: dnsrr``, for a StatefulSet, and for
  a service with no port at all (the name still resolves, to the ready pods);
- published ``ingress`` ports also get ``<name>-published``, a LoadBalancer on the
  published port number: what compose publishes on the host, a cluster publishes on its
  load balancer (a NodePort would have to move the port into 30000-32767).

``mode: host`` ports are a ``hostPort`` on the container instead (see containers.py).
"""

from __future__ import annotations

from typing import Any

from orchestrator.model import Service
from orchestrator.targets.kubernetes.context import (
    MANAGED_BY_LABEL,
    RenderContext,
    service_ports,
)

Manifest = dict[str, Any]


def _port_entries(ports: list[tuple[int, int, str]]) -> list[Manifest]:
    """(port, targetPort, protocol) → Service ports; names are required once there are two."""
    entries: list[Manifest] = []
    for port, target, proto in ports:
        entry: Manifest = {"port": port, "targetPort": target, "protocol": proto}
        if len(ports) > 1:
            entry["name"] = f"{proto.lower()}-{port}"
        entries.append(entry)
    return entries


def _metadata(ctx: RenderContext, service: Service, name: str) -> Manifest:
    return {"name": name, "labels": {**ctx.labels(service.name), MANAGED_BY_LABEL: "pycompose"}}


def services_for(ctx: RenderContext, service: Service) -> list[Manifest]:
    if ctx.kind(service) == "Job":
        return []
    name = ctx.name(service.name)
    ports = [(number, number, proto) for number, proto in service_ports(service)]
    spec: Manifest = {"selector": ctx.labels(service.name)}
    if ctx.headless(service):
        spec = {"clusterIP": "None", **spec}
    else:
        spec = {"type": "ClusterIP", **spec}
    if ports:
        spec["ports"] = _port_entries(ports)
    out: list[Manifest] = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _metadata(ctx, service, name),
            "spec": spec,
        }
    ]
    published = _published(ctx, service)
    if published:
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": _metadata(ctx, service, f"{name}-published"),
                "spec": {
                    "type": "LoadBalancer",
                    "selector": ctx.labels(service.name),
                    "ports": _port_entries(published),
                },
            }
        )
    return out


def _published(ctx: RenderContext, service: Service) -> list[tuple[int, int, str]]:
    out: list[tuple[int, int, str]] = []
    for index, port in enumerate(service.ports):
        path = f"services.{service.name}.ports[{index}]"
        if port.mode == "host":
            continue
        if port.published is None:
            continue  # docker would pick a random host port: nothing to publish by number
        first, dash, last = port.published.partition("-")
        if not first.isdigit():
            continue
        if dash and last != first:
            ctx.warn(f"{path}.published", f"a range; the load balancer listens on {first} only")
        if port.host_ip and port.host_ip not in ("0.0.0.0", "::"):
            ctx.warn(
                f"{path}.host_ip",
                f"{port.host_ip} is a host address; the load balancer listens on its own",
            )
        entry = (int(first), port.target, port.protocol.upper())
        if all((p, proto) != (entry[0], entry[2]) for p, _, proto in out):
            out.append(entry)
    return out
