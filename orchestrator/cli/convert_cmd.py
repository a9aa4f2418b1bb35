"""``pycompose convert kubernetes``: the project as manifests for another engine."""

from __future__ import annotations

import click

from orchestrator.cli.context import GlobalOptions
from orchestrator.cli.output import print_warnings
from orchestrator.errors import Problem


@click.group("convert")
def convert() -> None:
    """Render the project for another orchestrator (nothing is deployed)."""


@convert.command("kubernetes")
@click.option(
    "-o",
    "--output",
    "directory",
    type=click.Path(file_okay=False),
    help="Write one file per object into DIR (default: one stream to stdout).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
    help="YAML documents, or JSON (a v1 List on stdout).",
)
@click.option(
    "--validate",
    "check",
    is_flag=True,
    help="Validate every object strictly against the pinned Kubernetes version.",
)
@click.pass_obj
def kubernetes(opts: GlobalOptions, directory: str | None, fmt: str, check: bool) -> None:
    """Render Deployments, StatefulSets, DaemonSets, Jobs, Services, claims, ConfigMaps
    and Secrets; warn about every key that cannot be rendered."""
    from orchestrator.api import load
    from orchestrator.targets.kubernetes import (
        render_project,
        to_json,
        to_stream,
        validate,
        write_files,
    )

    result = load(opts.load_options())
    print_warnings(result.warnings, opts)
    rendering = render_project(result.project, environ=result.environment)
    print_warnings(
        (Problem(f"kubernetes: {w.message}", path=w.path, hint=w.hint) for w in rendering.warnings),
        opts,
    )
    if check:
        validate(rendering.objects)
    if directory:
        for path in write_files(rendering.objects, directory, fmt):
            click.echo(path)
    elif fmt == "json":
        click.echo(to_json(rendering.objects), nl=False)
    else:
        click.echo(to_stream(rendering.objects), nl=False)


COMMANDS = [convert]
