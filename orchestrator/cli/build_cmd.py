"""``pycompose build [SERVICE...]``: build the images of services with a ``build`` section.

The docker backend builds through the engine; the namespace backend with pycompose's own
builder (``orchestrator.runtime.build``). Both honour the same compose keys.
"""

from __future__ import annotations

import click

from orchestrator.cli.context import GlobalOptions
from orchestrator.cli.output import print_json


@click.command("build")
@click.argument("services", nargs=-1)
@click.option("--no-cache", is_flag=True, help="Do not use the build cache.")
@click.option("--pull", is_flag=True, help="Always fetch a newer version of the base images.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_obj
def build(
    opts: GlobalOptions, services: tuple[str, ...], no_cache: bool, pull: bool, fmt: str
) -> None:
    """Build (or rebuild) service images."""
    from orchestrator.cli.lifecycle_cmd import composer

    with composer(opts, services) as comp:
        tags = comp.build(services, no_cache=no_cache, pull=pull)
    if fmt == "json":
        print_json({"built": tags})
        return
    for tag in tags:
        click.echo(f"Built {tag}")


COMMANDS = [build]
