"""The memory controller: Docker's limits as cgroup v1 and v2 files, and its statistics."""

from __future__ import annotations

from orchestrator.runtime.cgroups.base import Resources, Stats


def swap_total(res: Resources) -> int | None:
    """Memory plus swap in bytes (-1 unlimited), with Docker's default of twice memory."""
    if res.memory is None:
        return None
    if res.memory_swap is None:
        return 2 * res.memory
    return res.memory_swap


def v1_settings(res: Resources, has_memsw: bool) -> list[tuple[str, str]]:
    """Files to write, in order: the memory limit must be set before memsw may follow it."""
    out: list[tuple[str, str]] = []
    if res.memory_reservation is not None:
        out.append(("memory.soft_limit_in_bytes", str(res.memory_reservation)))
    if res.memory is not None:
        out.append(("memory.limit_in_bytes", str(res.memory)))
        total = swap_total(res)
        if has_memsw and total is not None:
            out.append(("memory.memsw.limit_in_bytes", str(total)))
    return out


def v2_settings(res: Resources) -> list[tuple[str, str]]:
    """v2 counts swap apart from memory: ``memory.swap.max`` is the swap alone."""
    out: list[tuple[str, str]] = []
    if res.memory_reservation is not None:
        out.append(("memory.low", str(res.memory_reservation)))
    if res.memory is not None:
        out.append(("memory.max", str(res.memory)))
        total = swap_total(res)
        if total is not None:
            out.append(("memory.swap.max", "max" if total < 0 else str(max(total - res.memory, 0))))
    return out


def _keyed(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def v1_stats(usage: str, limit: str, oom_control: str) -> Stats:
    """From ``memory.usage_in_bytes``, ``memory.limit_in_bytes``, ``memory.oom_control``."""
    return Stats(
        memory_usage=int(usage),
        memory_limit=int(limit),
        oom_kills=_keyed(oom_control).get("oom_kill"),
    )


def v2_stats(current: str, maximum: str, events: str) -> Stats:
    """From ``memory.current``, ``memory.max`` and ``memory.events``."""
    limit = None if maximum.strip() == "max" else int(maximum)
    return Stats(
        memory_usage=int(current), memory_limit=limit, oom_kills=_keyed(events).get("oom_kill")
    )
