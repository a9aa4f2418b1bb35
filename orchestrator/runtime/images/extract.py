"""Our hardened layer extractor: a layer tar stream → a directory overlayfs can stack.

Why not ``tarfile.extractall``: it resolves paths through symlinks it has just written,
trusts hardlink targets, creates device nodes and has no size or entry limits, so a
crafted layer can write anywhere on the host. Here ``tarfile`` only *reads headers*; every
byte is written by this module, through file descriptors:

- Each entry's parent directory is reached from the layer root one component at a time with
  ``openat(O_NOFOLLOW | O_DIRECTORY)``: a path that goes through a symlink (even one that
  points inside) is refused, so nothing is ever written outside the root.
- Names that are absolute or contain ``..`` are refused, and so are hardlinks whose target
  is not an entry already extracted in this layer, and relative symlinks whose target
  climbs above the layer root. Absolute symlinks are kept verbatim: the kernel resolves
  them inside the container's root, and this module never follows one.
- Device nodes are refused (a layer has no business shipping them: ``/dev`` is a fresh
  tmpfs in the container). FIFOs are kept.
- Whiteouts become overlayfs whiteouts: ``.wh.NAME`` → a character device 0:0 named NAME,
  ``.wh..wh..opq`` → the ``trusted.overlay.opaque=y`` xattr on its directory; other
  ``.wh..wh.*`` (aufs bookkeeping) entries are skipped.
- Ownership, permission bits (setuid/setgid/sticky too), mtimes and ``user.*`` /
  ``security.*`` / POSIX ACL xattrs are kept; ``trusted.*`` xattrs from a layer are dropped
  (they could forge overlayfs metadata such as redirects).
- The uncompressed size, the entry count, the size of tar headers and the compression ratio
  are capped (:class:`Limits`): a decompression bomb is refused after a few MiB of work.
- gzip, bzip2, xz and plain tar are read (sniffed from the first bytes); zstd is refused
  with a clear error until a zstd reader is allowed in.
- Extraction goes to a private temporary directory beside the destination and is renamed
  into place when complete, so a destination exists only whole; on any failure the
  temporary directory is removed and nothing is left.

Needs root (ownership, whiteout device nodes, ``trusted.`` xattrs).
"""

from __future__ import annotations

import bz2
import contextlib
import errno
import gzip
import lzma
import os
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from orchestrator.runtime.images.digest import HashingReader, Readable, parse_digest
from orchestrator.runtime.images.errors import DigestMismatch, ImageError, UnsafeLayer

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30

OPAQUE_XATTR = "trusted.overlay.opaque"
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
_KEPT_XATTR_PREFIXES = ("user.", "security.", "system.posix_acl_")
_CHUNK = 1 * MiB
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class Limits:
    """Caps that make a hostile layer fail fast instead of filling the disk or memory.

    ``max_ratio`` applies to compressed layers once ``ratio_floor`` bytes came out: real
    layers compress a few times, a bomb a thousand times.
    """

    max_bytes: int = 32 * GiB
    max_entries: int = 1_000_000
    max_ratio: int = 100
    ratio_floor: int = 64 * MiB
    max_header_bytes: int = 8 * MiB


@dataclass(frozen=True)
class ExtractedLayer:
    """A layer unpacked at ``path``; ``diff_id`` is the sha256 of its uncompressed tar."""

    path: Path
    diff_id: str
    entries: int
    size: int


class _Counter:
    """Counts the compressed bytes read, for the ratio check."""

    def __init__(self, source: Readable | BinaryIO) -> None:
        self._source = source
        self.count = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._source.read(size)
        self.count += len(data)
        return data


class _Guard:
    """The uncompressed stream, with the size, ratio and header caps enforced as it flows.

    ``mark()`` is called whenever bytes are accounted for (a member seen, a data chunk
    read); bytes tarfile consumes between marks are header bytes (pax, GNU long names),
    which it buffers in memory, so they get their own small cap.
    """

    def __init__(self, source: Readable, compressed: _Counter | None, limits: Limits) -> None:
        self._source = source
        self._compressed = compressed
        self._limits = limits
        self.total = 0
        self._unmarked = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._source.read(size)
        self.total += len(data)
        self._unmarked += len(data)
        limits = self._limits
        if self.total > limits.max_bytes:
            raise UnsafeLayer(f"layer expands past the size limit of {limits.max_bytes} bytes")
        if self._unmarked > limits.max_header_bytes:
            raise UnsafeLayer(f"tar headers larger than {limits.max_header_bytes} bytes")
        if (
            self._compressed is not None
            and self.total > limits.ratio_floor
            and self.total > limits.max_ratio * max(self._compressed.count, 1)
        ):
            raise UnsafeLayer(
                f"decompression bomb: {self._compressed.count} compressed bytes expand to "
                f"more than {self.total} (over {limits.max_ratio}x)"
            )
        return data

    def mark(self, allowance: int = 0) -> None:
        """Bytes read so far are accounted for; ``allowance`` more are expected (the data
        of a member tarfile may skip over unread: a whiteout file, aufs bookkeeping)."""
        self._unmarked = -allowance

    def room(self) -> int:
        return self._limits.max_bytes - self.total


