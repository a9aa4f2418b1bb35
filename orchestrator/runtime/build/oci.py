"""The result of a build as an OCI image layout tar, the form ``Store.load_archive`` imports.

Going through an archive keeps one way into the store (verified, locked, all or nothing)
instead of a second writer of its index. Layer blobs the store already holds are left
out of the archive ("thin"): the store never opens a member whose blob it has, so a fully
cached rebuild writes a few kilobytes instead of copying every layer again.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.runtime.images.digest import digest_hex, sha256_bytes

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
REF_NAME = "org.opencontainers.image.ref.name"


@dataclass(frozen=True)
class LayerDescriptor:
    """A layer of the manifest; ``blob`` is a file holding it when the store may lack it."""

    media_type: str
    digest: str
    size: int
    blob: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


def canonical(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def write_oci_archive(
    path: Path,
    config: bytes,
    layers: Sequence[LayerDescriptor],
    names: Sequence[str],
    *,
    have_blob: Callable[[str], bool],
) -> str:
    """Write the image as an OCI layout tar at ``path``; one index entry per name.
    Returns the manifest digest."""
    config_digest = sha256_bytes(config)
    manifest = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [layer.to_json() for layer in layers],
        }
    )
    manifest_digest = sha256_bytes(manifest)
    descriptor = {"mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest)}
    entries = [
        {**descriptor, "annotations": {REF_NAME: name}} for name in names
    ] or [descriptor]
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, "oci-layout", canonical({"imageLayoutVersion": "1.0.0"}))
        _add_bytes(tar, "index.json", canonical({"schemaVersion": 2, "manifests": entries}))
        _add_bytes(tar, f"blobs/sha256/{digest_hex(manifest_digest)}", manifest)
        _add_bytes(tar, f"blobs/sha256/{digest_hex(config_digest)}", config)
        written: set[str] = set()
        for layer in layers:
            if layer.digest in written or have_blob(layer.digest):
                continue
            if layer.blob is None:
                raise FileNotFoundError(f"layer {layer.digest} is in neither store nor cache")
            tar.add(str(layer.blob), arcname=f"blobs/sha256/{digest_hex(layer.digest)}")
            written.add(layer.digest)
    return manifest_digest
