"""Which cgroup version to use, read from ``/proc/self/mountinfo``.

v2 when a cgroup2 mount offers the memory, cpu and pids controllers; otherwise v1 with
one hierarchy per controller (a machine may have both, with v2 mounted but empty, as
here). The parsing is pure so that every layout can be tested without a machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import RuntimeFailure
from orchestrator.runtime.cgroups.base import CgroupDriver

NEEDED = ("memory", "cpu", "pids")


@dataclass(frozen=True)
class Layout:
    """The cgroup mounts of a machine."""

    v2_mount: Path | None = None
    v1_mounts: dict[str, Path] = field(default_factory=dict)  # controller → mount point


def _unescape(path: str) -> str:
    return path.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")


def parse_mountinfo(text: str) -> Layout:
    """The cgroup2 mount point and the v1 hierarchy of each controller."""
    v2: Path | None = None
    v1: dict[str, Path] = {}
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields = left.split()
        rest = right.split()
        if len(fields) < 5 or len(rest) < 3:
            continue
        mount_point, fstype, options = Path(_unescape(fields[4])), rest[0], rest[2]
        if fstype == "cgroup2" and v2 is None:
            v2 = mount_point
        elif fstype == "cgroup":
            for opt in options.split(","):
                if opt in ("memory", "cpu", "cpuacct", "pids", "freezer", "devices", "cpuset"):
                    v1.setdefault(opt, mount_point)
    return Layout(v2_mount=v2, v1_mounts=v1)


def choose(layout: Layout, v2_controllers: set[str]) -> int:
    """2 when cgroup2 has every needed controller, 1 when v1 has them, else an error."""
    if layout.v2_mount is not None and all(c in v2_controllers for c in NEEDED):
        return 2
    if all(c in layout.v1_mounts for c in NEEDED):
        return 1
    raise RuntimeFailure(
        "no usable cgroups: need memory, cpu and pids on cgroup v2 or as v1 hierarchies"
    )


def detect(mountinfo: Path = Path("/proc/self/mountinfo")) -> CgroupDriver:
    """The driver for this machine."""
    from orchestrator.runtime.cgroups.v1 import V1Driver
    from orchestrator.runtime.cgroups.v2 import V2Driver

    layout = parse_mountinfo(mountinfo.read_text())
    controllers: set[str] = set()
    if layout.v2_mount is not None:
        try:
            controllers = set((layout.v2_mount / "cgroup.controllers").read_text().split())
        except OSError:
            controllers = set()
    if choose(layout, controllers) == 2:
        assert layout.v2_mount is not None
        return V2Driver(layout.v2_mount)
    return V1Driver(layout.v1_mounts)
