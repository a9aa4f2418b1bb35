"""A memo of the documents the schema stage already accepted, so warm CLI runs skip jsonschema.

Importing jsonschema (with attrs, referencing, its bundled metaschemas) costs a CLI run
more than everything else the loader does for a small project, and most runs load a file
that has not changed since the last one. Validation is a pure function of the document,
the schema and the code that checks it, so a document that *passed* is recorded as an
empty file named by the digest of all of those; when that file exists, validation is
skipped. The record is only ever a "this exact input was valid": a document with any
problem is never recorded, so every error message is computed afresh.

The digest covers: the pycompose version, ``schemas/compose-spec.json``, ``schema.py``
(what it does to the schema before compiling it), jsonschema's installed files (path,
size, mtime) and the document with the type of every value (``1`` and ``"1"``, ``[]`` and
``()`` differ); a value that is not plain data makes the document uncacheable.

Where: ``$XDG_CACHE_HOME/pycompose/schema-ok/`` (``~/.cache`` when unset), at most
``MAX_ENTRIES`` records (the oldest are dropped when a new one is written). Off with
``PYCOMPOSE_SCHEMA_CACHE=0``. Any trouble with the directory only means a miss: the
cache can make a run faster, never fail it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orchestrator
from orchestrator.errors import Problem
from orchestrator.loader.document import Document

ENV_SWITCH = "PYCOMPOSE_SCHEMA_CACHE"
MAX_ENTRIES = 256
_FORMAT = b"pycompose-schema-ok/1\0"
_SCHEMA_FILE = Path(orchestrator.__file__).parent / "schemas" / "compose-spec.json"
_CHECKER_FILE = Path(__file__).with_name("schema.py")


def validate(doc: Document, *, use_cache: bool = True) -> list[Problem]:
    """``schema.validate(doc)``, answered from the cache when this exact input passed before."""
    directory = cache_directory() if use_cache and enabled() else None
    key = digest(doc) if directory is not None else None
    if directory is not None and key is not None and (directory / key).is_file():
        return []
    from orchestrator.loader import schema

    problems = schema.validate(doc)
    if not problems and directory is not None and key is not None:
        record(directory, key)
    return problems


def enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "off", "no", "false")


def cache_directory() -> Path:
    """``$XDG_CACHE_HOME/pycompose/schema-ok`` (a relative XDG_CACHE_HOME is ignored, as the
    XDG spec says)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "pycompose" / "schema-ok"


def digest(doc: Document) -> str | None:
    """The record's name for ``doc`` (None when the document holds non-plain values or the
    schema cannot be read: then it is simply not cached)."""
    hasher = hashlib.sha256(_FORMAT)
    try:
        hasher.update(orchestrator.__version__.encode() + b"\0")
        hasher.update(_file_digest(_SCHEMA_FILE))
        hasher.update(_file_digest(_CHECKER_FILE))
        hasher.update(_validator_identity())
    except OSError:
        return None
    if not _encode(doc.data, hasher.update):
        return None
    return hasher.hexdigest()


def record(directory: Path, key: str) -> None:
    """Remember that ``key`` passed; errors are ignored (a cache that cannot be written is
    a cache that misses)."""
    with contextlib.suppress(OSError):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        entries = list(os.scandir(directory))
        if len(entries) >= MAX_ENTRIES:
            _prune(entries, len(entries) - MAX_ENTRIES + 1)
        # an empty file: its name is the whole record, so a torn write cannot exist
        fd = os.open(directory / key, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        os.close(fd)


def _prune(entries: list[os.DirEntry[str]], count: int) -> None:
    def age(entry: os.DirEntry[str]) -> float:
        try:
            return entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            return 0.0

    for entry in sorted(entries, key=age)[:count]:
        with contextlib.suppress(OSError):
            os.unlink(entry.path)


def _file_digest(path: Path) -> bytes:
    return hashlib.sha256(path.read_bytes()).digest()


def _validator_identity() -> bytes:
    """Where jsonschema is installed and when its files were written: an upgrade (or any
    reinstall) changes it, without importing jsonschema to ask its version."""
    spec = importlib.util.find_spec("jsonschema")
    origin = spec.origin if spec is not None else None
    if origin is None:
        raise OSError("jsonschema is not installed")
    parts = []
    for name in ("__init__.py", "validators.py", "_keywords.py", "_format.py"):
        info = os.stat(os.path.join(os.path.dirname(origin), name))
        parts.append(f"{name}:{info.st_size}:{info.st_mtime_ns}")
    return f"{origin}|{'|'.join(parts)}\0".encode()


def _encode(value: Any, write: Callable[[bytes], object]) -> bool:
    """Feed ``value`` to ``write`` with its type spelled out; False for non-plain data."""
    if value is None:
        write(b"n")
    elif value is True:
        write(b"t")
    elif value is False:
        write(b"f")
    elif isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
        write(b"s%d:" % len(data) + data)
    elif type(value) is int:
        write(b"i%d;" % value)
    elif type(value) is float:
        write(b"d" + repr(value).encode() + b";")
    elif isinstance(value, dict):
        write(b"{%d:" % len(value))
        for key, item in value.items():
            if not (_encode(key, write) and _encode(item, write)):
                return False
        write(b"}")
    elif type(value) is list or type(value) is tuple:
        write(b"[" if type(value) is list else b"(")
        write(b"%d:" % len(value))
        for item in value:
            if not _encode(item, write):
                return False
        write(b"]")
    else:
        return False
    return True
