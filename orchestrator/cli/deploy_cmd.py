"""``deploy --target swarm`` and ``stack ps|logs|down|rollback --target swarm``.

A separate ``stack`` group rather than a ``--target`` branch in every lifecycle command:
those commands speak containers of one engine, a stack speaks services and tasks of a
cluster, and keeping them apart leaves lifecycle_cmd untouched. The stack is named by
``-p`` or, without it, by the compose project's name.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING

import click

from orchestrator.cli.context import GlobalOptions
from orchestrator.cli.output import print_json, print_table, print_warnings

if TYPE_CHECKING:
    from orchestrator.targets.swarm.engine import SwarmEngine

target_option = click.option(
    "--target",
    type=click.Choice(["swarm"]),
    default="swarm",
    show_default=True,
    help="The cluster engine.",
)
host_option = click.option(
    "--host", "host", metavar="URL", help="The swarm manager (default: DOCKER_HOST)."
)
format_option = click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
wait_timeout_option = click.option(
    "--wait-timeout", type=float, default=180.0, show_default=True, help="Seconds per service."
)


@contextmanager
def _engine(host: str | None) -> Iterator[SwarmEngine]:
    from orchestrator.targets.swarm.engine import SwarmEngine

    engine = SwarmEngine(host)
    try:
        yield engine
    finally:
        engine.close()


def _stack_name(opts: GlobalOptions) -> str:
    if opts.project_name:
        return opts.project_name
    from orchestrator.api import load

    return load(opts.load_options()).project.name


def _say(opts: GlobalOptions, text: str) -> None:
    if opts.progress != "quiet":
        click.echo(text, err=True)


@click.command("deploy")
@target_option
@host_option
@wait_timeout_option
@format_option
@click.pass_obj
def deploy(
    opts: GlobalOptions, target: str, host: str | None, wait_timeout: float, fmt: str
) -> None:
    """Deploy the project as a stack on a cluster (`docker stack deploy`, in depends_on order)."""
    from orchestrator.api import load
    from orchestrator.targets.swarm.deploy import Action, deploy_project, stack_definition

    result = load(opts.load_options())
    print_warnings(result.warnings, opts)
    if opts.dry_run:
        stack = stack_definition(result.project)
        print_warnings(stack.warnings, opts)
        print_json(
            {
                "stack": stack.name,
                "networks": [n.create for n in stack.networks if not n.external],
                "configs": [c.name for c in stack.configs],
                "secrets": [s.name for s in stack.secrets],
                "services": [s.spec for s in stack.services.values()],
            }
        )
        return

    def show(action: Action) -> None:
        if fmt != "json":
            _say(opts, f"{action.kind} {action.name}: {action.action}")

    with _engine(host) as engine:
        outcome = deploy_project(engine, result.project, timeout=wait_timeout, on_action=show)
    print_warnings(outcome.warnings, opts)
    if fmt == "json":
        print_json(
            {
                "stack": outcome.stack,
                "actions": [
                    {"kind": a.kind, "name": a.name, "action": a.action} for a in outcome.actions
                ],
                "warnings": [str(w) for w in outcome.warnings],
            }
        )


@click.group("stack")
def stack() -> None:
    """A deployed stack on a cluster: ps, logs, down, rollback."""


def _when(stamp: float) -> str:
    if not stamp:
        return ""
    return datetime.datetime.fromtimestamp(stamp, datetime.UTC).isoformat(timespec="seconds")


@stack.command("ps")
@target_option
@host_option
@format_option
@click.argument("services", nargs=-1)
@click.pass_obj
def stack_ps(
    opts: GlobalOptions, target: str, host: str | None, fmt: str, services: tuple[str, ...]
) -> None:
    """The stack's tasks (current and history)."""
    from orchestrator.targets.swarm import stack as swarm_stack

    name = _stack_name(opts)
    with _engine(host) as engine:
        rows = swarm_stack.ps(engine, name, services)
    if fmt == "json":
        print_json([row.__dict__ for row in rows])
        return
    print_table(
        ["NAME", "IMAGE", "NODE", "DESIRED", "STATE", "SINCE", "ERROR"],
        [
            [r.name, r.image, r.node, r.desired_state, r.state, _when(r.updated), r.error]
            for r in rows
        ],
    )


@stack.command("logs")
@target_option
@host_option
@click.option("-f", "--follow", is_flag=True, help="Keep following new output.")
@click.option("--tail", type=int, help="Only the last N lines of each service.")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps.")
@click.argument("services", nargs=-1)
@click.pass_obj
def stack_logs(
    opts: GlobalOptions,
    target: str,
    host: str | None,
    follow: bool,
    tail: int | None,
    timestamps: bool,
    services: tuple[str, ...],
) -> None:
    """The output of the stack's services."""
    from orchestrator.targets.swarm import stack as swarm_stack

    name = _stack_name(opts)
    with _engine(host) as engine, suppress(KeyboardInterrupt):
        for line in swarm_stack.logs(
            engine, name, services, follow=follow, tail=tail, timestamps=timestamps
        ):
            click.echo(f"{line.service} | {line.text}")


@stack.command("down")
@target_option
@host_option
@wait_timeout_option
@format_option
@click.pass_obj
def stack_down(
    opts: GlobalOptions, target: str, host: str | None, wait_timeout: float, fmt: str
) -> None:
    """Remove the stack's services, networks, configs and secrets."""
    from orchestrator.targets.swarm import stack as swarm_stack

    name = _stack_name(opts)
    with _engine(host) as engine:
        removed = swarm_stack.down(engine, name, timeout=wait_timeout)
    if fmt == "json":
        print_json({"stack": name, "removed": removed})
        return
    for entry in removed:
        _say(opts, f"removed {entry}")


@stack.command("rollback")
@target_option
@host_option
@wait_timeout_option
@click.argument("service")
@click.pass_obj
def stack_rollback(
    opts: GlobalOptions, target: str, host: str | None, wait_timeout: float, service: str
) -> None:
    """Roll SERVICE back to its previous spec, by its deploy.rollback_config."""
    from orchestrator.targets.swarm import stack as swarm_stack

    name = _stack_name(opts)
    with _engine(host) as engine:
        swarm_stack.rollback(engine, name, service, timeout=wait_timeout)
    _say(opts, f"service {service} rolled back")


COMMANDS: list[click.Command] = [deploy, stack]
