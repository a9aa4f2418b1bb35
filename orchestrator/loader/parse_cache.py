"""The YAML stage's results kept on disk, so a warm CLI run neither imports nor runs PyYAML.

Importing PyYAML and our YAML 1.2 reader costs a CLI run ~10 ms, more than parsing any
real compose file, and most runs read a file unchanged since the last one. ``parse`` is a
pure function of the text, the file name, the directory and the code that reads it, so
the ``Document`` it returned is stored under the digest of all of those and read back
instead of parsing again. Only successes are stored: a file with a problem is parsed
(and its errors worded) afresh every time, as ``schema_cache`` does for validation.

The record is JSON in which every value keeps its exact type: JSON keeps str, int, float
(NaN and infinities too), bool, null, lists and string-keyed objects apart; the few
other shapes (``!reset``/``!override`` values, a mapping that would clash with the
marker key) are objects carrying the marker key ``"\\u0000"``. Positions are stored as
(path, line, column), the file being the document's. A value of any other type makes the
document uncacheable (never mis-typed).

The digest covers the record format, the pycompose version, ``yaml_source.py`` and
``document.py``, PyYAML's installed files (path, size, mtime; found without importing
it) and the inputs. Where: ``$XDG_CACHE_HOME/pycompose/parsed/``, at most
``MAX_ENTRIES`` records. Off with ``PYCOMPOSE_SCHEMA_CACHE=0`` (one switch for the
loader's caches) or ``LoadOptions.schema_cache=False`` (the library default). Any trouble
with the directory or a record only means a miss: the cache can make a run faster,
never change or fail it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import orchestrator
from orchestrator.errors import Location
from orchestrator.loader import schema_cache
from orchestrator.loader.document import Document, Override, Positions, Reset

MAX_ENTRIES = 256
_FORMAT = b"pycompose-parsed/1\0"
_MARK = "\x00"
_READER_FILES = tuple(Path(__file__).with_name(n) for n in ("yaml_source.py", "document.py"))
_YAML_FILES = ("__init__.py", "constructor.py", "cyaml.py", "nodes.py")


def parse(text: str, filename: str, directory: str, *, use_cache: bool = True) -> Document:
    """``yaml_source.parse(text, filename, directory)``, from the cache when this exact
    input was read before."""
    folder = None
    if use_cache and schema_cache.enabled():
        with contextlib.suppress(RuntimeError):  # no home directory to put it in
            folder = cache_directory()
    key = digest(text, filename, directory) if folder is not None else None
    if folder is not None and key is not None:
        cached = load(folder / key, filename, directory)
        if cached is not None:
            return cached
    from orchestrator.loader import yaml_source

    doc = yaml_source.parse(text, filename, directory)
    if folder is not None and key is not None:
        store(folder, key, doc)
    return doc


def cache_directory() -> Path:
    """Beside the schema cache: ``$XDG_CACHE_HOME/pycompose/parsed``."""
    return schema_cache.cache_directory().with_name("parsed")


def digest(text: str, filename: str, directory: str) -> str | None:
    """The record's name for this input (None when the reader's files cannot be read)."""
    hasher = hashlib.sha256(_FORMAT)
    try:
        hasher.update(orchestrator.__version__.encode() + b"\0")
        for path in _READER_FILES:
            hasher.update(hashlib.sha256(path.read_bytes()).digest())
        hasher.update(_yaml_identity())
    except OSError:
        return None
    for part in (filename, directory, text):
        data = part.encode("utf-8", "surrogatepass")
        hasher.update(b"%d:" % len(data) + data)
    return hasher.hexdigest()


def _yaml_identity() -> bytes:
    """Where PyYAML is installed and when its files were written (an upgrade changes it),
    without importing it."""
    spec = importlib.util.find_spec("yaml")
    origin = spec.origin if spec is not None else None
    if origin is None:
        raise OSError("PyYAML is not installed")
    folder = os.path.dirname(origin)
    parts = []
    names = [*_YAML_FILES, *sorted(n for n in os.listdir(folder) if n.startswith("_yaml."))]
    for name in names:
        info = os.stat(os.path.join(folder, name))
        parts.append(f"{name}:{info.st_size}:{info.st_mtime_ns}")
    return f"{origin}|{'|'.join(parts)}\0".encode()


# -- records -------------------------------------------------------------------------------


def load(path: Path, filename: str, directory: str) -> Document | None:
    """The document stored at ``path``; None when there is none or it cannot be read."""
    try:
        record = json.loads(path.read_bytes(), object_hook=_decode_object)
        data = record["data"]
        positions: Positions = {
            tuple(where): Location(filename, line, column)
            for where, line, column in record["positions"]
        }
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(data, dict):
        return None
    return Document(file=filename, data=data, positions=positions, directory=directory)


def store(folder: Path, key: str, doc: Document) -> None:
    """Write ``doc`` as the record ``key`` (nothing when it holds values JSON cannot carry
    exactly); errors are ignored, like those of any cache."""
    try:
        record = {"data": _encode(doc.data), "positions": _positions(doc)}
        text = json.dumps(record, ensure_ascii=True, separators=(",", ":"))
    except _Uncacheable:
        return
    with contextlib.suppress(OSError):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        entries = list(os.scandir(folder))
        if len(entries) >= MAX_ENTRIES:
            _prune(entries, len(entries) - MAX_ENTRIES + 1)
        tmp = folder / f".{key}.{os.urandom(4).hex()}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(text)
            os.replace(tmp, folder / key)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def _prune(entries: list[os.DirEntry[str]], count: int) -> None:
    """Drop the ``count`` oldest records."""

    def age(entry: os.DirEntry[str]) -> float:
        try:
            return entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            return 0.0

    for entry in sorted(entries, key=age)[:count]:
        with contextlib.suppress(OSError):
            os.unlink(entry.path)


class _Uncacheable(Exception):
    """A value the record cannot carry with its exact type."""


def _encode(value: Any) -> Any:
    kind = type(value)
    if kind in (str, int, float, bool) or value is None:
        return value
    if kind is list:
        return [_encode(item) for item in value]
    if kind is dict:
        if all(type(k) is str for k in value) and _MARK not in value:
            return {k: _encode(v) for k, v in value.items()}
        return {_MARK: "map", "items": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if kind is Reset:
        return {_MARK: "reset", "value": _encode(value.value)}
    if kind is Override:
        return {_MARK: "override", "value": _encode(value.value)}
    raise _Uncacheable(kind.__name__)


def _decode_object(obj: dict[str, Any]) -> Any:
    marker = obj.get(_MARK)
    if marker is None:
        return obj
    if marker == "map":
        return {key: value for key, value in obj["items"]}
    if marker == "reset":
        return Reset(obj["value"])
    if marker == "override":
        return Override(obj["value"])
    raise ValueError(f"unknown record marker {marker!r}")


def _positions(doc: Document) -> list[list[Any]]:
    out: list[list[Any]] = []
    for where, location in doc.positions.items():
        if location.file != doc.file or not all(type(p) in (str, int) for p in where):
            raise _Uncacheable("position")
        out.append([list(where), location.line, location.column])
    return out
