"""A deployed stack, found by its ``com.docker.stack.namespace`` label: ps, logs, down,
rollback. The same label ``docker stack`` uses, so either tool sees the other's stacks."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import docker.errors

from orchestrator.errors import BackendError, Conflict, NotFound, WaitTimeout
from orchestrator.targets.swarm.convert import NAMESPACE_LABEL, ServiceDefinition, service_name
from orchestrator.targets.swarm.deploy import DEFAULT_TIMEOUT, wait_converged
from orchestrator.targets.swarm.engine import SwarmEngine, parse_time

_POLL = 0.25


@dataclass(frozen=True)
class TaskRow:
    """One swarm task, as `stack ps` shows it."""

    id: str
    name: str  # <service>.<slot> (or .<node id> for global services)
    service: str
    image: str
    node: str
    desired_state: str
    state: str
    error: str
    created: float  # epoch seconds
    updated: float


@dataclass(frozen=True)
class StackLogLine:
    service: str
    text: str


def _short(service: dict[str, Any], stack: str) -> str:
    """The compose key of a stack service (``web`` for ``app_web``)."""
    name = str(service["Spec"]["Name"])
    return name[len(stack) + 1 :] if name.startswith(f"{stack}_") else name


def _select(engine: SwarmEngine, stack: str, services: Sequence[str] = ()) -> list[dict[str, Any]]:
    found = engine.services(stack)
    if not services:
        return sorted(found, key=lambda s: str(s["Spec"]["Name"]))
    by_key = {_short(s, stack): s for s in found}
    missing = [name for name in services if name not in by_key]
    if missing:
        known = ", ".join(sorted(by_key)) or "none"
        raise NotFound(f"no such service in stack {stack}: {', '.join(missing)} (known: {known})")
    return [by_key[name] for name in services]


def ps(engine: SwarmEngine, stack: str, services: Sequence[str] = ()) -> list[TaskRow]:
    """Every task of the stack's services (current and history), newest first per slot."""
    selected = _select(engine, stack, services)
    with engine.call("nodes"):
        nodes = {n["ID"]: n["Description"]["Hostname"] for n in engine.api.nodes()}
    rows: list[TaskRow] = []
    for service in selected:
        name = str(service["Spec"]["Name"])
        for task in engine.tasks(service["ID"]):
            slot = task.get("Slot") or task.get("NodeID", "")
            status = task["Status"]
            rows.append(
                TaskRow(
                    id=task["ID"],
                    name=f"{name}.{slot}",
                    service=_short(service, stack),
                    image=task["Spec"]["ContainerSpec"]["Image"].split("@", 1)[0],
                    node=nodes.get(task.get("NodeID", ""), ""),
                    desired_state=task["DesiredState"],
                    state=status["State"],
                    error=status.get("Err", ""),
                    created=parse_time(task.get("CreatedAt")),
                    updated=parse_time(status.get("Timestamp")),
                )
            )
    rows.sort(key=lambda r: (r.name, -r.created))
    return rows


def logs(
    engine: SwarmEngine,
    stack: str,
    services: Sequence[str] = (),
    *,
    follow: bool = False,
    tail: int | None = None,
    timestamps: bool = False,
) -> Iterator[StackLogLine]:
    """Each service's output, one service after another (interleaved with ``follow``
    only in the order the manager sends it)."""
    for service in _select(engine, stack, services):
        key = _short(service, stack)
        with engine.call(f"logs of {service['Spec']['Name']}"):
            stream = engine.api.service_logs(
                service["ID"],
                stdout=True,
                stderr=True,
                follow=follow,
                timestamps=timestamps,
                tail=tail if tail is not None else "all",
            )
            for chunk in stream:
                text = chunk.decode("utf-8", "replace") if isinstance(chunk, bytes) else chunk
                for line in text.splitlines():
                    yield StackLogLine(key, line)


def down(engine: SwarmEngine, stack: str, *, timeout: float = DEFAULT_TIMEOUT) -> list[str]:
    """Remove the stack's services, then (once their tasks are gone, since networks in use
    cannot go) its networks, secrets and configs. Named volumes stay on the nodes, as
    with ``docker stack rm``. Returns what was removed."""
    label = {"label": f"{NAMESPACE_LABEL}={stack}"}
    removed: list[str] = []
    services = engine.services(stack)
    for service in services:
        with (
            engine.call(f"service {service['Spec']['Name']}"),
            contextlib.suppress(docker.errors.NotFound),
        ):
            engine.api.remove_service(service["ID"])
        removed.append(f"service {service['Spec']['Name']}")
    deadline = time.monotonic() + timeout
    ids = {str(service["ID"]) for service in services}
    while engine.remaining_tasks(ids):
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"tasks of stack {stack} still exist after {timeout:g}s")
        time.sleep(_POLL)
    api = engine.api
    with engine.call("networks"):
        networks = api.networks(filters=label)
    for network in networks:
        _remove_network(engine, network, deadline)
        removed.append(f"network {network['Name']}")
    for kind, listing, remove in (
        ("secret", api.secrets, api.remove_secret),
        ("config", api.configs, api.remove_config),
    ):
        with engine.call(f"{kind}s"):
            for obj in listing(filters=label):
                with contextlib.suppress(docker.errors.NotFound):
                    remove(obj["ID"])
                removed.append(f"{kind} {obj['Spec']['Name']}")
    return removed


def _remove_network(engine: SwarmEngine, network: dict[str, Any], deadline: float) -> None:
    """A network is busy until every node has torn down its task endpoints: retry."""
    while True:
        try:
            with (
                engine.call(f"network {network['Name']}"),
                contextlib.suppress(docker.errors.NotFound),
            ):
                engine.api.remove_network(network["Id"])
            break
        except (Conflict, BackendError) as exc:
            if "not found" in str(exc):  # a node's stale copy the manager already removed
                break
            # 'has active endpoints' comes as 403 or 500 depending on the engine version
            if time.monotonic() >= deadline or "active endpoints" not in str(exc):
                raise
        time.sleep(_POLL)
    # the manager answers before the node forgets its copy; a deploy right after `down`
    # would find the name, skip creating it, and then fail to attach to it
    name = network["Name"]
    while True:
        with engine.call("networks"):
            if all(n["Name"] != name for n in engine.api.networks(names=[name])):
                return
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"network {name} is still listed after its removal")
        time.sleep(_POLL)


def rollback(
    engine: SwarmEngine, stack: str, service: str, *, timeout: float = DEFAULT_TIMEOUT
) -> None:
    """Roll SERVICE back to its previous spec through its rollback_config, and wait until
    the rollback completed (RolloutPaused if it paused)."""
    found = _select(engine, stack, [service])[0]
    if not found.get("PreviousSpec"):
        raise NotFound(f"service {service} of stack {stack} has no previous spec to roll back to")
    previous = (found.get("UpdateStatus") or {}).get("StartedAt", "")
    engine.rollback(found)
    spec = found["PreviousSpec"]
    mode = "global" if "Global" in spec.get("Mode", {}) else "replicated"
    definition = ServiceDefinition(
        key=service, name=service_name(stack, service), spec=spec, mode=mode
    )
    wait_converged(
        engine, definition, found["ID"], previous, rolling=True, timeout=timeout, rollback=True
    )
