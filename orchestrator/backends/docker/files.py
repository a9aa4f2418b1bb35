"""Secrets and configs into a created (not yet started) container, as one tar archive.

Docker compose bind-mounts a file secret from where the user keeps it, which cannot give it
another owner or mode. Copying the content in with ``put_archive`` before the first start
honours ``uid``, ``gid`` and ``mode`` (the tar headers carry them), needs no file of ours on
the host, and works for ``environment`` and ``content`` sources alike. A ``file:`` source
that is a directory is copied as it is (owner and mode apply to files only)."""

from __future__ import annotations

import io
import posixpath
import tarfile
import time
from collections.abc import Iterable

from orchestrator.backends.files import FileEntry


def _directories(target: str, seen: set[str], tar: tarfile.TarFile, now: float) -> None:
    """The target's parent directories (root-owned, 0755), so the engine creates them."""
    parts = posixpath.dirname(target).strip("/").split("/")
    for depth in range(1, len(parts) + 1):
        path = "/".join(parts[:depth])
        if not path or path in seen:
            continue
        seen.add(path)
        info = tarfile.TarInfo(path)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(now)
        tar.addfile(info)


def archive(entries: Iterable[FileEntry]) -> bytes:
    """A tar, rooted at ``/``, holding every entry at its target."""
    buffer = io.BytesIO()
    now = time.time()
    seen: set[str] = set()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            name = entry.target.lstrip("/")
            _directories(entry.target, seen, tar, now)
            if entry.host_path is not None:
                tar.add(entry.host_path, arcname=name, recursive=True)
                continue
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(entry.content), entry.mode, int(now)
            info.uid, info.gid = entry.uid, entry.gid
            tar.addfile(info, io.BytesIO(entry.content))
    return buffer.getvalue()
