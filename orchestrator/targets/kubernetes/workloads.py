"""One compose service → its workload: Deployment, StatefulSet, DaemonSet or Job.

The kind is decided in ``context.RenderContext.kind``; here the pod template is built and
the swarm semantics that Kubernetes shares are carried over: replicas, ``update_config``
as a RollingUpdate, placement constraints as node affinity, ``depends_on`` as init
containers that wait.

Waiting for a dependency:
- a service with a ClusterIP Service: ``nc -z`` on its first TCP port, which connects only
  once a pod is ready (its readiness probe is the compose healthcheck);
- a headless Service: ``nslookup`` of its cluster name, which resolves only to ready pods;
- a Job (``service_completed_successfully``): ``kubectl wait --for=condition=complete``,
  run as the ``<project>-job-waiter`` service account, which may only read Jobs. If the
  Job does not exist yet the init container fails and the kubelet retries it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import MISSING, fields
from typing import Any

from orchestrator.model import Service, UpdateConfig
from orchestrator.targets.kubernetes.containers import container
from orchestrator.targets.kubernetes.context import (
    KUBECTL_IMAGE,
    MANAGED_BY_LABEL,
    ORIGINAL_LABELS_ANNOTATION,
    WAIT_IMAGE,
    RenderContext,
    service_ports,
)
from orchestrator.targets.kubernetes.names import (
    dns_label,
    is_label_key,
    is_label_value,
    label_key,
    label_value,
)
from orchestrator.targets.kubernetes.volumes import PodStorage, pod_storage

Manifest = dict[str, Any]

API_VERSIONS = {
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "Job": "batch/v1",
}
NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
CLUSTER_DOMAIN = "cluster.local"

# Service keys with no Kubernetes equivalent at all: warned about when set.
UNMAPPED = (
    "volumes_from",
    "external_links",
    "logging",
    "init",
    "stop_signal",
    "ulimits",
    "devices",
    "security_opt",
    "platform",
    "container_name",
    "domainname",
    "cgroup_parent",
)

_CONSTRAINT = re.compile(r"^\s*([\w.\-/]+)\s*(==|!=)\s*(.+?)\s*$")
_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def waiter_account(ctx: RenderContext) -> str:
    return dns_label(f"{ctx.project.name}-job-waiter")


def split_labels(labels: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Labels made valid, plus an annotation holding the originals of those that changed."""
    valid: dict[str, str] = {}
    originals: dict[str, str] = {}
    for key, value in labels.items():
        if is_label_key(key) and is_label_value(value):
            valid[key] = value
            continue
        originals[key] = value
        fixed = label_key(key)
        if fixed:
            valid[fixed] = label_value(value)
    annotations = {ORIGINAL_LABELS_ANNOTATION: json.dumps(originals, sort_keys=True)}
    return valid, annotations if originals else {}


def workload(ctx: RenderContext, service: Service) -> Manifest:
    kind = ctx.kind(service)
    base = f"services.{service.name}"
    _warn_unmapped(ctx, service)
    storage = pod_storage(ctx, service)
    pod = pod_spec(ctx, service, storage)
    template_labels, template_annotations = split_labels(service.labels)
    template_meta: Manifest = {"labels": {**template_labels, **ctx.labels(service.name)}}
    annotations = {**_annotations(ctx, service), **template_annotations}
    if annotations:
        template_meta["annotations"] = annotations
    deploy_labels, deploy_annotations = split_labels(
        service.deploy.labels if service.deploy else {}
    )
    meta: Manifest = {
        "name": ctx.name(service.name),
        "labels": {**deploy_labels, **ctx.labels(service.name), MANAGED_BY_LABEL: "pycompose"},
    }
    if deploy_annotations:
        meta["annotations"] = deploy_annotations
    template = {"metadata": template_meta, "spec": pod}
    spec: Manifest = {}
    if kind == "Job":
        spec = _job_spec(ctx, service, pod)
    else:
        if kind in ("Deployment", "StatefulSet"):
            spec["replicas"] = service.replicas
        spec["selector"] = {"matchLabels": ctx.labels(service.name)}
        if kind == "StatefulSet":
            spec["serviceName"] = ctx.name(service.name)
        spec.update(_update_strategy(ctx, service, kind))
        _warn_restart(ctx, service, base)
    spec["template"] = template
    if storage.claim_templates:
        spec["volumeClaimTemplates"] = storage.claim_templates
    return {"apiVersion": API_VERSIONS[kind], "kind": kind, "metadata": meta, "spec": spec}


