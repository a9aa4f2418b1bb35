"""Helpers for tests of the built-in runtime: a busybox root filesystem (the single
lowerdir of test containers) and a snapshot of everything a container could leak."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

BUSYBOX = Path(shutil.which("busybox") or "/bin/busybox")
CGROUP_ROOT = Path("/sys/fs/cgroup")


def make_busybox_rootfs(directory: Path) -> Path:
    """``directory`` with bin/busybox and every applet as a symlink to it.

    ``busybox --install -s`` runs chrooted into the directory, so the links point at
    ``/bin/busybox`` as seen from inside a container (not at the host path).
    """
    (directory / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, directory / "bin" / "busybox")
    subprocess.run(
        ["chroot", str(directory), "/bin/busybox", "--install", "-s", "/bin"], check=True
    )
    (directory / "etc").mkdir()
    (directory / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
        "app:x:1000:1000:app:/home/app:/bin/sh\n"
    )
    (directory / "etc" / "group").write_text(
        "root:x:0:\nnogroup:x:65534:\napp:x:1000:\nextra:x:2000:app\n"
    )
    return directory


@dataclass(frozen=True)
class Leaks:
    mounts: frozenset[str]
    cgroups: frozenset[str]
    shims: frozenset[int]
    state: frozenset[str]


def snapshot(state_root: Path) -> Leaks:
    """Every pycompose-named mount and cgroup on the host, every live shim or container
    init of this state root, and every state dir."""
    mounts = frozenset(
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if "pycompose" in line
    )
    cgroups = frozenset(
        str(p) for p in CGROUP_ROOT.glob("*/pycompose/*") if p.is_dir()
    ) | frozenset(str(p) for p in CGROUP_ROOT.glob("pycompose/*") if p.is_dir())
    shims: set[int] = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                # zombies are exited: they wait for the host's init to reap them
                stat = (proc / "stat").read_text().rpartition(")")[2].split()
                comm = (proc / "comm").read_text().strip()
                # this root's only (the spawner's arguments name its bundle): whatever else
                # runs containers on the machine at the same time is not this test's leak
                mine = str(state_root).encode() in (proc / "cmdline").read_bytes()
                if comm.startswith("pycompose-") and stat[0] != "Z" and mine:
                    shims.add(int(proc.name))
            except OSError:
                continue
    state = frozenset(p.name for p in state_root.iterdir()) if state_root.exists() else frozenset()
    return Leaks(mounts, cgroups, frozenset(shims), state)
