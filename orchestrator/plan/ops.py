"""The operations a Plan is made of, as plain frozen data.

A Plan is the whole decision of ``up``/``down``/``stop``...: the executor only runs it, and
``--dry-run`` only prints it, so both see exactly the same thing. Each op has a stable
``id`` (edges refer to ops by id) and a ``reason`` a person can read ("config changed",
"scale 3→2"). Ops on containers that exist carry the container id observed at plan time;
ops on containers the plan itself creates carry only the name, and the executor resolves it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from orchestrator.backends.base import ContainerSpec, NetworkSpec, VolumeSpec
from orchestrator.events import Event
from orchestrator.ingress.routes import Route
from orchestrator.model.deploy import UpdateConfig
from orchestrator.model.service import DependsCondition


@dataclass(frozen=True, kw_only=True)
class Op:
    """Base of every operation: its id in the plan and why it is there."""

    id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class EnsureImage(Op):
    image: str
    pull_policy: str | None = None


@dataclass(frozen=True, kw_only=True)
class CreateNetwork(Op):
    spec: NetworkSpec


@dataclass(frozen=True, kw_only=True)
class CreateVolume(Op):
    spec: VolumeSpec


@dataclass(frozen=True, kw_only=True)
class CreateContainer(Op):
    """Create (not start) a container; a StartContainer op follows it in the plan."""

    spec: ContainerSpec


@dataclass(frozen=True, kw_only=True)
class RecreateContainer(Op):
    """Replace ``old_id`` by a container made from ``spec``: stop old, remove old, create new.

    One op rather than three because the steps only make sense together and in this order;
    the new container is started by the StartContainer op that follows.
    """

    old_id: str
    spec: ContainerSpec
    timeout: float | None = None
    drain: bool = False  # take the old one out of the ingress pools first


@dataclass(frozen=True, kw_only=True)
class StartContainer(Op):
    """Start ``name``; ``container_id`` is None when this plan creates the container."""

    name: str
    service: str
    container_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class StopContainer(Op):
    name: str
    service: str
    container_id: str
    timeout: float | None = None
    drain: bool = False


@dataclass(frozen=True, kw_only=True)
class RemoveContainer(Op):
    name: str
    service: str
    container_id: str
    drain: bool = False


@dataclass(frozen=True, kw_only=True)
class RemoveNetwork(Op):
    name: str


@dataclass(frozen=True, kw_only=True)
class RemoveVolume(Op):
    name: str


@dataclass(frozen=True, kw_only=True)
class AwaitCondition(Op):
    """Hold back the dependents of ``service`` until its containers meet ``condition``.

    ``containers`` are the names of the replicas to watch. When ``required`` is false a
    failure here is a warning and the dependents go ahead, as docker compose does.
    """

    service: str
    condition: DependsCondition
    required: bool = True
    containers: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReplicaUpdate:
    """One replica of a rolling update: the container now serving it, and what replaces it.

    ``spec`` is the new container (named as the replica, its labels carrying the new spec,
    the one it replaces and the update generation); ``rollback_spec`` is the container the
    replica goes back to on rollback (None when the old one records no spec: then a
    rollback cannot be done and the update pauses instead).
    """

    number: int
    old_id: str
    old_name: str
    old_running: bool
    spec: ContainerSpec
    rollback_spec: ContainerSpec | None = None


@dataclass(frozen=True, kw_only=True)
class RollingUpdate(Op):
    """Update the changed replicas of ``service`` by ``config`` (``deploy.update_config``),
    rolling back by ``rollback_config`` on failure; run by ``supervisor.rollout_runner``.

    ``rollback`` marks a rollback itself (``pycompose rollback``): its failure pauses, it is
    never rolled back again. ``drain``: the service has ingress routes, so old replicas
    leave the pool before they stop.
    """

    service: str
    replicas: tuple[ReplicaUpdate, ...]
    config: UpdateConfig
    rollback_config: UpdateConfig
    rollback: bool = False
    drain: bool = False
    timeout: float | None = None


@dataclass(frozen=True, kw_only=True)
class EnsureIngress(Op):
    routes: tuple[Route, ...]


@dataclass(frozen=True, kw_only=True)
class RemoveIngress(Op):
    pass


AnyOp = (
    EnsureImage
    | CreateNetwork
    | CreateVolume
    | CreateContainer
    | RecreateContainer
    | RollingUpdate
    | StartContainer
    | StopContainer
    | RemoveContainer
    | RemoveNetwork
    | RemoveVolume
    | AwaitCondition
    | EnsureIngress
    | RemoveIngress
)

PlanKind = Literal["up", "down", "stop", "start", "restart"]


@dataclass(frozen=True)
class Plan:
    """Operations plus ``edges`` (op id -> ids of the ops that must succeed first).

    ``ops`` are listed in a readable order (dependencies first) that is also a valid
    sequential order; ``warnings`` are events for the caller to show (orphans, engine
    limits) and carry timestamp 0 because planning reads no clock.
    """

    project: str
    ops: tuple[AnyOp, ...] = ()
    edges: Mapping[str, frozenset[str]] = field(default_factory=dict)
    warnings: tuple[Event, ...] = ()

    def __post_init__(self) -> None:
        ids = [op.id for op in self.ops]
        if len(set(ids)) != len(ids):
            raise ValueError(f"plan has duplicate op ids: {sorted(ids)}")
        known = set(ids)
        for op_id, needs in self.edges.items():
            unknown = ({op_id} | set(needs)) - known
            if unknown:
                raise ValueError(f"plan edges name unknown ops: {sorted(unknown)}")

    @property
    def empty(self) -> bool:
        """True when there is nothing to do (warnings alone do not count)."""
        return not self.ops

    def needs(self, op_id: str) -> frozenset[str]:
        """The ids of the ops ``op_id`` waits for."""
        return self.edges.get(op_id, frozenset())

    def op(self, op_id: str) -> AnyOp:
        for candidate in self.ops:
            if candidate.id == op_id:
                return candidate
        raise KeyError(op_id)
