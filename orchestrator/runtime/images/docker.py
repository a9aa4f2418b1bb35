"""Copying an image out of a reachable Docker engine, without importing the Docker SDK.

The runtime must not depend on ``docker`` (an import-linter contract keeps the SDK in
``backends.docker``), so the adapter calls ``client.images.get(name).save()`` itself and
hands the chunks it yields to :func:`load_docker_save`, which spools them (the stream is
not seekable) and imports the ``docker save`` archive they form.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from orchestrator.runtime.images.store import ImageRef, Store


class ChunkReader:
    """A read-only, non-seekable file over an iterable of byte chunks."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buffer = b""

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def load_docker_save(
    store: Store, chunks: Iterable[bytes], *, name: str | None = None
) -> tuple[ImageRef, ...]:
    """Import the ``docker save`` stream ``chunks`` (what ``Image.save()`` yields)."""
    return store.load_archive(ChunkReader(chunks), name=name)  # type: ignore[arg-type]
