"""``pycompose image load|ls|rm``: the built-in runtime's local image store.

The store lives in ``$PYCOMPOSE_ROOT/images`` (default ``/var/lib/pycompose/images``), the
same place the namespace backend reads images from. These commands need no compose file.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import click

from orchestrator.cli.output import print_json, print_table

if TYPE_CHECKING:
    from orchestrator.runtime.images import Store

DEFAULT_STATE_ROOT = "/var/lib/pycompose"


def open_store() -> Store:
    from orchestrator.runtime.images import Store

    return Store.at_state_root(os.environ.get("PYCOMPOSE_ROOT") or DEFAULT_STATE_ROOT)


def short_id(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1000
    return f"{size}B"  # pragma: no cover (the loop always returns)


@click.group("image")
def image() -> None:
    """Manage the images of the built-in namespace runtime."""


@image.command("load")
@click.option(
    "-i", "--input", "source", metavar="FILE", default="-", help="Archive to read ('-': stdin)."
)
@click.option("--name", help="Name for an image the archive leaves unnamed.")
def load(source: str, name: str | None) -> None:
    """Import a `docker save` or OCI archive."""
    store = open_store()
    stream: Path | BinaryIO = sys.stdin.buffer if source == "-" else Path(source)
    for ref in store.load_archive(stream, name=name):
        if ref.name:
            click.echo(f"Loaded image: {ref.name}")
        else:
            click.echo(f"Loaded image ID: {ref.id}")


@image.command("ls")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("-q", "--quiet", is_flag=True, help="Only image ids.")
def ls(fmt: str, quiet: bool) -> None:
    """List stored images."""
    summaries = open_store().list()
    if quiet:
        for summary in summaries:
            click.echo(short_id(summary.id))
        return
    if fmt == "json":
        print_json(
            [
                {
                    "names": list(s.names),
                    "id": s.id,
                    "digest": s.digest,
                    "size": s.size,
                    "created": s.created,
                }
                for s in summaries
            ]
        )
        return
    rows = [
        (name, short_id(s.id), human_size(s.size), s.created[:19].replace("T", " "))
        for s in summaries
        for name in (s.names or ("<none>",))
    ]
    print_table(("NAME", "IMAGE ID", "SIZE", "CREATED"), rows)


@image.command("rm")
@click.argument("names", nargs=-1, required=True)
def rm(names: tuple[str, ...]) -> None:
    """Remove images by name or id; their blobs and layers go when nothing else uses them."""
    store = open_store()
    for name in names:
        for ref in store.remove(name):
            click.echo(f"Untagged: {ref.name}" if ref.name else f"Deleted: {ref.id}")


def _progress_mode() -> str:
    from orchestrator.cli.context import GlobalOptions

    opts = click.get_current_context().find_object(GlobalOptions)
    return opts.progress if opts is not None else "auto"


@image.command("pull")
@click.argument("reference")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def pull(reference: str, fmt: str) -> None:
    """Pull an image from its registry into the store (a progress bar per layer)."""
    from orchestrator.cli.transfer_progress import TransferBars
    from orchestrator.runtime import registry

    with TransferBars(_progress_mode(), "pull") as bars:
        result = registry.pull(open_store(), reference, progress=bars)
    if fmt == "json":
        print_json(
            {
                "name": result.name,
                "digest": result.digest,
                "id": result.id,
                "downloaded": result.downloaded,
                "up_to_date": result.up_to_date,
            }
        )
        return
    state = "Image is up to date" if result.up_to_date else "Downloaded newer image"
    click.echo(f"Digest: {result.digest}")
    click.echo(f"Status: {state} for {result.name}")


@image.command("push")
@click.argument("name")
@click.argument("target", required=False)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def push(name: str, target: str | None, fmt: str) -> None:
    """Push a stored image to a registry (to TARGET, default: its own name)."""
    from orchestrator.cli.transfer_progress import TransferBars
    from orchestrator.runtime import registry

    with TransferBars(_progress_mode(), "push") as bars:
        result = registry.push(open_store(), name, target, progress=bars)
    if fmt == "json":
        print_json(
            {"reference": result.reference, "digest": result.digest, "uploaded": result.uploaded}
        )
        return
    click.echo(f"{result.reference}: digest: {result.digest}")


@image.command("tag")
@click.argument("source")
@click.argument("target")
def tag(source: str, target: str) -> None:
    """Give a stored image another name (TARGET must be a valid reference)."""
    from orchestrator.runtime.registry import parse_reference

    ref = open_store().tag(source, parse_reference(target).familiar)
    click.echo(f"Tagged: {ref.name}")


@image.command("save")
@click.argument("names", nargs=-1, required=True)
@click.option("-o", "--output", metavar="FILE", help="Write to FILE instead of stdout.")
def save(names: tuple[str, ...], output: str | None) -> None:
    """Write images as a `docker save` archive (`docker load` reads it)."""
    from orchestrator.errors import UsageError
    from orchestrator.runtime.images.export import save_images

    store = open_store()
    if output is None:
        if sys.stdout.isatty():
            raise UsageError("refusing to write an archive to a terminal: use -o FILE")
        save_images(store, names, sys.stdout.buffer)
        return
    target = Path(output)
    partial = target.with_name(f".{target.name}.partial")
    try:
        with open(partial, "wb") as out:
            save_images(store, names, out)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


COMMANDS = [image]