class _Prefixed:
    """A stream with some already-read bytes put back in front (after sniffing)."""

    def __init__(self, head: bytes, rest: Readable | BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def read(self, size: int = -1, /) -> bytes:
        if self._head:
            if size < 0:
                data, self._head = self._head + self._rest.read(), b""
                return data
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._rest.read(size)


def _decompressed(source: Readable | BinaryIO) -> tuple[Readable, _Counter | None]:
    """The uncompressed tar stream of ``source``, sniffing its compression."""
    counter = _Counter(source)
    head = b""
    while len(head) < 6:
        more = counter.read(6 - len(head))
        if not more:
            break
        head += more
    stream = _Prefixed(head, counter)
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=cast(BinaryIO, stream), mode="rb"), counter
    if head.startswith(b"BZh"):
        return bz2.BZ2File(cast(BinaryIO, stream), mode="rb"), counter
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(cast(BinaryIO, stream), mode="rb"), counter
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        raise ImageError("zstd-compressed layers are not supported yet (gzip, xz, bzip2, tar)")
    return stream, None


def split_member_path(name: str, what: str = "entry") -> list[str]:
    """The components of a tar path; refused when absolute or when it contains ``..``."""
    if name.startswith("/"):
        raise UnsafeLayer(f"{what} {name!r} is an absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnsafeLayer(f"{what} {name!r} climbs out of the layer with '..'")
    return parts


def symlink_escapes(parent: list[str], target: str) -> bool:
    """Whether a relative symlink in ``parent`` climbs above the layer root."""
    if target.startswith("/"):
        return False
    depth = len(parent)
    for part in target.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


class _Tree:
    """The layer root as a directory fd; every operation is relative to it, nofollow."""

    def __init__(self, root: Path) -> None:
        self._root_fd = os.open(root, _DIR_FLAGS)
        self._cached: tuple[tuple[str, ...], int] | None = None
        self.dir_times: list[tuple[list[str], int]] = []

    def close(self) -> None:
        self.forget()
        os.close(self._root_fd)

    def forget(self) -> None:
        """Drop the cached parent fd: something on the tree was removed or replaced."""
        if self._cached is not None:
            os.close(self._cached[1])
            self._cached = None

    def parent(self, parts: list[str], create: bool = True) -> int:
        """An fd of the directory ``parts`` (borrowed: do not close), walked without
        following symlinks; missing directories are created 0755 when ``create``."""
        key = tuple(parts)
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        fd = self.open_dir(parts, create)
        self.forget()
        self._cached = (key, fd)
        return fd

    def open_dir(self, parts: list[str], create: bool) -> int:
        fd = os.dup(self._root_fd)
        try:
            for index, part in enumerate(parts):
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(part, 0o755, dir_fd=fd)
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    where = "/".join(parts[: index + 1])
                    info = os.stat(part, dir_fd=fd, follow_symlinks=False)
                    if stat.S_ISLNK(info.st_mode):
                        raise UnsafeLayer(
                            f"{'/'.join(parts)!r} goes through the symlink {where!r}"
                        ) from exc
                    raise UnsafeLayer(f"{where!r} is not a directory") from exc
                os.close(fd)
                fd = child
            return fd
        except BaseException:
            os.close(fd)
            raise

    def clear(self, dfd: int, name: str, keep_dir: bool) -> bool:
        """Remove whatever is at ``name`` (an entry replaces an earlier one); returns True
        when an existing directory was kept instead."""
        try:
            info = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(info.st_mode):
            if keep_dir:
                return True
            if self._cached is not None and self._cached[1] != dfd:
                self.forget()  # the cached directory might be inside what goes away
            shutil.rmtree(name, dir_fd=dfd)
        else:
            os.unlink(name, dir_fd=dfd)
        return False


def _mtime_ns(member: tarfile.TarInfo) -> int:
    return int(member.mtime * 1_000_000_000)


def _xattrs(member: tarfile.TarInfo) -> Iterator[tuple[str, bytes]]:
    for key, value in member.pax_headers.items():
        if not key.startswith("SCHILY.xattr."):
            continue
        name = key[len("SCHILY.xattr.") :]
        if name.startswith(_KEPT_XATTR_PREFIXES):
            yield name, value.encode("utf-8", "surrogateescape")


def _apply_fd_metadata(fd: int, member: tarfile.TarInfo) -> None:
    """Owner, then mode (chown clears setuid), then xattrs (chown clears file caps)."""
    os.fchown(fd, member.uid, member.gid)
    os.fchmod(fd, member.mode & 0o7777)
    for name, value in _xattrs(member):
        os.setxattr(fd, name, value)


class _Extractor:
    def __init__(self, root: Path, guard: _Guard, limits: Limits) -> None:
        self.tree = _Tree(root)
        self.guard = guard
        self.limits = limits
        self.entries = 0

    def run(self, tar: tarfile.TarFile) -> None:
        while True:
            member = tar.next()
            tar.members.clear()  # type: ignore[attr-defined]  # else every header is kept
            if member is None:
                break
            self.guard.mark(member.size if member.isreg() else 0)
            self.entries += 1
            if self.entries > self.limits.max_entries:
                raise UnsafeLayer(f"layer has more than {self.limits.max_entries} entries")
            try:
                self.entry(tar, member)
            except (UnsafeLayer, DigestMismatch):
                raise
            except OSError as exc:
                raise ImageError(f"cannot extract {member.name!r}: {exc}") from exc
        self.set_dir_times()

    def entry(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        parts = split_member_path(member.name)
        if any(part.startswith(OPAQUE_MARKER[:8]) for part in parts[:-1]):
            return  # inside an aufs ".wh..wh.*" bookkeeping directory
        if not parts:
            if member.isdir():
                fd = self.tree.open_dir([], create=False)
                try:
                    _apply_fd_metadata(fd, member)
                finally:
                    os.close(fd)
                self.tree.dir_times.append(([], _mtime_ns(member)))
                return
            raise UnsafeLayer(f"entry {member.name!r} would replace the layer root")
        *parent, name = parts
        if name.startswith(WHITEOUT_PREFIX):
            self.whiteout(parent, name)
            return
        if member.ischr() or member.isblk():
            kind = "character" if member.ischr() else "block"
            raise UnsafeLayer(
                f"{member.name!r} is a {kind} device node "
                f"({member.devmajor}:{member.devminor}): device nodes are refused"
            )
        dfd = self.tree.parent(parent)
        if member.isdir():
            self.directory(dfd, parent, name, member)
        elif member.isreg():
            self.regular(tar, dfd, name, member)
        elif member.issym():
            self.symlink(dfd, parent, name, member)
        elif member.islnk():
            self.hardlink(dfd, parts, member)
        elif member.isfifo():
            self.tree.clear(dfd, name, keep_dir=False)
            os.mkfifo(name, 0o600, dir_fd=dfd)
            os.chown(name, member.uid, member.gid, dir_fd=dfd, follow_symlinks=False)
            os.chmod(name, member.mode & 0o7777, dir_fd=dfd)
            os.utime(name, ns=(_mtime_ns(member),) * 2, dir_fd=dfd, follow_symlinks=False)
        else:
            raise UnsafeLayer(f"{member.name!r} has an unsupported tar type {member.type!r}")

    def whiteout(self, parent: list[str], name: str) -> None:
        if name == OPAQUE_MARKER:
            fd = self.tree.open_dir(parent, create=True)
            try:
                os.setxattr(fd, OPAQUE_XATTR, b"y")
            finally:
                os.close(fd)
            return
        if name.startswith(OPAQUE_MARKER[:8]):
            return  # other aufs metadata (.wh..wh.plnk, .wh..wh.aufs)
        hidden = name[len(WHITEOUT_PREFIX) :]
        if hidden in ("", ".", ".."):
            raise UnsafeLayer(f"whiteout {name!r} names nothing")
        dfd = self.tree.parent(parent)
        self.tree.clear(dfd, hidden, keep_dir=False)
        os.mknod(hidden, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=dfd)

    def directory(self, dfd: int, parent: list[str], name: str, member: tarfile.TarInfo) -> None:
        if not self.tree.clear(dfd, name, keep_dir=True):
            os.mkdir(name, 0o700, dir_fd=dfd)
        fd = os.open(name, _DIR_FLAGS, dir_fd=dfd)
        try:
            _apply_fd_metadata(fd, member)
        finally:
            os.close(fd)
        self.tree.dir_times.append(([*parent, name], _mtime_ns(member)))

    def regular(self, tar: tarfile.TarFile, dfd: int, name: str, member: tarfile.TarInfo) -> None:
        if member.size > self.guard.room():
            raise UnsafeLayer(
                f"{member.name!r} ({member.size} bytes) exceeds the layer size limit "
                f"of {self.limits.max_bytes} bytes"
            )
        self.tree.clear(dfd, name, keep_dir=False)
        fd = os.open(
            name,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
            dir_fd=dfd,
        )
        try:
            source = tar.extractfile(member)
            if source is not None:
                while chunk := source.read(_CHUNK):
                    self.guard.mark()
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view) :]
            _apply_fd_metadata(fd, member)
            os.utime(fd, ns=(_mtime_ns(member),) * 2)
        finally:
            os.close(fd)

    def symlink(self, dfd: int, parent: list[str], name: str, member: tarfile.TarInfo) -> None:
        target = member.linkname
        if not target:
            raise UnsafeLayer(f"symlink {member.name!r} has an empty target")
        if symlink_escapes(parent, target):
            raise UnsafeLayer(f"symlink {member.name!r} -> {target!r} climbs above the layer root")
        self.tree.clear(dfd, name, keep_dir=False)
        os.symlink(target, name, dir_fd=dfd)
        os.chown(name, member.uid, member.gid, dir_fd=dfd, follow_symlinks=False)
        os.utime(name, ns=(_mtime_ns(member),) * 2, dir_fd=dfd, follow_symlinks=False)

    def hardlink(self, dfd: int, parts: list[str], member: tarfile.TarInfo) -> None:
        target = split_member_path(member.linkname, what="hardlink target")
        if not target:
            raise UnsafeLayer(f"hardlink {member.name!r} points at the layer root")
        if target == parts:
            raise UnsafeLayer(f"hardlink {member.name!r} points at itself")
        *target_parent, target_name = target
        missing = UnsafeLayer(
            f"hardlink {member.name!r} -> {member.linkname!r}: the target is not an entry "
            "of this layer"
        )
        try:
            tfd = self.tree.open_dir(target_parent, create=False)
        except FileNotFoundError:
            raise missing from None
        try:
            try:
                info = os.stat(target_name, dir_fd=tfd, follow_symlinks=False)
            except FileNotFoundError:
                raise missing from None
            if stat.S_ISDIR(info.st_mode):
                raise UnsafeLayer(f"hardlink {member.name!r} points at a directory")
            name = parts[-1]
            self.tree.clear(dfd, name, keep_dir=False)
            os.link(target_name, name, src_dir_fd=tfd, dst_dir_fd=dfd, follow_symlinks=False)
        finally:
            os.close(tfd)

    def set_dir_times(self) -> None:
        """Directory mtimes last: writing their children changed them."""
        self.tree.forget()
        for parts, mtime in self.tree.dir_times:
            try:
                fd = self.tree.open_dir(parts, create=False)
            except (OSError, UnsafeLayer):
                continue  # replaced by a later entry
            try:
                os.utime(fd, ns=(mtime, mtime))
            finally:
                os.close(fd)


