"""Replace a file so that a reader sees the old content or the new, never half of either.

A temporary file in the same directory (a unique name: several threads and processes write
beside each other), then one rename. ``durable`` adds an fsync before the rename, for state
that must survive a power loss; state that dies with the machine anyway (a container's
network record, a daemon's status) skips it, since on a busy disk one fsync costs several
milliseconds on every container start.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(
    path: Path, value: Any, *, durable: bool = True, indent: int | None = None
) -> None:
    """``value`` as JSON (keys sorted, so equal values give equal files)."""
    # dumps, not dump: only dumps uses the C encoder
    text = json.dumps(value, sort_keys=True, indent=indent)
    write_atomic(path, text.encode(), durable=durable)
