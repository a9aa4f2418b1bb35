"""The runtime's network library: bridges, veth endpoints in network namespaces, a
persistent IPAM, an nftables (or iptables) firewall of our own, and published ports.

It knows nothing of compose; the namespace backend maps compose networks onto it. See
docs/networking-runtime.md for the design, the names and the firewall layout.
"""

from orchestrator.runtime.net.manager import NetworkManager
from orchestrator.runtime.net.spec import Endpoint, NetworkConfig, NetworkInfo, PortMapping

__all__ = ["Endpoint", "NetworkConfig", "NetworkInfo", "NetworkManager", "PortMapping"]
