"""The embedded DNS server of the namespace runtime: service discovery for containers.

One daemon per state directory listens on each network's gateway address (port 53, UDP
and TCP), answers the names of the asker's networks, and forwards the rest. It knows
nothing of compose: callers give it ``Records`` (zones, clients, listeners) and
``DnsService.apply`` makes the daemon serve them. See docs/dns.md.
"""

from orchestrator.runtime.dns.records import Client, Records, Zone
from orchestrator.runtime.dns.service import DnsService

__all__ = ["Client", "DnsService", "Records", "Zone"]
