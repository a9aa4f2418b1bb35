"""``deploy.*``: swarm's semantics, which pycompose honours on one host.

Defaults are swarm's (docker service create), so a canonical Deploy always carries them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

DeployMode = Literal["replicated", "global", "replicated-job", "global-job"]
FailureAction = Literal["pause", "continue", "rollback"]
UpdateOrder = Literal["stop-first", "start-first"]
RestartCondition = Literal["none", "on-failure", "any"]


@dataclass(frozen=True)
class UpdateConfig:
    """``deploy.update_config`` / ``deploy.rollback_config`` (swarm defaults)."""

    parallelism: int = 1  # 0 means all at once
    delay: float = 0.0  # seconds between batches
    failure_action: FailureAction = "pause"
    monitor: float = 5.0  # seconds a new replica must survive to count as updated
    max_failure_ratio: float = 0.0
    order: UpdateOrder = "stop-first"


@dataclass(frozen=True)
class RestartPolicy:
    """``deploy.restart_policy`` (swarm defaults: any, 5s, unlimited, no window)."""

    condition: RestartCondition = "any"
    delay: float = 5.0
    max_attempts: int | None = None  # None: unlimited
    window: float = 0.0  # seconds; 0: every restart counts forever


@dataclass(frozen=True)
class ResourceLimits:
    cpus: float | None = None
    memory: int | None = None  # bytes
    pids: int | None = None


@dataclass(frozen=True)
class ResourceReservations:
    cpus: float | None = None
    memory: int | None = None  # bytes
    # devices / generic_resources are passed through untouched
    devices: tuple[dict[str, Any], ...] = ()
    generic_resources: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Resources:
    limits: ResourceLimits = field(default_factory=ResourceLimits)
    reservations: ResourceReservations = field(default_factory=ResourceReservations)


@dataclass(frozen=True)
class Placement:
    constraints: tuple[str, ...] = ()
    preferences: tuple[dict[str, str], ...] = ()
    max_replicas_per_node: int | None = None


@dataclass(frozen=True)
class Deploy:
    mode: DeployMode = "replicated"
    replicas: int | None = None  # None: not set (Service.replicas resolves the effective count)
    endpoint_mode: Literal["vip", "dnsrr"] | None = None
    labels: dict[str, str] = field(default_factory=dict)
    update_config: UpdateConfig = field(default_factory=UpdateConfig)
    rollback_config: UpdateConfig = field(default_factory=UpdateConfig)
    restart_policy: RestartPolicy | None = None  # None: not set (``restart:`` applies)
    resources: Resources = field(default_factory=Resources)
    placement: Placement = field(default_factory=Placement)
