"""What every part of one rendering shares: the project, the names, the warnings.

The workload kind of a service is decided here, once, because three parts depend on it:
the workload itself, whether it gets a Service, and how dependents wait for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from orchestrator.errors import Problem
from orchestrator.model import Project, Service
from orchestrator.targets.kubernetes.names import dns_label

WorkloadKind = Literal["Deployment", "StatefulSet", "DaemonSet", "Job"]

# the image of the init containers that wait for a Service (nslookup, nc)
WAIT_IMAGE = "busybox:1.36"
# the image of the init containers that wait for a Job to complete (kubectl wait)
KUBECTL_IMAGE = "bitnami/kubectl:1.31"
# what a PersistentVolumeClaim asks for: compose volumes have no size
DEFAULT_VOLUME_SIZE = "1Gi"

# labels that select a service's pods; the project name is kept beside the service name
NAME_LABEL = "app.kubernetes.io/name"
PART_OF_LABEL = "app.kubernetes.io/part-of"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
ORIGINAL_LABELS_ANNOTATION = "pycompose.io/original-labels"
ORIGINAL_NAME_ANNOTATION = "pycompose.io/compose-name"


def _read_bytes(path: str) -> bytes:
    return Path(path).read_bytes()


@dataclass
class RenderContext:
    project: Project
    environ: Mapping[str, str] = field(default_factory=dict)
    read_file: Callable[[str], bytes] = _read_bytes
    warnings: list[Problem] = field(default_factory=list)
    _names: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        taken: set[str] = set()
        for name in sorted(self.project.services):
            k8s = dns_label(name)
            if k8s in taken:
                k8s = dns_label(f"{k8s}-{len(taken)}")
            taken.add(k8s)
            self._names[name] = k8s
            if k8s != name:
                self.warn(
                    f"services.{name}",
                    f"the name is not a valid Kubernetes name; rendered as {k8s!r}, so other "
                    f"services must reach it as {k8s!r}",
                )

    def warn(self, path: str, message: str, hint: str = "") -> None:
        self.warnings.append(Problem(message, path=path, hint=hint))

    def name(self, service: str) -> str:
        """The Kubernetes name of a service (its workload and its Service)."""
        return self._names.get(service) or dns_label(service)

    def labels(self, service: str) -> dict[str, str]:
        """The selector labels of a service's pods."""
        return {NAME_LABEL: self.name(service), PART_OF_LABEL: dns_label(self.project.name)}

    def waited_to_complete(self, service: str) -> bool:
        """Whether a dependent waits for ``service`` with service_completed_successfully."""
        return any(
            dep.condition == "service_completed_successfully"
            for other in self.project.services.values()
            for target, dep in other.depends_on.items()
            if target == service
        )

    def volume_users(self, key: str) -> list[str]:
        """The services that mount the named volume ``key``."""
        return [
            s.name
            for s in self.project.services.values()
            if any(v.type == "volume" and v.source == key for v in s.volumes)
        ]

    def kind(self, service: Service) -> WorkloadKind:
        mode = service.deploy.mode if service.deploy else "replicated"
        if mode in ("replicated-job", "global-job") or self.waited_to_complete(service.name):
            return "Job"
        if mode == "global":
            return "DaemonSet"
        if service.replicas == 1 and self.owned_volumes(service):
            return "StatefulSet"
        return "Deployment"

    def owned_volumes(self, service: Service) -> list[str]:
        """Named, non-external volumes that ``service`` alone mounts (a StatefulSet's claims)."""
        owned: list[str] = []
        for mount in service.volumes:
            if mount.type != "volume" or not mount.source:
                continue
            volume = self.project.volumes.get(mount.source)
            if volume is None or volume.external:
                continue
            if self.volume_users(mount.source) == [service.name] and mount.source not in owned:
                owned.append(mount.source)
        return owned

    def headless(self, service: Service) -> bool:
        """Whether the service's DNS name gives pod addresses (dnsrr, StatefulSet, no port)."""
        if service.deploy is not None and service.deploy.endpoint_mode == "dnsrr":
            return True
        if self.kind(service) == "StatefulSet":
            return True
        return not service_ports(service)


def service_ports(service: Service) -> list[tuple[int, str]]:
    """(container port, protocol) a service listens on: its ports, then ``expose``, once each."""
    seen: list[tuple[int, str]] = []
    for port in service.ports:
        entry = (port.target, port.protocol.upper())
        if entry not in seen:
            seen.append(entry)
    for item in service.expose:
        number, _, proto = str(item).partition("/")
        first = number.split("-", 1)[0]
        if first.isdigit():
            entry = (int(first), (proto or "tcp").upper())
            if entry not in seen:
                seen.append(entry)
    return seen
