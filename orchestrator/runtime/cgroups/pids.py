"""The pids controller: ``pids_limit`` (0 or negative: unlimited, as in Docker)."""

from __future__ import annotations

from orchestrator.runtime.cgroups.base import Resources


def settings(res: Resources) -> list[tuple[str, str]]:
    """Same file on v1 and v2."""
    if res.pids_limit is None:
        return []
    return [("pids.max", "max" if res.pids_limit <= 0 else str(res.pids_limit))]
