"""A :class:`ContainerConfig` as the spawner's config file (pure).

The format is a sequence of NUL-terminated strings: a key, then that key's fixed number
of values (see ``parse_config`` in spawner.c). NUL cannot occur in argv or env anyway, so
nothing needs escaping. Docker's defaults that are policy rather than configuration live
here: masked and read-only paths, which sysctls are namespaced, the default PATH.
"""

from __future__ import annotations

import re
import resource
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import RuntimeFailure
from orchestrator.runtime.capabilities import capability_mask
from orchestrator.runtime.config import ContainerConfig, User

# moby oci/defaults.go
MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
)  # fmt: skip
READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
)  # fmt: skip
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

RLIMITS: dict[str, int] = {
    "core": resource.RLIMIT_CORE, "cpu": resource.RLIMIT_CPU, "data": resource.RLIMIT_DATA,
    "fsize": resource.RLIMIT_FSIZE, "locks": 10, "memlock": resource.RLIMIT_MEMLOCK,
    "msgqueue": resource.RLIMIT_MSGQUEUE, "nice": 13, "nofile": resource.RLIMIT_NOFILE,
    "nproc": resource.RLIMIT_NPROC, "rss": resource.RLIMIT_RSS, "rtprio": 14,
    "rttime": 15, "sigpending": resource.RLIMIT_SIGPENDING, "stack": resource.RLIMIT_STACK,
    "as": resource.RLIMIT_AS,
}  # fmt: skip

_SYSCTL_NAME = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_-]+)+$")
_IPC_SYSCTLS = frozenset({
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
    "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
})  # fmt: skip


@dataclass(frozen=True)
class Bundle:
    """Where one container's files are on the host."""

    directory: Path

    @property
    def rootfs(self) -> Path:
        return self.directory / "rootfs"

    @property
    def upper(self) -> Path:
        return self.directory / "upper"

    @property
    def work(self) -> Path:
        return self.directory / "work"

    @property
    def log(self) -> Path:
        return self.directory / "container.log"

    @property
    def exit_file(self) -> Path:
        return self.directory / "exit"

    @property
    def state_file(self) -> Path:
        return self.directory / "state.json"

    @property
    def spawn_config(self) -> Path:
        return self.directory / "spawn.conf"

    @property
    def health_config(self) -> Path:
        return self.directory / "health.conf"

    @property
    def health_file(self) -> Path:
        return self.directory / "health"

    def copy_up_marker(self, index: int) -> Path:
        """Present once mount ``index`` had its copy-up: it happens at the first start only."""
        return self.directory / f"copied-up-{index}"


def check_sysctl(key: str, network_mode: str, ipc_mode: str) -> str:
    """The sysctl as a /proc/sys path, if it is namespaced (else setting it would change
    the host): Docker's list, net.* only with a network namespace of our own."""
    if not _SYSCTL_NAME.match(key):
        raise RuntimeFailure(f"sysctl {key!r} is not a sysctl name")
    if key.startswith("net."):
        if network_mode == "host":
            raise RuntimeFailure(f"sysctl {key} cannot be set with the host network")
    elif key in _IPC_SYSCTLS or key.startswith("fs.mqueue."):
        if ipc_mode == "host":
            raise RuntimeFailure(f"sysctl {key} cannot be set with the host ipc namespace")
    else:
        raise RuntimeFailure(f"sysctl {key} is not namespaced, so a container cannot set it")
    return key.replace(".", "/")


def environment(config: ContainerConfig) -> list[str]:
    """The env the command sees: the config's, plus PATH, HOSTNAME and HOME when missing."""
    env = list(config.env)
    keys = {e.partition("=")[0] for e in env}
    if "PATH" not in keys:
        env.insert(0, f"PATH={DEFAULT_PATH}")
    if "HOSTNAME" not in keys:
        env.append(f"HOSTNAME={hostname(config)}")
    if "HOME" not in keys:
        env.append("HOME=/root" if config.user.uid == 0 else "HOME=/")
    return env


def hostname(config: ContainerConfig) -> str:
    return config.hostname or config.id[:12]


