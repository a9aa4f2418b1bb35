"""Digests (``sha256:<64 hex>``): parsing, and readers that hash what passes through them.

Everything in the store is named by the digest of its bytes, so every byte that enters it
goes through :class:`HashingReader` and is checked before it is given a name.
"""

from __future__ import annotations

import hashlib
import re
from typing import BinaryIO, Protocol

from orchestrator.runtime.images.errors import DigestMismatch, ImageError

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def parse_digest(value: object) -> str:
    """``value`` if it is a well-formed sha256 digest; refused otherwise.

    A digest becomes a file name in the store, so nothing but 64 lowercase hex digits may
    follow the algorithm (no ``/``, no ``..``).
    """
    if not isinstance(value, str) or not _DIGEST.match(value):
        raise ImageError(f"not a sha256 digest: {value!r}")
    return value


def digest_hex(digest: str) -> str:
    return parse_digest(digest).split(":", 1)[1]


def sha256_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def verify_bytes(data: bytes, expected: str, what: str) -> None:
    actual = sha256_bytes(data)
    if actual != parse_digest(expected):
        raise DigestMismatch(f"{what}: content hashes to {actual}, expected {expected}")


class HashingReader:
    """Wraps a byte stream, hashing and counting what is read through it."""

    def __init__(self, source: Readable | BinaryIO) -> None:
        self._source = source
        self._hash = hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._source.read(size)
        self._hash.update(data)
        self.count += len(data)
        return data

    def drain(self, chunk: int = 1 << 20) -> None:
        """Read (and hash) whatever is left: trailing tar padding counts in a digest too."""
        while self.read(chunk):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()
