"""The lifecycle of our detached daemons, as seen from the short-lived commands that start them.

The ingress proxy and the DNS server are long-lived processes started by one CLI run and found
again by the next through a pid file. Both sides need the same pieces: start a child that
outlives its caller, tell whether a pid is still (and really) ours, stop it for sure and reap
it. They live here, below every layer that starts a daemon, so the sequence of signals and
timeouts is written once. Errors stay the caller's: ``OSError`` passes through, so each
daemon keeps its own error type and message.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

KILL_TIMEOUT = 2.0
"""How long a SIGKILLed daemon gets to disappear before we stop waiting."""

REAP_TIMEOUT = 1.0
"""How long we wait to collect the exit status of a child that is gone or going."""

_DEAD = (None, "Z", "X")
# the package root: a daemon must import this very package, wherever its caller found it
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent.parent)


def process_state(pid: int) -> str | None:
    """The one-letter state from /proc (``Z`` for a zombie), None when there is no process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name is in parentheses and may itself contain spaces or parentheses
    return stat.rsplit(")", 1)[-1].split()[0]


def cmdline(pid: int) -> list[bytes]:
    """The process's arguments; empty when it is gone (or a kernel thread)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def runs_with(pid: int, *markers: str) -> bool:
    """Whether ``pid`` is a live process with every marker as one of its arguments: how a
    pid read from a file is told apart from an unrelated process that reused it."""
    if process_state(pid) in _DEAD:
        return False
    argv = cmdline(pid)
    return bool(argv) and all(marker.encode() in argv for marker in markers)


def daemon_env() -> dict[str, str]:
    """The caller's environment, with this package first on PYTHONPATH (``python -m`` runs
    from ``/``, where the package may not be importable otherwise)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p
    )
    return env


def configure_logging(path: Path) -> None:
    """Send the daemon's whole log to its file: it has no terminal to write to."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def log_tail(path: Path, lines: int = 5) -> str:
    """The last non-blank lines of a daemon's log, as a suffix for an error message (``""``
    when there is none), so a crash explains itself without a trip to the file."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    tail = [line for line in text.splitlines() if line.strip()][-lines:]
    return (":\n" + "\n".join(tail)) if tail else ""


def unlink_quietly(*paths: Path) -> None:
    """Remove files that may already be gone."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def directory_lock(path: Path, error: Callable[[OSError], Exception]) -> Iterator[None]:
    """Hold an exclusive advisory lock on the directory ``path`` (made if missing), so the
    commands driving one daemon take turns. The directory itself is locked: a lock file
    would be one more thing to clean up, and could be unlinked under us. When the directory
    cannot be used, ``error(exc)`` is raised from the OSError."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise error(exc) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


class Children:
    """The daemons this process started, and the way to watch and stop any daemon.

    Children are remembered to reap them: a dead child that is not waited for lingers as a
    zombie, and looks alive in /proc, for as long as this process runs.
    """

    def __init__(self, *, stop_timeout: float, poll: float) -> None:
        self.stop_timeout = stop_timeout
        self.poll = poll
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, command: Sequence[str], log: Path, *, stdout_to_log: bool) -> int:
        """Start ``command`` detached from the caller; its pid. OSError when it cannot."""
        with open(log, "ab") as log_file:
            child = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=log_file if stdout_to_log else subprocess.DEVNULL,
                stderr=log_file,  # a crash before logging is set up still lands here
                cwd="/",  # hold no directory (or its mount) busy
                env=daemon_env(),
                start_new_session=True,  # setsid: the CLI's terminal and signals pass it by
                close_fds=True,
            )
        self._children[child.pid] = child
        return child.pid

    def alive(self, pid: int) -> bool:
        child = self._children.get(pid)
        if child is not None:
            if child.poll() is None:
                return True
            del self._children[pid]
            return False
        return process_state(pid) not in _DEAD

    def running(self, pid: object, *markers: str) -> int | None:
        """``pid`` (as read from a pid file) if it is alive and runs with every marker."""
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            return None
        if not self.alive(pid) or not runs_with(pid, *markers):
            return None
        return pid

    def terminate(self, pid: int) -> None:
        """SIGTERM, ``stop_timeout`` to exit, then SIGKILL and 2 s more; reap it if it is
        ours. A process that is not ours and outlives both is left (it is not our zombie)."""
        for sig, timeout in ((signal.SIGTERM, self.stop_timeout), (signal.SIGKILL, KILL_TIMEOUT)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + timeout
            while self.alive(pid) and time.monotonic() < deadline:
                time.sleep(self.poll)
            if not self.alive(pid):
                break
        self.reap(pid)

    def reap(self, pid: int) -> None:
        """Forget ``pid``, waiting up to a second for its exit status if it is our child."""
        child = self._children.pop(pid, None)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=REAP_TIMEOUT)
