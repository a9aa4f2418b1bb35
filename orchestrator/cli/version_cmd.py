"""``pycompose version``: our version, and which backend `auto` picks and why."""

from __future__ import annotations

import platform

import click

from orchestrator import __version__
from orchestrator.cli.context import GlobalOptions
from orchestrator.cli.output import print_json


@click.command("version")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_obj
def version(opts: GlobalOptions, fmt: str) -> None:
    """Show the pycompose version and the backend in use."""
    from orchestrator.backends.factory import choose_backend

    choice = choose_backend(opts.backend)
    info = {
        "version": __version__,
        "python": platform.python_version(),
        "backend": choice.name,
        "backend_reason": choice.reason,
    }
    if fmt == "json":
        print_json(info)
        return
    click.echo(f"pycompose {__version__} (Python {info['python']})")
    click.echo(f"backend: {choice.name} ({choice.reason})")


COMMANDS = [version]
