"""The cpu controller: ``cpus`` as a CFS quota over a period, ``cpu_shares`` as weight."""

from __future__ import annotations

from orchestrator.errors import RuntimeFailure
from orchestrator.runtime.cgroups.base import Resources


def quota(cpus: float, period: int) -> int:
    """CFS quota in microseconds for ``cpus`` CPUs per ``period`` (Docker's --cpus)."""
    if cpus <= 0 or period <= 0:
        raise RuntimeFailure(f"cpus must be positive, got {cpus}")
    return max(round(cpus * period), 1000)  # the kernel refuses quotas under 1 ms


def shares_to_weight(shares: int) -> int:
    """cgroup v1 shares [2, 262144] to v2 weight [1, 10000] (the OCI conversion)."""
    shares = min(max(shares, 2), 262144)
    return 1 + ((shares - 2) * 9999) // 262142


def v1_settings(res: Resources) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if res.cpu_shares is not None:
        out.append(("cpu.shares", str(res.cpu_shares)))
    if res.cpus is not None:
        out.append(("cpu.cfs_period_us", str(res.cpu_period)))
        out.append(("cpu.cfs_quota_us", str(quota(res.cpus, res.cpu_period))))
    return out


def v2_settings(res: Resources) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if res.cpu_shares is not None:
        out.append(("cpu.weight", str(shares_to_weight(res.cpu_shares))))
    if res.cpus is not None:
        out.append(("cpu.max", f"{quota(res.cpus, res.cpu_period)} {res.cpu_period}"))
    return out


def v2_usage_ns(cpu_stat: str) -> int | None:
    """``usage_usec`` of v2's ``cpu.stat``, in nanoseconds."""
    for line in cpu_stat.splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec":
            return int(value) * 1000
    return None
