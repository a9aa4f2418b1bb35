"""Reading a container's JSON-lines log (Docker's json-file format) across rotation.

The shim writes ``container.log`` and, past ``max-size``, renames it to ``.1`` (``.1`` to
``.2``...) keeping ``max-file`` files in all. Readers here: every record oldest first,
the last N, and a follower that notices when the file it reads is rotated away.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LogEntry:
    stream: str  # stdout | stderr
    text: str  # with its trailing newline, if it had one
    time: str  # RFC 3339 with nanoseconds, UTC


def parse_line(line: bytes) -> LogEntry | None:
    """One record; None for a torn or foreign line (never an exception for bad input)."""
    try:
        data = json.loads(line.decode("utf-8", "replace"))
        return LogEntry(str(data["stream"]), str(data["log"]), str(data["time"]))
    except (ValueError, KeyError, TypeError):
        return None


def files_oldest_first(path: Path) -> list[Path]:
    """``path.N`` ... ``path.1``, ``path``: whichever exist."""
    rotated: list[tuple[int, Path]] = []
    for sibling in path.parent.glob(path.name + ".*"):
        suffix = sibling.name[len(path.name) + 1 :]
        if suffix.isdigit():
            rotated.append((int(suffix), sibling))
    out = [p for _, p in sorted(rotated, reverse=True)]
    return [*out, path] if path.exists() else out


def read_all(path: Path) -> Iterator[LogEntry]:
    for file in files_oldest_first(path):
        try:
            with file.open("rb") as f:
                for line in f:
                    entry = parse_line(line)
                    if entry is not None:
                        yield entry
        except FileNotFoundError:
            continue  # rotated away between listing and opening


def tail(path: Path, n: int | None) -> list[LogEntry]:
    """The last ``n`` records (all when ``n`` is None)."""
    if n is None:
        return list(read_all(path))
    if n <= 0:
        return []
    return list(deque(read_all(path), maxlen=n))


def follow(
    path: Path,
    done: Callable[[], bool],
    start_at_end: bool = False,
    poll: float = 0.05,
) -> Iterator[LogEntry]:
    """Records as they are written to ``path``, until ``done()`` is true and the file is
    drained. Survives rotation: when ``path`` is a new file, the old one is finished
    first, then the new one is read from its start."""
    f = None
    inode = None
    buffer = b""
    while True:
        if f is None:
            try:
                f = path.open("rb")
                inode = os.fstat(f.fileno()).st_ino
                if start_at_end:
                    f.seek(0, os.SEEK_END)
                    start_at_end = False
            except FileNotFoundError:
                f = None
        finished = done()
        chunk = f.read() if f is not None else b""
        if chunk:
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                entry = parse_line(line)
                if entry is not None:
                    yield entry
            continue
        try:
            st = path.stat()
            current: int | None = st.st_ino
            if f is not None and current == inode and st.st_size < f.tell():
                f.seek(0)  # truncated in place (max-file 1)
                buffer = b""
                continue
        except FileNotFoundError:
            current = None
        if f is not None and current != inode:
            f.close()
            f, buffer = None, b""
            # the file we read was rotated, maybe more than once: read the files that
            # came after it before the live one
            for entry in _newer_rotated(path, inode):
                yield entry
            continue
        if finished:
            if f is not None:
                f.close()
            return
        time.sleep(poll)


def _newer_rotated(path: Path, inode: int | None) -> Iterator[LogEntry]:
    """Records of the rotated files newer than the one with ``inode`` (all of them if it
    is gone), oldest first. Opened at once, so further renames do not reorder them."""
    opened = []
    for file in files_oldest_first(path)[:-1] if path.exists() else files_oldest_first(path):
        with contextlib.suppress(FileNotFoundError):
            opened.append(file.open("rb"))
    try:
        inodes = [os.fstat(f.fileno()).st_ino for f in opened]
        start = inodes.index(inode) + 1 if inode in inodes else 0
        for f in opened[start:]:
            for line in f:
                entry = parse_line(line)
                if entry is not None:
                    yield entry
    finally:
        for f in opened:
            f.close()
