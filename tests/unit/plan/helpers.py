"""Small builders for the plan and executor tests: projects, and `up` on a FakeBackend."""

from __future__ import annotations

from typing import Any

from orchestrator.backends.fake import FakeBackend
from orchestrator.executor import ExecutionResult, execute
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


def up(
    backend: FakeBackend, target: Project, options: UpOptions | None = None
) -> ExecutionResult:
    """Plan and run `up` for ``target``; fails the test when anything did not succeed."""
    plan = reconcile(target, backend.observe(target.name), options or UpOptions())
    result = execute(plan, backend, parallel=4)
    assert result.ok, result.errors
    return result
