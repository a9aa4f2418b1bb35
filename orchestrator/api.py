"""The facade: what the CLI, the tests and library users call.

``load`` reads a project; ``Composer`` runs lifecycle commands for one project on one
backend by the flow in DESIGN.md: observe → reconcile (pure plan) → execute.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.errors import (
    DependencyFailed,
    NotFound,
    Problem,
    PycomposeError,
    UsageError,
    WaitTimeout,
)
from orchestrator.events import Event, EventSink, discard

if TYPE_CHECKING:
    from orchestrator.backends.base import (
        Backend,
        ExecResult,
        LogLine,
        ObservedContainer,
        ObservedState,
    )
    from orchestrator.executor import ExecutionResult
    from orchestrator.ingress.routes import IngressController
    from orchestrator.plan.ops import Plan
    from orchestrator.plan.reconcile import UpOptions

from orchestrator.loader.discover import LoadOptions
from orchestrator.loader.pipeline import LoadResult, load_project
from orchestrator.model import Project, Service


def load(options: LoadOptions) -> LoadResult:
    """Load and validate a project (ConfigError lists every problem)."""
    return load_project(options)


def unsupported_warnings(result: LoadResult, backend: Backend) -> list[Problem]:
    """One warning per service key the backend cannot honour: never silence."""
    from orchestrator.loader.checks import unsupported_key_warnings

    caps = backend.capabilities()
    return unsupported_key_warnings(
        result.project, caps.unsupported_keys, caps.name, result.positions
    )


def image_name(project: Project, service: Service) -> str:
    """The image a service runs: its ``image``, else ``<project>-<service>`` (built)."""
    return service.image or f"{project.name}-{service.name}"


def require_services(project: Project, names: Sequence[str]) -> None:
    """NotFound naming every unknown service, with a did-you-mean or the known names."""
    unknown = [n for n in names if n not in project.services]
    if not unknown:
        return
    from orchestrator.loader.suggest import did_you_mean

    known = sorted(project.services)
    hint = "; ".join(h for h in (did_you_mean(u, known) for u in unknown) if h)
    raise NotFound(
        f"no such service: {', '.join(unknown)}"
        + (f" ({hint})" if hint else f" (services: {', '.join(known)})")
    )


def _select(project: Project, selection: str) -> list[str]:
    if selection.strip() == "*":
        return list(project.services)
    names = [n.strip() for n in selection.split(",") if n.strip()]
    require_services(project, names)
    return names


def service_hashes(project: Project, selection: str) -> Iterable[tuple[str, str]]:
    """(service, config hash) for ``SERVICE``, ``a,b`` or ``*``."""
    from orchestrator.plan.hashing import config_hash

    for name in _select(project, selection):
        yield name, config_hash(project.services[name], project)


def _escape_dollars(value: object) -> object:
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {k: _escape_dollars(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape_dollars(v) for v in value]
    return value


def config_document(project: Project) -> dict[str, object]:
    """The project as a compose file that loads back to the same model.

    Values are already interpolated, so every ``$`` is written as ``$$``: loading the
    output interpolates it back to the same value instead of expanding it again.
    """
    from orchestrator.model.serialize import project_to_dict

    escaped = _escape_dollars(project_to_dict(project))
    assert isinstance(escaped, dict)
    return escaped


# -- lifecycle -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """A lifecycle command's plan and, unless it was a dry run, how executing it went."""

    plan: Plan
    result: ExecutionResult | None = None


