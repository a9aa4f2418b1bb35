"""A container's state on disk: schema-versioned JSON written atomically, the exit record
the shim writes, and the pure function that derives created/running/exited from them.

The state file is written by whichever process acts (create, start); the exit file only
by the shim when the container's first process ends, so the two never race.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from orchestrator.errors import RuntimeFailure
from orchestrator.runtime.atomic import write_atomic

SCHEMA_VERSION = 1
Status = Literal["created", "running", "exited"]


@dataclass(frozen=True)
class Record:
    """What ``state.json`` holds."""

    id: str
    created_at: float
    config: dict[str, Any]
    cgroup_version: int
    pid: int | None = None
    shim_pid: int | None = None
    pid_start_ticks: int | None = None  # /proc/PID/stat starttime: guards against pid reuse
    started_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "id": self.id,
            "created_at": self.created_at,
            "cgroup_version": self.cgroup_version,
            "pid": self.pid,
            "shim_pid": self.shim_pid,
            "pid_start_ticks": self.pid_start_ticks,
            "started_at": self.started_at,
            "config": self.config,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        schema = data.get("schema")
        if schema != SCHEMA_VERSION:
            raise RuntimeFailure(f"container state schema {schema!r} is not {SCHEMA_VERSION}")
        return cls(
            id=data["id"],
            created_at=data["created_at"],
            config=data["config"],
            cgroup_version=data["cgroup_version"],
            pid=data.get("pid"),
            shim_pid=data.get("shim_pid"),
            pid_start_ticks=data.get("pid_start_ticks"),
            started_at=data.get("started_at"),
        )


@dataclass(frozen=True)
class ExitRecord:
    """What the shim wrote: exit code (128+signal when killed), signal, when."""

    code: int
    signal: int
    finished_at: float


@dataclass(frozen=True)
class ContainerState:
    id: str
    status: Status
    pid: int | None
    exit_code: int | None
    signal: int | None
    created_at: float
    started_at: float | None
    finished_at: float | None


def save(path: Path, record: Record) -> None:
    write_atomic(path, json.dumps(record.to_json(), sort_keys=True).encode())


def load(path: Path) -> Record:
    try:
        return Record.from_json(json.loads(path.read_bytes()))
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        raise RuntimeFailure(f"unreadable container state {path}: {exc}") from exc


def parse_exit(text: str) -> ExitRecord | None:
    """``"<code> <signal> <unix ns>"``; None when absent or torn."""
    parts = text.split()
    if len(parts) != 3 or not all(p.lstrip("-").isdigit() for p in parts):
        return None
    return ExitRecord(int(parts[0]), int(parts[1]), int(parts[2]) / 1e9)


def derive(record: Record, exit_record: ExitRecord | None, alive: bool) -> ContainerState:
    """created until started; running while the recorded process lives; exited after
    (with code -1 when the process is gone but the shim could record nothing)."""
    if record.pid is None:
        status: Status = "created"
    elif exit_record is None and alive:
        status = "running"
    else:
        status = "exited"
    code = sig = None
    finished = None
    if status == "exited":
        code = exit_record.code if exit_record else -1
        sig = exit_record.signal if exit_record else None
        finished = exit_record.finished_at if exit_record else None
    return ContainerState(
        id=record.id,
        status=status,
        pid=record.pid if status == "running" else None,
        exit_code=code,
        signal=sig,
        created_at=record.created_at,
        started_at=record.started_at,
        finished_at=finished,
    )


def start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (None when the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()
    return int(fields[19]) if len(fields) > 19 else None


def is_alive(pid: int, ticks: int | None) -> bool:
    """The process still exists, is not a zombie, and is the one we started."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = text.rpartition(")")[2].split()
    if not fields or fields[0] in ("Z", "X"):
        return False
    return ticks is None or (len(fields) > 19 and int(fields[19]) == ticks)
