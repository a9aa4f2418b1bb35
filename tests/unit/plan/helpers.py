"""Small builders for the plan and executor tests: projects, and `up` on a FakeBackend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orchestrator.backends.fake import FakeBackend
from orchestrator.executor import ExecutionResult, execute
from orchestrator.ingress.routes import Route
from orchestrator.model import Network, Project, Service, ServiceNetwork, Volume
from orchestrator.plan.reconcile import UpOptions, reconcile


def svc(name: str, **fields: Any) -> Service:
    """A service on the default network with image ``img/<name>:1`` unless told otherwise."""
    fields.setdefault("image", f"img/{name}:1")
    fields.setdefault("networks", {"default": ServiceNetwork()})
    return Service(name=name, **fields)


def project(
    *services: Service,
    networks: dict[str, Network] | None = None,
    volumes: dict[str, Volume] | None = None,
    name: str = "p",
) -> Project:
    return Project(
        name=name,
        working_dir="/srv/p",
        config_files=("/srv/p/compose.yaml",),
        services={s.name: s for s in services},
        networks=networks if networks is not None else {"default": Network("default", "p_default")},
        volumes=volumes or {},
    )


class RecordingIngress:
    """An IngressController that serves nothing and writes each call to ``log``."""

    def __init__(self, log: list[tuple[str, str]] | None = None) -> None:
        self.log = log if log is not None else []
        self.routes: dict[str, list[Route]] = {}

    def ensure(self, project: str, backend: str, routes: Sequence[Route]) -> None:
        self.log.append(("ensure", project))
        self.routes[project] = sorted(routes)

    def remove(self, project: str) -> None:
        self.log.append(("remove", project))
        self.routes.pop(project, None)

    def status(self, project: str) -> list[Route]:
        return list(self.routes.get(project, []))

    def drain(self, project: str, container_ids: Sequence[str]) -> None:
        self.log.extend(("drain", container_id) for container_id in container_ids)

    def refresh(self, project: str) -> None:
        self.log.append(("refresh", project))


def fake_backend() -> FakeBackend:
    """A FakeBackend where the ``init`` services exit 0 at once, like a migration job."""
    return FakeBackend(exit_codes={"init": 0})


def up(backend: FakeBackend, target: Project, options: UpOptions | None = None) -> ExecutionResult:
    """Plan and run `up` for ``target``; fails the test when anything did not succeed."""
    plan = reconcile(target, backend.observe(target.name), options or UpOptions())
    result = execute(
        plan, backend, parallel=4, ingress=RecordingIngress(), wait_timeout=5, poll_interval=0.01
    )
    assert result.ok, result.errors
    return result