def _records(records: list[tuple[str, ...]]) -> bytes:
    return b"".join(part.encode() + b"\0" for record in records for part in record)


def _user_records(user: User) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = [("uid", str(user.uid)), ("gid", str(user.gid))]
    out += [("group", str(g)) for g in user.additional_gids]
    return out


def _ns_mode(mode: str) -> str:
    return {"private": "new", "none": "new", "host": "host"}.get(mode, mode)


def run_config(config: ContainerConfig, bundle: Bundle, cgroups: tuple[Path, ...]) -> bytes:
    """The spawner's ``run`` config for ``config``."""
    caps = capability_mask(config.cap_add, config.cap_drop, config.privileged)
    ns = config.namespaces
    r: list[tuple[str, ...]] = [
        ("rootfs", str(bundle.rootfs)),
        *[("lower", d) for d in config.lowerdirs],
        ("upper", str(bundle.upper)),
        ("work", str(bundle.work)),
        ("readonly", "1" if config.read_only else "0"),
        ("hostname", hostname(config)),
        ("cwd", config.working_dir),
        ("exitfile", str(bundle.exit_file)),
        ("log", str(bundle.log), str(config.log_max_size), str(config.log_max_file)),
        ("ns", "net", _ns_mode(ns.network)),
        ("ns", "ipc", _ns_mode(ns.ipc)),
        ("ns", "uts", _ns_mode(ns.uts)),
        ("ns", "pid", _ns_mode(ns.pid)),
        ("ns", "mnt", "new"),
        ("caps", f"{caps:x}"),
        ("init", "1" if config.init else "0"),
        ("privileged", "1" if config.privileged else "0"),
        *[("cgroup", str(p)) for p in cgroups],
        *_user_records(config.user),
    ]
    if not config.privileged:
        r += [("mask", p) for p in MASKED_PATHS]
        r += [("ropath", p) for p in READONLY_PATHS]
    for index, m in enumerate(config.mounts):
        if m.kind == "bind":
            r.append(("bind", m.source, m.target, "ro" if m.read_only else "rw"))
            if m.copy_up:
                r.append(("copyup", str(bundle.copy_up_marker(index))))
        else:
            r.append(("tmpfs", m.target, m.options or "mode=1777"))
    for key, value in config.sysctls:
        r.append(("sysctl", check_sysctl(key, ns.network, ns.ipc), value))
    for lim in config.rlimits:
        if lim.name not in RLIMITS:
            raise RuntimeFailure(f"unknown ulimit {lim.name!r}")
        r.append(("rlimit", str(RLIMITS[lim.name]), str(lim.soft), str(lim.hard)))
    h = config.healthcheck
    if h is not None:
        ms = [str(max(1, round(v * 1000))) for v in (h.interval, h.timeout)]
        start = str(round(h.start_period * 1000))
        r.append(("health", str(bundle.health_config), *ms, str(h.retries), start))
        r.append(("healthfile", str(bundle.health_file)))
    r += [("env", e) for e in environment(config)]
    r += [("arg", a) for a in config.command]
    return _records(r)


def exec_config(
    config: ContainerConfig,
    pid: int,
    cgroups: tuple[Path, ...],
    command: tuple[str, ...],
    env: tuple[str, ...] = (),
    user: User | None = None,
    working_dir: str | None = None,
) -> bytes:
    """The spawner's ``exec`` config: the container's identity and env, overridable."""
    if not command:
        raise RuntimeFailure("exec needs a command")
    caps = capability_mask(config.cap_add, config.cap_drop, config.privileged)
    base = {e.partition("=")[0]: e for e in environment(config)}
    base.update({e.partition("=")[0]: e for e in env})
    r: list[tuple[str, ...]] = [
        ("target", str(pid)),
        ("caps", f"{caps:x}"),
        ("cwd", working_dir or config.working_dir),
        *[("cgroup", str(p)) for p in cgroups],
        *_user_records(user or config.user),
        *[("env", e) for e in base.values()],
        *[("arg", a) for a in command],
    ]
    return _records(r)
