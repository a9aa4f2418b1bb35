"""Layer tars: the diff of a RUN's overlay upper directory, and deterministic tar writing.

A layer is written from a sorted list of entries with every header field a function of
the tree alone (numeric owners, no user/group names, whole-second times, no atime/ctime,
xattrs sorted), so the same tree always gives the same bytes and so the same diff id.

The upper directory of an overlay holds deletions in overlayfs form: a character device
0:0 for a deleted name, the ``trusted.overlay.opaque=y`` xattr for a directory whose lower
contents are hidden. Image layers say the same with files: ``.wh.NAME`` and
``DIR/.wh..wh..opq`` (OCI image spec, "whiteouts"), which is what we write.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
_OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
_SKIPPED_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")


@dataclass
class Entry:
    """One tar member to write; ``host`` is where a regular file's content is read from."""

    path: str  # relative, slash-separated, no leading "./"
    kind: bytes  # a tarfile type (REGTYPE, DIRTYPE, SYMTYPE, LNKTYPE, CHRTYPE, ...)
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: int = 0
    size: int = 0
    host: Path | None = None
    linkname: str = ""
    devmajor: int = 0
    devminor: int = 0
    xattrs: dict[str, bytes] = field(default_factory=dict)
    inode: tuple[int, int] | None = None  # (st_dev, st_ino) of a regular file, for hardlinks


@dataclass(frozen=True)
class LayerFile:
    """A written layer: its uncompressed tar (so its blob digest is its diff id)."""

    diff_id: str
    path: Path
    size: int


def _sort_key(entry: Entry) -> list[str]:
    return entry.path.split("/")


def entry_from_stat(path: str, host: Path, st: os.stat_result) -> Entry:
    """An entry mirroring a file on disk (type, mode, owner, mtime, xattrs)."""
    mode = st.st_mode
    entry = Entry(path, tarfile.REGTYPE, stat.S_IMODE(mode), st.st_uid, st.st_gid,
                  int(st.st_mtime))
    if stat.S_ISDIR(mode):
        entry.kind = tarfile.DIRTYPE
    elif stat.S_ISLNK(mode):
        entry.kind = tarfile.SYMTYPE
        entry.linkname = os.readlink(host)
    elif stat.S_ISREG(mode):
        entry.size = st.st_size
        entry.host = host
        if st.st_nlink > 1:
            entry.inode = (st.st_dev, st.st_ino)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        entry.kind = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        entry.devmajor, entry.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISFIFO(mode):
        entry.kind = tarfile.FIFOTYPE
    else:
        raise OSError(f"{host}: a socket or unknown file type cannot go into a layer")
    entry.xattrs = _xattrs(host)
    return entry


def _xattrs(host: Path) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    with contextlib.suppress(OSError):
        for name in os.listxattr(host, follow_symlinks=False):
            if name.startswith(_SKIPPED_XATTR_PREFIXES) or name.startswith("system."):
                continue
            found[name] = os.getxattr(host, name, follow_symlinks=False)
    return found


def _is_opaque(host: Path) -> bool:
    for name in _OPAQUE_XATTRS:
        with contextlib.suppress(OSError):
            if os.getxattr(host, name, follow_symlinks=False) == b"y":
                return True
    return False


def whiteout(path: str, mtime: int = 0) -> Entry:
    parent, _, name = path.rpartition("/")
    marker = f"{parent}/{WHITEOUT_PREFIX}{name}" if parent else WHITEOUT_PREFIX + name
    return Entry(marker, tarfile.REGTYPE, 0o644, mtime=mtime)


def diff_entries(upper: Path, skip: Callable[[str, os.stat_result], bool] | None = None
                 ) -> list[Entry]:
    """The layer entries of an overlay upper directory: files as they are, deleted names as
    ``.wh.`` files, opaque directories with their ``.wh..wh..opq`` marker. ``skip`` drops
    paths (and what is below them) that are artefacts of running, not of the build."""
    entries: list[Entry] = []
    for dirpath, dirnames, filenames in os.walk(upper):
        base = Path(dirpath)
        below = base.relative_to(upper).as_posix()
        kept = []
        for name in sorted(dirnames) + sorted(filenames):
            host = base / name
            rel = name if below == "." else f"{below}/{name}"
            st = host.lstat()
            if skip is not None and skip(rel, st):
                continue
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                entries.append(whiteout(rel, int(st.st_mtime)))
                continue
            entries.append(entry_from_stat(rel, host, st))
            if stat.S_ISDIR(st.st_mode):
                kept.append(name)
                if _is_opaque(host):
                    entries.append(Entry(f"{rel}/{OPAQUE_MARKER}", tarfile.REGTYPE, 0o644,
                                         mtime=int(st.st_mtime)))
        dirnames[:] = [d for d in dirnames if d in kept]
    return entries


def write_layer(entries: list[Entry], dest_dir: Path, tmp_dir: Path) -> LayerFile:
    """Write ``entries`` as a deterministic tar; stored in ``dest_dir`` under its diff id
    (hex), which is returned with the path. An existing identical layer is reused."""
    ordered = sorted(entries, key=_sort_key)
    seen: dict[tuple[int, int], str] = {}
    tmp_dir.mkdir(parents=True, exist_ok=True)
    dest_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = _mkstemp(tmp_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for entry in ordered:
                    info = _info(entry, seen)
                    if info.type == tarfile.REGTYPE and entry.host is not None:
                        with open(entry.host, "rb") as content:
                            tar.addfile(info, content)
                    else:
                        tar.addfile(info)
            out.flush()
        with open(tmp, "rb") as written:
            hexdigest = hashlib.file_digest(written, "sha256").hexdigest()
        final = dest_dir / hexdigest
        size = tmp.stat().st_size
        if final.exists():
            tmp.unlink()
        else:
            os.rename(tmp, final)
        return LayerFile("sha256:" + hexdigest, final, size)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _mkstemp(directory: Path) -> tuple[int, str]:
    import tempfile

    return tempfile.mkstemp(prefix="layer-", suffix=".tar", dir=directory)


def _info(entry: Entry, seen: dict[tuple[int, int], str]) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.path + ("/" if entry.kind == tarfile.DIRTYPE else ""))
    info.type = entry.kind
    info.mode = entry.mode
    info.uid, info.gid = entry.uid, entry.gid
    info.uname = info.gname = ""
    info.mtime = entry.mtime
    info.linkname = entry.linkname
    info.devmajor, info.devminor = entry.devmajor, entry.devminor
    if entry.kind == tarfile.REGTYPE:
        if entry.inode is not None and entry.inode in seen:
            info.type = tarfile.LNKTYPE
            info.linkname = seen[entry.inode]
        else:
            info.size = entry.size
            if entry.inode is not None:
                seen[entry.inode] = entry.path
    info.pax_headers = {
        f"SCHILY.xattr.{name}": entry.xattrs[name].decode("utf-8", "surrogateescape")
        for name in sorted(entry.xattrs)
    }
    return info