def extract_layer(
    source: Readable | BinaryIO,
    dest: Path,
    *,
    limits: Limits | None = None,
    expected_diff_id: str | None = None,
    tmp_root: Path | None = None,
) -> ExtractedLayer:
    """Unpack the layer read from ``source`` into the new directory ``dest``.

    ``dest`` must not exist; it appears (by rename) only once the whole layer is written
    and its diff id verified against ``expected_diff_id``. The temporary directory lives in
    ``tmp_root`` (default ``dest.parent``; it must be on the same filesystem). Raises
    :class:`UnsafeLayer` for a hostile layer, :class:`DigestMismatch` for a wrong diff id,
    :class:`ImageError` for anything else; in every case nothing is left behind.
    """
    limits = limits or Limits()
    if expected_diff_id is not None:
        parse_digest(expected_diff_id)
    parent = tmp_root if tmp_root is not None else dest.parent
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=parent))
    try:
        os.chmod(tmp, 0o755)
        raw, counter = _decompressed(source)
        guard = _Guard(raw, counter, limits)
        hashed = HashingReader(guard)
        extractor = _Extractor(tmp, guard, limits)
        try:
            try:
                with tarfile.open(fileobj=hashed, mode="r|") as tar:  # type: ignore[call-overload]
                    extractor.run(tar)
                guard.mark()
                hashed.drain()
            finally:
                extractor.tree.close()
        except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError) as exc:
            raise ImageError(f"layer is not a readable tar stream: {exc}") from exc
        except gzip.BadGzipFile as exc:
            raise ImageError(f"layer is not a readable gzip stream: {exc}") from exc
        diff_id = hashed.digest
        if expected_diff_id is not None and diff_id != expected_diff_id:
            raise DigestMismatch(
                f"layer content hashes to {diff_id}, the image config says {expected_diff_id}"
            )
        try:
            os.rename(tmp, dest)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            _remove(tmp)  # someone else unpacked the same layer first: theirs is as good
        return ExtractedLayer(dest, diff_id, extractor.entries, guard.total)
    except BaseException:
        _remove(tmp)
        raise


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(path)