class Composer:
    """Lifecycle commands for one project on one backend: observe → plan → execute."""

    def __init__(
        self,
        project: Project,
        backend: Backend,
        backend_name: str,
        *,
        events: EventSink = discard,
        parallel: int | None = None,
        ingress: IngressController | None = None,
    ) -> None:
        self.project = project
        self.backend = backend
        self.backend_name = backend_name
        self.events = events
        self.parallel = parallel
        self._ingress = ingress

    @property
    def ingress(self) -> IngressController:
        """The ingress controller, made on first use: its module brings in asyncio, a
        noticeable share of the start-up of `ps`, `build` or `logs`, which never use it."""
        if self._ingress is None:
            from orchestrator.ingress.controller import ProcessIngressController

            self._ingress = ProcessIngressController()
        return self._ingress

    @ingress.setter
    def ingress(self, controller: IngressController) -> None:
        self._ingress = controller

    @classmethod
    def open(
        cls,
        project: Project,
        backend: str | None = None,
        *,
        events: EventSink = discard,
        parallel: int | None = None,
    ) -> Composer:
        from orchestrator.backends.factory import choose_backend, open_backend

        choice = choose_backend(backend)
        return cls(
            project, open_backend(choice.name), choice.name, events=events, parallel=parallel
        )

    def close(self) -> None:
        self.backend.close()

    # -- reading -------------------------------------------------------------------------

    def observe(self) -> ObservedState:
        return self.backend.observe(self.project.name)

    def _check_services(self, services: Sequence[str]) -> None:
        require_services(self.project, services)

    def containers(
        self, services: Sequence[str] = (), *, all: bool = True, oneoff: bool = False
    ) -> list[ObservedContainer]:
        """The project's containers (of ``services``), by service then number."""
        self._check_services(services)
        observed = self.observe()
        chosen = [
            c
            for c in observed.containers
            if (not services or c.service in services)
            and (all or c.status == "running")
            and (oneoff or not c.oneoff)
        ]
        return sorted(chosen, key=lambda c: (c.service, c.oneoff, c.number))

    def _container(self, service: str, index: int = 1) -> ObservedContainer:
        self._check_services([service])
        for container in self.observe().service_containers(service):
            if container.number == index:
                return container
        raise NotFound(f"service {service!r} has no container number {index}: is it up?")

    # -- plans ---------------------------------------------------------------------------

    def _run(self, plan: Plan, dry_run: bool, wait_timeout: float | None = None) -> Outcome:
        for warning in plan.warnings:
            self.events(warning)
        if dry_run:
            return Outcome(plan)
        from orchestrator.executor import execute

        result = execute(
            plan,
            self.backend,
            events=self.events,
            parallel=self.parallel,
            ingress=self.ingress,
            wait_timeout=wait_timeout,
        )
        if not result.ok:
            raise _first_error(result)
        return Outcome(plan, result)

    def up(
        self,
        options: UpOptions,
        *,
        dry_run: bool = False,
        wait: bool = False,
        wait_timeout: float | None = None,
    ) -> Outcome:
        from orchestrator.backends.spec import restart_warnings
        from orchestrator.plan.reconcile import reconcile

        self._check_services(options.services)
        if not dry_run:
            self._build_missing(options.services)
            options = self._supervise(options)
        for service in self.project.services.values():
            for message in restart_warnings(
                service, supervised_restarts=options.supervised_restarts
            ):
                self.events(Event("service", service.name, "Warning", "warning", message))
        plan = reconcile(
            self.project, self.observe(), options, ingress=self.ingress.status(self.project.name)
        )
        outcome = self._run(plan, dry_run, wait_timeout)
        if wait and not dry_run:
            self.wait(options.services, timeout=wait_timeout, scale=options.scale)
            # `--wait` promises a stack that serves: the ingress pools must include the
            # replicas that just became healthy
            self.ingress.refresh(self.project.name)
        return outcome

    def down(
        self,
        *,
        volumes: bool = False,
        remove_orphans: bool = False,
        timeout: float | None = None,
        dry_run: bool = False,
    ) -> Outcome:
        from orchestrator.plan.reconcile import plan_down

        plan = plan_down(
            self.project,
            self.observe(),
            remove_volumes=volumes,
            remove_orphans=remove_orphans,
            ingress=self.ingress.status(self.project.name),
            timeout=timeout,
        )
        if not dry_run:
            # first, so the supervisor cannot restart or replace what `down` is removing
            from orchestrator.supervisor.client import unregister

            unregister(self.project.name)
        return self._run(plan, dry_run)

    def _supervise(self, options: UpOptions) -> UpOptions:
        """Register the project with the supervisor (started on demand) when a service has
        a restart policy or a healthcheck; its containers then get the engine restart
        policy "no", so the supervisor alone restarts them. ``PYCOMPOSE_SUPERVISOR=0``
        opts out (the engine's own policies apply, with their warnings)."""
        import os
        from dataclasses import replace

        from orchestrator.supervisor.restart import is_supervised, policy_for, policy_warnings

        if os.environ.get("PYCOMPOSE_SUPERVISOR", "").lower() in ("0", "off", "no", "false"):
            return options
        for service in self.project.services.values():
            for message in policy_warnings(service):
                self.events(Event("service", service.name, "Warning", "warning", message))
        wanted = any(
            is_supervised(policy_for(s))
            or (
                s.healthcheck is not None
                and not s.healthcheck.disable
                and s.healthcheck.test[:1] != ("NONE",)
            )
            for s in self.project.services.values()
        )
        if not wanted:
            return options
        from orchestrator.supervisor.client import register

        try:
            register(
                self.project.name,
                self.backend_name,
                config_document(self.project),
                working_dir=self.project.working_dir,
            )
        except PycomposeError as exc:
            message = f"no supervisor ({exc}): the engine's restart policies apply instead"
            self.events(Event("project", self.project.name, "Warning", "warning", message))
            return options
        return replace(options, supervised_restarts=True)

    def stop(
        self, services: Sequence[str] = (), *, timeout: float | None = None, dry_run: bool = False
    ) -> Outcome:
        from orchestrator.plan.reconcile import plan_stop

        self._check_services(services)
        plan = plan_stop(
            self.project,
            self.observe(),
            services,
            timeout=timeout,
            ingress=self.ingress.status(self.project.name),
        )
        return self._run(plan, dry_run)

    def start(self, services: Sequence[str] = (), *, dry_run: bool = False) -> Outcome:
        from orchestrator.plan.reconcile import plan_start

        self._check_services(services)
        return self._run(plan_start(self.project, self.observe(), services), dry_run)

    def restart(
        self, services: Sequence[str] = (), *, timeout: float | None = None, dry_run: bool = False
    ) -> Outcome:
        from orchestrator.plan.reconcile import plan_restart

        self._check_services(services)
        plan = plan_restart(
            self.project,
            self.observe(),
            services,
            timeout=timeout,
            ingress=self.ingress.status(self.project.name),
        )
        return self._run(plan, dry_run)

    def rollback(
        self, service: str, *, timeout: float | None = None, dry_run: bool = False
    ) -> Outcome:
        """Roll ``service`` back to the configuration its latest update replaced.

        The previous config is read from the replicas themselves (``io.pycompose.previous-
        spec`` of the newest update generation), and rolled out by that update's
        ``deploy.rollback_config``. Raises NotFound when no replica records one,
        RolloutPaused when the rollback itself fails (it is never rolled back again).
        """
        from orchestrator import labels
        from orchestrator.plan.reconcile import plan_rollback
        from orchestrator.supervisor.specs import decode_service, previous_service

        self._check_services([service])
        observed = self.observe()
        replicas = observed.service_containers(service)
        if not replicas:
            raise NotFound(f"service {service!r} has no containers: is it up?")
        recorded = [c for c in replicas if c.labels.get(labels.PREVIOUS_SPEC)]

        def generation(container: ObservedContainer) -> int:
            text = container.labels.get(labels.UPDATE_GENERATION, "")
            return int(text) if text.isdigit() else 0

        newest = max(recorded or replicas, key=lambda c: (generation(c), -c.number))
        previous = previous_service(service, newest.labels)
        current_text = newest.labels.get(labels.SPEC)
        current = (
            decode_service(service, current_text)
            if current_text
            else self.project.services[service]
        )
        config = current.deploy.rollback_config if current.deploy is not None else None
        plan = plan_rollback(
            self.project,
            observed,
            service,
            previous,
            config=config,
            ingress=self.ingress.status(self.project.name),
            timeout=timeout,
        )
        return self._run(plan, dry_run)

    def wait(
        self,
        services: Sequence[str] = (),
        *,
        timeout: float | None = None,
        scale: Mapping[str, int] | None = None,
    ) -> None:
        """Block until every replica of ``services`` runs (and is healthy when it has a
        healthcheck); one-shot containers that exited 0 count as done."""
        from orchestrator.executor import readiness

        names = list(services) or list(self.project.services)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            observed = self.observe()
            pending: list[str] = []
            for name in names:
                wanted = (scale or {}).get(name, self.project.services[name].replicas)
                found = observed.service_containers(name)
                verdicts = [readiness(c) for c in found]
                problems = [v for v in verdicts if v]
                if problems:
                    raise DependencyFailed(f"service {name!r}: {problems[0]}")
                ready = [v for v in verdicts if v == ""]
                if len(ready) < wanted:
                    pending.append(name)
            if not pending:
                return
            if deadline is not None and time.monotonic() > deadline:
                raise WaitTimeout(
                    f"timed out after {timeout:g}s waiting for {', '.join(pending)} to be"
                    " running and healthy"
                )
            time.sleep(0.5)

    def wait_first_exit(
        self, services: Sequence[str] = (), *, only: str | None = None, poll: float = 0.25
    ) -> ObservedContainer:
        """Block until a container of ``services`` (of ``only`` when given) has exited;
        that container. One-off containers don't count (compose's `up` ignores them)."""
        watched = [only] if only is not None else list(services)
        self._check_services(watched)
        while True:
            for container in self.observe().containers:
                if container.oneoff or (watched and container.service not in watched):
                    continue
                if container.status in ("exited", "dead"):
                    return container
            time.sleep(poll)

    # -- per-container commands -------------------------------------------------------------

    def logs(
        self,
        services: Sequence[str] = (),
        *,
        follow: bool = False,
        tail: int | None = None,
        timestamps: bool = False,
    ) -> Iterator[LogLine]:
        containers = self.containers(services)
        if not follow:
            for container in containers:
                yield from self.backend.logs(container.id, tail=tail, timestamps=timestamps)
            return
        lines: queue.Queue[LogLine | None] = queue.Queue(maxsize=1000)

        def pump(container_id: str) -> None:
            try:
                for line in self.backend.logs(
                    container_id, follow=True, tail=tail, timestamps=timestamps
                ):
                    lines.put(line)
            except PycomposeError:
                pass
            finally:
                lines.put(None)

        for container in containers:
            threading.Thread(target=pump, args=(container.id,), daemon=True).start()
        open_streams = len(containers)
        while open_streams:
            item = lines.get()
            if item is None:
                open_streams -= 1
            else:
                yield item

    def exec(
        self,
        service: str,
        command: Sequence[str],
        *,
        index: int = 1,
        tty: bool = False,
        interactive: bool = False,
        user: str | None = None,
        workdir: str | None = None,
        env: dict[str, str] | None = None,
    ) -> ExecResult:
        container = self._container(service, index)
        if container.status != "running":
            raise UsageError(f"container {container.name} is not running ({container.status})")
        return self.backend.exec(
            container.id,
            command,
            tty=tty,
            interactive=interactive,
            user=user,
            workdir=workdir,
            env=env,
        )

    def run(
        self,
        service: str,
        command: Sequence[str] = (),
        *,
        remove: bool = False,
        no_deps: bool = False,
        detach: bool = False,
        output: Callable[[LogLine], None] | None = None,
    ) -> tuple[str, int | None]:
        """A one-off container of ``service`` (its dependencies brought up first unless
        ``no_deps``); returns its name and, unless detached, its exit code."""
        import uuid

        from orchestrator.backends.spec import build_container_spec
        from orchestrator.plan.hashing import config_hash
        from orchestrator.plan.reconcile import UpOptions

        self._check_services([service])
        svc = self.project.services[service]
        deps = [d for d in self.project.services if d in svc.depends_on]
        if deps and not no_deps:
            self.up(UpOptions(services=tuple(deps)))
        observed = self.observe()
        spec = build_container_spec(
            self.project,
            svc,
            1,
            config_hash=config_hash(svc, self.project),
            observed=observed,
            supervised_restarts=False,
            oneoff=True,
            command=tuple(command) if command else None,
        )
        from dataclasses import replace

        spec = replace(
            spec,
            name=f"{self.project.name}-{service}-run-{uuid.uuid4().hex[:12]}",
            engine_restart="no",
        )
        if svc.image:
            self.backend.ensure_image(svc.image, svc.pull_policy)
        self._ensure_resources(service)
        container_id = self.backend.create_container(spec)
        self.events(Event("container", spec.name, "Created", "done"))
        try:
            self.backend.start_container(container_id)
            if detach:
                return spec.name, None
            if output is not None:
                for line in self.backend.logs(container_id, follow=True):
                    output(line)
            code = self.backend.wait_container(container_id)
            return spec.name, code
        finally:
            if remove and not detach:
                self.backend.remove_container(container_id, force=True)

    def _ensure_resources(self, service: str) -> None:
        from orchestrator.plan.reconcile import plan_resources

        self._run(plan_resources(self.project, self.observe(), [service]), dry_run=False)

    def build(
        self, services: Sequence[str] = (), *, no_cache: bool = False, pull: bool = False
    ) -> list[str]:
        """Build the images of services with a ``build`` section; their tags.
        ``no_cache`` ignores the build cache, ``pull`` fetches base images afresh."""
        from orchestrator.backends.base import ImageBuilder
        from orchestrator.errors import Unsupported

        self._check_services(services)
        builder = self.backend if isinstance(self.backend, ImageBuilder) else None
        names = list(services) or list(self.project.services)
        built = []
        for name in names:
            service = self.project.services[name]
            if service.build is None:
                continue
            if builder is None:
                raise Unsupported(f"the {self.backend_name} backend cannot build images yet")
            tag = image_name(self.project, service)
            self.events(Event("image", tag, "Building"))
            builder.build_image(service.build, tag, no_cache=no_cache, pull=pull)
            self.events(Event("image", tag, "Built", "done"))
            built.append(tag)
        return built

    def _build_missing(self, services: Sequence[str]) -> None:
        """Services with a ``build`` section whose image is absent (or whose pull_policy is
        ``build``) are built before `up` plans, as compose does."""
        from orchestrator.graph import ServiceGraph

        wanted = ServiceGraph(self.project).select(services) if services else self.project.services
        for name in wanted:
            service = self.project.services[name]
            if service.build is None:
                continue
            if service.pull_policy != "build":
                try:
                    self.backend.ensure_image(image_name(self.project, service), "never")
                    continue
                except NotFound:
                    pass
            self.build([name])

    def kill(self, services: Sequence[str] = (), *, signal: str = "SIGKILL") -> list[str]:
        from orchestrator.supervisor.intents import note_intentional_stop

        killed = []
        for container in self.containers(services, all=False):
            note_intentional_stop(self.project.name, [container.id])
            self.backend.kill_container(container.id, signal)
            self.events(Event("container", container.name, "Killed", "done"))
            killed.append(container.name)
        return killed

    def rm(
        self, services: Sequence[str] = (), *, stop: bool = False, force: bool = False
    ) -> list[str]:
        removed = []
        for container in self.containers(services):
            if container.status in ("running", "paused", "restarting"):
                if not stop:
                    continue
                from orchestrator.supervisor.intents import note_intentional_stop

                note_intentional_stop(self.project.name, [container.id])
                self.backend.stop_container(container.id)
            self.backend.remove_container(container.id, force=force)
            self.events(Event("container", container.name, "Removed", "done"))
            removed.append(container.name)
        return removed

    def pause(self, services: Sequence[str] = ()) -> list[str]:
        done = []
        for container in self.containers(services, all=False):
            self.backend.pause_container(container.id)
            self.events(Event("container", container.name, "Paused", "done"))
            done.append(container.name)
        return done

    def unpause(self, services: Sequence[str] = ()) -> list[str]:
        done = []
        for container in self.containers(services):
            if container.status == "paused":
                self.backend.unpause_container(container.id)
                self.events(Event("container", container.name, "Unpaused", "done"))
                done.append(container.name)
        return done

    def top(self, services: Sequence[str] = ()) -> dict[str, list[list[str]]]:
        return {c.name: self.backend.top(c.id) for c in self.containers(services, all=False)}

    def port(
        self, service: str, private_port: int, *, protocol: str = "tcp", index: int = 1
    ) -> str:
        """``host_ip:port`` where ``private_port`` of ``service`` is published."""
        self._check_services([service])
        for route in self.ingress.status(self.project.name):
            if (route.service, route.target, route.protocol) == (service, private_port, protocol):
                return f"{route.host_ip}:{route.published}"
        container = self._container(service, index)
        bound = container.published.get(f"{private_port}/{protocol}")
        if bound:
            host_ip, host_port = bound[0]
            return f"{host_ip or '0.0.0.0'}:{host_port}"
        raise NotFound(f"port {private_port}/{protocol} of service {service!r} is not published")

    def images(self) -> list[tuple[str, str, str]]:
        """(container, service, image) for every container of the project."""
        return [(c.name, c.service, c.image) for c in self.containers()]


def _first_error(result: ExecutionResult) -> PycomposeError:
    for op_id in result.failed:
        error = result.errors.get(op_id)
        if error is not None:
            return error
    skipped = ", ".join(result.skipped[:5])
    return DependencyFailed(f"not done because a dependency failed: {skipped}")


def list_projects(backend: str | None = None) -> list[dict[str, str]]:
    """Every project the backend holds containers of, with a status summary."""
    from collections import Counter

    from orchestrator import labels
    from orchestrator.backends.factory import choose_backend, open_backend

    engine = open_backend(choose_backend(backend).name)
    try:
        rows = []
        for name in sorted(engine.list_projects()):
            observed = engine.observe(name)
            states = Counter(c.status for c in observed.containers)
            files = {c.labels.get(labels.CONFIG_FILES, "") for c in observed.containers}
            rows.append(
                {
                    "name": name,
                    "status": ", ".join(f"{state}({n})" for state, n in sorted(states.items())),
                    "config_files": ",".join(sorted(f for f in files if f)),
                }
            )
        return rows
    finally:
        engine.close()
