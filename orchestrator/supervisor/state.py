"""What the supervisor must not forget across its own crash: schema-versioned, atomic.

Two kinds of file under the state dir (see ``paths``):

- ``state.json`` — written by the daemon alone (it holds the pidfile lock): per replica
  slot (``project/service/number``) the container it watches, its restart history and its
  unhealthy replacements, plus the boot id the state was written under.
- ``projects/<name>.json`` — one registration per project, written by ``up`` through the
  client: the backend, and the project's configuration as a compose document
  (``api.config_document``), which the daemon loads back with the ordinary loader. The
  project is its own source of truth; nothing else about it is copied.

Every file carries ``"schema": 1``. A newer schema is refused (an old pycompose must not
guess); an unreadable state file is moved aside (``state.json.corrupt``) and the daemon
starts afresh, which is safe — the worst case is a fresh restart count.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.errors import PycomposeError
from orchestrator.supervisor import paths
from orchestrator.supervisor.atomic import write_json
from orchestrator.supervisor.restart import Attempt, History

SCHEMA = 1


class StateError(PycomposeError):
    """The supervisor's state cannot be read as this version understands it."""


@dataclass(frozen=True)
class Slot:
    """One replica slot: the container watched there and what was done to it."""

    container_id: str
    history: History = field(default_factory=History)
    replacements: tuple[float, ...] = ()  # when unhealthy replicas here were replaced
    replacing: str | None = None  # id of the replica being replaced (in flight)


@dataclass
class SupervisorState:
    boot_id: str = ""
    slots: dict[str, Slot] = field(default_factory=dict)


@dataclass(frozen=True)
class Registration:
    project: str
    backend: str
    config: dict[str, Any]
    registered_at: float
    working_dir: str = ""


def slot_key(project: str, service: str, number: int) -> str:
    return f"{project}/{service}/{number}"


def boot_id() -> str:
    """Changes at every reboot (Linux); "" where the kernel does not say."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


# -- state.json ----------------------------------------------------------------------------


def _history_to_json(history: History) -> dict[str, Any]:
    return {
        "attempts": [[a.exit_at, a.decided_at, a.restart_at] for a in history.attempts],
        "backoff": history.backoff,
        "gave_up_at": history.gave_up_at,
    }


def _history_from_json(data: dict[str, Any]) -> History:
    return History(
        attempts=tuple(Attempt(float(a[0]), float(a[1]), float(a[2])) for a in data["attempts"]),
        backoff=float(data["backoff"]),
        gave_up_at=None if data.get("gave_up_at") is None else float(data["gave_up_at"]),
    )


def to_json(state: SupervisorState) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "boot_id": state.boot_id,
        "slots": {
            key: {
                "container_id": slot.container_id,
                "history": _history_to_json(slot.history),
                "replacements": list(slot.replacements),
                "replacing": slot.replacing,
            }
            for key, slot in sorted(state.slots.items())
        },
    }


def from_json(data: Any) -> SupervisorState:
    """Raises StateError for a schema this version does not know, ValueError when malformed."""
    if not isinstance(data, dict) or "schema" not in data:
        raise ValueError("not a supervisor state document")
    if data["schema"] != SCHEMA:
        raise StateError(
            f"supervisor state has schema {data['schema']!r}; this pycompose reads {SCHEMA} "
            "(a newer pycompose wrote it: upgrade, or move the state dir away)"
        )
    try:
        slots = {
            str(key): Slot(
                container_id=str(value["container_id"]),
                history=_history_from_json(value["history"]),
                replacements=tuple(float(t) for t in value.get("replacements", ())),
                replacing=value.get("replacing"),
            )
            for key, value in data["slots"].items()
        }
    except (KeyError, TypeError, IndexError) as exc:
        raise ValueError(f"malformed supervisor state: {exc}") from exc
    return SupervisorState(boot_id=str(data.get("boot_id", "")), slots=slots)


def load_state(path: Path | None = None) -> SupervisorState:
    """The saved state; empty when none. A corrupt file is moved aside, not trusted."""
    path = path or paths.state_file()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return SupervisorState()
    try:
        return from_json(json.loads(raw))
    except StateError:
        raise
    except ValueError:
        os.replace(path, path.with_name(path.name + ".corrupt"))
        return SupervisorState()


def save_state(state: SupervisorState, path: Path | None = None) -> None:
    write_json(path or paths.state_file(), to_json(state))


# -- registrations -------------------------------------------------------------------------


def register(
    project: str, backend: str, config: dict[str, Any], *, working_dir: str = ""
) -> Registration:
    """Write (or refresh) ``project``'s registration atomically."""
    registration = Registration(project, backend, config, time.time(), working_dir)
    write_json(
        paths.project_file(project),
        {
            "schema": SCHEMA,
            "project": project,
            "backend": backend,
            "config": config,
            "registered_at": registration.registered_at,
            "working_dir": working_dir,
        },
    )
    return registration


def unregister(project: str) -> bool:
    """Forget ``project``; False when it was not registered."""
    try:
        paths.project_file(project).unlink()
    except FileNotFoundError:
        return False
    return True


def read_registration(path: Path) -> Registration:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ValueError(f"unreadable registration {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise StateError(f"registration {path} has an unknown schema")
    return Registration(
        project=str(data["project"]),
        backend=str(data["backend"]),
        config=dict(data["config"]),
        registered_at=float(data["registered_at"]),
        working_dir=str(data.get("working_dir", "")),
    )


def registrations() -> dict[str, Registration]:
    """Every registered project by name (unreadable ones are skipped)."""
    out: dict[str, Registration] = {}
    folder = paths.projects_dir()
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.json")):
        try:
            registration = read_registration(path)
        except (ValueError, KeyError, TypeError, PycomposeError):
            continue
        out[registration.project] = registration
    return out
