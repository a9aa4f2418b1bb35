"""Running blob transfers a few at a time, and reporting their progress.

The first failure stops the others at their next chunk (instead of letting a corrupted
layer's siblings download to the end), and that first failure is what is raised.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from orchestrator.runtime.registry.progress import TransferProgress

DEFAULT_PARALLEL = 3  # what dockerd does (max-concurrent-downloads / uploads)


class _Cancelled(Exception):
    """Raised inside a transfer whose sibling already failed."""


class Transfers:
    """Jobs ``(blob id, total bytes, work)``, where ``work(advance)`` calls ``advance(n)``
    as bytes go through."""

    def __init__(self, progress: TransferProgress | None, parallel: int = DEFAULT_PARALLEL):
        self._progress = progress
        self._parallel = max(1, parallel)
        self._failed = threading.Event()

    def advancer(self, blob: str, total: int) -> Callable[[int], None]:
        done = 0
        lock = threading.Lock()

        def advance(count: int) -> None:
            nonlocal done
            if self._failed.is_set():
                raise _Cancelled
            with lock:
                done += count
                current = done
            if self._progress is not None:
                self._progress(blob, min(current, total) if total else current, total)

        return advance

    def report(self, blob: str, done: int, total: int) -> None:
        if self._progress is not None:
            self._progress(blob, done, total)

    def run(self, jobs: Sequence[tuple[str, int, Callable[[Callable[[int], None]], None]]]) -> None:
        if not jobs:
            return
        errors: list[BaseException] = []

        def one(blob: str, total: int, work: Callable[[Callable[[int], None]], None]) -> None:
            try:
                self.report(blob, 0, total)
                work(self.advancer(blob, total))
            except _Cancelled:
                return
            except BaseException as exc:
                if not self._failed.is_set():
                    errors.append(exc)
                self._failed.set()

        if len(jobs) == 1 or self._parallel == 1:
            for job in jobs:
                one(*job)
                if errors:
                    break
        else:
            with ThreadPoolExecutor(min(self._parallel, len(jobs))) as pool:
                for job in jobs:
                    pool.submit(one, *job)
        if errors:
            raise errors[0]
