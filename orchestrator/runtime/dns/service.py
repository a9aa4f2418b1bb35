"""Drives the DNS daemon from short-lived commands: ``DnsService``.

The daemon is found again through its files (see ``daemon.py``); every change is a new
records file plus SIGHUP, and the caller waits until the daemon's status acknowledges the
file's generation, so when ``apply`` returns every listener answers with the new names.
Services of different processes serialise on an advisory lock on the state directory
itself (a lock file would be one more thing to clean up, and could be unlinked under us).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from orchestrator.errors import (
    ConfigError,
    Conflict,
    PycomposeError,
    RuntimeFailure,
    WaitTimeout,
)
from orchestrator.runtime.daemons import Children, cmdline, directory_lock, log_tail, unlink_quietly
from orchestrator.runtime.dns.records import Records, problems
from orchestrator.runtime.dns.state import (
    StateFiles,
    read_json,
    records_to_file,
    write_json_atomic,
)

READY_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
_POLL = 0.005
_FIRST_POLL = 0.0002
_MODULE = "orchestrator.runtime.dns.daemon"


class DnsService:
    """The embedded DNS server of one state directory, as seen from any process."""

    def __init__(
        self,
        state_dir: Path,
        *,
        port: int = 53,
        resolv_conf: str | None = None,
        ready_timeout: float = READY_TIMEOUT,
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        """``resolv_conf`` overrides where the daemon reads the host's resolvers (tests)."""
        self.state_dir = Path(state_dir).absolute()
        self.port = port
        self.files = StateFiles(self.state_dir)
        self._resolv_conf = resolv_conf
        self._ready_timeout = ready_timeout
        self._daemons = Children(stop_timeout=stop_timeout, poll=_POLL)

    # ------------------------------------------------------------ the API

    def apply(self, records: Records) -> None:
        """Serve ``records``; returns once the daemon does. No listeners: stop it.

        ConfigError for malformed records (nothing changes); Conflict when port 53 is taken
        on a listener address, RuntimeFailure when it cannot be bound otherwise (the daemon
        still serves every other listener, and the next ``apply`` tries again).
        """
        found = problems(records)
        if found:
            raise ConfigError(found)
        if not records.listeners:
            self.stop()
            return
        wanted = records.to_json()
        with self._locked():
            pid = self._running_pid()
            if pid is not None and not self._serves_port(pid):
                self._daemons.terminate(pid)  # started for another port: one daemon per directory
                pid = None
            # compared as JSON, not parsed back: the file is ours, and parsing every
            # record again on each container start costs more than the comparison
            current = read_json(self.files.records)
            previous = _file_generation(current)
            status = read_json(self.files.status) if pid is not None else None
            if (
                pid is not None
                and previous > 0
                and current.get("records") == wanted
                and _acknowledged(status, pid, previous)
                and not _listener_errors(status)
            ):
                return
            generation = max(previous, _status_generation(status)) + 1
            self._write_records(generation, records)
            if pid is None:
                self._clear_stale()
                pid = self._start()
            else:
                os.kill(pid, signal.SIGHUP)
            status = self._wait_generation(pid, generation)
            errors = _listener_errors(status)
            if errors:
                raise _error_for(errors)

    def stop(self) -> None:
        """Stop the daemon and remove its files; nothing running is fine."""
        with self._locked():
            pid = self._running_pid()
            if pid is not None:
                self._daemons.terminate(pid)
            unlink_quietly(*self.files.all())

    def running(self) -> bool:
        return self._running_pid() is not None

    def status(self) -> dict[str, Any] | None:
        """The daemon's own status (generation, listeners and their errors, resolvers), or
        None when it does not run."""
        pid = self._running_pid()
        status = read_json(self.files.status) if pid is not None else None
        return status if isinstance(status, dict) and status.get("pid") == pid else None

    # ------------------------------------------------------------ files and processes

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return directory_lock(self.state_dir, lambda exc: RuntimeFailure(
            f"cannot use the DNS state directory {self.state_dir}: {exc.strerror}"
        ))

    def _write_records(self, generation: int, records: Records) -> None:
        try:
            write_json_atomic(self.files.records, records_to_file(generation, records))
        except OSError as exc:
            raise RuntimeFailure(f"cannot write {self.files.records}: {exc.strerror}") from exc

    def _running_pid(self) -> int | None:
        """The daemon's pid if it is alive and really ours (pids get reused)."""
        return self._daemons.running(read_json(self.files.pid), _MODULE, str(self.state_dir))

    def _serves_port(self, pid: int) -> bool:
        return any(
            flag == b"--port" and value == str(self.port).encode()
            for flag, value in itertools.pairwise(cmdline(pid))
        )

    def _clear_stale(self) -> None:
        unlink_quietly(self.files.pid, self.files.status)

    def _start(self) -> int:
        command = [sys.executable, "-m", _MODULE, "--state-dir", str(self.state_dir),
                   "--port", str(self.port)]
        if self._resolv_conf is not None:
            command += ["--resolv-conf", self._resolv_conf]
        try:
            return self._daemons.start(command, self.files.log, stdout_to_log=True)
        except OSError as exc:
            raise RuntimeFailure(f"cannot start the DNS daemon: {exc.strerror}") from exc

    def _wait_generation(self, pid: int, generation: int) -> dict[str, Any]:
        """Block until the daemon's status acknowledges ``generation``; its status."""
        deadline = time.monotonic() + self._ready_timeout
        pause = _FIRST_POLL  # a reload takes about a millisecond: look early, then back off
        while True:
            status = read_json(self.files.status)
            if _acknowledged(status, pid, generation):
                assert isinstance(status, dict)
                return status
            if not self._daemons.alive(pid):
                raise RuntimeFailure(
                    f"the DNS daemon exited unexpectedly{log_tail(self.files.log)}"
                )
            if time.monotonic() > deadline:
                raise WaitTimeout(
                    f"the DNS daemon did not serve the new records within "
                    f"{self._ready_timeout:g} s (see {self.files.log})"
                )
            time.sleep(pause)
            pause = min(pause * 2, _POLL)


def _acknowledged(status: Any, pid: int, generation: int) -> bool:
    return (
        isinstance(status, dict)
        and status.get("pid") == pid
        and isinstance(status.get("generation"), int)
        and status["generation"] >= generation
    )


def _file_generation(data: Any) -> int:
    """The generation of the records file's content; 0 when it is missing or malformed
    (it is then rewritten whole)."""
    if isinstance(data, dict) and isinstance(data.get("records"), dict):
        generation = data.get("generation")
        if isinstance(generation, int) and not isinstance(generation, bool) and generation > 0:
            return generation
    return 0


def _status_generation(status: Any) -> int:
    if isinstance(status, dict) and isinstance(status.get("generation"), int):
        return int(status["generation"])
    return 0


def _listener_errors(status: Any) -> dict[str, dict[str, Any]]:
    listeners = status.get("listeners") if isinstance(status, dict) else None
    if not isinstance(listeners, dict):
        return {}
    return {a: e for a, e in listeners.items() if isinstance(e, dict)}


def _error_for(errors: dict[str, dict[str, Any]]) -> PycomposeError:
    messages = "; ".join(str(e.get("message", "")) for e in errors.values())
    if any(e.get("kind") == "conflict" for e in errors.values()):
        return Conflict(f"{messages} (another DNS server holds the port there)")
    return RuntimeFailure(messages)

