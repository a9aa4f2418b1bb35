"""The supervisor process: ``python -m orchestrator.supervisor.daemon``, one per host.

It keeps enforcing restart policies and replacing unhealthy replicas after the CLI has
exited. One loop, woken by the engine's event stream (when the backend is an
``EventSource``), by SIGHUP (a new registration) or by a timer (a restart that is due, the
periodic observe), does the same thing every time:

    for each registered project: observe → pure decisions (restart.py, health.py) → act

Everything it acts on is first written to ``state.json`` (atomically), then done; so a
supervisor killed with SIGKILL and started again finds each decision it made, does not
count a restart twice, does not restart a container that is running, and finishes a
replacement it had begun. A stop the core made on purpose (``intents``) is never undone.

After a reboot (a new kernel boot id) or an engine restart, the containers that died with
the host come back through the same decisions, in ``depends_on`` order: a container whose
dependencies are still being started, or are still ``starting`` their healthcheck, waits
(up to ``GATE_TIMEOUT``) for the next pass. At a new boot, stop intents of ``restart:
always`` containers are dropped (docker starts those again when its daemon starts;
``unless-stopped`` and ``deploy.restart_policy`` ones stay stopped).

A pidfile under the run dir, held with ``flock`` while the process lives, makes it one
per host and tells clients whether it runs (a lock dies with its process, SIGKILL too).
Started on demand by ``up`` it exits when no project is registered any more
(``--exit-when-idle``); ``pycompose supervisor run`` keeps it in the foreground for good.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import IO

from orchestrator import labels
from orchestrator.backends.base import Backend, EventSource, ObservedContainer, ObservedState
from orchestrator.errors import PycomposeError
from orchestrator.model import Project, Service
from orchestrator.supervisor import health, intents, paths, restart
from orchestrator.supervisor.state import (
    Registration,
    Slot,
    SupervisorState,
    boot_id,
    load_state,
    registrations,
    save_state,
    slot_key,
    unregister,
)

log = logging.getLogger("pycompose.supervisor")

DEFAULT_INTERVAL = 2.0  # seconds between periodic observes
GATE_TIMEOUT = 120.0  # longest a start waits for its dependencies' health gates
FORGET_AFTER = 60.0  # a registered project with no container for this long is forgotten
IDLE_GRACE = 2.0  # seconds without registrations before --exit-when-idle exits

Clock = Callable[[], float]
OpenBackend = Callable[[str], Backend]


def _open_backend(name: str) -> Backend:
    from orchestrator.backends.factory import open_backend

    return open_backend(name)


# -- the pidfile lock ------------------------------------------------------------------------


class PidLock:
    """``flock`` on the pidfile: held by the one live supervisor of this host."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held for the process's life
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle
        return True

    def release(self) -> None:
        if self._handle is not None:
            self._handle.seek(0)
            self._handle.truncate()
            self._handle.flush()
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


# -- one registered project ------------------------------------------------------------------


@dataclass
class _Watched:
    registration: Registration
    project: Project
    backend: Backend
    generations: list[list[str]]
    empty_since: float | None = None


@dataclass
class _Pass:
    """What one pass found to do, before it is done."""

    due: list[tuple[Service, ObservedContainer]] = field(default_factory=list)
    replace: list[tuple[Service, ObservedContainer]] = field(default_factory=list)
    recreate: list[tuple[Service, int]] = field(default_factory=list)


def load_registered(registration: Registration) -> Project:
    """The registered configuration, loaded back through the ordinary loader."""
    from orchestrator.loader.discover import LoadOptions
    from orchestrator.loader.pipeline import load_project

    directory = registration.working_dir
    options = LoadOptions(
        files=("-",),
        project_name=registration.project,
        project_directory=directory if directory and Path(directory).is_dir() else None,
        env_files=(),
        environ={},
        stdin_text=json.dumps(registration.config),
    )
    return load_project(options).project


