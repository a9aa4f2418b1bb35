"""The hardened layer extractor: what a good layer becomes, and every hostile layer refused
with nothing left on the host. Runs as root (ownership, whiteouts, trusted xattrs)."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import stat
import tarfile
import time
from pathlib import Path

import pytest

from orchestrator.errors import RuntimeFailure
from orchestrator.runtime.images.errors import DigestMismatch, ImageError, UnsafeLayer
from orchestrator.runtime.images.extract import (
    OPAQUE_XATTR,
    Limits,
    extract_layer,
    split_member_path,
    symlink_escapes,
)
from tests.unit.runtime.images.tarbuild import (
    Entry,
    directory,
    file,
    gzip_bomb,
    hardlink,
    layer_tar,
    sha256,
    symlink,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="extraction keeps ownership: root only")


def snapshot(root: Path) -> list[tuple[str, int, int]]:
    """Every path under ``root`` (no symlink followed) with its type and size."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            info = path.lstat()
            found.append((str(path.relative_to(root)), stat.S_IFMT(info.st_mode), info.st_size))
    return sorted(found)


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A fake host: ``outside/`` holds a sentinel an attacker wants to overwrite,
    ``layers/`` is where the layer would go."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "sentinel").write_bytes(b"original")
    (tmp_path / "layers").mkdir()
    return tmp_path


def extract(host: Path, data: bytes, **kw: object) -> Path:
    dest = host / "layers" / "l1"
    extract_layer(io.BytesIO(data), dest, **kw)  # type: ignore[arg-type]
    return dest


# --- pure helpers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("a/b", ["a", "b"]),
        ("./a//b/", ["a", "b"]),
        ("./", []),
        ("a/./b", ["a", "b"]),
    ],
)
def test_split_member_path(name: str, parts: list[str]) -> None:
    assert split_member_path(name) == parts


@pytest.mark.parametrize("name", ["/etc/passwd", "../x", "a/../../x", "a/.."])
def test_split_member_path_refuses(name: str) -> None:
    with pytest.raises(UnsafeLayer):
        split_member_path(name)


@pytest.mark.parametrize(
    ("parent", "target", "escapes"),
    [
        ([], "busybox", False),
        (["bin"], "/bin/busybox", False),  # absolute: resolved in the container's root
        (["usr", "bin"], "../lib/x", False),
        (["usr", "bin"], "../../lib/x", False),
        (["usr", "bin"], "../../../etc", True),
        ([], "../outside", True),
        (["a"], "b/../../..", True),
        (["a"], "./../b", False),
    ],
)
def test_symlink_escapes(parent: list[str], target: str, escapes: bool) -> None:
    assert symlink_escapes(parent, target) is escapes


# --- a good layer ----------------------------------------------------------------------


def test_good_layer_keeps_metadata(host: Path) -> None:
    data = layer_tar(
        [
            directory("usr", mtime=1_500_000_000),
            directory("usr/bin", mode=0o750, uid=7, gid=8),
            file("usr/bin/su", b"#!", mode=0o4755, uid=0, gid=0),
            file(
                "home/user/notes",
                b"hello",
                mode=0o600,
                uid=1000,
                gid=1001,
                pax={
                    "SCHILY.xattr.user.origin": "test",
                    "SCHILY.xattr.trusted.overlay.redirect": "/etc",
                },
            ),
            symlink("bin", "usr/bin"),
            symlink("sh", "/usr/bin/su"),
            hardlink("usr/bin/sudo", "usr/bin/su"),
            Entry("run/fifo", tarfile.FIFOTYPE, mode=0o620),
        ]
    )
    result = extract_layer(io.BytesIO(data), host / "layers" / "l1")
    dest = result.path
    assert result.diff_id == sha256(data) and result.entries == 8
    su = (dest / "usr/bin/su").lstat()
    assert stat.S_IMODE(su.st_mode) == 0o4755 and (dest / "usr/bin/su").read_bytes() == b"#!"
    assert su.st_ino == (dest / "usr/bin/sudo").lstat().st_ino
    bin_dir = (dest / "usr/bin").lstat()
    assert (stat.S_IMODE(bin_dir.st_mode), bin_dir.st_uid, bin_dir.st_gid) == (0o750, 7, 8)
    assert (dest / "usr").lstat().st_mtime == 1_500_000_000  # set after its children
    notes = dest / "home/user/notes"
    assert (notes.lstat().st_uid, notes.lstat().st_gid) == (1000, 1001)
    assert notes.lstat().st_mtime == 1_600_000_000
    assert os.getxattr(notes, "user.origin") == b"test"
    assert "trusted.overlay.redirect" not in os.listxattr(notes)  # forged overlay metadata
    assert os.readlink(dest / "bin") == "usr/bin" and os.readlink(dest / "sh") == "/usr/bin/su"
    assert stat.S_ISFIFO((dest / "run/fifo").lstat().st_mode)
    assert stat.S_IMODE((dest / "home").lstat().st_mode) == 0o755  # implicit parent
    assert sorted(os.listdir(host / "layers")) == ["l1"]  # no temporary directory left


