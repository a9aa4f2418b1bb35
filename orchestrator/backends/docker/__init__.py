"""The Docker Engine backend. The docker SDK is imported nowhere else in pycompose."""

from orchestrator.backends.docker.backend import DockerBackend

__all__ = ["DockerBackend"]