class Supervisor:
    """The loop. ``clock`` is wall time (comparable with the engine's timestamps)."""

    def __init__(
        self,
        *,
        interval: float = DEFAULT_INTERVAL,
        exit_when_idle: bool = False,
        clock: Clock = time.time,
        open_backend: OpenBackend = _open_backend,
    ) -> None:
        self.interval = interval
        self.exit_when_idle = exit_when_idle
        self.clock = clock
        self.open_backend = open_backend
        self.state = SupervisorState()
        self.watched: dict[str, _Watched] = {}
        self.backends: dict[str, Backend] = {}
        self.wake = threading.Event()
        self.stopping = False
        self.next_due: float | None = None
        self.deferred_since: dict[str, float] = {}
        self._listening: set[str] = set()

    # -- the process --------------------------------------------------------------------

    def run(self, lock: PidLock) -> None:
        self.state = load_state()
        self._on_boot()
        idle_since: float | None = None
        while not self.stopping:
            try:
                self.pass_once()
            except PycomposeError as exc:
                log.warning("pass failed: %s", exc)
            if self.exit_when_idle:
                if self.watched or registrations():
                    idle_since = None
                elif idle_since is None:
                    idle_since = self.clock()
                elif self.clock() - idle_since >= IDLE_GRACE and self._release_if_idle(lock):
                    log.info("no project registered: exiting")
                    return
            timeout = self.interval
            if self.next_due is not None:
                timeout = max(0.05, min(timeout, self.next_due - self.clock()))
            self.wake.wait(timeout)
            self.wake.clear()

    def _release_if_idle(self, lock: PidLock) -> bool:
        """Release the lock, then look again: a client registers before it checks the lock,
        so either we see its registration now or it sees no supervisor and starts one."""
        lock.release()
        if not registrations():
            return True
        # we hold it again and carry on, or another supervisor took over and we may go
        return not lock.acquire()

    def _on_boot(self) -> None:
        current = boot_id()
        if self.state.boot_id and current and self.state.boot_id != current:
            log.info("new boot: dropping stop intents of restart: always containers")
            self._drop_always_intents()
        self.state.boot_id = current
        self._save()

    def _drop_always_intents(self) -> None:
        always: set[str] = set()
        for registration in registrations().values():
            try:
                project = load_registered(registration)
            except PycomposeError:
                continue
            for service in project.services.values():
                policy = restart.policy_for(service)
                if isinstance(policy, restart.DockerPolicy) and policy.mode == "always":
                    always.add(f"{project.name}/{service.name}/")
        for key, slot in self.state.slots.items():
            if any(key.startswith(prefix) for prefix in always):
                intents.clear_intent(slot.container_id)

    def _save(self) -> None:
        save_state(self.state)

    # -- one pass -----------------------------------------------------------------------

    def pass_once(self) -> None:
        """Observe every registered project once and act on what is due."""
        self.next_due = None
        current = registrations()
        for name in list(self.watched):
            if name not in current:
                self._forget(name)
        every_intent = intents.read_intents()
        seen_ids: set[str] = set()
        observed_projects: set[str] = set()
        for name, registration in current.items():
            watched = self._watch(registration)
            if watched is None:
                continue
            try:
                observed = watched.backend.observe(name)
            except PycomposeError as exc:
                log.warning("project %s: cannot observe: %s", name, exc)
                self._soon(self.clock() + self.interval)
                continue
            seen_ids.update(c.id for c in observed.containers)
            observed_projects.add(name)
            if self._forgettable(watched, observed):
                log.info("project %s has no containers left: forgetting it", name)
                unregister(name)
                self._forget(name)
                continue
            self._supervise(watched, observed, every_intent)
        for container_id, intent in every_intent.items():
            if intent.project not in current or (
                container_id not in seen_ids and intent.project in observed_projects
            ):
                intents.clear_intent(container_id)

    def _watch(self, registration: Registration) -> _Watched | None:
        name = registration.project
        watched = self.watched.get(name)
        if watched is not None and watched.registration.registered_at == registration.registered_at:
            return watched
        try:
            project = load_registered(registration)
            backend = self.backends.get(registration.backend)
            if backend is None:
                backend = self.open_backend(registration.backend)
                self.backends[registration.backend] = backend
        except PycomposeError as exc:
            log.warning("project %s: cannot load its registration: %s", name, exc)
            return None
        from orchestrator.graph import ServiceGraph

        try:
            generations = ServiceGraph(project).generations()
        except PycomposeError:
            generations = [sorted(project.services)]
        watched = _Watched(registration, project, backend, generations)
        self.watched[name] = watched
        self._listen(registration.backend, backend)
        log.info("supervising project %s", name)
        return watched

    def _forget(self, name: str) -> None:
        self.watched.pop(name, None)
        prefix = f"{name}/"
        for key in [k for k in self.state.slots if k.startswith(prefix)]:
            del self.state.slots[key]
        self._save()

    def _forgettable(self, watched: _Watched, observed: ObservedState) -> bool:
        now = self.clock()
        if any(not c.oneoff for c in observed.containers) or any(
            slot.replacing
            for key, slot in self.state.slots.items()
            if key.startswith(f"{watched.project.name}/")
        ):
            watched.empty_since = None
            return False
        if watched.empty_since is None:
            watched.empty_since = now
        old = now - watched.registration.registered_at >= FORGET_AFTER
        return old and now - watched.empty_since >= FORGET_AFTER / 2

    def _soon(self, at: float) -> None:
        self.next_due = at if self.next_due is None else min(self.next_due, at)

    def _supervise(
        self, watched: _Watched, observed: ObservedState, every_intent: dict[str, intents.Intent]
    ) -> None:
        project = watched.project
        now = self.clock()
        work = _Pass()
        present: set[str] = set()
        changed = False
        for container in observed.containers:
            service = project.services.get(container.service)
            if container.oneoff or service is None:
                continue
            key = slot_key(project.name, service.name, container.number)
            present.add(key)
            slot = self.state.slots.get(key)
            if slot is None or slot.container_id != container.id:
                if slot is not None and slot.replacing is not None:
                    # our replacement was created but not yet recorded: adopt it
                    slot = replace(slot, container_id=container.id, replacing=None)
                else:
                    slot = Slot(container.id)
                self.state.slots[key] = slot
                changed = True
            if slot.replacing == container.id:
                work.replace.append((service, container))  # a replacement we had begun
                continue
            intent = every_intent.get(container.id)
            if container.status in ("running", "paused", "restarting"):
                if intent is not None and (container.started_at or 0) > intent.at:
                    # started again after a stop on purpose: a fresh start, as docker resets
                    intents.clear_intent(container.id)
                    self.state.slots[key] = Slot(container.id)
                    changed = True
                    continue
                if intent is None and container.status == "running":
                    verdict = health.decide_unhealthy(
                        service, container.health, slot.replacements, now
                    )
                    if isinstance(verdict, health.Replace):
                        if verdict.at <= now:
                            work.replace.append((service, container))
                        else:
                            self._soon(verdict.at)
                continue
            if container.status not in ("exited", "dead") or container.finished_at is None:
                continue
            exit_info = restart.ExitInfo(
                exit_code=container.exit_code or 0,
                started_at=container.started_at or container.finished_at,
                finished_at=container.finished_at,
                on_purpose=intent is not None,
            )
            policy = restart.policy_for(service)
            decision = restart.decide(policy, exit_info, slot.history, now)
            history = restart.prune(decision.history, policy, now)
            if history != slot.history:
                self.state.slots[key] = replace(slot, history=history)
                changed = True
                if isinstance(decision, restart.GiveUp):
                    log.info("%s: %s", container.name, decision.reason)
            if isinstance(decision, restart.Restart):
                if decision.at <= now:
                    work.due.append((service, container))
                else:
                    self._soon(decision.at)
        for key, slot in self.state.slots.items():
            if key.startswith(f"{project.name}/") and key not in present and slot.replacing:
                _, service_name, number = key.rsplit("/", 2)
                service = project.services.get(service_name)
                if service is not None:
                    work.recreate.append((service, int(number)))
        if changed:
            self._save()  # decisions are on disk before anything is done about them
        self._act(watched, observed, work)

    # -- acting -------------------------------------------------------------------------

    def _act(self, watched: _Watched, observed: ObservedState, work: _Pass) -> None:
        for service, container in work.replace:
            self._replace(watched, observed, service, container)
        for service, number in work.recreate:
            self._create(watched, observed, service, number)
        if work.due:
            self._start_in_order(watched, observed, work.due)

    def _start_in_order(
        self,
        watched: _Watched,
        observed: ObservedState,
        due: Sequence[tuple[Service, ObservedContainer]],
    ) -> None:
        """Start due containers generation by generation; a container whose dependencies
        are (re)started in this pass, or still ``starting`` their healthcheck, waits for a
        later pass, so each gate is judged on what the engine reports after the start."""
        now = self.clock()
        due_services = {service.name for service, _ in due}
        held: set[str] = set()
        for generation in watched.generations:
            for service, container in [d for d in due if d[0].name in generation]:
                key = slot_key(watched.project.name, service.name, container.number)
                blocker = self._gate(service, observed, due_services | held)
                since = self.deferred_since.setdefault(key, now) if blocker else None
                if blocker and since is not None and now - since < GATE_TIMEOUT:
                    held.add(service.name)
                    self._soon(now + 0.5)
                    log.debug("%s waits for %s", container.name, blocker)
                    continue
                self.deferred_since.pop(key, None)
                try:
                    watched.backend.start_container(container.id)
                    log.info("restarted %s", container.name)
                except PycomposeError as exc:
                    log.warning("cannot restart %s: %s", container.name, exc)

    def _gate(self, service: Service, observed: ObservedState, starting: set[str]) -> str:
        """The dependency ``service`` must still wait for ("" when none)."""
        for name, dependency in service.depends_on.items():
            if name in starting:
                return name
            if dependency.condition == "service_healthy":
                for other in observed.service_containers(name):
                    if other.status == "running" and other.health == "starting":
                        return name
        return ""

    def _replace(
        self,
        watched: _Watched,
        observed: ObservedState,
        service: Service,
        container: ObservedContainer,
    ) -> None:
        key = slot_key(watched.project.name, service.name, container.number)
        slot = self.state.slots.get(key) or Slot(container.id)
        if slot.replacing != container.id:
            slot = replace(
                slot, replacing=container.id, replacements=(*slot.replacements, self.clock())
            )
            self.state.slots[key] = slot
            self._save()
        log.info("replacing unhealthy %s", container.name)
        backend = watched.backend
        try:
            with contextlib.suppress(PycomposeError):
                backend.stop_container(container.id, service.stop_grace_period)
            backend.remove_container(container.id, force=True)
        except PycomposeError as exc:
            log.warning("cannot remove %s: %s", container.name, exc)
            return
        self._create(watched, observed, service, container.number, container)

    def _create(
        self,
        watched: _Watched,
        observed: ObservedState,
        service: Service,
        number: int,
        old: ObservedContainer | None = None,
    ) -> None:
        from orchestrator.backends.spec import build_container_spec
        from orchestrator.plan.hashing import config_hash

        project = watched.project
        key = slot_key(project.name, service.name, number)
        try:
            spec = build_container_spec(
                project,
                service,
                number,
                config_hash=config_hash(service, project),
                observed=observed,
                supervised_restarts=True,
            )
            if old is not None and labels.UPDATE_GENERATION in old.labels:
                kept = {labels.UPDATE_GENERATION: old.labels[labels.UPDATE_GENERATION]}
                spec = replace(spec, labels={**spec.labels, **kept})
            new_id = watched.backend.create_container(spec)
            slot = self.state.slots.get(key) or Slot(new_id)
            self.state.slots[key] = replace(slot, container_id=new_id, replacing=None)
            self._save()
            watched.backend.start_container(new_id)
        except PycomposeError as exc:
            log.warning("cannot recreate %s replica %d: %s", service.name, number, exc)
            self._soon(self.clock() + self.interval)
            return
        log.info("replaced %s replica %d", service.name, number)
        self._refresh_ingress(project)

    def _refresh_ingress(self, project: Project) -> None:
        if not any(p.published for s in project.services.values() for p in s.ports):
            return
        try:
            from orchestrator.ingress.controller import ProcessIngressController

            ProcessIngressController().refresh(project.name)
        except PycomposeError as exc:
            log.warning("project %s: cannot refresh the ingress proxy: %s", project.name, exc)

    # -- the engine's event stream -----------------------------------------------------

    def _listen(self, name: str, backend: Backend) -> None:
        if name in self._listening or not isinstance(backend, EventSource):
            return
        self._listening.add(name)

        def pump() -> None:
            while not self.stopping:
                try:
                    # a connection of its own: the stream blocks, observes must not wait
                    source = self.open_backend(name)
                    try:
                        if not isinstance(source, EventSource):
                            return
                        for event in source.container_events():
                            if event.project in self.watched:
                                self.wake.set()
                    finally:
                        source.close()
                except PycomposeError as exc:
                    log.debug("event stream of %s ended: %s", name, exc)
                except Exception as exc:  # a broken stream must not end the supervisor
                    log.debug("event stream of %s failed: %s", name, exc)
                time.sleep(1.0)

        threading.Thread(target=pump, name=f"events-{name}", daemon=True).start()


# -- entry point ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.supervisor.daemon")
    parser.add_argument("--exit-when-idle", action="store_true")
    parser.add_argument("--interval", type=float, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("PYCOMPOSE_SUPERVISOR_LOG", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(message)s",
    )
    interval = args.interval
    if interval is None:
        interval = float(os.environ.get("PYCOMPOSE_SUPERVISOR_INTERVAL") or DEFAULT_INTERVAL)
    lock = PidLock(paths.pidfile())
    if not lock.acquire():
        log.info("a supervisor already runs (%s is locked)", paths.pidfile())
        return 0
    supervisor = Supervisor(interval=interval, exit_when_idle=args.exit_when_idle)

    def on_term(signum: int, frame: FrameType | None) -> None:
        supervisor.stopping = True
        supervisor.wake.set()

    def on_hup(signum: int, frame: FrameType | None) -> None:
        supervisor.wake.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGHUP, on_hup)
    log.info("supervisor %d started (state in %s)", os.getpid(), paths.state_dir())
    try:
        supervisor.run(lock)
    finally:
        lock.release()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
