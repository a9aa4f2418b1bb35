"""The typed, frozen compose model: what the loader produces and everything else consumes.

Values here are canonical (long syntax, defaults filled in, durations in seconds, sizes in
bytes, relative paths made absolute). Collections are tuples and dicts; treat every dict
as read-only.
"""

from orchestrator.model.deploy import (
    Deploy,
    Placement,
    ResourceLimits,
    ResourceReservations,
    Resources,
    RestartPolicy,
    UpdateConfig,
)
from orchestrator.model.project import (
    ConfigObject,
    Network,
    Project,
    SecretObject,
    Volume,
)
from orchestrator.model.service import (
    Build,
    DependsOn,
    Healthcheck,
    Logging,
    PortConfig,
    Service,
    ServiceFile,
    ServiceNetwork,
    ServiceVolume,
    Ulimit,
)

__all__ = [
    "Build",
    "ConfigObject",
    "DependsOn",
    "Deploy",
    "Healthcheck",
    "Logging",
    "Network",
    "Placement",
    "PortConfig",
    "Project",
    "ResourceLimits",
    "ResourceReservations",
    "Resources",
    "RestartPolicy",
    "SecretObject",
    "Service",
    "ServiceFile",
    "ServiceNetwork",
    "ServiceVolume",
    "Ulimit",
    "UpdateConfig",
    "Volume",
]