def _annotations(ctx: RenderContext, service: Service) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in service.annotations.items():
        fixed = label_key(key)
        if fixed != key:
            ctx.warn(f"services.{service.name}.annotations.{key}", f"renamed {fixed!r}")
        out[fixed] = value
    return out


def pod_spec(ctx: RenderContext, service: Service, storage: PodStorage) -> Manifest:
    base = f"services.{service.name}"
    pod: Manifest = {}
    init = init_containers(ctx, service)
    if init:
        pod["initContainers"] = init
        if any(c["image"] == KUBECTL_IMAGE for c in init):
            pod["serviceAccountName"] = waiter_account(ctx)
    pod["containers"] = [container(ctx, service, storage.mounts)]
    if storage.volumes:
        pod["volumes"] = storage.volumes
    if service.hostname:
        host = dns_label(service.hostname.split(".", 1)[0])
        pod["hostname"] = host
        if host != service.hostname:
            ctx.warn(f"{base}.hostname", f"rendered as {host!r} (a pod hostname is one DNS label)")
    if service.stop_grace_period is not None:
        pod["terminationGracePeriodSeconds"] = math.ceil(service.stop_grace_period)
    _namespaces(ctx, service, pod)
    aliases = _host_aliases(ctx, service)
    if aliases:
        pod["hostAliases"] = aliases
    dns: Manifest = {}
    if service.dns:
        dns["nameservers"] = list(service.dns)
    if service.dns_search:
        dns["searches"] = list(service.dns_search)
    if service.dns_opt:
        dns["options"] = [_dns_option(o) for o in service.dns_opt]
    if dns:
        pod["dnsConfig"] = dns
    security: Manifest = {}
    if service.sysctls:
        security["sysctls"] = [{"name": k, "value": str(v)} for k, v in service.sysctls.items()]
    groups = [int(g) for g in service.group_add if str(g).isdigit()]
    if len(groups) != len(service.group_add):
        ctx.warn(f"{base}.group_add", "only numeric groups are rendered (supplementalGroups)")
    if groups:
        security["supplementalGroups"] = groups
    if security:
        pod["securityContext"] = security
    affinity = _affinity(ctx, service)
    if affinity:
        pod["affinity"] = affinity
    _warn_networks(ctx, service)
    return pod


def _dns_option(option: str) -> Manifest:
    name, sep, value = option.partition(":")
    return {"name": name, "value": value} if sep else {"name": name}


def _namespaces(ctx: RenderContext, service: Service, pod: Manifest) -> None:
    base = f"services.{service.name}"
    mode = service.network_mode
    if mode == "host":
        pod["hostNetwork"] = True
    elif mode not in (None, "bridge", "default"):
        ctx.warn(f"{base}.network_mode", f"{mode!r} has no Kubernetes equivalent; not rendered")
    for key in ("pid", "ipc"):
        value = getattr(service, key)
        if value == "host":
            pod["hostPID" if key == "pid" else "hostIPC"] = True
        elif value not in (None, "private", "shareable"):
            ctx.warn(f"{base}.{key}", f"{value!r} has no Kubernetes equivalent; not rendered")


