"""Pick and open a backend by name: ``docker``, ``namespace`` or ``auto``.

``auto`` picks docker when an engine answers (``DOCKER_HOST`` or the default socket) and the
built-in namespace backend otherwise; ``describe_choice`` says which and why.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from orchestrator.backends.base import Backend
from orchestrator.errors import UsageError

BACKENDS = ("docker", "namespace", "auto")


@dataclass(frozen=True)
class BackendChoice:
    name: str  # "docker" or "namespace"
    reason: str


def docker_endpoint() -> str:
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


def _docker_answers() -> bool:
    endpoint = docker_endpoint()
    if endpoint.startswith("unix://"):
        return os.path.exists(endpoint[len("unix://") :])
    return True  # a TCP/SSH endpoint is taken at its word; connecting tells the truth


def choose_backend(requested: str | None = None) -> BackendChoice:
    name = requested or os.environ.get("PYCOMPOSE_BACKEND") or "auto"
    if name not in BACKENDS:
        raise UsageError(f"unknown backend {name!r}: expected one of {', '.join(BACKENDS)}")
    if name == "docker":
        return BackendChoice("docker", "asked for with --backend/PYCOMPOSE_BACKEND")
    if name == "namespace":
        return BackendChoice("namespace", "asked for with --backend/PYCOMPOSE_BACKEND")
    if _docker_answers():
        return BackendChoice(
            "docker", f"auto: a Docker engine socket exists at {docker_endpoint()}"
        )
    return BackendChoice("namespace", f"auto: no Docker engine at {docker_endpoint()}")


def _docker_export(image: str) -> Iterator[bytes]:
    from orchestrator.backends.docker.export import export_image

    return export_image(image)


def open_backend(name: str) -> Backend:
    """Open the backend called ``name`` ("docker" or "namespace")."""
    if name == "docker":
        from orchestrator.backends.docker.backend import DockerBackend

        return DockerBackend.from_env()
    if name == "namespace":
        from orchestrator.backends.namespace import NamespaceBackend

        # images missing from the store are copied from a local engine when one answers
        return NamespaceBackend(image_source=_docker_export if _docker_answers() else None)
    raise UsageError(f"unknown backend {name!r}")
