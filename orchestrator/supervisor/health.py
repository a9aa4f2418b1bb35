"""Should an unhealthy replica be replaced? Pure; the daemon only acts.

The engine only *reports* ``unhealthy``; swarm replaces such a task, docker leaves it
running. pycompose does as swarm on one host: an unhealthy replica is removed and
created again from the service's current spec, unless the service opts out with the
label ``io.pycompose.replace-unhealthy: "false"`` (``labels.REPLACE_UNHEALTHY``, in
``labels`` or ``deploy.labels``) or ``x-pycompose: {replace_unhealthy: false}``.

A service whose ``deploy.restart_policy.condition`` is ``none`` is not replaced either:
swarm would shut the failed task down and start no other.

Replacements of one slot are paced like docker's restarts so a replica that is unhealthy
again right after its replacement does not churn: the first is immediate, each next one
waits twice as long as the one before (1 s, 2 s, 4 s … capped at 60 s), and a slot left
alone for 5 minutes starts over.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator import labels
from orchestrator.backends.base import Health
from orchestrator.model import Service

FIRST_PAUSE = 1.0
MAX_PAUSE = 60.0
CALM_AFTER = 300.0


@dataclass(frozen=True)
class Replace:
    at: float
    reason: str


@dataclass(frozen=True)
class Keep:
    reason: str


HealthDecision = Replace | Keep


def _falsy(value: object) -> bool:
    if isinstance(value, bool):
        return not value
    return str(value).strip().lower() in ("false", "0", "no", "off")


def replace_unhealthy_enabled(service: Service) -> bool:
    """False when the service opts out (label or ``x-pycompose.replace_unhealthy``)."""
    deploy_labels = service.deploy.labels if service.deploy is not None else {}
    for source in (service.labels, deploy_labels):
        if labels.REPLACE_UNHEALTHY in source and _falsy(source[labels.REPLACE_UNHEALTHY]):
            return False
    extension = service.extras.get("x-pycompose")
    if isinstance(extension, dict) and "replace_unhealthy" in extension:
        return not _falsy(extension["replace_unhealthy"])
    return True


def pause_before(replacements: tuple[float, ...], now: float) -> float:
    """How long after the last replacement the next one may happen."""
    recent = [t for t in replacements if t > now - CALM_AFTER]
    if not recent:
        return 0.0
    return float(min(FIRST_PAUSE * 2.0 ** (len(recent) - 1), MAX_PAUSE))


def decide_unhealthy(
    service: Service, health: Health, replacements: tuple[float, ...], now: float
) -> HealthDecision:
    """``replacements``: when this slot was replaced before (unix seconds)."""
    if health != "unhealthy":
        return Keep(f"health is {health}")
    if not replace_unhealthy_enabled(service):
        return Keep("the service opts out of replacing unhealthy replicas")
    policy = service.deploy.restart_policy if service.deploy is not None else None
    if policy is not None and policy.condition == "none":
        return Keep("deploy.restart_policy.condition is none")
    pause = pause_before(replacements, now)
    at = max(now, replacements[-1] + pause) if replacements and pause else now
    return Replace(at, "unhealthy")
