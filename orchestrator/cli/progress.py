"""Draws progress events: a live table on a TTY (rich), plain lines otherwise, JSON lines.

The core emits ``events.Event``s from worker threads; this is the only place that turns
them into text, so the sink is thread-safe and never blocks the executor for long.
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import asdict
from types import TracebackType
from typing import Any

from orchestrator.events import Event

_MARKS = {"done": "✔", "failed": "✘", "skipped": "-", "warning": "!", "info": "·", "working": "…"}


def resolve_mode(requested: str) -> str:
    if requested == "auto":
        return "tty" if sys.stderr.isatty() else "plain"
    return requested


class ProgressRenderer:
    """An EventSink. Use as a context manager so the live view is closed cleanly."""

    def __init__(self, mode: str = "auto") -> None:
        self.mode = resolve_mode(mode)
        self._lock = threading.Lock()
        self._rows: dict[tuple[str, str], Event] = {}
        self._live: Any = None
        self.failures: list[Event] = []

    def __enter__(self) -> ProgressRenderer:
        if self.mode == "tty":
            from rich.console import Console
            from rich.live import Live

            self._live = Live(
                self._table(), console=Console(stderr=True), refresh_per_second=10, transient=False
            )
            self._live.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.update(self._table())
            self._live.__exit__(kind, value, tb)
            self._live = None

    def __call__(self, event: Event) -> None:
        with self._lock:
            if event.status == "failed":
                self.failures.append(event)
            if self.mode == "quiet":
                return
            if self.mode == "json":
                sys.stderr.write(json.dumps(asdict(event)) + "\n")
                sys.stderr.flush()
            elif self.mode == "tty" and self._live is not None:
                self._rows[(event.resource, event.name)] = event
                self._live.update(self._table())
            else:
                mark = _MARKS.get(event.status, "")
                line = f"{mark} {event.resource.capitalize()} {event.name}  {event.action}"
                if event.message:
                    line += f"  ({event.message})"
                sys.stderr.write(line + "\n")
                sys.stderr.flush()

    def _table(self) -> Any:
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        table = Table.grid(padding=(0, 1))
        styles = {"done": "green", "failed": "red", "skipped": "yellow", "warning": "yellow"}
        for (resource, name), event in self._rows.items():
            status: Any
            if event.status == "working":
                status = Spinner("dots", style="cyan")
            else:
                status = Text(_MARKS.get(event.status, ""), style=styles.get(event.status, ""))
            detail = Text(event.message, style="dim") if event.message else Text("")
            table.add_row(
                status,
                Text(f"{resource.capitalize()} {name}"),
                Text(event.action, style=styles.get(event.status, "")),
                detail,
            )
        return table
