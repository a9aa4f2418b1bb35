"""Draws blob transfers (pull, push): one rich progress bar per layer on a TTY, one line
per finished layer otherwise, JSON lines with ``--progress json``, nothing when quiet.

It is the ``TransferProgress`` callback of ``orchestrator.runtime.registry``; calls come
from worker threads, hence the lock.
"""

from __future__ import annotations

import json
import sys
import threading
from types import TracebackType
from typing import Any

from orchestrator.cli.progress import resolve_mode


class TransferBars:
    def __init__(self, mode: str, title: str) -> None:
        self.mode = resolve_mode(mode)
        self.title = title
        self._lock = threading.Lock()
        self._tasks: dict[str, Any] = {}
        self._finished: set[str] = set()
        self._bars: Any = None

    def __enter__(self) -> TransferBars:
        if self.mode == "tty":
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TransferSpeedColumn,
            )

            self._bars = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._bars.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bars is not None:
            self._bars.__exit__(kind, value, tb)
            self._bars = None

    def __call__(self, blob: str, done: int, total: int, /) -> None:
        with self._lock:
            if self.mode == "quiet":
                return
            complete = total > 0 and done >= total
            if self._bars is not None:
                task = self._tasks.get(blob)
                if task is None:
                    task = self._bars.add_task(f"{self.title} {blob}", total=total or None)
                    self._tasks[blob] = task
                self._bars.update(task, completed=done, total=total or None)
                return
            if not complete or blob in self._finished:
                return
            self._finished.add(blob)
            if self.mode == "json":
                record = {"resource": "layer", "name": blob, "action": self.title, "total": total}
                sys.stderr.write(json.dumps(record) + "\n")
            else:
                sys.stderr.write(f"✔ Layer {blob}  {self.title} complete ({total} bytes)\n")
            sys.stderr.flush()
