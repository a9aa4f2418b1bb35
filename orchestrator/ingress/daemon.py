"""The long-lived ingress process of one project: ``python -m orchestrator.ingress.daemon``.

It outlives the CLI (``up -d`` returns while the ports keep answering). It is driven only
through files in its state directory and signals, so any later CLI invocation can find it:

- ``<project>.json``         the config the controller writes (backend, routes, drained ids,
                             a generation number), replaced atomically
- ``<project>.pid``          written by the daemon when it starts
- ``<project>.status.json``  written by the daemon: the generation it has applied, each
                             route's bind result, the current members
- ``<project>.log``          its log

SIGHUP: re-read the config (bind/unbind routes, apply drains) and observe at once.
SIGTERM/SIGINT: close the listeners and exit. Membership is refreshed through the Backend
protocol (never an engine SDK), so the same daemon serves every backend.

The daemon owns the file formats; they live in ``statefiles.py`` (re-exported here) so the
controller reads and writes them without importing asyncio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.backends.base import Backend, ObservedState
from orchestrator.errors import ConfigError, Conflict, PycomposeError
from orchestrator.ingress.pool import Member, members
from orchestrator.ingress.proxy import Proxy, describe, make_proxy
from orchestrator.ingress.routes import Route
from orchestrator.ingress.statefiles import (
    IngressConfig,
    StateFiles,
    read_json,
    route_to_json,
    valid_project_name,
    write_json_atomic,
)
from orchestrator.runtime.daemons import configure_logging

log = logging.getLogger("orchestrator.ingress.daemon")

REFRESH_INTERVAL = 0.5


# ---------------------------------------------------------------- the daemon


@dataclass
class _Served:
    route: Route
    proxy: Proxy | None = None
    error: dict[str, str] | None = None  # {"kind", "message", "path", "hint"}
    members: tuple[Member, ...] = field(default_factory=tuple)


def _error_record(exc: PycomposeError) -> dict[str, str]:
    if isinstance(exc, ConfigError) and exc.problems:
        problem = exc.problems[0]
        return {"kind": "config", "message": problem.message, "path": problem.path,
                "hint": problem.hint}
    kind = "conflict" if isinstance(exc, Conflict) else "other"
    return {"kind": kind, "message": str(exc), "path": "", "hint": ""}


class IngressDaemon:
    """Serves one project's routes until stopped. ``open_backend`` is injected so the daemon
    can be run in-process in tests with a fake backend; the command line passes the factory.
    """

    def __init__(
        self,
        project: str,
        state_dir: str | Path,
        open_backend: Callable[[str], Backend],
        *,
        refresh_interval: float = REFRESH_INTERVAL,
        default_backend: str = "",
    ) -> None:
        self._default_backend = default_backend
        self.files = StateFiles(Path(state_dir), project)
        self.project = project
        self._open_backend = open_backend
        self._refresh_interval = refresh_interval
        self._observed_generation = 0
        self._config: IngressConfig | None = None
        self._served: dict[Route, _Served] = {}
        self._backend: Backend | None = None
        self._observed: ObservedState | None = None
        # drains that are over: id -> the drain generation seen through to a stop
        self._spent: dict[str, int] = {}
        # the run of each drained container the drain applies to: id -> (generation, started_at)
        self._drained_run: dict[str, tuple[int, float | None]] = {}
        self._last_status: dict[str, Any] | None = None
        self._reload: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._backend_error = ""

    # -- control, safe to call from signal handlers running on the loop

    def request_reload(self) -> None:
        if self._reload is not None:
            self._reload.set()

    def request_stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    def members_of(self, route: Route) -> tuple[Member, ...]:
        served = self._served.get(route)
        return served.members if served else ()

    def proxy_of(self, route: Route) -> Proxy | None:
        served = self._served.get(route)
        return served.proxy if served else None

    # -- lifecycle

    async def run(self, *, install_signals: bool = False) -> int:
        """Serve until ``request_stop`` (or SIGTERM); the process exit status."""
        self._reload = asyncio.Event()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        signals = {signal.SIGHUP: self.request_reload, signal.SIGTERM: self.request_stop,
                   signal.SIGINT: self.request_stop} if install_signals else {}
        for signum, handler in signals.items():
            loop.add_signal_handler(signum, handler)
        try:
            return await self._serve()
        finally:
            for signum in signals:
                loop.remove_signal_handler(signum)

    async def _serve(self) -> int:
        assert self._stop is not None
        write_json_atomic(self.files.pid, os.getpid())
        config = self._read_config()
        if config is None:
            self._remove_own_files()
            return 2
        await self._apply(config)
        loops = {
            asyncio.create_task(self._observe_loop()),
            asyncio.create_task(self._reload_loop()),
            asyncio.create_task(self._stop.wait()),
        }
        try:
            await asyncio.wait(loops, return_when="FIRST_COMPLETED")
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await self._shutdown()
        failed = [t for t in loops if not t.cancelled() and t.exception() is not None]
        for task in failed:
            log.error("the daemon failed", exc_info=task.exception())
        return 1 if failed else 0

    async def _shutdown(self) -> None:
        for served in self._served.values():
            if served.proxy is not None:
                await served.proxy.close(abort_connections=True)
        self._served.clear()
        if self._backend is not None:
            backend, self._backend = self._backend, None
            with contextlib.suppress(Exception):
                await asyncio.to_thread(backend.close)
        self._remove_own_files()
        log.info("stopped")

    def _remove_own_files(self) -> None:
        """Leave the pid and status files only if a newer daemon has not taken them over."""
        if read_json(self.files.pid) == os.getpid():
            with contextlib.suppress(OSError):
                self.files.status.unlink()
            with contextlib.suppress(OSError):
                self.files.pid.unlink()

    def _read_config(self) -> IngressConfig | None:
        data = read_json(self.files.config)
        if data is None:
            log.error("no readable config at %s", self.files.config)
            return None
        try:
            return IngressConfig.from_json(data, default_backend=self._default_backend)
        except ValueError as exc:
            log.error("invalid config %s: %s", self.files.config, exc)
            return None

    async def _observe_loop(self) -> None:
        """Refresh membership every interval, and at once when woken (after a reload)."""
        assert self._wake is not None
        while True:
            self._wake.clear()
            await self._refresh()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._refresh_interval)

    async def _reload_loop(self) -> None:
        """Apply the config file on SIGHUP, without waiting for an observation in flight:
        a drain must be acknowledged quickly, the caller is waiting to stop the container.
        """
        assert self._reload is not None and self._stop is not None and self._wake is not None
        while True:
            await self._reload.wait()
            self._reload.clear()
            config = self._read_config()
            if config is None:
                if not self.files.config.exists():
                    log.info("config removed; stopping")
                    self._stop.set()
                    return
                continue
            await self._apply(config)
            self._wake.set()

    async def _apply(self, config: IngressConfig) -> None:
        """Bind/unbind to match ``config``, re-filter members, and acknowledge its generation."""
        old = self._config
        self._config = config
        self._spent = {
            cid: gen for cid, gen in self._spent.items() if config.drains.get(cid) == gen
        }
        self._drained_run = {
            cid: run for cid, run in self._drained_run.items() if config.drains.get(cid) == run[0]
        }
        if self._observed is not None:
            # the last snapshot predates the drain: the run it shows is the one being drained
            self._note_drained_runs(self._observed, config.drains)
        wanted = set(config.routes)
        for route in [r for r in self._served if r not in wanted]:
            served = self._served.pop(route)
            if served.proxy is not None:
                await served.proxy.close()
                log.info("unbound %s", describe(route))
        for route in config.routes:
            served = self._served.setdefault(route, _Served(route))
            if served.proxy is None:
                await self._bind(served)
        if old is None or old.backend != config.backend:
            await self._drop_backend()
        self._recompute()
        self._write_status()
        log.info("applied config generation %d (%d routes, %d drained)",
                 config.generation, len(config.routes), len(config.drained))

    async def _bind(self, served: _Served) -> None:
        proxy = make_proxy(served.route)
        try:
            await proxy.start()
        except PycomposeError as exc:
            served.error = _error_record(exc)
            log.error("cannot bind %s: %s", describe(served.route), exc)
            return
        served.proxy, served.error = proxy, None
        log.info("bound %s for service %s → :%d", describe(served.route), served.route.service,
                 served.route.target)

    async def _drop_backend(self) -> None:
        if self._backend is not None:
            backend, self._backend = self._backend, None
            with contextlib.suppress(Exception):
                await asyncio.to_thread(backend.close)
        self._observed = None

    async def _refresh(self) -> None:
        """One observation; on failure keep the last members (the engine may just be slow)."""
        config = self._config
        if config is None:
            return
        try:
            if self._backend is None:
                self._backend = await asyncio.to_thread(self._open_backend, config.backend)
            observed = await asyncio.to_thread(self._backend.observe, self.project)
        except Exception as exc:  # foreign errors too: the daemon must keep serving
            message = f"{type(exc).__name__}: {exc}"
            if message != self._backend_error:
                log.warning("observing project %s failed: %s", self.project, message)
                self._backend_error = message
                self._write_status()
            return
        if self._backend_error:
            log.info("observing project %s works again", self.project)
            self._backend_error = ""
        self._observed = observed
        # this observation began under ``config``: callers of `refresh` wait for it
        self._observed_generation = max(self._observed_generation, config.generation)
        if self._config is config:
            # after a reload during this observation, a new drain must not be judged
            # spent from a snapshot older than it
            self._mark_spent(observed, config.drains)
        self._recompute()
        self._write_status()

    def _note_drained_runs(self, observed: ObservedState, drains: Mapping[str, int]) -> None:
        for container in observed.containers:
            generation = drains.get(container.id)
            known = self._drained_run.get(container.id)
            if generation is not None and (known is None or known[0] != generation):
                self._drained_run[container.id] = (generation, container.started_at)

    def _mark_spent(self, observed: ObservedState, drains: Mapping[str, int]) -> None:
        """A drain is over once its container stopped: seen gone, exited, or running again
        since a later start (a stop and start can fall between two refreshes)."""
        self._note_drained_runs(observed, drains)
        found = {c.id: c for c in observed.containers}
        for container_id, generation in drains.items():
            container = found.get(container_id)
            run = self._drained_run.get(container_id)
            if (
                container is None
                or container.status in ("exited", "dead")
                or (run is not None and run[0] == generation
                    and run[1] != container.started_at)
            ):
                self._spent[container_id] = generation

    def _recompute(self) -> None:
        config = self._config
        if config is None:
            return
        drained = {
            cid for cid, gen in config.drains.items() if self._spent.get(cid) != gen
        }
        for served in self._served.values():
            chosen: tuple[Member, ...] = ()
            if self._observed is not None:
                chosen = tuple(members(self._observed, served.route, drained))
            elif served.members:
                # no fresh observation (engine unreachable): keep serving, minus new drains
                chosen = tuple(m for m in served.members if m.container_id not in drained)
            if chosen != served.members:
                log.info("%s members: %s", describe(served.route),
                         ", ".join(f"{m.container_id[:12]}@{m.address}" for m in chosen) or "none")
            served.members = chosen
            if served.proxy is not None:
                served.proxy.set_members(chosen)

    def _write_status(self) -> None:
        config = self._config
        if config is None:
            return
        routes = []
        for route in config.routes:
            served = self._served.get(route)
            entry: dict[str, Any] = {"route": route_to_json(route), "bound": False,
                                     "error": None, "address": None, "members": []}
            if served is not None:
                entry["bound"] = served.proxy is not None
                entry["error"] = served.error
                entry["members"] = [m.container_id for m in served.members]
                if served.proxy is not None:
                    entry["address"] = list(served.proxy.address)
            routes.append(entry)
        status: dict[str, Any] = {
            "pid": os.getpid(),
            "generation": config.generation,
            "routes": routes,
            "drained_spent": dict(sorted(self._spent.items())),
            "observed": self._observed is not None,
            "observed_generation": self._observed_generation,
            "backend_error": self._backend_error,
        }
        if status == self._last_status:
            return
        self._last_status = status
        try:
            write_json_atomic(self.files.status, status)
        except OSError as exc:
            log.error("cannot write %s: %s", self.files.status, exc)


# ---------------------------------------------------------------- command line


def _factory_backend(name: str) -> Backend:
    from orchestrator.backends.factory import open_backend

    return open_backend(name)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m orchestrator.ingress.daemon",
        description="Serve one project's ingress ports (started by pycompose, not by hand).",
    )
    parser.add_argument("--project", required=True)
    parser.add_argument("--backend", required=True,
                        help="the backend to observe when the config does not name one")
    parser.add_argument("--state-dir", required=True)
    args = parser.parse_args(argv)
    if not valid_project_name(args.project):
        parser.error(f"invalid project name {args.project!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point of the daemon process; its exit status."""
    args = _parse(argv)
    state_dir = Path(args.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    files = StateFiles(state_dir, args.project)
    configure_logging(files.log)
    log.info("starting for project %s (pid %d)", args.project, os.getpid())
    daemon = IngressDaemon(args.project, state_dir, _factory_backend,
                           default_backend=args.backend)
    try:
        return asyncio.run(daemon.run(install_signals=True))
    except Exception:
        log.exception("the ingress daemon crashed")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