def test_later_entries_replace_earlier_ones(host: Path) -> None:
    dest = extract(
        host,
        layer_tar(
            [file("a", b"one"), file("a", b"two"), directory("d"), file("d/x"), symlink("d", "a")]
        ),
    )
    assert (dest / "a").read_bytes() == b"two"
    assert os.readlink(dest / "d") == "a"


def test_whiteouts_and_opaque_dirs_in_overlayfs_form(host: Path) -> None:
    dest = extract(
        host,
        layer_tar(
            [
                directory("etc"),
                file("etc/.wh.motd", b""),
                directory("var/cache"),
                file("var/cache/.wh..wh..opq", b""),
                file("var/cache/kept", b"k"),
                file(".wh..wh.plnk/123.456", b""),  # aufs bookkeeping: skipped
            ]
        ),
    )
    motd = (dest / "etc/motd").lstat()
    assert stat.S_ISCHR(motd.st_mode) and motd.st_rdev == os.makedev(0, 0)
    assert not (dest / "etc/.wh.motd").exists()
    assert os.getxattr(dest / "var/cache", OPAQUE_XATTR) == b"y"
    assert (dest / "var/cache/kept").read_bytes() == b"k"
    assert not (dest / ".wh..wh.plnk").exists()


@pytest.mark.parametrize(
    "compress",
    [
        lambda b: b,
        lambda b: gzip.compress(b, mtime=0),
        bz2.compress,
        lzma.compress,
    ],
    ids=["tar", "gzip", "bzip2", "xz"],
)
def test_compressions_and_diff_id(host: Path, compress: object) -> None:
    plain = layer_tar([file("hello", b"world")])
    blob = compress(plain)  # type: ignore[operator]
    result = extract_layer(io.BytesIO(blob), host / "layers" / "l1", expected_diff_id=sha256(plain))
    assert result.diff_id == sha256(plain)
    assert (result.path / "hello").read_bytes() == b"world"


def test_existing_destination_is_kept(host: Path) -> None:
    dest = extract(host, layer_tar([file("a", b"first")]))
    extract_layer(io.BytesIO(layer_tar([file("a", b"first")])), dest)
    assert (dest / "a").read_bytes() == b"first"
    assert os.listdir(host / "layers") == ["l1"]


# --- hostile layers: refused, nothing left ---------------------------------------------

OUTSIDE = "OUTSIDE"  # replaced by the absolute path of the fake host's outside/ directory

