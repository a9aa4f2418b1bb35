"""What every cgroup driver offers, and the limits and statistics it speaks in.

One interface over cgroup v1 (a hierarchy per controller) and v2 (one unified tree), so
the container code never asks which version it runs on. Limits are plain numbers here;
each controller module (memory, cpu, pids) turns them into the files of either version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from orchestrator.errors import RuntimeFailure

# every cgroup we create lives under this directory of each hierarchy, so leaks are findable
PARENT = "pycompose"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class Resources:
    """Limits of one container. ``None`` means "no limit".

    ``memory_swap`` is memory plus swap (Docker's meaning): ``None`` gives Docker's default
    of twice ``memory``, ``-1`` unlimited swap, equal to ``memory`` no swap at all.
    """

    memory: int | None = None
    memory_swap: int | None = None
    memory_reservation: int | None = None
    cpus: float | None = None
    cpu_period: int = 100_000
    cpu_shares: int | None = None
    pids_limit: int | None = None


@dataclass(frozen=True)
class Stats:
    """A snapshot of a cgroup's usage (``None`` when the controller does not report it)."""

    memory_usage: int | None = None
    memory_limit: int | None = None
    oom_kills: int | None = None
    cpu_usage_ns: int | None = None
    pids_current: int | None = None


def check_name(name: str) -> str:
    """A cgroup (container) name is one safe path component."""
    if not _NAME.match(name):
        raise RuntimeFailure(f"invalid cgroup name {name!r}")
    return name


class CgroupDriver(Protocol):
    """One container's cgroup, by name, on whichever version this machine runs."""

    version: int

    def paths(self, name: str) -> tuple[Path, ...]:
        """The directories a process joins (one per v1 hierarchy, one on v2)."""
        ...

    def create(self, name: str, resources: Resources) -> None:
        """Create the cgroup and set its limits (before any process joins it)."""
        ...

    def exists(self, name: str) -> bool: ...

    def procs(self, name: str) -> list[int]:
        """The pids in the cgroup (host pid namespace)."""
        ...

    def stats(self, name: str) -> Stats: ...

    def kill_all(self, name: str, timeout: float = 5.0) -> None:
        """SIGKILL every process in the cgroup and wait until it is empty."""
        ...

    def remove(self, name: str, timeout: float = 5.0) -> None:
        """Remove the cgroup; a missing one is not an error (teardown is idempotent)."""
        ...
