"""Drives the per-project ingress daemon from short-lived CLI invocations.

The daemon is found again through its files (see ``daemon.py``); every change goes through
the config file plus SIGHUP, and the caller waits until the daemon's status acknowledges the
config's generation, so when ``ensure`` or ``drain`` returns the proxy already behaves that
way. Controllers of different processes serialise on an advisory lock on the state
directory itself (a lock file would outlive ``remove``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orchestrator.errors import (
    BackendError,
    ConfigError,
    Conflict,
    Problem,
    PycomposeError,
    UsageError,
    WaitTimeout,
)
from orchestrator.ingress.routes import Route
from orchestrator.ingress.statefiles import (
    IngressConfig,
    StateFiles,
    read_json,
    route_from_json,
    valid_project_name,
    write_json_atomic,
)
from orchestrator.runtime.daemons import Children, directory_lock, log_tail, unlink_quietly

DEFAULT_STATE_DIR = "/run/pycompose/ingress"
READY_TIMEOUT = 5.0
STOP_TIMEOUT = 5.0
_POLL = 0.02
_MODULE = "orchestrator.ingress.daemon"


class ProcessIngressController:
    """Implements ``routes.IngressController`` with one daemon process per project."""

    def __init__(
        self,
        state_dir: str | None = None,
        *,
        ready_timeout: float = READY_TIMEOUT,
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        run_dir = os.environ.get("PYCOMPOSE_RUN_DIR")
        # one run dir for everything of ours ($PYCOMPOSE_RUN_DIR, as the supervisor uses it)
        default = str(Path(run_dir) / "ingress") if run_dir else DEFAULT_STATE_DIR
        self.state_dir = Path(state_dir or default)
        self._ready_timeout = ready_timeout
        self._daemons = Children(stop_timeout=stop_timeout, poll=_POLL)

    # ------------------------------------------------------------ the protocol

    def ensure(self, project: str, backend: str, routes: Sequence[Route]) -> None:
        if not routes:
            self.remove(project)
            return
        files = self._files(project)
        wanted = tuple(sorted(set(routes)))
        with self._locked():
            pid = self._running_pid(files)
            old = self._read_config(files) if pid is not None else None
            if pid is not None and old is None:
                # a daemon whose config is unreadable cannot be reasoned with: start afresh
                self._stop_and_clean(files)
                pid = None
            status = read_json(files.status) if pid is not None else None
            if (
                pid is not None
                and old is not None
                and old.backend == backend
                and old.routes == wanted
                and _acknowledged(status, pid, old.generation)
                and not _route_errors(status, wanted)
            ):
                return
            self._check_new_ports(wanted, old.routes if old is not None else ())
            drains = _live_drains(old, status) if old is not None else {}
            generation = (old.generation if old is not None else 0) + 1
            config = IngressConfig(backend, wanted, drains, generation)
            self._write_config(files, config)
            started = pid is None
            if pid is None:
                self._clear_stale(files)
                pid = self._start(files, backend)
            else:
                self._signal_reload(files, pid, old.generation if old is not None else 0)
            try:
                status = self._wait_generation(files, pid, generation)
            except PycomposeError:
                if started:
                    self._stop_and_clean(files)
                raise
            failure = _route_errors(status, wanted)
            if failure is None:
                return
            if started or old is None:
                self._stop_and_clean(files)
            else:
                # put back what was served before, so a refused change changes nothing
                restored = IngressConfig(old.backend, old.routes, drains, generation + 1)
                self._write_config(files, restored)
                self._signal_reload(files, pid, generation)
                with contextlib.suppress(PycomposeError):
                    self._wait_generation(files, pid, generation + 1)
            raise failure

    def remove(self, project: str) -> None:
        files = self._files(project)
        with self._locked():
            self._stop_and_clean(files)

    def status(self, project: str) -> list[Route]:
        files = self._files(project)
        if self._running_pid(files) is None:
            return []
        config = self._read_config(files)
        return list(config.routes) if config is not None else []

    def drain(self, project: str, container_ids: Sequence[str]) -> None:
        files = self._files(project)
        with self._locked():
            pid = self._running_pid(files)
            config = self._read_config(files) if pid is not None else None
            if pid is None or config is None:
                return  # nothing is proxied, so nothing can reach these containers
            status = read_json(files.status)
            drains = _live_drains(config, status)
            if set(container_ids) <= set(drains) and _acknowledged(
                status, pid, config.generation
            ):
                return
            generation = config.generation + 1
            for container_id in container_ids:
                drains.setdefault(container_id, generation)
            self._write_config(
                files, IngressConfig(config.backend, config.routes, drains, generation)
            )
            self._signal_reload(files, pid, config.generation)
            self._wait_generation(files, pid, generation)

    def refresh(self, project: str) -> None:
        """Return once the proxy has observed the engine after this call began, so replicas
        started (or that turned healthy) before it are in its pools."""
        files = self._files(project)
        with self._locked():
            pid = self._running_pid(files)
            config = self._read_config(files) if pid is not None else None
            if pid is None or config is None:
                return
            generation = config.generation + 1
            self._write_config(
                files,
                IngressConfig(config.backend, config.routes, dict(config.drains), generation),
            )
            self._signal_reload(files, pid, config.generation)
            deadline = time.monotonic() + self._ready_timeout
            while time.monotonic() < deadline:
                status = read_json(files.status)
                if isinstance(status, dict) and status.get("observed_generation", 0) >= generation:
                    return
                time.sleep(0.02)

    # ------------------------------------------------------------ files and processes

    def _files(self, project: str) -> StateFiles:
        if not valid_project_name(project):
            raise UsageError(
                f"invalid project name {project!r}: expected lowercase letters, digits, "
                "dashes and underscores, starting with a letter or digit"
            )
        return StateFiles(self.state_dir, project)

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return directory_lock(self.state_dir, lambda exc: BackendError(
            f"cannot use the ingress state directory {self.state_dir}: {exc.strerror}"
        ))

    def _read_config(self, files: StateFiles) -> IngressConfig | None:
        data = read_json(files.config)
        if data is None:
            return None
        try:
            return IngressConfig.from_json(data)
        except ValueError:
            return None  # unreadable: rewritten whole by the next ensure

    def _write_config(self, files: StateFiles, config: IngressConfig) -> None:
        try:
            write_json_atomic(files.config, config.to_json())
        except OSError as exc:
            raise BackendError(f"cannot write {files.config}: {exc.strerror}") from exc

    def _running_pid(self, files: StateFiles) -> int | None:
        """The daemon's pid if it is alive and really our daemon (pids get reused)."""
        return self._daemons.running(read_json(files.pid), _MODULE, files.project)

    def _clear_stale(self, files: StateFiles) -> None:
        unlink_quietly(files.pid, files.status)

    def _start(self, files: StateFiles, backend: str) -> int:
        command = [
            sys.executable, "-m", _MODULE,
            "--project", files.project, "--backend", backend,
            "--state-dir", str(files.state_dir),
        ]
        try:
            # stdout stays unread: the daemon logs to the file itself (stderr catches crashes)
            return self._daemons.start(command, files.log, stdout_to_log=False)
        except OSError as exc:
            raise BackendError(f"cannot start the ingress proxy: {exc.strerror}") from exc

    def _signal_reload(self, files: StateFiles, pid: int, acknowledged: int) -> None:
        """SIGHUP, but only once the daemon has said it is up: before it installs its handler,
        SIGHUP would kill it."""
        self._wait_generation(files, pid, acknowledged)
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError as exc:
            raise BackendError(
                f"the ingress proxy of project {files.project} exited unexpectedly"
                f"{log_tail(files.log)}"
            ) from exc

    def _wait_generation(self, files: StateFiles, pid: int, generation: int) -> dict[str, Any]:
        """Block until the daemon's status acknowledges ``generation``; its status."""
        deadline = time.monotonic() + self._ready_timeout
        while True:
            status = read_json(files.status)
            if _acknowledged(status, pid, generation):
                assert isinstance(status, dict)
                return status
            if not self._daemons.alive(pid):
                raise BackendError(
                    f"the ingress proxy of project {files.project} exited unexpectedly"
                    f"{log_tail(files.log)}"
                )
            if time.monotonic() > deadline:
                raise WaitTimeout(
                    f"the ingress proxy of project {files.project} did not answer within "
                    f"{self._ready_timeout:g} s (see {files.log})"
                )
            time.sleep(_POLL)

    def _stop_and_clean(self, files: StateFiles) -> None:
        pid = self._running_pid(files)
        if pid is not None:
            self._daemons.terminate(pid)
        unlink_quietly(*files.all())

    def _check_new_ports(self, wanted: Sequence[Route], served: Sequence[Route]) -> None:
        """Probe ports the daemon does not hold yet, for a fast, clear error."""
        # the proxy module brings asyncio: only a command that publishes ports pays for it
        from orchestrator.ingress.proxy import check_bindable

        held = {(r.published, r.protocol) for r in served}
        errors: list[PycomposeError] = []
        for route in wanted:
            if route.published == 0 or (route.published, route.protocol) in held:
                continue
            try:
                check_bindable(route)
            except PycomposeError as exc:
                errors.append(exc)
        if errors:
            raise _combine(errors)