HOSTILE: list[tuple[str, list[Entry], str]] = [
    ("dotdot path", [file("../outside/sentinel", b"pwned")], "climbs out"),
    ("nested dotdot", [directory("a"), file("a/../../outside/x", b"pwned")], "climbs out"),
    ("absolute path", [file(f"/{OUTSIDE}/sentinel", b"pwned")], "absolute path"),
    (
        "write through an absolute symlink",
        [symlink("evil", OUTSIDE), file("evil/sentinel", b"pwned")],
        "goes through the symlink",
    ),
    (
        "relative escaping symlink",
        [symlink("evil", "../../outside"), file("evil/sentinel", b"pwned")],
        "climbs above the layer root",
    ),
    (
        "write through an inside symlink",
        [directory("d"), symlink("d/link", "../d"), file("d/link/x", b"x")],
        "goes through the symlink",
    ),
    ("hardlink outside", [hardlink("h", "../outside/sentinel")], "climbs out"),
    ("hardlink absolute", [hardlink("h", f"{OUTSIDE}/sentinel")], "absolute path"),
    (
        "hardlink through a symlink",
        [symlink("evil", OUTSIDE), hardlink("h", "evil/sentinel")],
        "goes through the symlink",
    ),
    (
        "character device",
        [Entry("dev/mem", tarfile.CHRTYPE, devmajor=1, devminor=1)],
        "device nodes are refused",
    ),
    (
        "block device",
        [Entry("disk", tarfile.BLKTYPE, devmajor=8, devminor=0)],
        "device nodes are refused",
    ),
    ("symlink replacing the root", [symlink(".", OUTSIDE)], "replace the layer root"),
    ("hardlink to a missing entry", [hardlink("h", "nowhere")], "not an entry"),
]


@pytest.mark.parametrize(("case", "entries", "message"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_layer_refused_and_leaves_nothing(
    host: Path, case: str, entries: list[Entry], message: str
) -> None:
    outside = str(host / "outside")
    for entry in entries:
        entry.name = entry.name.replace(f"/{OUTSIDE}", outside).replace(OUTSIDE, outside)
        entry.linkname = entry.linkname.replace(OUTSIDE, outside)
    # valid entries first, so that the refusal happens half-way through
    data = layer_tar([directory("etc"), file("etc/ok", b"ok"), *entries])
    before = snapshot(host)
    with pytest.raises(UnsafeLayer, match=message):
        extract(host, data)
    assert snapshot(host) == before
    assert (host / "outside" / "sentinel").read_bytes() == b"original"


def test_decompression_bomb_refused_quickly(host: Path) -> None:
    bomb = gzip_bomb(gib=1)  # 1 MB that expands to 1 GiB
    before = snapshot(host)
    started = time.monotonic()
    with pytest.raises(UnsafeLayer, match="decompression bomb"):
        extract(host, bomb)
    assert time.monotonic() - started < 10
    assert snapshot(host) == before


def test_absolute_size_cap(host: Path) -> None:
    before = snapshot(host)
    with pytest.raises(UnsafeLayer, match="size limit"):
        extract(host, layer_tar([file("big", b"x" * (1 << 20))]), limits=Limits(max_bytes=1 << 16))
    assert snapshot(host) == before


def test_too_many_entries(host: Path) -> None:
    data = layer_tar([file(f"f{i}") for i in range(51)])
    before = snapshot(host)
    with pytest.raises(UnsafeLayer, match="more than 50 entries"):
        extract(host, data, limits=Limits(max_entries=50))
    assert snapshot(host) == before


def test_huge_tar_header_refused(host: Path) -> None:
    data = layer_tar([file("a" * 200_000)])  # a pax header tarfile would buffer whole
    with pytest.raises(UnsafeLayer, match="tar headers larger"):
        extract(host, data, limits=Limits(max_header_bytes=64 * 1024))
    assert os.listdir(host / "layers") == []


def test_wrong_diff_id_refused(host: Path) -> None:
    with pytest.raises(DigestMismatch):
        extract(host, layer_tar([file("a")]), expected_diff_id="sha256:" + "0" * 64)
    assert os.listdir(host / "layers") == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x28\xb5\x2f\xfd" + b"\0" * 64, "zstd"),
        (gzip.compress(b"not a tar at all" * 100)[:-20], "readable"),
        (b"garbage" * 200, "readable"),
    ],
    ids=["zstd", "truncated gzip", "garbage"],
)
def test_unreadable_layers(host: Path, data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message) as caught:
        extract(host, data)
    assert isinstance(caught.value, RuntimeFailure)
    assert os.listdir(host / "layers") == []


def test_skipped_member_data_is_not_mistaken_for_a_header(host: Path) -> None:
    data = layer_tar([file(".wh..wh.plnk/blob", b"z" * (256 * 1024)), file("a", b"a")])
    dest = extract(host, data, limits=Limits(max_header_bytes=64 * 1024))
    assert os.listdir(dest) == ["a"]
