"""cgroup v2: one directory in the unified tree (``<mount>/pycompose/<name>``)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from orchestrator.errors import RuntimeFailure
from orchestrator.runtime.cgroups import cpu, fs, memory, pids
from orchestrator.runtime.cgroups.base import PARENT, Resources, Stats, check_name

CONTROLLERS = ("memory", "cpu", "pids")


def cgroup_dir(mount: Path, name: str) -> Path:
    return mount / PARENT / check_name(name)


class V2Driver:
    version = 2

    def __init__(self, mount: Path) -> None:
        self.mount = mount

    def paths(self, name: str) -> tuple[Path, ...]:
        return (cgroup_dir(self.mount, name),)

    def create(self, name: str, resources: Resources) -> None:
        parent = self.mount / PARENT
        path = cgroup_dir(self.mount, name)
        available = set((fs.read(self.mount / "cgroup.controllers") or "").split())
        enable = " ".join(f"+{c}" for c in CONTROLLERS if c in available)
        try:
            parent.mkdir(exist_ok=True)
            # controllers must be delegated down each level before a child can use them;
            # a limit on a missing controller fails below, on its missing file
            if enable:
                fs.write(self.mount / "cgroup.subtree_control", enable)
                fs.write(parent / "cgroup.subtree_control", enable)
            path.mkdir(exist_ok=True)
        except OSError as exc:
            raise RuntimeFailure(f"cannot create cgroup {path}: {exc.strerror}") from exc
        settings = memory.v2_settings(resources) + cpu.v2_settings(resources)
        settings += pids.settings(resources)
        for filename, value in settings:
            if filename == "memory.swap.max" and not (path / filename).exists():
                continue  # kernel without swap accounting
            fs.write(path / filename, value)

    def exists(self, name: str) -> bool:
        return cgroup_dir(self.mount, name).is_dir()

    def procs(self, name: str) -> list[int]:
        return fs.procs(cgroup_dir(self.mount, name))

    def stats(self, name: str) -> Stats:
        path = cgroup_dir(self.mount, name)
        current = fs.read(path / "memory.current")
        maximum = fs.read(path / "memory.max")
        events = fs.read(path / "memory.events") or ""
        base = memory.v2_stats(current, maximum, events) if current and maximum else Stats()
        cpu_stat = fs.read(path / "cpu.stat")
        pids_now = fs.read(path / "pids.current")
        return Stats(
            memory_usage=base.memory_usage,
            memory_limit=base.memory_limit,
            oom_kills=base.oom_kills,
            cpu_usage_ns=cpu.v2_usage_ns(cpu_stat) if cpu_stat else None,
            pids_current=int(pids_now) if pids_now else None,
        )

    def kill_all(self, name: str, timeout: float = 5.0) -> None:
        path = cgroup_dir(self.mount, name)
        kill_file = path / "cgroup.kill"
        if kill_file.exists():  # kernel 5.14+: one atomic write, no fork race
            with contextlib.suppress(RuntimeFailure):
                fs.write(kill_file, "1")
            deadline = time.monotonic() + timeout
            while fs.procs(path) and time.monotonic() < deadline:
                time.sleep(0.005)
        fs.kill_procs((path,), timeout)

    def remove(self, name: str, timeout: float = 5.0) -> None:
        if self.exists(name):
            self.kill_all(name, timeout)
        fs.rmdir(cgroup_dir(self.mount, name), timeout)
        fs.rmdir_if_empty(cgroup_dir(self.mount, name).parent)
