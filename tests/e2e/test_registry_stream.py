"""The streaming pull against a real registry (Debian's ``docker-registry`` on 127.0.0.1):
layers are unpacked while they download, several at a time, and the store still takes
all or nothing. A blob damaged mid-stream, a layer that unpacks to the wrong diff id and a
hostile layer each fail the pull with the right error and leave the store empty; a layer
the store already has unpacked is neither downloaded nor unpacked again.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.runtime.images import Store
from orchestrator.runtime.images.errors import DigestMismatch, ImageError, UnsafeLayer
from orchestrator.runtime.registry import CorruptBlob, RegistryClient, host_platform, pull
from orchestrator.runtime.registry.manifest import OCI_MANIFEST
from tests.support.registry import LocalRegistry, running_registry

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="unpacking layers needs root"),
]

EMPTY: dict[str, list[str]] = {"oci/blobs/sha256": [], "layers": [], "tmp": [], "staging": []}


@pytest.fixture(scope="module")
def registry() -> Iterator[LocalRegistry]:
    with running_registry() as made:
        yield made


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer(files: dict[str, bytes]) -> tuple[bytes, str]:
    """A gzipped layer and its diff id."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 1_600_000_000
            tar.addfile(info, io.BytesIO(data))
    plain = raw.getvalue()
    return gzip.compress(plain, mtime=0), digest_of(plain)


def text(megabytes: float) -> bytes:
    """Compressible but not trivial bytes: deflate makes real (Huffman) blocks of them."""
    words = [b"alpha", b"beta", b"gamma", b"delta", b"epsilon", b"zeta", b"eta", b"theta"]
    seed = os.urandom(int(megabytes * (1 << 20)) // 6)
    return b" ".join(words[b & 7] for b in seed)


def publish(
    client: RegistryClient,
    repository: str,
    layers: list[tuple[bytes, str]],
    tmp: Path,
    layer_type: str = "application/vnd.oci.image.layer.v1.tar+gzip",
) -> tuple[str, dict[str, int]]:
    """Push the blobs and a manifest tagged ``1``; the reference and each blob's size."""
    config = json.dumps(
        {
            "architecture": host_platform().architecture,
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff for _, diff in layers]},
        }
    ).encode()
    descriptors: list[dict[str, str | int]] = []
    for blob, media in [(config, "application/vnd.oci.image.config.v1+json")] + [
        (data, layer_type) for data, _ in layers
    ]:
        path = tmp / digest_of(blob).split(":")[1]
        path.write_bytes(blob)
        client.upload_blob(repository, digest_of(blob), path)
        descriptors.append({"mediaType": media, "digest": digest_of(blob), "size": len(blob)})
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptors[0],
        "layers": descriptors[1:],
    }
    client.put_manifest(repository, "1", json.dumps(manifest).encode(), OCI_MANIFEST)
    sizes = {str(d["digest"]): int(d["size"]) for d in descriptors}
    return f"{client.host}/{repository}:1", sizes


def contents(store: Store) -> dict[str, list[str]]:
    return {
        sub: sorted(p.name for p in (store.root / sub).iterdir())
        for sub in ("oci/blobs/sha256", "layers", "tmp", "staging")
        if (store.root / sub).is_dir()
    }


def test_layers_stream_in_and_a_shared_one_is_not_fetched_again(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    content = text(1)
    base = layer({"base/data": text(2)})
    first, second = layer({"one": text(1)}), layer({"two": content})
    with RegistryClient(registry.host) as client:
        ref_a, _ = publish(client, "stream/a", [base, first], tmp_path)
        ref_b, sizes = publish(client, "stream/b", [base, second], tmp_path)
    store = Store(tmp_path / "store")
    pull(store, ref_a)
    base_dir = store.layer_path(base[1])
    inode = base_dir.stat().st_ino

    result = pull(store, ref_b)
    config = next(d for d in sizes if d not in (digest_of(base[0]), digest_of(second[0])))
    assert result.downloaded == sizes[digest_of(second[0])] + sizes[config]
    assert base_dir.stat().st_ino == inode  # the base layer was not unpacked again
    image = store.resolve(ref_b)
    assert [p.name for p in image.layers] == [base[1][7:], second[1][7:]]
    assert (image.layers[1] / "two").read_bytes() == content
    assert contents(store)["staging"] == [] and contents(store)["tmp"] == []


def test_an_uncompressed_layer_streams_in_too(registry: LocalRegistry, tmp_path: Path) -> None:
    content = text(1)
    plain = gzip.decompress(layer({"plain": content})[0])  # its digest is its diff id
    with RegistryClient(registry.host) as client:
        ref, _ = publish(
            client, "stream/plain", [(plain, digest_of(plain))], tmp_path,
            layer_type="application/vnd.oci.image.layer.v1.tar",
        )  # fmt: skip
    store = Store(tmp_path / "store")
    pull(store, ref)
    (unpacked,) = store.resolve(ref).layers
    assert (unpacked / "plain").read_bytes() == content
    assert store.blob_path(digest_of(plain)).read_bytes() == plain


def test_a_blob_the_extractor_chokes_on_is_named_corrupt_and_nothing_is_stored(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    big = [layer({f"big{i}": text(3)}) for i in range(2)]
    damaged = layer({"small": text(1)})
    with RegistryClient(registry.host) as client:
        ref, _ = publish(client, "stream/damaged", [*big, damaged], tmp_path)
    blob = registry.blob_file(digest_of(damaged[0]))
    content = bytearray(blob.read_bytes())
    content[0] ^= 0xFF  # no gzip magic: read as a tar, it fails on its first header
    blob.write_bytes(bytes(content))

    store = Store(tmp_path / "store")
    with pytest.raises(CorruptBlob, match="corrupted") as caught:
        pull(store, ref)
    assert isinstance(caught.value.__cause__, ImageError)  # the extractor choked first
    assert store.list() == ()
    assert contents(store) == EMPTY

    # damage further in is caught by the hash at the end of the stream, if not before
    content[0] ^= 0xFF
    content[len(content) // 2] ^= 0x55
    blob.write_bytes(bytes(content))
    with pytest.raises(CorruptBlob, match="corrupted"):
        pull(store, ref)
    assert contents(store) == EMPTY


def test_a_layer_with_the_wrong_diff_id_leaves_nothing(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    good = layer({"good": text(2)})
    data, _ = layer({"claims": b"to be something else"})
    liar = (data, digest_of(b"not this layer's tar"))
    with RegistryClient(registry.host) as client:
        ref, _ = publish(client, "stream/liar", [good, liar], tmp_path)
    store = Store(tmp_path / "store")
    with pytest.raises(DigestMismatch, match="the image config says"):
        pull(store, ref)
    assert contents(store) == EMPTY


def test_a_hostile_layer_is_refused_while_streaming(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    hostile = layer({"../escaped": b"out of the layer"})
    with RegistryClient(registry.host) as client:
        ref, _ = publish(client, "stream/hostile", [hostile], tmp_path)
    store = Store(tmp_path / "store")
    with pytest.raises(UnsafeLayer, match="climbs out"):
        pull(store, ref)
    assert contents(store) == EMPTY
    assert not (store.root / "escaped").exists() and not (tmp_path / "escaped").exists()
