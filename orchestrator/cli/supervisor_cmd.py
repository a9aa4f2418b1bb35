"""``pycompose supervisor status|start|stop|run``: the long-lived restart supervisor.

``up`` starts it on demand; these commands are for looking at it and for running it as a
host service (``run`` stays in the foreground and does not exit when idle, for systemd).
"""

from __future__ import annotations

import sys

import click

from orchestrator.cli.output import print_json


@click.group("supervisor")
def supervisor() -> None:
    """The supervisor that enforces restart policies after `up` has exited."""


@supervisor.command("status")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def status(fmt: str) -> None:
    """Whether it runs, the projects it watches and what it did to their replicas."""
    from orchestrator.supervisor.client import status as read_status

    info = read_status()
    if fmt == "json":
        print_json(
            {
                "running": info.running,
                "pid": info.pid,
                "state_dir": info.state_dir,
                "projects": list(info.projects),
                "slots": info.slots,
            }
        )
        return
    click.echo(
        f"supervisor: {'running (pid ' + str(info.pid) + ')' if info.running else 'not running'}"
    )
    click.echo(f"state: {info.state_dir}")
    click.echo(f"projects: {', '.join(info.projects) or '(none)'}")
    for key, slot in sorted(info.slots.items()):
        note = " (gave up)" if slot["gave_up"] else ""
        click.echo(
            f"  {key}: {str(slot['container_id'])[:12]} restarts={slot['restarts']} "
            f"replacements={slot['replacements']}{note}"
        )


@supervisor.command("start")
def start() -> None:
    """Start it in the background (exits by itself once no project is registered)."""
    from orchestrator.supervisor.client import start as start_supervisor

    click.echo(f"supervisor running (pid {start_supervisor()})")


@supervisor.command("stop")
def stop() -> None:
    """Stop it; registered projects stay registered for the next start."""
    from orchestrator.supervisor.client import stop as stop_supervisor

    click.echo("supervisor stopped" if stop_supervisor() else "no supervisor was running")


@supervisor.command("run")
@click.option("--interval", type=float, default=None, help="Seconds between observes.")
def run(interval: float | None) -> None:
    """Run it in the foreground (as a host service), until SIGTERM."""
    from orchestrator.supervisor.daemon import main as daemon_main

    sys.exit(daemon_main([] if interval is None else ["--interval", str(interval)]))


COMMANDS = [supervisor]