def _acknowledged(status: Any, pid: int, generation: int) -> bool:
    return (
        isinstance(status, dict)
        and status.get("pid") == pid
        and isinstance(status.get("generation"), int)
        and status["generation"] >= generation
    )


def _route_errors(status: Any, wanted: Sequence[Route]) -> PycomposeError | None:
    """The error for every wanted route the daemon could not bind, or None."""
    if not isinstance(status, dict):
        return None
    errors: list[PycomposeError] = []
    for entry in status.get("routes", []):
        try:
            route = route_from_json(entry.get("route"))
        except (ValueError, AttributeError):
            continue
        error = entry.get("error")
        if route not in wanted or not isinstance(error, dict):
            continue
        if error.get("kind") == "conflict":
            errors.append(Conflict(str(error.get("message", ""))))
        else:
            errors.append(ConfigError(Problem(
                str(error.get("message", "")),
                path=str(error.get("path", "")),
                hint=str(error.get("hint", "")),
            )))
    return _combine(errors) if errors else None


def _combine(errors: list[PycomposeError]) -> PycomposeError:
    """One error for several routes: Conflict when any port is taken, else every problem."""
    conflicts = [e for e in errors if isinstance(e, Conflict)]
    if conflicts:
        return Conflict("; ".join(str(e) for e in conflicts))
    problems: list[Problem] = []
    for error in errors:
        if isinstance(error, ConfigError):
            problems.extend(error.problems)
        else:
            problems.append(Problem(str(error)))
    return ConfigError(problems)


def _live_drains(config: IngressConfig, status: Any) -> dict[str, int]:
    """The drains still in force: those the daemon has not yet seen through to a stop."""
    spent = status.get("drained_spent") if isinstance(status, dict) else None
    if not isinstance(spent, dict):
        spent = {}
    return {cid: gen for cid, gen in config.drains.items() if spent.get(cid) != gen}

