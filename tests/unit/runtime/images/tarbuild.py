"""Building layer tars and image archives in memory for the image tests.

``tarfile`` is fine as a *writer*: these helpers craft exactly the hostile headers the
extractor must refuse (absolute names, ``..``, escaping links, device nodes...).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Entry:
    name: str
    type: bytes = tarfile.REGTYPE
    data: bytes = b""
    linkname: str = ""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: int = 1_600_000_000
    devmajor: int = 0
    devminor: int = 0
    pax: dict[str, str] = field(default_factory=dict)


def file(name: str, data: bytes = b"x", **kw: Any) -> Entry:
    return Entry(name, tarfile.REGTYPE, data, **kw)


def directory(name: str, **kw: Any) -> Entry:
    kw.setdefault("mode", 0o755)
    return Entry(name, tarfile.DIRTYPE, **kw)


def symlink(name: str, target: str) -> Entry:
    return Entry(name, tarfile.SYMTYPE, linkname=target, mode=0o777)


def hardlink(name: str, target: str) -> Entry:
    return Entry(name, tarfile.LNKTYPE, linkname=target)


def layer_tar(entries: list[Entry]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.name = e.name  # TarInfo keeps a leading "/" only when set directly
            info.type = e.type
            info.size = len(e.data) if e.type == tarfile.REGTYPE else 0
            info.linkname = e.linkname
            info.mode = e.mode
            info.uid, info.gid = e.uid, e.gid
            info.mtime = e.mtime
            info.devmajor, info.devminor = e.devmajor, e.devminor
            info.pax_headers = dict(e.pax)
            tar.addfile(info, io.BytesIO(e.data) if e.type == tarfile.REGTYPE else None)
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def gzip_bomb(gib: int = 1) -> bytes:
    """A gzip'd tar holding one ``gib`` GiB file of zeros, ~1 kB per MiB: concatenated gzip
    members (a valid gzip stream) so building it costs nothing."""
    size = gib << 30
    info = tarfile.TarInfo("zeros")
    info.size = size
    header = info.tobuf(format=tarfile.GNU_FORMAT)
    mib = gzip.compress(b"\0" * (1 << 20), compresslevel=9, mtime=0)
    parts = [gzip.compress(header, mtime=0)]
    parts.extend([mib] * (size >> 20))
    parts.append(gzip.compress(b"\0" * 1024, mtime=0))
    return b"".join(parts)


def config_json(diff_ids: list[str], **conf: Any) -> bytes:
    doc = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-02T03:04:05Z",
        "config": conf,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    return json.dumps(doc).encode()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def oci_archive(
    layers: list[bytes],
    *,
    name: str | None = "example.com/app:1",
    compress: bool = True,
    corrupt: str | None = None,
    conf: dict[str, Any] | None = None,
    platforms: list[str] | None = None,
) -> bytes:
    """An OCI image layout as a tar. ``corrupt``: "layer" or "config" flips a byte of that
    blob after its digest is taken. ``platforms``: wrap in an image index with one copy of
    the manifest per architecture."""
    blobs: dict[str, bytes] = {}
    descriptors = []
    diff_ids = []
    for plain in layers:
        diff_ids.append(sha256(plain))
        blob = gzip.compress(plain, mtime=0) if compress else plain
        media = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compress else "")
        descriptors.append({"mediaType": media, "digest": sha256(blob), "size": len(blob)})
        blobs[sha256(blob)] = blob
    config = config_json(diff_ids, **(conf or {"Cmd": ["/bin/sh"]}))
    blobs[sha256(config)] = config
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha256(config),
                "size": len(config),
            },
            "layers": descriptors,
        }
    ).encode()
    blobs[sha256(manifest)] = manifest
    top: dict[str, Any] = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": sha256(manifest),
        "size": len(manifest),
    }
    if platforms:
        index = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [
                    {**top, "platform": {"os": "linux", "architecture": arch}} for arch in platforms
                ],
            }
        ).encode()
        blobs[sha256(index)] = index
        top = {
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": sha256(index),
            "size": len(index),
        }
    if name:
        top["annotations"] = {"io.containerd.image.name": name}
    if corrupt:
        victim = descriptors[0]["digest"] if corrupt == "layer" else sha256(config)
        data = bytearray(blobs[victim])
        data[len(data) // 2] ^= 0xFF
        blobs[victim] = bytes(data)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        _add(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        _add(tar, "index.json", json.dumps({"schemaVersion": 2, "manifests": [top]}).encode())
        for digest, data in blobs.items():
            _add(tar, "blobs/sha256/" + digest.split(":")[1], data)
    return buffer.getvalue()


def docker_save_archive(
    layers: list[bytes], tags: list[str], *, duplicate_last: bool = False
) -> bytes:
    """A legacy ``docker save`` archive: ``<id>/layer.tar``, ``<config hex>.json`` and
    manifest.json. ``duplicate_last`` repeats the last layer as a symlinked member, as
    Docker does for a layer shared twice."""
    if duplicate_last:
        layers = [*layers, layers[-1]]
    diff_ids = [sha256(plain) for plain in layers]
    config = config_json(diff_ids, Cmd=["/bin/sh"], Env=["PATH=/bin"])
    config_name = sha256(config).split(":")[1] + ".json"
    buffer = io.BytesIO()
    paths = []
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        _add(tar, config_name, config)
        for index, plain in enumerate(layers):
            path = f"layer{index}/layer.tar"
            if duplicate_last and index == len(layers) - 1:
                info = tarfile.TarInfo(path)
                info.type = tarfile.SYMTYPE
                info.linkname = f"../layer{index - 1}/layer.tar"
                tar.addfile(info)
            else:
                _add(tar, path, plain)
            paths.append(path)
        manifest = [{"Config": config_name, "RepoTags": tags, "Layers": paths}]
        _add(tar, "manifest.json", json.dumps(manifest).encode())
    return buffer.getvalue()
