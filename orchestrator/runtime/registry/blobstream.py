"""A blob download as one verified pass: each network chunk is hashed, counted against the
descriptor's size, written to the blob's file and handed to a consumer (the layer
extractor), so a layer is unpacked while it downloads instead of being read back from disk
twice afterwards (once to hash it, once to unpack it).

The verdict sits at the end of the stream: :meth:`BlobStream.read` returns ``b""`` only
once every byte has hashed to the digest and the count matches the descriptor; otherwise it
raises :class:`CorruptBlob`. A consumer that reads to the end (the extractor does, to hash
the tar's trailing padding) therefore never completes on bytes that are not the blob.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

from orchestrator.runtime.registry.errors import CorruptBlob


class BlobStream:
    """The bytes of blob ``digest`` from ``chunks``, teed into ``out`` as they are read."""

    def __init__(
        self,
        chunks: Iterator[bytes],
        out: BinaryIO,
        *,
        digest: str,
        size: int | None,
        origin: str,
        advance: Callable[[int], None] | None = None,
    ) -> None:
        self._chunks = chunks
        self._out = out
        self._digest = digest
        self._size = size
        self._origin = origin
        self._advance = advance
        self._hash = hashlib.sha256()
        self._buffer = b""
        self._offset = 0
        self._ended = False
        self.count = 0
        self.aborted = False  # the progress callback raised (a sibling transfer failed)

    def read(self, size: int = -1, /) -> bytes:
        if size is None or size < 0:
            parts = [self._buffer[self._offset :]]
            self._buffer, self._offset = b"", 0
            while (chunk := self._next()) is not None:
                parts.append(chunk)
            return b"".join(parts)
        if self._offset >= len(self._buffer):
            chunk = self._next()
            if chunk is None:
                return b""
            self._buffer, self._offset = chunk, 0
        start = self._offset
        self._offset = min(start + size, len(self._buffer))
        if start == 0 and self._offset == len(self._buffer):
            return self._buffer  # the whole chunk: no copy
        return self._buffer[start : self._offset]

    def finish(self) -> None:
        """Read whatever the consumer left (hashed, written and verified all the same)."""
        self._buffer, self._offset = b"", 0
        while self._next() is not None:
            pass

    def is_corrupt(self) -> CorruptBlob | None:
        """After the consumer failed: download the rest without reporting progress and say
        whether the blob itself is bad, so that a damaged download is named as such rather
        than by what the extractor made of the damaged bytes (a gzip CRC error, a broken
        tar header). None when the blob is intact or could not be read to its end."""
        if self.aborted:
            return None
        self._advance = None
        try:
            self.finish()
        except CorruptBlob as corrupt:
            return corrupt
        except Exception:  # the network failed too: the consumer's error stands
            return None
        return None

    def _next(self) -> bytes | None:
        """The next chunk, accounted for; None at the (verified) end."""
        if self._ended:
            return None
        chunk = next(self._chunks, None)
        if chunk is None:
            self._ended = True
            self._verify()
            return None
        self.count += len(chunk)
        if self._size is not None and self.count > self._size:
            raise CorruptBlob(
                f"blob {self._digest} from {self._origin} is larger than the "
                f"{self._size} bytes its manifest says: refused"
            )
        self._hash.update(chunk)
        self._out.write(chunk)
        if self._advance is not None:
            try:
                self._advance(len(chunk))
            except BaseException:
                self.aborted = True
                raise
        return chunk

    def _verify(self) -> None:
        actual = "sha256:" + self._hash.hexdigest()
        if actual != self._digest:
            raise CorruptBlob(
                f"blob {self._digest} from {self._origin} is corrupted: its content "
                f"hashes to {actual}; refused, nothing stored"
            )
        if self._size is not None and self.count != self._size:
            raise CorruptBlob(
                f"blob {self._digest}: {self.count} bytes, the manifest says {self._size}"
            )
