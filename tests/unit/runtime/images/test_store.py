"""The image store over archives built in the test: OCI and legacy `docker save` imports,
digests verified, all-or-nothing loads, names, ids, listing and reference-counted removal."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from orchestrator.runtime.images import (
    DigestMismatch,
    ImageNotFound,
    InvalidArchive,
    Store,
    UnsafeLayer,
    normalize_name,
)
from orchestrator.runtime.images.archive import host_architecture
from orchestrator.runtime.images.docker import ChunkReader, load_docker_save
from tests.unit.runtime.images.tarbuild import (
    directory,
    docker_save_archive,
    file,
    layer_tar,
    oci_archive,
    sha256,
    symlink,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="unpacking layers needs root")

BASE = layer_tar([directory("bin"), file("bin/tool", b"v1", mode=0o755), file("etc/os", b"x")])
TOP = layer_tar([file("etc/os", b"y"), file("etc/.wh.gone", b""), symlink("bin/sh", "/bin/tool")])


def store_files(root: Path) -> list[str]:
    """Everything in the store but its fixed skeleton (lock, oci-layout, empty index)."""
    skeleton = {"lock", "oci/oci-layout", "oci/index.json"}
    found = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            rel = str(Path(dirpath, name).relative_to(root))
            if rel not in skeleton:
                found.append(rel)
    return sorted(found)


def index_names(root: Path) -> list[str | None]:
    doc = json.loads((root / "oci/index.json").read_text())
    return [
        (m.get("annotations") or {}).get("org.opencontainers.image.ref.name")
        for m in doc["manifests"]
    ]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


def test_oci_archive_imported_and_resolved(store: Store, tmp_path: Path) -> None:
    archive = tmp_path / "app.tar"
    archive.write_bytes(oci_archive([BASE, TOP], conf={"Cmd": ["/bin/sh"], "WorkingDir": "/w"}))
    (ref,) = store.load_archive(archive)
    assert ref.name == "example.com/app:1"
    image = store.resolve("example.com/app:1")
    assert image.ref.id == ref.id and image.config.cmd == ("/bin/sh",)
    assert image.config.working_dir == "/w"
    bottom, top = image.layers
    assert bottom.name == sha256(BASE).split(":")[1] and top.name == sha256(TOP).split(":")[1]
    assert (bottom / "bin/tool").read_bytes() == b"v1" and (top / "etc/os").read_bytes() == b"y"
    assert (top / "etc/gone").is_char_device()
    assert image.lowerdir == f"{top}:{bottom}"
    # the same image by id, id prefix and manifest digest
    assert store.resolve(ref.id).layers == image.layers
    assert store.resolve(ref.id.split(":")[1][:12]).ref.digest == ref.digest
    assert store.resolve(ref.digest).ref.id == ref.id


def test_legacy_docker_save_with_shared_layer(store: Store) -> None:
    data = docker_save_archive([BASE, TOP], ["busybox"], duplicate_last=True)
    (ref,) = store.load_archive(io.BytesIO(data))
    assert ref.name == "busybox:latest"
    image = store.resolve("docker.io/library/busybox")
    assert len(image.layers) == 3 and image.layers[1] == image.layers[2]
    assert image.config.env == ("PATH=/bin",)
    (summary,) = store.list()
    assert summary.names == ("busybox:latest",) and summary.id == ref.id
    assert summary.created == "2024-01-02T03:04:05Z" and summary.size > 0


def test_non_seekable_stream_is_spooled(store: Store) -> None:
    data = oci_archive([BASE])
    chunks = [data[i : i + 777] for i in range(0, len(data), 777)]
    (ref,) = load_docker_save(store, chunks)
    assert ref.name == "example.com/app:1"
    assert ChunkReader([b"ab", b"cd"]).read(3) == b"abc"
    assert store_files(store.root) == sorted(
        [f"oci/blobs/sha256/{h}" for h in _blob_hexes(store)]
        + [
            f"layers/{sha256(BASE).split(':')[1]}/bin/tool",
            f"layers/{sha256(BASE).split(':')[1]}/etc/os",
        ]
    )  # and nothing in tmp/


def _blob_hexes(store: Store) -> list[str]:
    return os.listdir(store.root / "oci/blobs/sha256")


def test_image_index_picks_the_host_platform(store: Store) -> None:
    data = oci_archive([BASE], platforms=["s390x-not-this", host_architecture()])
    (ref,) = store.load_archive(io.BytesIO(data))
    assert store.resolve(ref.id).config.cmd == ("/bin/sh",)


def test_image_index_without_our_platform_refused(store: Store) -> None:
    data = oci_archive([BASE], platforms=["mips", "sparc"])
    with pytest.raises(InvalidArchive, match="no manifest for linux/"):
        store.load_archive(io.BytesIO(data))


@pytest.mark.parametrize("corrupt", ["layer", "config"])
def test_corrupted_blob_refused_and_nothing_kept(store: Store, corrupt: str) -> None:
    with pytest.raises(DigestMismatch, match="hashes to"):
        store.load_archive(io.BytesIO(oci_archive([BASE, TOP], corrupt=corrupt)))
    assert store_files(store.root) == []
    assert store.list() == ()


def test_corrupted_docker_save_layer_refused(store: Store) -> None:
    data = bytearray(docker_save_archive([BASE], ["x:1"]))
    marker = data.index(b"v1\0")  # the content of bin/tool inside layer0/layer.tar
    data[marker] = ord("X")
    with pytest.raises(DigestMismatch):
        store.load_archive(io.BytesIO(bytes(data)))
    assert store_files(store.root) == []


def test_malicious_layer_fails_the_whole_load(store: Store) -> None:
    evil = layer_tar([symlink("evil", "/etc"), file("evil/passwd", b"pwned")])
    with pytest.raises(UnsafeLayer):
        store.load_archive(io.BytesIO(oci_archive([BASE, evil])))
    assert store_files(store.root) == []  # the good layer unpacked first is gone too


def test_not_an_archive(store: Store, tmp_path: Path) -> None:
    with pytest.raises(InvalidArchive):
        store.load_archive(io.BytesIO(b"hello" * 1000))
    empty = io.BytesIO()
    import tarfile

    with tarfile.open(fileobj=empty, mode="w"):
        pass
    with pytest.raises(InvalidArchive, match="neither"):
        store.load_archive(io.BytesIO(empty.getvalue()))
    with pytest.raises(ImageNotFound):
        store.load_archive(tmp_path / "missing.tar")


def test_load_twice_is_idempotent_and_retag_moves_a_name(store: Store) -> None:
    store.load_archive(io.BytesIO(oci_archive([BASE], name="app:1")))
    store.load_archive(io.BytesIO(oci_archive([BASE], name="app:1")))
    assert index_names(store.root) == ["app:1"]
    other = oci_archive([TOP], name="app:1")
    (ref,) = store.load_archive(io.BytesIO(other))
    assert index_names(store.root) == ["app:1", None]
    assert store.resolve("app:1").ref.id == ref.id
    # the old image lost its only name and stays, unnamed, until removed by id
    old = [s for s in store.list() if not s.names]
    assert len(old) == 1 and store.layer_path(sha256(BASE)).is_dir()
    store.remove(old[0].id)
    assert not store.layer_path(sha256(BASE)).exists()


def test_unnamed_image_gets_the_given_name_or_stays_unnamed(store: Store) -> None:
    (ref,) = store.load_archive(io.BytesIO(oci_archive([BASE], name=None)))
    assert ref.name is None and index_names(store.root) == [None]
    (named,) = store.load_archive(io.BytesIO(oci_archive([BASE], name=None)), name="mine")
    assert named.name == "mine:latest" and index_names(store.root) == ["mine:latest"]


def test_remove_by_tag_keeps_shared_blobs_until_the_last_reference(store: Store) -> None:
    store.load_archive(io.BytesIO(oci_archive([BASE, TOP], name="app:1")))
    store.load_archive(io.BytesIO(oci_archive([BASE], name="base:1")))
    base_layer = store.layer_path(sha256(BASE))
    top_layer = store.layer_path(sha256(TOP))
    (removed,) = store.remove("app:1")
    assert removed.name == "app:1"
    assert base_layer.is_dir() and not top_layer.exists()
    assert [s.names for s in store.list()] == [("base:1",)]
    store.remove("base:1")
    assert store_files(store.root) == [] and store.list() == ()
    with pytest.raises(ImageNotFound):
        store.remove("base:1")


def test_remove_by_id_drops_every_name(store: Store) -> None:
    (ref,) = store.load_archive(io.BytesIO(oci_archive([BASE], name="a:1")))
    store.load_archive(io.BytesIO(oci_archive([BASE], name="b:1")))
    assert [s.names for s in store.list()] == [("a:1", "b:1")]
    removed = store.remove(ref.id)
    assert {r.name for r in removed} == {"a:1", "b:1"}
    assert store_files(store.root) == []


def test_missing_layer_directory_is_unpacked_again(store: Store) -> None:
    (ref,) = store.load_archive(io.BytesIO(oci_archive([BASE])))
    import shutil

    shutil.rmtree(store.layer_path(sha256(BASE)))
    image = store.resolve(ref.id)
    assert (image.layers[0] / "bin/tool").read_bytes() == b"v1"


def test_unknown_image(store: Store) -> None:
    with pytest.raises(ImageNotFound, match="no image 'nope'"):
        store.resolve("nope")


@pytest.mark.parametrize(
    ("name", "normal"),
    [
        ("busybox", "busybox:latest"),
        ("docker.io/library/busybox:1", "busybox:1"),
        ("docker.io/me/app", "me/app:latest"),
        ("localhost:5000/app", "localhost:5000/app:latest"),
        ("example.com/a/b:2", "example.com/a/b:2"),
        ("app@sha256:" + "a" * 64, "app@sha256:" + "a" * 64),
    ],
)
def test_normalize_name(name: str, normal: str) -> None:
    assert normalize_name(name) == normal
