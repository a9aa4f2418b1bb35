"""The ingress daemon's files: where they are, the config the controller writes, routes as
JSON, atomic writes (see ``daemon.py`` for what each file is for).

Kept apart from the daemon so the CLI side (the controller, `ps`, `port`) reads and writes
them without importing asyncio and the proxy, which only the daemon process runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.ingress.routes import Route
from orchestrator.runtime import atomic

_PROJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass(frozen=True)
class StateFiles:
    """Where one project's ingress files are in ``state_dir``."""

    state_dir: Path
    project: str

    @property
    def config(self) -> Path:
        return self.state_dir / f"{self.project}.json"

    @property
    def pid(self) -> Path:
        return self.state_dir / f"{self.project}.pid"

    @property
    def status(self) -> Path:
        return self.state_dir / f"{self.project}.status.json"

    @property
    def log(self) -> Path:
        return self.state_dir / f"{self.project}.log"

    def all(self) -> tuple[Path, ...]:
        return (self.config, self.pid, self.status, self.log)


def valid_project_name(project: str) -> bool:
    """Compose's project name rule; also keeps a name from escaping the state directory."""
    return bool(_PROJECT_NAME.match(project))


@dataclass(frozen=True)
class IngressConfig:
    """What the daemon must serve.

    ``drains`` maps each drained container id to the generation that drained it: a drain
    ends once the daemon sees the container stopped (a later ``start`` serves it again),
    and the generation tells a new drain of the same container from the finished one.
    """

    backend: str
    routes: tuple[Route, ...]
    drains: Mapping[str, int] = field(default_factory=dict)
    generation: int = 0

    @property
    def drained(self) -> tuple[str, ...]:
        return tuple(sorted(self.drains))

    def to_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "routes": [route_to_json(r) for r in self.routes],
            "drained": list(self.drained),
            "drain_generations": dict(sorted(self.drains.items())),
            "generation": self.generation,
        }

    @classmethod
    def from_json(cls, data: Any, *, default_backend: str = "") -> IngressConfig:
        """Parse a config file's content; ValueError saying what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        backend = data.get("backend") or default_backend
        if not isinstance(backend, str) or not backend:
            raise ValueError("'backend' must be a non-empty string")
        raw_routes = data.get("routes", [])
        drained = data.get("drained", [])
        generation = data.get("generation", 0)
        if not isinstance(raw_routes, list):
            raise ValueError("'routes' must be a list")
        if not isinstance(drained, list) or not all(isinstance(d, str) for d in drained):
            raise ValueError("'drained' must be a list of container ids")
        if not _is_int(generation):
            raise ValueError("'generation' must be an integer")
        generations = data.get("drain_generations", {})
        if not isinstance(generations, dict) or not all(
            _is_int(g) for g in generations.values()
        ):
            raise ValueError("'drain_generations' must map container ids to integers")
        routes = tuple(route_from_json(r) for r in raw_routes)
        drains = {d: int(generations.get(d, 0)) for d in drained}
        return cls(backend, routes, drains, generation)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def route_to_json(route: Route) -> dict[str, Any]:
    return {
        "service": route.service,
        "published": route.published,
        "target": route.target,
        "protocol": route.protocol,
        "host_ip": route.host_ip,
    }


def route_from_json(data: Any) -> Route:
    if not isinstance(data, dict):
        raise ValueError("each route must be a JSON object")
    service, published, target = data.get("service"), data.get("published"), data.get("target")
    protocol, host_ip = data.get("protocol", "tcp"), data.get("host_ip", "0.0.0.0")
    if not isinstance(service, str) or not service:
        raise ValueError("a route's 'service' must be a non-empty string")
    for name, port in (("published", published), ("target", target)):
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ValueError(f"a route's {name!r} must be a port number, got {port!r}")
    if protocol not in ("tcp", "udp"):
        raise ValueError(f"a route's 'protocol' must be tcp or udp, got {protocol!r}")
    if not isinstance(host_ip, str):
        raise ValueError("a route's 'host_ip' must be a string")
    assert isinstance(published, int) and isinstance(target, int)
    return Route(service, published, target, protocol, host_ip)


def read_json(path: Path) -> Any:
    """The file's JSON, or None when it is missing or half-written garbage."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_json_atomic(path: Path, data: Any) -> None:
    """Readers see the old content or the new, never a torn file; no fsync (these files
    live as long as the daemon)."""
    atomic.write_json(path, data, durable=False, indent=1)
