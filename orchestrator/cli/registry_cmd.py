"""``pycompose pull`` and ``pycompose push``: the images of a compose project.

On the namespace backend images move between a registry and our store
(``orchestrator.runtime.registry``), with a progress bar per layer; on the docker backend
the engine does the transfer (``docker pull`` / ``docker push``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from orchestrator.cli.context import GlobalOptions
from orchestrator.cli.lifecycle_cmd import composer
from orchestrator.cli.output import print_json, print_table
from orchestrator.cli.transfer_progress import TransferBars
from orchestrator.errors import PycomposeError

if TYPE_CHECKING:
    from orchestrator.api import Composer
    from orchestrator.model import Service

format_option = click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", help="Output format."
)


def _selected(comp: Composer, services: Sequence[str]) -> list[Service]:
    from orchestrator.errors import NotFound

    unknown = [name for name in services if name not in comp.project.services]
    if unknown:
        raise NotFound(f"no such service: {', '.join(unknown)}")
    return [comp.project.services[name] for name in (services or comp.project.services)]


def _report(fmt: str, rows: list[dict[str, Any]]) -> None:
    if fmt == "json":
        print_json(rows)
        return
    print_table(
        ("SERVICE", "IMAGE", "STATUS", "DIGEST"),
        [(r["service"], r["image"], r["status"], r.get("digest") or "") for r in rows],
    )


def _pull_one(comp: Composer, image: str, bars: TransferBars) -> str:
    """The digest now in the store (namespace), or "" when the engine pulled it."""
    from orchestrator.backends.namespace import NamespaceBackend
    from orchestrator.runtime import registry

    backend = comp.backend
    if isinstance(backend, NamespaceBackend):
        return registry.pull(backend.images, image, progress=bars).digest
    backend.ensure_image(image, "always")
    return ""


@click.command("pull")
@click.option(
    "--ignore-buildable", is_flag=True, help="Skip services that have a build section."
)
@click.option("--ignore-pull-failures", is_flag=True, help="Pull what can be; report the rest.")
@format_option
@click.argument("services", nargs=-1)
@click.pass_obj
def pull(
    opts: GlobalOptions,
    /,
    services: tuple[str, ...],
    ignore_buildable: bool,
    ignore_pull_failures: bool,
    fmt: str,
) -> None:
    """Pull the images of the project's services (or of the named ones)."""
    rows: list[dict[str, Any]] = []
    failures: list[PycomposeError] = []
    with composer(opts, services) as comp:
        for service in _selected(comp, services):
            row: dict[str, Any] = {"service": service.name, "image": service.image or ""}
            if not service.image or service.pull_policy == "build" or (
                service.build is not None and ignore_buildable
            ):
                rows.append({**row, "status": "skipped"})
                continue
            try:
                with TransferBars(opts.progress, "pull") as bars:
                    digest = _pull_one(comp, service.image, bars)
            except PycomposeError as exc:
                # as compose does: a buildable service's image may not be published yet
                if service.build is None and not ignore_pull_failures:
                    raise
                failures.append(exc)
                rows.append({**row, "status": f"failed: {exc}"})
                continue
            rows.append({**row, "status": "pulled", "digest": digest})
    _report(fmt, rows)
    for failure in failures:
        click.echo(f"warning: {failure}", err=True)


def _push_one(comp: Composer, image: str, bars: TransferBars) -> str:
    from orchestrator.backends.namespace import NamespaceBackend
    from orchestrator.runtime import registry

    backend = comp.backend
    if isinstance(backend, NamespaceBackend):
        return registry.push(backend.images, image, progress=bars).digest
    if comp.backend_name == "docker":
        from orchestrator.backends.docker.push import push_image

        return push_image(image, bars)
    from orchestrator.errors import Unsupported

    raise Unsupported(f"the {comp.backend_name} backend cannot push images")


@click.command("push")
@click.option("--ignore-push-failures", is_flag=True, help="Push what can be; report the rest.")
@format_option
@click.argument("services", nargs=-1)
@click.pass_obj
def push(
    opts: GlobalOptions, /, services: tuple[str, ...], ignore_push_failures: bool, fmt: str
) -> None:
    """Push the images of services that have both a build section and an image name."""
    rows: list[dict[str, Any]] = []
    with composer(opts, services) as comp:
        for service in _selected(comp, services):
            row: dict[str, Any] = {"service": service.name, "image": service.image or ""}
            if service.build is None or not service.image:
                rows.append({**row, "status": "skipped"})
                continue
            try:
                with TransferBars(opts.progress, "push") as bars:
                    digest = _push_one(comp, service.image, bars)
            except PycomposeError as exc:
                if not ignore_push_failures:
                    raise
                rows.append({**row, "status": f"failed: {exc}"})
                continue
            rows.append({**row, "status": "pushed", "digest": digest})
    _report(fmt, rows)


COMMANDS = [pull, push]
