"""Pick and open a backend by name: ``docker``, ``namespace`` or ``auto``.

``auto`` picks docker when an engine answers (``DOCKER_HOST`` or the default socket) and the
built-in namespace backend otherwise; ``describe_choice`` says which and why.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from orchestrator.backends.base import Backend
from orchestrator.errors import EngineUnavailable, UsageError

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


def open_backend(name: str) -> Backend:
    """Open the backend called ``name`` ("docker" or "namespace")."""
    if name == "docker":
        from orchestrator.backends.docker.backend import DockerBackend

        return DockerBackend.from_env()
    if name == "namespace":
        raise EngineUnavailable(
            "the namespace backend is not available yet in this version of pycompose"
        )
    raise UsageError(f"unknown backend {name!r}")
