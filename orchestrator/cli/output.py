"""Printing that is not progress: warnings, tables, JSON documents."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import click

from orchestrator.cli.context import GlobalOptions
from orchestrator.errors import Problem


def print_warnings(warnings: Iterable[Problem], opts: GlobalOptions) -> None:
    for warning in warnings:
        if opts.progress == "json":
            click.echo(json.dumps({"warning": str(warning)}), err=True)
        elif opts.progress != "quiet":
            click.echo(f"warning: {warning}", err=True)


def print_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain aligned table (what `ps` prints; stable for scripts that grep it)."""
    cells = [list(map(str, header))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for row in cells:
        click.echo("   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))
