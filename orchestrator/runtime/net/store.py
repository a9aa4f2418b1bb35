"""Locked JSON files: the one way the network library keeps state on disk.

Several processes (the CLI, the supervisor, parallel executor threads) change networks at
once, so every read-modify-write happens under ``flock`` on a sibling ``.lock`` file (a
lock on the data file itself would be lost by the atomic rename that replaces it).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from orchestrator.errors import RuntimeFailure
from orchestrator.runtime import atomic


@contextlib.contextmanager
def locked(lock_path: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold ``flock`` on ``lock_path`` (created when missing) for the block.

    A fresh open file description per call: flock then also excludes other threads of this
    process, not only other processes."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock


def read_json(path: Path) -> dict[str, Any] | None:
    """The object in ``path``; None when the file does not exist."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise RuntimeFailure(f"unreadable network state {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise RuntimeFailure(f"unreadable network state {path}: not a JSON object")
    return data


def write_json(path: Path, data: dict[str, Any], *, durable: bool = True) -> None:
    """``durable`` for what must survive a power loss (networks, address pools); a
    sandbox and its lease die with a reboot anyway (see runtime/atomic.py)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(path, data, durable=durable)


def remove_file(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
