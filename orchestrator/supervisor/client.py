"""Talking to the supervisor: start it on demand, register projects, read its status.

No socket: the state dir is the interface. ``register`` writes the project's registration
atomically and then makes sure a supervisor runs (and wakes it with SIGHUP so it looks at
once); the supervisor reads registrations every pass. Whether one runs is whether the
pidfile is locked, which stays true only while the process lives (kill -9 included).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import PycomposeError
from orchestrator.supervisor import paths, state


class SupervisorError(PycomposeError):
    """The supervisor could not be started or stopped."""


@dataclass(frozen=True)
class Status:
    running: bool
    pid: int | None
    state_dir: str
    projects: tuple[str, ...]
    slots: dict[str, dict[str, Any]]


def running_pid() -> int | None:
    """The live supervisor's pid, or None when no process holds the pidfile lock."""
    path = paths.pidfile()
    try:
        handle = open(path)  # noqa: SIM115 - closed below in every branch
    except FileNotFoundError:
        return None
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            text = handle.read().strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return None


def start(*, exit_when_idle: bool = True, timeout: float = 10.0) -> int:
    """Start a supervisor in the background unless one runs; its pid."""
    pid = running_pid()
    if pid is not None:
        return pid
    paths.state_dir().mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "orchestrator.supervisor.daemon"]
    if exit_when_idle:
        command.append("--exit-when-idle")
    with open(paths.log_file(), "ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # outlives the CLI and its terminal
            close_fds=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = running_pid()
        if pid is not None and pid > 0:
            return pid
        if process.poll() is not None:
            pid = running_pid()  # it lost the race to another supervisor: fine
            if pid is not None:
                return pid
            raise SupervisorError(
                f"the supervisor exited at once (status {process.returncode}); "
                f"see {paths.log_file()}"
            )
        time.sleep(0.05)
    raise SupervisorError(f"the supervisor did not start within {timeout:g}s")


def stop(timeout: float = 10.0) -> bool:
    """Stop the running supervisor (SIGTERM, then SIGKILL); False when none ran."""
    pid = running_pid()
    if pid is None or pid <= 0:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running_pid() is None:
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while running_pid() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    return True


def wake() -> None:
    """Make the supervisor look now (a new registration) instead of at its next pass."""
    pid = running_pid()
    if pid is not None and pid > 0:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGHUP)


def register(project: str, backend: str, config: dict[str, Any], *, working_dir: str = "") -> int:
    """Register ``project`` (first), then make sure a supervisor runs; its pid."""
    try:
        state.register(project, backend, config, working_dir=working_dir)
    except OSError as exc:
        raise SupervisorError(f"cannot register {project!r} in {paths.state_dir()}: {exc}") from exc
    pid = start()
    wake()
    return pid


def unregister(project: str) -> bool:
    """Stop supervising ``project``; a supervisor started on demand exits when idle."""
    found = state.unregister(project)
    if found:
        wake()
    return found


def is_registered(project: str) -> bool:
    return paths.project_file(project).exists()


def status() -> Status:
    pid = running_pid()
    saved = state.load_state()
    slots = {
        key: {
            "container_id": slot.container_id,
            "restarts": len(slot.history.attempts),
            "gave_up": slot.history.gave_up_at is not None,
            "replacements": len(slot.replacements),
        }
        for key, slot in saved.slots.items()
    }
    return Status(
        running=pid is not None,
        pid=pid if pid and pid > 0 else None,
        state_dir=str(paths.state_dir()),
        projects=tuple(sorted(state.registrations())),
        slots=slots,
    )
