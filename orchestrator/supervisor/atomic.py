"""Write a file so that a reader (or a crash) sees the old content or the new, never half.

Temporary file in the same directory, fsync, rename over the target, fsync the directory:
the supervisor's state must survive ``kill -9`` and power loss alike.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from orchestrator.runtime import atomic


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_atomic(path, data)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_json(path: Path, value: object) -> None:
    write_atomic(path, json.dumps(value, indent=1, sort_keys=True).encode() + b"\n")
