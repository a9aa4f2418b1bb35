"""The swarm manager as our code sees it: one connection, every SDK failure mapped.

Kept apart so deploy and stack speak in specs and tasks, and so the two calls the SDK
does not offer (a server-side rollback, reading a service's update status) live in one
place.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import docker
import docker.errors

from orchestrator.backends.docker.errors import translated
from orchestrator.errors import EngineUnavailable, Unsupported

_API_TIMEOUT = 60


class SwarmEngine:
    """A connection to a swarm manager (``host`` like ``unix:///run/x.sock``; None: the
    environment's DOCKER_HOST or the default socket)."""

    def __init__(self, host: str | None = None) -> None:
        self.endpoint = host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        with translated(self.endpoint):
            try:
                if host:
                    self.client = docker.DockerClient(
                        base_url=host, version="auto", timeout=_API_TIMEOUT
                    )
                else:
                    self.client = docker.from_env(version="auto", timeout=_API_TIMEOUT)
            except docker.errors.DockerException as exc:
                raise EngineUnavailable(
                    f"cannot reach the Docker engine at {self.endpoint}: {exc}"
                ) from exc
        self.api: Any = self.client.api

    def close(self) -> None:
        self.client.close()

    @contextmanager
    def call(self, what: str = "") -> Iterator[None]:
        """Run SDK calls; anything foreign comes out as our error naming ``what``."""
        with translated(self.endpoint, what):
            yield

    def require_manager(self) -> None:
        """Swarm objects only exist on a manager of an active swarm: say so plainly."""
        with self.call():
            info = self.api.info()
        swarm = info.get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active":
            raise Unsupported(
                f"the engine at {self.endpoint} is not part of a swarm "
                "(run `docker swarm init` there, or pass --host of a manager)"
            )
        if not swarm.get("ControlAvailable"):
            raise Unsupported(
                f"the engine at {self.endpoint} is a swarm worker; deploy through a manager"
            )

    def services(self, stack: str) -> list[dict[str, Any]]:
        from orchestrator.targets.swarm.convert import NAMESPACE_LABEL

        with self.call("services"):
            found: list[dict[str, Any]] = self.api.services(
                filters={"label": f"{NAMESPACE_LABEL}={stack}"}
            )
        return found

    def service(self, name: str) -> dict[str, Any] | None:
        with self.call(f"service {name}"):
            try:
                found: dict[str, Any] = self.api.inspect_service(name)
            except docker.errors.NotFound:
                return None
        # a name filter matches prefixes and IDs; inspect by name is exact
        return found

    def tasks(self, service_id: str) -> list[dict[str, Any]]:
        with self.call("tasks"):
            found: list[dict[str, Any]] = self.api.tasks(filters={"service": service_id})
        return found

    def remaining_tasks(self, service_ids: set[str]) -> list[dict[str, Any]]:
        """Tasks of services that may already be removed (a service filter on a removed
        service is an error, yet its tasks linger until their containers are gone)."""
        with self.call("tasks"):
            found: list[dict[str, Any]] = self.api.tasks()
        return [t for t in found if t.get("ServiceID") in service_ids]

    def rollback(self, service: dict[str, Any]) -> None:
        """Ask the manager itself to roll back (``rollback=previous``), so the rollout uses
        the service's rollback_config exactly as ``docker service rollback`` does; the SDK
        has no call for it."""
        api = self.api
        with self.call(f"service {service['Spec']['Name']}"):
            url = api._url("/services/{0}/update", service["ID"])
            params = {"version": service["Version"]["Index"], "rollback": "previous"}
            response = api._post_json(url, data=service["Spec"], params=params)
            api._raise_for_status(response)


def parse_time(value: str | None) -> float:
    """An engine RFC 3339 timestamp (nanoseconds, 'Z') as epoch seconds; 0 when absent."""
    if not value or value.startswith("0001-"):
        return 0.0
    text = value.rstrip("Z")
    head, _, frac = text.partition(".")
    stamp = datetime.datetime.fromisoformat(head).replace(tzinfo=datetime.UTC).timestamp()
    return stamp + (float(f"0.{frac}") if frac else 0.0)
