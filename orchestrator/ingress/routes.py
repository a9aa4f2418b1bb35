"""What the ingress proxy publishes, and the interface the core drives it through.

An ``ingress`` port (the compose spec's default mode) is published once on the host and
its connections are balanced over the service's running replicas (healthy ones where a
healthcheck exists). Containers never bind these ports themselves, so the port keeps
answering while replicas come and go (scale, rolling updates).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True, order=True)
class Route:
    """``host_ip:published/protocol`` on the host → ``target`` on each replica of ``service``."""

    service: str
    published: int
    target: int
    protocol: Literal["tcp", "udp"] = "tcp"
    host_ip: str = "0.0.0.0"


class IngressController(Protocol):
    """Keeps one project's ingress routes served, across CLI invocations."""

    def ensure(self, project: str, backend: str, routes: Sequence[Route]) -> None:
        """Serve exactly ``routes`` for ``project`` (start, reconfigure or keep the proxy).

        Raises ``errors.Conflict`` naming the port when a host port is already in use.
        """
        ...

    def remove(self, project: str) -> None:
        """Stop serving ``project``; idempotent."""
        ...

    def status(self, project: str) -> list[Route]:
        """The routes currently served for ``project`` (empty when none)."""
        ...

    def drain(self, project: str, container_ids: Sequence[str]) -> None:
        """Take these containers out of every pool now (before they are stopped)."""
        ...

    def refresh(self, project: str) -> None:
        """Return once the proxy's pools reflect the engine as it is now."""
        ...
