"""Reading a stage's filesystem (its layer directories) from the host, without a container.

``COPY --from`` needs the merged tree of another stage or image: a read-only overlay of
its layers mounted under the build directory (a bind for a single layer) is exact about
whiteouts and opaque directories, where re-implementing the merge in Python would not be.
``kind_of`` is the cheap question "is this path a directory in the image?" that COPY asks
to decide between ``dest`` and ``dest/<name>``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from orchestrator.errors import RuntimeFailure

_MS_RDONLY = 1
_MS_BIND = 4096
_MNT_DETACH = 2


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def merged_view(layers: Sequence[Path], scratch: Path) -> Iterator[Path]:
    """The merged, read-only tree of ``layers`` (bottom first), mounted in a fresh
    directory under ``scratch`` for the duration of the block and unmounted after."""
    scratch.mkdir(parents=True, exist_ok=True)
    point = scratch / f"view-{secrets.token_hex(6)}"
    point.mkdir(mode=0o700)
    libc = _libc()
    try:
        if not layers:
            yield point  # an empty stage (FROM scratch, nothing copied): an empty tree
            return
        if len(layers) == 1:
            rc = libc.mount(str(layers[0]).encode(), str(point).encode(), None, _MS_BIND, None)
        else:
            lower = ":".join(str(p) for p in reversed(layers))
            rc = libc.mount(b"pycompose-build-view", str(point).encode(), b"overlay",
                            _MS_RDONLY, f"lowerdir={lower}".encode())
        if rc != 0:
            err = ctypes.get_errno()
            raise RuntimeFailure(f"cannot mount the layers of a stage: {os.strerror(err)}")
        try:
            yield point
        finally:
            if libc.umount2(str(point).encode(), _MNT_DETACH) != 0:
                err = ctypes.get_errno()
                raise RuntimeFailure(f"cannot unmount {point}: {os.strerror(err)}")
    finally:
        with contextlib.suppress(OSError):
            point.rmdir()


def kind_of(layers: Sequence[Path], path: str) -> str | None:
    """``"dir"``, ``"file"`` (anything else) or None for ``path`` (absolute, in the image)
    in the merged ``layers`` (bottom first): the topmost layer that has it decides, a
    whiteout (character device 0:0) says it was deleted."""
    rel = path.strip("/")
    if not rel:
        return "dir"
    for layer in reversed(layers):
        try:
            st = (layer / rel).lstat()
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            return None
        return "dir" if stat.S_ISDIR(st.st_mode) else "file"
    return None