def _host_aliases(ctx: RenderContext, service: Service) -> list[Manifest]:
    by_ip: dict[str, list[str]] = {}
    for index, entry in enumerate(service.extra_hosts):
        host, sep, ip = entry.partition("=") if "=" in entry else entry.partition(":")
        if not sep or ip == "host-gateway":
            ctx.warn(f"services.{service.name}.extra_hosts[{index}]", f"{entry!r} not rendered")
            continue
        by_ip.setdefault(ip.strip("[]"), []).append(host)
    return [{"ip": ip, "hostnames": hosts} for ip, hosts in by_ip.items()]


def init_containers(ctx: RenderContext, service: Service) -> list[Manifest]:
    out: list[Manifest] = []
    for dep_name, dep in service.depends_on.items():
        target = ctx.project.services.get(dep_name)
        if target is None:
            continue  # optional (required: false) or disabled by profiles
        path = f"services.{service.name}.depends_on.{dep_name}"
        name = ctx.name(dep_name)
        wait: Manifest = {"name": dns_label(f"wait-for-{name}")}
        if ctx.kind(target) == "Job":
            if dep.condition != "service_completed_successfully":
                ctx.warn(
                    path,
                    f"{dep_name} is a Job; only service_completed_successfully "
                    "can be waited for, so this dependency is not rendered",
                )
                continue
            wait["image"] = KUBECTL_IMAGE
            wait["command"] = [
                "kubectl",
                "wait",
                "--for=condition=complete",
                "--timeout=-1s",
                f"job/{name}",
            ]
        else:
            wait["image"] = WAIT_IMAGE
            wait["command"] = ["sh", "-c", _wait_script(ctx, target)]
        out.append(wait)
    return out


def _wait_script(ctx: RenderContext, target: Service) -> str:
    name = ctx.name(target.name)
    tcp = [port for port, proto in service_ports(target) if proto == "TCP"]
    if ctx.headless(target) or not tcp:
        if not ctx.headless(target):
            ctx.warn(
                f"services.{target.name}.ports",
                "no TCP port to probe: dependents wait for its name only, not for a ready pod",
            )
        fqdn = f"{name}.$(cat {NAMESPACE_FILE}).svc.{CLUSTER_DOMAIN}"
        check = f"nslookup {fqdn} >/dev/null 2>&1"
    else:
        check = f"nc -z -w 2 {name} {tcp[0]}"
    return f"until {check}; do echo waiting for {name}; sleep 2; done"


def _job_spec(ctx: RenderContext, service: Service, pod: Manifest) -> Manifest:
    base = f"services.{service.name}"
    deploy = service.deploy
    policy = deploy.restart_policy if deploy else None
    retry = (policy is not None and policy.condition != "none") or service.restart in (
        "always",
        "on-failure",
        "unless-stopped",
    )
    pod["restartPolicy"] = "OnFailure" if retry else "Never"
    spec: Manifest = {}
    if deploy is not None and deploy.mode == "global-job":
        ctx.warn(f"{base}.deploy.mode", "global-job runs once per cluster, not once per node")
    else:
        spec["completions"] = service.replicas
        spec["parallelism"] = service.replicas
    attempts = policy.max_attempts if policy else service.restart_max_retries
    spec["backoffLimit"] = attempts if attempts is not None else (6 if retry else 0)
    return spec


def _rolling(config: UpdateConfig) -> Manifest:
    step: int | str = config.parallelism if config.parallelism > 0 else "100%"
    if config.order == "start-first":
        return {"maxSurge": step, "maxUnavailable": 0}
    return {"maxSurge": 0, "maxUnavailable": step}


