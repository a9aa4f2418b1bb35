"""Exporting stored images as a ``docker save`` archive that ``docker load`` accepts.

The archive is both a ``docker save`` archive (``manifest.json`` with ``Config``,
``RepoTags`` and ``Layers``) and an OCI image layout (``oci-layout``, ``index.json``),
as Docker 25 writes them, with every blob once under ``blobs/sha256/``. Layer blobs go
out as stored: ``docker load`` decompresses gzip layers itself and checks each against
the config's diff ids, so nothing is recompressed here. The tar is streamed, so the
output may be a pipe.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from orchestrator.runtime.images.digest import digest_hex, parse_digest
from orchestrator.runtime.images.errors import ImageError
from orchestrator.runtime.images.store import OCI_MANIFEST, Store, normalize_name


@dataclass
class _Exported:
    manifest_digest: str
    manifest: dict[str, Any]
    config_digest: str
    tags: list[str] = field(default_factory=list)


def _is_tag(name: str) -> bool:
    is_id = len(name) >= 12 and all(c in "0123456789abcdef" for c in name)
    return not name.startswith("sha256:") and not is_id


def save_images(store: Store, names: Sequence[str], out: BinaryIO) -> list[str]:
    """Write the images ``names`` designate to ``out``; returns the tags written."""
    images: dict[str, _Exported] = {}
    for name in names:
        image = store.resolve(name)  # unknown names raise ImageNotFound before any output
        try:
            manifest = json.loads(store.blob_path(image.ref.digest).read_bytes())
        except (OSError, json.JSONDecodeError) as exc:
            raise ImageError(f"manifest of {name} cannot be read: {exc}") from exc
        entry = images.setdefault(
            image.ref.digest, _Exported(image.ref.digest, manifest, image.ref.id)
        )
        tag = normalize_name(name) if _is_tag(name) else None
        if tag and "@" not in tag and tag not in entry.tags:
            entry.tags.append(tag)
    docker_manifest: list[dict[str, Any]] = []
    index: list[dict[str, Any]] = []
    blobs: list[str] = []
    for exported in images.values():
        layers = [parse_digest(layer["digest"]) for layer in exported.manifest["layers"]]
        docker_manifest.append(
            {
                "Config": f"blobs/sha256/{digest_hex(exported.config_digest)}",
                "RepoTags": exported.tags or None,
                "Layers": [f"blobs/sha256/{digest_hex(d)}" for d in layers],
            }
        )
        size = store.blob_path(exported.manifest_digest).stat().st_size
        descriptor = {"mediaType": OCI_MANIFEST, "digest": exported.manifest_digest,
                      "size": size}
        for tag in exported.tags or [""]:
            index.append(
                {**descriptor, "annotations": {"io.containerd.image.name": tag,
                                               "org.opencontainers.image.ref.name":
                                               tag.rpartition(":")[2]}}
                if tag else descriptor
            )
        for digest in (exported.manifest_digest, exported.config_digest, *layers):
            if digest not in blobs:
                blobs.append(digest)
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for digest in blobs:
            path = store.blob_path(digest)
            if not path.is_file():
                raise ImageError(f"blob {digest} is missing from the store")
            tar.add(str(path), arcname=f"blobs/sha256/{digest_hex(digest)}")
        _add_json(tar, "oci-layout", {"imageLayoutVersion": "1.0.0"})
        _add_json(tar, "index.json", {"schemaVersion": 2, "manifests": index})
        _add_json(tar, "manifest.json", docker_manifest)
    return [tag for exported in images.values() for tag in exported.tags]


def _add_json(tar: tarfile.TarFile, name: str, doc: Any) -> None:
    data = json.dumps(doc, separators=(",", ":")).encode()
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))
