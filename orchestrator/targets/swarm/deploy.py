"""Put a compose project on a swarm: what ``docker stack deploy`` does, plus depends_on.

Swarm starts every service at once; the spec orders them. So networks, configs and
secrets come first, then the services one dependency generation at a time, and a
generation starts only once the one before runs (healthy, when it has a healthcheck:
swarm keeps a task in ``starting`` until its first healthy probe; completed, for jobs).
A re-deploy updates services whose converted spec changed (a digest label tells) and
leaves the others alone, so deploying twice is a no-op.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import (
    ConfigError,
    Conflict,
    NotFound,
    Problem,
    RolledBack,
    RolloutPaused,
    WaitTimeout,
)
from orchestrator.graph import ServiceGraph
from orchestrator.model import Project
from orchestrator.targets.swarm.convert import (
    CONTENT_HASH_LABEL,
    SPEC_HASH_LABEL,
    FileObject,
    NetworkObject,
    ServiceDefinition,
    StackDefinition,
    convert_project,
)
from orchestrator.targets.swarm.engine import SwarmEngine

DEFAULT_TIMEOUT = 180.0
_POLL = 0.25


@dataclass(frozen=True)
class Action:
    """One thing deploy did: ``kind`` network|config|secret|service, ``action``
    created|updated|unchanged|external."""

    kind: str
    name: str
    action: str


@dataclass(frozen=True)
class DeployResult:
    stack: str
    actions: tuple[Action, ...]
    warnings: tuple[Problem, ...]


Listener = Callable[[Action], None]


def deploy_project(
    engine: SwarmEngine,
    project: Project,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    on_action: Listener | None = None,
) -> DeployResult:
    """Deploy ``project`` as the stack ``project.name``; returns what was done.

    Raises ConfigError before touching the swarm when the project cannot run there,
    WaitTimeout when a service does not converge in ``timeout`` seconds, RolledBack /
    RolloutPaused when an update fails as its update_config says.
    """
    stack = convert_project(project)
    generations = ServiceGraph(project).generations()
    engine.require_manager()
    actions: list[Action] = []

    def record(action: Action) -> None:
        actions.append(action)
        if on_action is not None:
            on_action(action)

    for network in stack.networks:
        record(_ensure_network(engine, network))
    ids: dict[str, str] = {}
    for obj in (*stack.configs, *stack.secrets):
        object_id, action = _ensure_file(engine, obj, project.working_dir)
        ids[f"{obj.kind}:{obj.name}"] = object_id
        record(action)
    for generation in generations:
        started: list[tuple[ServiceDefinition, str, str | None, bool]] = []
        for key in generation:
            definition = stack.services[key]
            service_id, done, previous, rolling = _apply_service(engine, definition, ids)
            started.append((definition, service_id, previous, rolling))
            record(Action("service", definition.name, done))
        for definition, service_id, previous, rolling in started:
            wait_converged(
                engine, definition, service_id, previous, rolling=rolling, timeout=timeout
            )
    return DeployResult(stack.name, tuple(actions), stack.warnings)


def _ensure_network(engine: SwarmEngine, network: NetworkObject) -> Action:
    with engine.call(f"network {network.name}"):
        existing = [
            n for n in engine.api.networks(names=[network.name]) if n["Name"] == network.name
        ]
        if network.external:
            if not existing:
                raise NotFound(
                    f"external network {network.name!r} does not exist on the swarm "
                    "(create it with `docker network create -d overlay`)"
                )
            return Action("network", network.name, "external")
        if existing:
            return Action("network", network.name, "unchanged")
        body = network.create
        engine.api.create_network(
            body["Name"],
            driver=body["Driver"],
            options=body["Options"] or None,
            ipam=body.get("IPAM"),
            internal=body["Internal"],
            labels=body["Labels"],
            enable_ipv6=body["EnableIPv6"],
            attachable=body["Attachable"],
            scope="swarm" if body["Driver"] == "overlay" else None,
        )
    return Action("network", network.name, "created")


def _file_data(obj: FileObject, working_dir: str) -> bytes:
    if obj.content is not None:
        return obj.content.encode()
    if obj.environment is not None:
        value = os.environ.get(obj.environment)
        if value is None:
            raise ConfigError(
                Problem(
                    f"environment variable {obj.environment} is not set",
                    path=f"{obj.kind}s.{obj.key}.environment",
                )
            )
        return value.encode()
    path = os.path.join(working_dir, obj.file or "")
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise ConfigError(
            Problem(f"cannot read {path}: {exc.strerror}", path=f"{obj.kind}s.{obj.key}.file")
        ) from exc


def _ensure_file(engine: SwarmEngine, obj: FileObject, working_dir: str) -> tuple[str, Action]:
    """Create a config or secret; swarm keeps them immutable, so a changed content is a
    Conflict the user resolves (``stack down`` or a new name) rather than a silent reuse."""
    api = engine.api
    listing = api.configs if obj.kind == "config" else api.secrets
    with engine.call(f"{obj.kind} {obj.name}"):
        existing = [o for o in listing(filters={"name": obj.name}) if o["Spec"]["Name"] == obj.name]
    if obj.external:
        if not existing:
            raise NotFound(f"external {obj.kind} {obj.name!r} does not exist on the swarm")
        return existing[0]["ID"], Action(obj.kind, obj.name, "external")
    data = _file_data(obj, working_dir)
    digest = hashlib.sha256(data).hexdigest()
    if existing:
        labels = existing[0]["Spec"].get("Labels") or {}
        if labels.get(CONTENT_HASH_LABEL) != digest:
            raise Conflict(
                f"{obj.kind} {obj.name} exists on the swarm with other content, and swarm "
                f"{obj.kind}s cannot change; remove the stack first (`stack down`) or "
                f"give the {obj.kind} a new name"
            )
        return existing[0]["ID"], Action(obj.kind, obj.name, "unchanged")
    labels = {**obj.labels, CONTENT_HASH_LABEL: digest}
    with engine.call(f"{obj.kind} {obj.name}"):
        if obj.kind == "config":
            created = api.create_config(obj.name, data, labels=labels)
        else:
            created = api.create_secret(obj.name, data, labels=labels)
    return str(created["ID"]), Action(obj.kind, obj.name, "created")


def _with_ids(spec: dict[str, Any], ids: dict[str, str]) -> dict[str, Any]:
    container = dict(spec["TaskTemplate"]["ContainerSpec"])
    for kind, field in (("secret", "Secrets"), ("config", "Configs")):
        prefix = "Secret" if kind == "secret" else "Config"
        if field in container:
            container[field] = [
                {**ref, f"{prefix}ID": ids[f"{kind}:{ref[f'{prefix}Name']}"]}
                for ref in container[field]
            ]
    return {**spec["TaskTemplate"], "ContainerSpec": container}


def _apply_service(
    engine: SwarmEngine, definition: ServiceDefinition, ids: dict[str, str]
) -> tuple[str, str, str | None, bool]:
    """Create or update one service: (id, action, the previous update's start, rolling)."""
    spec = definition.spec
    task = _with_ids(spec, ids)
    kwargs: dict[str, Any] = {
        "task_template": task,
        "name": definition.name,
        "labels": spec["Labels"],
        "mode": spec["Mode"],
        "endpoint_spec": spec["EndpointSpec"],
        "update_config": spec.get("UpdateConfig"),
        "rollback_config": spec.get("RollbackConfig"),
    }
    existing = engine.service(definition.name)
    with engine.call(f"service {definition.name}"):
        if existing is None:
            created = engine.api.create_service(**kwargs)
            return str(created["ID"]), "created", None, False
        current_labels = existing["Spec"].get("Labels") or {}
        if current_labels.get(SPEC_HASH_LABEL) == spec["Labels"][SPEC_HASH_LABEL]:
            return str(existing["ID"]), "unchanged", None, False
        previous = (existing.get("UpdateStatus") or {}).get("StartedAt")
        engine.api.update_service(existing["ID"], existing["Version"]["Index"], **kwargs)
    updated = engine.service(definition.name) or {}
    before = (updated.get("PreviousSpec") or {}).get("TaskTemplate")
    rolling = before is not None and before != updated["Spec"].get("TaskTemplate")
    return str(existing["ID"]), "updated", previous or "", rolling


_PAUSED = {"paused", "rollback_paused"}
_DONE = {"completed", "rollback_completed"}


def wait_converged(
    engine: SwarmEngine,
    definition: ServiceDefinition,
    service_id: str,
    previous_update: str | None,
    *,
    rolling: bool,
    timeout: float,
    rollback: bool = False,
) -> None:
    """Until the service runs as specified: its rolling update (if any) finished and every
    replica running (healthy / completed). ``previous_update`` is the StartedAt of the
    update status seen before our request, so an old status is not mistaken for ours."""
    deadline = time.monotonic() + timeout
    name = definition.name
    last_error = ""
    while True:
        service = engine.service(name)
        if service is None:
            raise NotFound(f"service {name} disappeared while deploying")
        status = service.get("UpdateStatus") or {}
        settled = not rolling
        if rolling and status and status.get("StartedAt") != previous_update:
            state = status.get("State", "")
            message = status.get("Message", "")
            if state in _PAUSED:
                raise RolloutPaused(f"service {name}: update paused: {message}", service=name)
            settled = state in _DONE
            if state == "rollback_completed" and not rollback:
                failed = RolledBack(
                    f"service {name}: the update failed and was rolled back: {message}",
                    service=name,
                )
                # the status flips before the restored replicas run: report once they do
                if _tasks_converged(definition, service, engine.tasks(service_id)):
                    raise failed
                if time.monotonic() >= deadline:
                    raise failed
                time.sleep(_POLL)
                continue
        tasks = engine.tasks(service_id)
        errors = [t["Status"].get("Err", "") for t in tasks if t["Status"].get("Err")]
        if errors:
            last_error = errors[-1]
        if settled and _tasks_converged(definition, service, tasks):
            return
        if time.monotonic() >= deadline:
            why = f" (last task error: {last_error})" if last_error else ""
            raise WaitTimeout(f"service {name} did not converge within {timeout:g}s{why}")
        time.sleep(_POLL)


def _tasks_converged(
    definition: ServiceDefinition, service: dict[str, Any], tasks: list[dict[str, Any]]
) -> bool:
    mode = service["Spec"].get("Mode", {})
    if definition.mode.endswith("-job"):
        done = [t for t in tasks if t["Status"]["State"] == "complete"]
        if "ReplicatedJob" in mode:
            return len(done) >= int(mode["ReplicatedJob"].get("TotalCompletions") or 1)
        return bool(tasks) and all(
            t["Status"]["State"] == "complete" for t in tasks if t["DesiredState"] == "complete"
        )
    wanted = [t for t in tasks if t["DesiredState"] == "running"]
    running = [t for t in wanted if t["Status"]["State"] == "running"]
    if len(running) != len(wanted):
        return False
    if "Replicated" in mode:
        return len(running) >= int(mode["Replicated"].get("Replicas") or 0)
    return bool(running)


def stack_definition(project: Project) -> StackDefinition:
    """The converted stack without touching a swarm (``deploy --dry-run``)."""
    return convert_project(project)
