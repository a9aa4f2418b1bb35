"""The ``pycompose`` command: flags → options, errors → exit codes. Nothing else decides here.

Heavy modules (yaml, jsonschema, docker, rich) are imported inside the commands so that
``pycompose --version`` and ``--help`` start fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from orchestrator import __version__
from orchestrator.cli.context import GlobalOptions
from orchestrator.cli.exitcodes import exit_code
from orchestrator.errors import ConfigError, PycomposeError

F = TypeVar("F", bound=Callable[..., Any])


def report_error(error: PycomposeError, opts: GlobalOptions | None) -> None:
    """One clear message per problem on stderr (JSON lines with ``--progress json``)."""
    as_json = opts is not None and opts.progress == "json"
    problems = error.problems if isinstance(error, ConfigError) else None
    if as_json:
        payload: dict[str, Any] = {"error": type(error).__name__, "message": str(error)}
        if problems is not None:
            payload["problems"] = [
                {
                    "file": p.location.file if p.location else None,
                    "line": p.location.line if p.location else None,
                    "column": p.location.column if p.location else None,
                    "path": p.path,
                    "message": p.message,
                    "hint": p.hint,
                }
                for p in problems
            ]
        click.echo(json.dumps(payload), err=True)
        return
    if problems is not None:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        if len(problems) > 1:
            click.echo(f"{len(problems)} problems found", err=True)
        return
    click.echo(f"error: {error}", err=True)


class PycomposeGroup(click.Group):
    """Maps typed errors to exit codes, once, for every command."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PycomposeError as error:
            opts = ctx.find_object(GlobalOptions)
            report_error(error, opts)
            ctx.exit(exit_code(error))
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


@click.group(cls=PycomposeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="pycompose")
@click.option(
    "-f",
    "--file",
    "files",
    multiple=True,
    metavar="FILE",
    help="Compose file (repeatable; '-' reads stdin).",
)
@click.option("-p", "--project-name", help="Project name.")
@click.option(
    "--project-directory",
    type=click.Path(file_okay=False),
    help="Project directory (default: the first file's).",
)
@click.option("--env-file", "env_files", multiple=True, help="Environment file (repeatable).")
@click.option("--profile", "profiles", multiple=True, help="Profile to enable (repeatable).")
@click.option(
    "--backend",
    type=click.Choice(["docker", "namespace", "auto"]),
    envvar="PYCOMPOSE_BACKEND",
    help="Where containers run (default auto).",
)
@click.option("--dry-run", is_flag=True, help="Print what would be done; change nothing.")
@click.option(
    "--progress",
    type=click.Choice(["auto", "tty", "plain", "json", "quiet"]),
    default="auto",
    show_default=True,
    help="How progress is shown.",
)
@click.option("--parallel", type=int, help="How many operations run at once.")
@click.pass_context
def cli(ctx: click.Context, /, **kwargs: Any) -> None:
    """pycompose: run Compose-spec stacks, with swarm's deploy semantics on one host."""
    ctx.obj = GlobalOptions(
        files=tuple(kwargs["files"]),
        project_name=kwargs["project_name"],
        project_directory=kwargs["project_directory"],
        env_files=tuple(kwargs["env_files"]),
        profiles=tuple(kwargs["profiles"]),
        backend=kwargs["backend"],
        dry_run=kwargs["dry_run"],
        progress=kwargs["progress"],
        parallel=kwargs["parallel"],
    )


def _register() -> None:
    from orchestrator.cli import (
        build_cmd,
        config_cmd,
        convert_cmd,
        deploy_cmd,
        image_cmd,
        lifecycle_cmd,
        registry_cmd,
        rollout_cmd,
        supervisor_cmd,
        version_cmd,
    )

    for module in (
        config_cmd,
        version_cmd,
        lifecycle_cmd,
        supervisor_cmd,
        image_cmd,
        rollout_cmd,
        convert_cmd,
        registry_cmd,
        deploy_cmd,
        build_cmd,
    ):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="pycompose")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
