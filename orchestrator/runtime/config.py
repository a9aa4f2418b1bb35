"""What a container is made of: the runtime's own configuration, independent of compose.

Frozen dataclasses, validated on construction, serialisable to and from plain JSON (the
state file keeps the config so that exec, stop and logs work from a later process).
"""

from __future__ import annotations

import re
import signal
from dataclasses import asdict, dataclass, field
from typing import Any

from orchestrator.errors import RuntimeFailure
from orchestrator.runtime.cgroups.base import Resources

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
NAMESPACE_MODES = ("private", "host")  # or an absolute path of a namespace to join
NETWORK_MODES = ("private", "host", "none")


@dataclass(frozen=True)
class User:
    """Numeric identity the command runs as (names are resolved by :mod:`users`)."""

    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Rlimit:
    """A resource limit by its ulimit name (``nofile``, ``nproc``...); -1 is unlimited."""

    name: str
    soft: int
    hard: int


@dataclass(frozen=True)
class Mount:
    """A bind mount (``source`` on the host) or a tmpfs (``options`` like ``size=64m``).

    ``target`` is resolved inside the container's root (symlinks of the image included),
    so no mount can land outside it. ``copy_up``: at the container's first start, when
    the source directory is empty, what the image has at ``target`` is copied into it
    first, owners and modes kept (Docker's behaviour for a new volume).
    """

    target: str
    source: str = ""
    kind: str = "bind"  # bind | tmpfs
    read_only: bool = False
    options: str = ""
    copy_up: bool = False


@dataclass(frozen=True)
class Namespaces:
    """``private`` (new), ``host`` (share the host's) or the path of one to join.

    ``network`` also takes ``none``: a private namespace with only loopback.
    """

    network: str = "private"
    ipc: str = "private"
    uts: str = "private"
    pid: str = "private"


@dataclass(frozen=True)
class Healthcheck:
    """A probe the per-container shim runs inside the container (so it outlives any CLI):
    ``command`` every ``interval`` seconds, killed after ``timeout``; ``retries`` failures
    in a row make it unhealthy, failures within ``start_period`` do not count."""

    command: tuple[str, ...]
    interval: float = 30.0
    timeout: float = 30.0
    retries: int = 3
    start_period: float = 0.0


@dataclass(frozen=True)
class ContainerConfig:
    """One container. ``lowerdirs`` are the read-only layers, topmost first; the writable
    layer is made per container by the runtime."""

    id: str
    command: tuple[str, ...]
    lowerdirs: tuple[str, ...]
    env: tuple[str, ...] = ()  # "KEY=value"
    working_dir: str = "/"
    user: User = field(default_factory=User)
    hostname: str = ""
    read_only: bool = False
    namespaces: Namespaces = field(default_factory=Namespaces)
    resources: Resources = field(default_factory=Resources)
    rlimits: tuple[Rlimit, ...] = ()
    sysctls: tuple[tuple[str, str], ...] = ()
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False
    init: bool = False
    mounts: tuple[Mount, ...] = ()
    log_max_size: int = 0  # bytes, 0 = unbounded
    log_max_file: int = 1
    stop_signal: int = int(signal.SIGTERM)
    stop_grace: float = 10.0
    healthcheck: Healthcheck | None = None

    def __post_init__(self) -> None:
        problems = validate(self)
        if problems:
            raise RuntimeFailure(f"invalid container config {self.id!r}: " + "; ".join(problems))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContainerConfig:
        tuples = ("command", "lowerdirs", "env", "cap_add", "cap_drop")
        values: dict[str, Any] = {k: tuple(data[k]) if k in tuples else data[k] for k in data}
        user = data.get("user", {})
        values["user"] = User(user["uid"], user["gid"], tuple(user["additional_gids"]))
        values["namespaces"] = Namespaces(**data.get("namespaces", {}))
        values["resources"] = Resources(**data.get("resources", {}))
        values["rlimits"] = tuple(Rlimit(**r) for r in data.get("rlimits", ()))
        values["sysctls"] = tuple((k, v) for k, v in data.get("sysctls", ()))
        values["mounts"] = tuple(Mount(**m) for m in data.get("mounts", ()))
        health = data.get("healthcheck")
        if health is not None:
            values["healthcheck"] = Healthcheck(
                **{**health, "command": tuple(health["command"])}
            )
        return cls(**values)


def _mode_ok(mode: str, allowed: tuple[str, ...]) -> bool:
    return mode in allowed or mode.startswith("/")


def validate(c: ContainerConfig) -> list[str]:
    """Every problem of a config, in plain words (empty when it is fine)."""
    problems: list[str] = []
    if not _ID.match(c.id):
        problems.append("id must match [A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
    if not c.command:
        problems.append("no command")
    if any("\0" in part for part in (*c.command, *c.env)):
        problems.append("command and env cannot contain NUL")
    if not c.lowerdirs:
        problems.append("no lower directory (image layers)")
    if any(not d.startswith("/") or ":" in d or "," in d for d in c.lowerdirs):
        problems.append("lower directories must be absolute paths without ':' or ','")
    if any("=" not in e for e in c.env):
        problems.append("env entries must be KEY=value")
    if not c.working_dir.startswith("/"):
        problems.append("working_dir must be absolute")
    ns = c.namespaces
    if not _mode_ok(ns.network, NETWORK_MODES):
        problems.append(f"network mode {ns.network!r} is not private, host, none or a path")
    for name in ("ipc", "uts", "pid"):
        if not _mode_ok(getattr(ns, name), NAMESPACE_MODES):
            mode = getattr(ns, name)
            problems.append(f"{name} namespace {mode!r} is not private, host or a path")
    for m in c.mounts:
        if m.kind not in ("bind", "tmpfs") or not m.target.startswith("/"):
            problems.append(f"mount {m.target!r}: kind bind|tmpfs and an absolute target")
        if m.kind == "bind" and not m.source.startswith("/"):
            problems.append(f"bind mount {m.target!r}: the source must be an absolute path")
        if m.copy_up and m.kind != "bind":
            problems.append(f"mount {m.target!r}: copy-up needs a bind mount")
    if c.log_max_size < 0 or c.log_max_file < 1:
        problems.append("log max-size must be >= 0 and max-file >= 1")
    if c.stop_grace < 0:
        problems.append("stop grace period must be >= 0")
    h = c.healthcheck
    if h is not None:
        if not h.command or any("\0" in part for part in h.command):
            problems.append("healthcheck needs a command without NUL")
        if h.interval <= 0 or h.timeout <= 0 or h.retries < 1 or h.start_period < 0:
            problems.append("healthcheck interval and timeout > 0, retries >= 1, start >= 0")
    return problems
