"""File operations shared by the v1 and v2 drivers: read, write with a typed error,
kill everything listed in ``cgroup.procs``, and rmdir that waits for dying tasks."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from orchestrator.errors import RuntimeFailure


def write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as exc:
        raise RuntimeFailure(f"cannot write {value!r} to {path}: {exc.strerror}") from exc


def read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def procs(directory: Path) -> list[int]:
    text = read(directory / "cgroup.procs")
    return [int(p) for p in text.split()] if text else []


def kill_procs(directories: tuple[Path, ...], timeout: float) -> None:
    """SIGKILL what every directory lists until all are empty (new forks are caught by
    the next round); a kill of a pid namespace's init takes its whole namespace along."""
    deadline = time.monotonic() + timeout
    while True:
        pids = {p for d in directories for p in procs(d)}
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise RuntimeFailure(f"processes {sorted(pids)} survive SIGKILL in {directories[0]}")
        time.sleep(0.005)


def rmdir(path: Path, timeout: float) -> None:
    """Remove a cgroup directory; EBUSY while its last tasks finish exiting is retried."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise RuntimeFailure(f"cannot remove cgroup {path}: {exc.strerror}") from exc
            time.sleep(0.01)


def rmdir_if_empty(path: Path) -> None:
    """Remove the shared parent once its last container cgroup is gone, so nothing of ours
    stays in the hierarchy; still in use (or already gone) is fine."""
    with contextlib.suppress(OSError):
        path.rmdir()
