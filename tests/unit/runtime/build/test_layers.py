"""Layer tars: overlay whiteouts become .wh. files, opaque dirs get their marker, the same
tree always gives the same bytes."""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path

import pytest

from orchestrator.runtime.build.layers import diff_entries, write_layer

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts need mknod and trusted.*")


def upper_dir(root: Path) -> Path:
    (root / "etc" / "conf.d").mkdir(parents=True)
    (root / "etc" / "new.conf").write_text("x")
    os.link(root / "etc" / "new.conf", root / "etc" / "hard.conf")
    os.mknod(root / "etc" / "gone", stat.S_IFCHR | 0o000, os.makedev(0, 0))
    os.setxattr(root / "etc" / "conf.d", "trusted.overlay.opaque", b"y")
    os.symlink("new.conf", root / "etc" / "link")
    (root / "proc").mkdir()
    for path in (root, root / "etc", root / "etc" / "conf.d", root / "etc" / "new.conf"):
        os.utime(path, (1000, 1000), follow_symlinks=False)
    return root


def test_upper_dir_to_layer(tmp_path: Path) -> None:
    upper = upper_dir(tmp_path / "upper")
    entries = diff_entries(upper, skip=lambda rel, st: rel == "proc")
    layer = write_layer(entries, tmp_path / "blobs", tmp_path / "tmp")
    with tarfile.open(layer.path) as tar:
        members = {m.name.rstrip("/"): m for m in tar.getmembers()}
    assert sorted(members) == [
        "etc", "etc/.wh.gone", "etc/conf.d", "etc/conf.d/.wh..wh..opq", "etc/hard.conf",
        "etc/link", "etc/new.conf",
    ]
    assert members["etc/.wh.gone"].isfile() and members["etc/.wh.gone"].size == 0
    assert members["etc/link"].issym() and members["etc/link"].linkname == "new.conf"
    assert members["etc/new.conf"].islnk() and members["etc/new.conf"].linkname == "etc/hard.conf"
    assert all(m.uname == "" and m.gname == "" for m in members.values())
    assert "SCHILY.xattr.trusted.overlay.opaque" not in members["etc/conf.d"].pax_headers
    assert layer.diff_id == "sha256:" + layer.path.name


def test_same_tree_same_diff_id(tmp_path: Path) -> None:
    one = upper_dir(tmp_path / "one")
    first = write_layer(diff_entries(one), tmp_path / "blobs1", tmp_path / "tmp")
    # a second, identical tree made later (other inode numbers, other atimes)
    two = upper_dir(tmp_path / "two")
    os.utime(two / "etc" / "link", (1000, 1000), follow_symlinks=False)
    os.utime(one / "etc" / "link", (1000, 1000), follow_symlinks=False)
    for tree in (one, two):
        for sub in ("etc/.", "etc/hard.conf", "etc/gone", "proc"):
            os.utime(tree / sub, (1000, 1000), follow_symlinks=False)
    first = write_layer(diff_entries(one), tmp_path / "blobs1", tmp_path / "tmp")
    second = write_layer(diff_entries(two), tmp_path / "blobs2", tmp_path / "tmp")
    assert first.diff_id == second.diff_id
    assert not list((tmp_path / "tmp").iterdir())
