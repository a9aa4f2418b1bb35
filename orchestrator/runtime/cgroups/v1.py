"""cgroup v1: one directory per controller hierarchy (``<mount>/pycompose/<name>``)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.errors import RuntimeFailure
from orchestrator.runtime.cgroups import cpu, fs, memory, pids
from orchestrator.runtime.cgroups.base import PARENT, Resources, Stats, check_name

# controllers we join: limits live in the first three, cpu usage in cpuacct
CONTROLLERS = ("memory", "cpu", "pids", "cpuacct")


def cgroup_dirs(mounts: dict[str, Path], name: str) -> dict[str, Path]:
    """controller → the container's directory; co-mounted controllers share one."""
    check_name(name)
    return {c: mounts[c] / PARENT / name for c in CONTROLLERS if c in mounts}


class V1Driver:
    version = 1

    def __init__(self, mounts: dict[str, Path]) -> None:
        self.mounts = dict(mounts)

    def _dirs(self, name: str) -> dict[str, Path]:
        return cgroup_dirs(self.mounts, name)

    def paths(self, name: str) -> tuple[Path, ...]:
        return tuple(dict.fromkeys(self._dirs(name).values()))

    def create(self, name: str, resources: Resources) -> None:
        dirs = self._dirs(name)
        for path in self.paths(name):
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise RuntimeFailure(f"cannot create cgroup {path}: {exc.strerror}") from exc
        mem = dirs["memory"]
        settings: list[tuple[Path, str, str]] = []
        has_memsw = (mem / "memory.memsw.limit_in_bytes").exists()
        settings += [(mem, f, v) for f, v in memory.v1_settings(resources, has_memsw)]
        settings += [(dirs["cpu"], f, v) for f, v in cpu.v1_settings(resources)]
        settings += [(dirs["pids"], f, v) for f, v in pids.settings(resources)]
        for directory, filename, value in settings:
            fs.write(directory / filename, value)

    def exists(self, name: str) -> bool:
        return any(p.is_dir() for p in self.paths(name))

    def procs(self, name: str) -> list[int]:
        return sorted({p for d in self.paths(name) for p in fs.procs(d)})

    def stats(self, name: str) -> Stats:
        dirs = self._dirs(name)
        mem = dirs["memory"]
        usage = fs.read(mem / "memory.usage_in_bytes")
        limit = fs.read(mem / "memory.limit_in_bytes")
        oom = fs.read(mem / "memory.oom_control") or ""
        base = memory.v1_stats(usage, limit, oom) if usage and limit else Stats()
        cpu_ns = fs.read(dirs["cpuacct"] / "cpuacct.usage") if "cpuacct" in dirs else None
        current = fs.read(dirs["pids"] / "pids.current")
        return Stats(
            memory_usage=base.memory_usage,
            memory_limit=base.memory_limit,
            oom_kills=base.oom_kills,
            cpu_usage_ns=int(cpu_ns) if cpu_ns else None,
            pids_current=int(current) if current else None,
        )

    def kill_all(self, name: str, timeout: float = 5.0) -> None:
        fs.kill_procs(self.paths(name), timeout)

    def remove(self, name: str, timeout: float = 5.0) -> None:
        if self.exists(name):
            self.kill_all(name, timeout)
        for path in self.paths(name):
            fs.rmdir(path, timeout)
            fs.rmdir_if_empty(path.parent)
