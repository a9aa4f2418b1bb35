"""Which replicas may receive a route's new connections, decided from one observation.

Pure on purpose: the daemon recomputes the pool every refresh and after every drain, and
keeping the rule here (not in the proxy) lets it be tested as a table.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from dataclasses import dataclass

from orchestrator.backends.base import ObservedContainer, ObservedState
from orchestrator.ingress.routes import Route

# a healthcheck that has not passed yet (or failed) must not receive traffic;
# "none" means the service has no healthcheck, so running is all we can ask for
_SERVING_HEALTH = frozenset({"healthy", "none"})


@dataclass(frozen=True, order=True)
class Member:
    """One replica a connection can be sent to: ``address:port`` reaches ``container_id``."""

    container_id: str
    address: str
    port: int


def members(observed: ObservedState, route: Route, drained: Collection[str]) -> list[Member]:
    """The replicas of ``route.service`` that may take new connections, by container number."""
    chosen: list[Member] = []
    for container in observed.service_containers(route.service, oneoff=False):
        if not _serving(container, drained):
            continue
        address = reachable_address(container)
        if address is None:
            continue
        chosen.append(Member(container.id, address, route.target))
    return chosen


def _serving(container: ObservedContainer, drained: Collection[str]) -> bool:
    return (
        container.status == "running"
        and not container.oneoff
        and container.health in _SERVING_HEALTH
        and container.id not in drained
    )


def reachable_address(container: ObservedContainer) -> str | None:
    """An IPv4 address of ``container`` the host can connect to, or None.

    The observation does not say which networks are ``internal``; every bridge network's
    gateway lives on the host, so any IPv4 address is reachable for now. Networks are taken
    in name order so the choice is stable between refreshes (a flapping choice would not
    break anything, but makes logs confusing).
    """
    for network in sorted(container.addresses):
        text = container.addresses[network].split("/", 1)[0].strip()
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            continue
        if address.version == 4 and not address.is_unspecified:
            return str(address)
    return None
