"""The progress interface of transfers: told, per blob, how many bytes are done of how many.

A blob that needs no transfer (already in the store, already in the registry) is reported
once with ``done == total``. Callbacks come from worker threads: an implementation must be
thread-safe and quick (a CLI renders them with rich progress bars).
"""

from __future__ import annotations

from typing import Protocol


class TransferProgress(Protocol):
    def __call__(self, blob: str, done: int, total: int, /) -> None:
        """``blob`` is a short id (the first 12 hex digits of the digest)."""


def short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


def silent(blob: str, done: int, total: int, /) -> None:
    """The progress callback that shows nothing."""