def _update_strategy(ctx: RenderContext, service: Service, kind: str) -> Manifest:
    deploy = service.deploy
    if deploy is None:
        return {}
    base = f"services.{service.name}.deploy"
    config = deploy.update_config
    default = UpdateConfig()
    out: Manifest = {}
    if kind == "StatefulSet":
        out["updateStrategy"] = {"type": "RollingUpdate"}
        if config.order == "start-first":
            ctx.warn(f"{base}.update_config.order", "a StatefulSet replaces its pod stop-first")
    else:
        key = "strategy" if kind == "Deployment" else "updateStrategy"
        out[key] = {"type": "RollingUpdate", "rollingUpdate": _rolling(config)}
    if config.delay:
        out["minReadySeconds"] = math.ceil(config.delay)
    for name in ("failure_action", "monitor", "max_failure_ratio"):
        if getattr(config, name) != getattr(default, name):
            ctx.warn(
                f"{base}.update_config.{name}",
                "Kubernetes has no equivalent; not rendered",
                "a stalled rollout stops progressing; `kubectl rollout undo` rolls back",
            )
    if deploy.rollback_config != default:
        ctx.warn(f"{base}.rollback_config", "not rendered; `kubectl rollout undo` rolls back")
    return out


def _warn_restart(ctx: RenderContext, service: Service, base: str) -> None:
    policy = service.deploy.restart_policy if service.deploy else None
    if policy is not None and (policy.condition != "any" or policy.max_attempts is not None):
        ctx.warn(
            f"{base}.deploy.restart_policy",
            f"a {ctx.kind(service)} always restarts "
            "its pods; condition and max_attempts are not rendered",
        )
    elif policy is None and service.restart in ("no", "on-failure"):
        ctx.warn(f"{base}.restart", f"a {ctx.kind(service)} always restarts its pods")


def _affinity(ctx: RenderContext, service: Service) -> Manifest:
    if service.deploy is None:
        return {}
    placement = service.deploy.placement
    base = f"services.{service.name}.deploy.placement"
    expressions: list[Manifest] = []
    for index, constraint in enumerate(placement.constraints):
        match = _CONSTRAINT.match(constraint)
        key = value = None
        if match:
            field, _, value = match.groups()
            if field.startswith("node.labels."):
                key = label_key(field[len("node.labels.") :])
            elif field == "node.hostname":
                key = "kubernetes.io/hostname"
            elif field == "node.platform.os":
                key = "kubernetes.io/os"
            elif field == "node.platform.arch":
                key, value = "kubernetes.io/arch", _ARCH.get(value, value)
        if not match or key is None or value is None:
            ctx.warn(f"{base}.constraints[{index}]", f"{constraint!r} is not rendered")
            continue
        operator = "In" if match.group(2) == "==" else "NotIn"
        expressions.append({"key": key, "operator": operator, "values": [label_value(value)]})
    if placement.preferences:
        ctx.warn(
            f"{base}.preferences",
            "spread preferences are not rendered",
            "write topologySpreadConstraints",
        )
    if placement.max_replicas_per_node is not None:
        ctx.warn(f"{base}.max_replicas_per_node", "not rendered")
    if not expressions:
        return {}
    terms = [{"matchExpressions": expressions}]
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}
        }
    }


def _warn_networks(ctx: RenderContext, service: Service) -> None:
    for key, net in service.networks.items():
        path = f"services.{service.name}.networks.{key}"
        if net.aliases:
            ctx.warn(
                f"{path}.aliases",
                "network aliases are not rendered; only the service name resolves",
            )
        if net.ipv4_address or net.ipv6_address:
            ctx.warn(f"{path}.ipv4_address", "pods get their addresses from the cluster")
    links = [link for link in service.links if ":" in link]
    if links:
        ctx.warn(
            f"services.{service.name}.links",
            "link aliases are not rendered; only service names resolve",
        )


def _warn_unmapped(ctx: RenderContext, service: Service) -> None:
    defaults = {f.name: f for f in fields(Service)}
    for name in UNMAPPED:
        spec = defaults.get(name)
        value = getattr(service, name, None)
        if spec is None:
            continue
        default = spec.default if spec.default_factory is MISSING else spec.default_factory()
        if value != default:
            ctx.warn(
                f"services.{service.name}.{name}", "has no Kubernetes equivalent; not rendered"
            )
    for key in service.extras:
        if not key.startswith("x-"):
            ctx.warn(f"services.{service.name}.{key}", "not rendered for Kubernetes")
