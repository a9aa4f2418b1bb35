"""A project → the ordered list of Kubernetes objects, and that list as YAML or JSON.

Order is what ``kubectl apply`` of one stream needs and what a reader expects: the
objects pods refer to first (service account, ConfigMaps, Secrets, claims, Services),
then workloads with each service after the services it depends on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import Problem, UsageError
from orchestrator.model import Project
from orchestrator.targets.kubernetes.context import (
    KUBECTL_IMAGE,
    MANAGED_BY_LABEL,
    PART_OF_LABEL,
    RenderContext,
)
from orchestrator.targets.kubernetes.names import dns_label
from orchestrator.targets.kubernetes.services import services_for
from orchestrator.targets.kubernetes.volumes import claims, config_maps, secrets
from orchestrator.targets.kubernetes.workloads import waiter_account, workload

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Rendering:
    objects: tuple[Manifest, ...]
    warnings: tuple[Problem, ...]


def dependency_order(project: Project) -> list[str]:
    """Services with each after its dependencies, ties by name (cycles cannot stop it)."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order or name in visiting or name not in project.services:
            return
        visiting.add(name)
        for dep in sorted(project.services[name].depends_on):
            visit(dep)
        order.append(name)

    for name in sorted(project.services):
        visit(name)
    return order


def render_project(
    project: Project,
    *,
    environ: Mapping[str, str] | None = None,
    read_file: Callable[[str], bytes] | None = None,
) -> Rendering:
    """Every object the project needs, in apply order, and what could not be rendered.

    ``environ`` resolves ``environment:`` secrets and configs; ``read_file`` reads ``file:``
    ones (by default, from disk).
    """
    ctx = RenderContext(project, environ=dict(environ or {}))
    if read_file is not None:
        ctx.read_file = read_file
    order = dependency_order(project)
    workloads = [workload(ctx, project.services[name]) for name in order]
    services = [obj for name in order for obj in services_for(ctx, project.services[name])]
    objects: list[Manifest] = []
    if any(_waits_for_job(obj) for obj in workloads):
        objects.extend(_job_waiter_rbac(ctx))
    objects.extend(config_maps(ctx))
    objects.extend(secrets(ctx))
    objects.extend(claims(ctx))
    objects.extend(services)
    objects.extend(workloads)
    _warn_networks(ctx)
    # a JSON round trip: plain data only, and no shared sub-objects (YAML anchors)
    plain: list[Manifest] = json.loads(json.dumps(objects))
    return Rendering(tuple(plain), tuple(ctx.warnings))


def _waits_for_job(obj: Manifest) -> bool:
    init = obj["spec"]["template"]["spec"].get("initContainers", [])
    return any(c["image"] == KUBECTL_IMAGE for c in init)


def _job_waiter_rbac(ctx: RenderContext) -> list[Manifest]:
    """A service account that may read Jobs, for the init containers that wait on one."""
    name = waiter_account(ctx)
    meta = {
        "name": name,
        "labels": {PART_OF_LABEL: dns_label(ctx.project.name), MANAGED_BY_LABEL: "pycompose"},
    }
    rbac = "rbac.authorization.k8s.io"
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": [
                {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "watch"]}
            ],
        },
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": rbac, "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name}],
        },
    ]


def _warn_networks(ctx: RenderContext) -> None:
    own = {k: n for k, n in ctx.project.networks.items() if not n.external}
    if len(own) > 1:
        ctx.warn(
            "networks",
            "pods share one cluster network: the isolation between "
            f"{', '.join(sorted(own))} is not rendered",
            "write NetworkPolicies",
        )
    for key, net in own.items():
        if net.internal:
            ctx.warn(f"networks.{key}.internal", "not rendered; write an egress NetworkPolicy")


# -- output ------------------------------------------------------------------------------


def file_name(obj: Manifest, fmt: str = "yaml") -> str:
    return f"{obj['metadata']['name']}-{obj['kind'].lower()}.{fmt}"


def to_yaml(obj: Manifest) -> str:
    from orchestrator.loader.yaml_source import dump

    return dump(obj)


def to_stream(objects: tuple[Manifest, ...] | list[Manifest]) -> str:
    """A multi-document YAML stream (``kubectl apply -f -``)."""
    return "".join(f"---\n{to_yaml(obj)}" for obj in objects)


def to_json(objects: tuple[Manifest, ...] | list[Manifest]) -> str:
    """One ``v1/List`` holding every object (``kubectl apply -f`` reads it too)."""
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}, indent=2) + "\n"


def write_files(
    objects: tuple[Manifest, ...] | list[Manifest], directory: str, fmt: str = "yaml"
) -> list[str]:
    """One file per object in ``directory`` (created); returns the paths written."""
    root = Path(directory)
    written: list[str] = []
    try:
        root.mkdir(parents=True, exist_ok=True)
        for obj in objects:
            path = root / file_name(obj, fmt)
            text = to_yaml(obj) if fmt == "yaml" else json.dumps(obj, indent=2) + "\n"
            path.write_text(text, encoding="utf-8")
            written.append(str(path))
    except OSError as exc:
        raise UsageError(f"cannot write {exc.filename}: {exc.strerror}") from exc
    return written


__all__ = [
    "Rendering",
    "dependency_order",
    "file_name",
    "render_project",
    "to_json",
    "to_stream",
    "to_yaml",
    "write_files",
]
