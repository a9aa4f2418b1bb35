"""``pycompose config``: validate, normalise and print the project."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from orchestrator.cli.context import GlobalOptions
from orchestrator.cli.output import print_warnings


@click.command("config")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
    help="Output format.",
)
@click.option("-q", "--quiet", is_flag=True, help="Only validate; print nothing.")
@click.option("--services", is_flag=True, help="Print the service names, one per line.")
@click.option("--volumes", is_flag=True, help="Print the volume names, one per line.")
@click.option("--networks", is_flag=True, help="Print the network names, one per line.")
@click.option(
    "--profiles", "list_profiles", is_flag=True, help="Print the profile names, one per line."
)
@click.option("--images", is_flag=True, help="Print the image names, one per line.")
@click.option(
    "--hash",
    "hash_of",
    metavar="SERVICE|*",
    help="Print the config hash of SERVICE ('*' for all, comma-separated list).",
)
@click.option("--no-interpolate", is_flag=True, help="Do not replace ${VARIABLES}.")
@click.option("--no-normalize", is_flag=True, help="Print the merged file as written.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE.")
@click.pass_obj
def config(opts: GlobalOptions, /, **kw: Any) -> None:
    """Validate the compose files and print the resulting project."""
    from orchestrator.api import load

    result = load(opts.load_options(interpolate=not kw["no_interpolate"]))
    print_warnings(result.warnings, opts)
    if kw["quiet"]:
        return
    project = result.project
    text: str | None = None
    lines: list[str] | None = None
    if kw["services"]:
        lines = list(project.services)
    elif kw["volumes"]:
        lines = list(project.volumes)
    elif kw["networks"]:
        lines = list(project.networks)
    elif kw["list_profiles"]:
        found = {
            p
            for s in (*project.services.values(), *project.disabled_services.values())
            for p in s.profiles
        }
        lines = sorted(found)
    elif kw["images"]:
        from orchestrator.api import image_name

        lines = [image_name(project, s) for s in project.services.values()]
    elif kw["hash_of"]:
        from orchestrator.api import service_hashes

        lines = [f"{name} {digest}" for name, digest in service_hashes(project, kw["hash_of"])]
    else:
        data: dict[str, Any]
        if kw["no_normalize"]:
            data = result.merged
        else:
            from orchestrator.api import config_document

            data = config_document(project)
        if kw["fmt"] == "json":
            text = json.dumps(data, indent=2) + "\n"
        else:
            from orchestrator.loader.yaml_source import dump

            text = dump(data)
    if lines is not None:
        text = "".join(f"{line}\n" for line in lines)
    assert text is not None
    if kw["output"]:
        Path(kw["output"]).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


COMMANDS = [config]
