"""A Plan as words and as JSON, for ``--dry-run`` and for logs. Never prints: returns."""

from __future__ import annotations

from typing import Any

from orchestrator.plan.ops import (
    AnyOp,
    AwaitCondition,
    CreateContainer,
    CreateNetwork,
    CreateVolume,
    EnsureImage,
    EnsureIngress,
    Plan,
    RecreateContainer,
    RemoveContainer,
    RemoveIngress,
    RemoveNetwork,
    RemoveVolume,
    RollingUpdate,
    StartContainer,
    StopContainer,
)

_CONDITION_WORDS = {
    "service_started": "started",
    "service_healthy": "healthy",
    "service_completed_successfully": "completed successfully",
}


def describe(op: AnyOp) -> tuple[str, str, str]:
    """(verb, resource kind, resource name) of ``op``: the same words in text and JSON."""
    match op:
        case EnsureImage():
            return "Ensure", "image", op.image
        case CreateNetwork():
            return "Create", "network", op.spec.network.name
        case CreateVolume():
            return "Create", "volume", op.spec.volume.name
        case CreateContainer():
            return "Create", "container", op.spec.name
        case RecreateContainer():
            return "Recreate", "container", op.spec.name
        case RollingUpdate():
            return ("Roll back" if op.rollback else "Update"), "service", op.service
        case StartContainer():
            return "Start", "container", op.name
        case StopContainer():
            return "Stop", "container", op.name
        case RemoveContainer():
            return "Remove", "container", op.name
        case RemoveNetwork():
            return "Remove", "network", op.name
        case RemoveVolume():
            return "Remove", "volume", op.name
        case AwaitCondition():
            return "Wait for", "service", op.service
        case EnsureIngress():
            return (
                "Publish",
                "ingress",
                ", ".join(
                    f"{r.host_ip}:{r.published}/{r.protocol}→{r.service}:{r.target}"
                    for r in op.routes
                ),
            )
        case RemoveIngress():
            return "Remove", "ingress", "all routes"
    raise TypeError(f"unknown op {op!r}")  # pragma: no cover - the match is exhaustive


def render_text(plan: Plan) -> list[str]:
    """One line per op: ``Recreate container p-web-1 (config changed)``."""
    lines: list[str] = []
    for op in plan.ops:
        verb, kind, name = describe(op)
        if isinstance(op, AwaitCondition):
            optional = ", optional" if not op.required else ""
            words = _CONDITION_WORDS[op.condition]
            lines.append(f"{verb} {kind} {name} to be {words} ({op.reason}{optional})")
        elif isinstance(op, RollingUpdate):
            lines.append(f"{verb} {kind} {name} ({op.reason}; {_rollout_words(op)})")
        else:
            lines.append(f"{verb} {kind} {name} ({op.reason})")
    return lines


def render_json(plan: Plan) -> list[dict[str, Any]]:
    """One dict per op, with its id, words, reason and the ids it waits for."""
    out: list[dict[str, Any]] = []
    for op in plan.ops:
        verb, kind, name = describe(op)
        entry: dict[str, Any] = {
            "id": op.id,
            "op": type(op).__name__,
            "action": verb,
            "resource": kind,
            "name": name,
            "reason": op.reason,
            "needs": sorted(plan.needs(op.id)),
        }
        if isinstance(op, AwaitCondition):
            entry["condition"] = op.condition
            entry["required"] = op.required
        if isinstance(op, RollingUpdate):
            entry["replicas"] = [r.spec.name for r in op.replicas]
            entry["update_config"] = _config_json(op)
        if isinstance(op, EnsureIngress):
            entry["routes"] = [
                {
                    "service": r.service,
                    "published": r.published,
                    "target": r.target,
                    "protocol": r.protocol,
                    "host_ip": r.host_ip,
                }
                for r in op.routes
            ]
        out.append(entry)
    return out


def _rollout_words(op: RollingUpdate) -> str:
    """``replicas 1, 2, 3 in 2 batches, start-first, delay 1s, on failure rollback``."""
    config = op.config
    count = len(op.replicas)
    size = config.parallelism or count
    batches = -(-count // size) if count else 0
    numbers = ", ".join(str(r.number) for r in op.replicas)
    return (
        f"replica{'s' if count != 1 else ''} {numbers} in {batches} "
        f"batch{'es' if batches != 1 else ''}, {config.order}, delay {config.delay:g}s, "
        f"monitor {config.monitor:g}s, on failure {config.failure_action}"
    )


def _config_json(op: RollingUpdate) -> dict[str, Any]:
    config = op.config
    return {
        "parallelism": config.parallelism,
        "delay": config.delay,
        "failure_action": config.failure_action,
        "monitor": config.monitor,
        "max_failure_ratio": config.max_failure_ratio,
        "order": config.order,
        "rollback": op.rollback,
    }
