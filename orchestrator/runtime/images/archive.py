"""Reading image archives: ``docker save`` (manifest.json) and OCI image layouts (index.json).

This module only *reads*: it turns an archive into a list of :class:`ArchiveImage`, each
naming the archive members that hold its config and layers and the digests they must hash
to, and opens members as byte streams. Copying into the store, verifying and unpacking is
the store's job. The outer archive is never extracted to disk; ``tarfile`` reads its
headers and member data only.

When an archive is both (Docker ≥ 25 writes an OCI layout *and* manifest.json), the
``docker save`` manifest wins: it carries the full ``RepoTags``.
"""

from __future__ import annotations

import json
import platform
import posixpath
import tarfile
from dataclasses import dataclass
from typing import IO, Any, BinaryIO

from orchestrator.runtime.images.digest import digest_hex, parse_digest, verify_bytes
from orchestrator.runtime.images.errors import ImageError, InvalidArchive

MAX_JSON_BYTES = 16 << 20
MAX_MEMBERS = 200_000

MANIFEST_TYPES = frozenset(
    {
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    }
)
INDEX_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)
NAME_ANNOTATIONS = ("io.containerd.image.name", "org.opencontainers.image.ref.name")

_ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "i686": "386",
}


@dataclass(frozen=True)
class BlobSource:
    """An archive member holding a blob, and the digest it must have (None: not known
    up front; for ``docker save`` layers the config's diff ids check them instead)."""

    member: str
    digest: str | None
    media_type: str = ""


@dataclass(frozen=True)
class ArchiveImage:
    names: tuple[str, ...]
    config: BlobSource
    layers: tuple[BlobSource, ...]
    manifest: bytes | None = None  # the original OCI manifest, kept byte for byte


def host_architecture() -> str:
    machine = platform.machine()
    return _ARCH.get(machine, machine)


class Archive:
    """An opened, seekable image archive."""

    def __init__(self, fileobj: BinaryIO) -> None:
        try:
            self._tar = tarfile.open(fileobj=fileobj, mode="r:*")  # noqa: SIM115 (closed by close())
        except tarfile.TarError as exc:
            raise InvalidArchive(f"not a tar archive: {exc}") from exc
        self._members: dict[str, tarfile.TarInfo] = {}
        try:
            for count, info in enumerate(self._tar, start=1):
                if count > MAX_MEMBERS:
                    raise InvalidArchive(f"archive has more than {MAX_MEMBERS} members")
                self._members[posixpath.normpath(info.name).lstrip("/")] = info
        except tarfile.TarError as exc:
            raise InvalidArchive(f"archive is damaged: {exc}") from exc

    def close(self) -> None:
        self._tar.close()

    def has(self, path: str) -> bool:
        return path in self._members

    def _resolve(self, path: str) -> tarfile.TarInfo:
        """The regular-file member at ``path``, following symlinks *inside the archive*
        (legacy ``docker save`` links duplicate layers) and refusing any that leave it."""
        seen = 0
        current = posixpath.normpath(path)
        while True:
            info = self._members.get(current)
            if info is None:
                raise InvalidArchive(f"archive member {path!r} is missing")
            if info.isreg() or info.islnk():
                return info
            if not info.issym() or seen >= 16:
                raise InvalidArchive(f"archive member {path!r} is not a regular file")
            seen += 1
            target = posixpath.normpath(posixpath.join(posixpath.dirname(current), info.linkname))
            if target.startswith(("/", "../")) or target == "..":
                raise InvalidArchive(f"archive member {path!r} links outside the archive")
            current = target

    def open(self, path: str) -> IO[bytes]:
        stream = self._tar.extractfile(self._resolve(path))
        if stream is None:
            raise InvalidArchive(f"archive member {path!r} cannot be read")
        return stream

    def size(self, path: str) -> int:
        return self._resolve(path).size

    def read_small(self, path: str) -> bytes:
        if self.size(path) > MAX_JSON_BYTES:
            raise InvalidArchive(f"archive member {path!r} is larger than {MAX_JSON_BYTES} bytes")
        with self.open(path) as stream:
            return stream.read()

    def read_json(self, path: str) -> Any:
        try:
            return json.loads(self.read_small(path))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidArchive(f"{path} is not JSON: {exc}") from exc

    def images(self) -> list[ArchiveImage]:
        """Every image of the archive, in archive order."""
        if self.has("manifest.json"):
            return self._docker_images()
        if self.has("index.json"):
            return self._oci_images()
        raise InvalidArchive(
            "neither a `docker save` archive (manifest.json) nor an OCI archive (index.json)"
        )

    # --- docker save -------------------------------------------------------------------

    def _docker_images(self) -> list[ArchiveImage]:
        doc = self.read_json("manifest.json")
        if not isinstance(doc, list) or not doc:
            raise InvalidArchive("manifest.json must be a non-empty list")
        images = []
        for entry in doc:
            if not isinstance(entry, dict):
                raise InvalidArchive("manifest.json entries must be objects")
            config = entry.get("Config")
            layers = entry.get("Layers") or []
            tags = entry.get("RepoTags") or []
            if not isinstance(config, str) or not isinstance(layers, list):
                raise InvalidArchive("manifest.json: Config must be a path, Layers a list")
            if not all(isinstance(x, str) for x in [*layers, *tags]):
                raise InvalidArchive("manifest.json: Layers and RepoTags must hold strings")
            images.append(
                ArchiveImage(
                    names=tuple(tags),
                    config=BlobSource(config, _digest_from_member(config)),
                    layers=tuple(BlobSource(path, _digest_from_blob_path(path)) for path in layers),
                )
            )
        return images

    # --- OCI layout --------------------------------------------------------------------

    def _oci_images(self) -> list[ArchiveImage]:
        layout = self.read_json("oci-layout") if self.has("oci-layout") else None
        if not isinstance(layout, dict) or layout.get("imageLayoutVersion") != "1.0.0":
            raise InvalidArchive("oci-layout is missing or not version 1.0.0")
        index = self.read_json("index.json")
        if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
            raise InvalidArchive("index.json must hold a manifests list")
        images = []
        for descriptor in index["manifests"]:
            names = _names(descriptor)
            manifest_bytes = self._manifest_for_platform(descriptor, depth=0)
            images.append(self._oci_image(manifest_bytes, names))
        return images

    def blob(self, descriptor: Any, what: str) -> bytes:
        digest = _descriptor_digest(descriptor, what)
        data = self.read_small(_blob_path(digest))
        verify_bytes(data, digest, what)
        return data

    def _manifest_for_platform(self, descriptor: Any, depth: int) -> bytes:
        media_type = descriptor.get("mediaType", "") if isinstance(descriptor, dict) else ""
        data = self.blob(descriptor, "manifest")
        doc = _json(data, "manifest")
        media_type = media_type or doc.get("mediaType", "")
        if media_type in MANIFEST_TYPES or (not media_type and "config" in doc):
            return data
        if media_type not in INDEX_TYPES or depth > 2:
            raise InvalidArchive(f"unsupported manifest media type {media_type!r}")
        candidates = doc.get("manifests")
        if not isinstance(candidates, list) or not candidates:
            raise InvalidArchive("image index has no manifests")
        chosen = _choose_platform(candidates)
        return self._manifest_for_platform(chosen, depth + 1)

    def _oci_image(self, manifest: bytes, names: tuple[str, ...]) -> ArchiveImage:
        doc = _json(manifest, "manifest")
        config = doc.get("config")
        layers = doc.get("layers")
        if not isinstance(config, dict) or not isinstance(layers, list):
            raise InvalidArchive("manifest must have a config and a layers list")
        config_digest = _descriptor_digest(config, "config")
        return ArchiveImage(
            names=names,
            config=BlobSource(
                _blob_path(config_digest), config_digest, config.get("mediaType", "")
            ),
            layers=tuple(
                BlobSource(_blob_path(d), d, layer.get("mediaType", ""))
                for layer in layers
                for d in [_descriptor_digest(layer, "layer")]
            ),
            manifest=manifest,
        )


def _json(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArchive(f"{what} is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidArchive(f"{what} must be a JSON object")
    return doc


def _descriptor_digest(descriptor: Any, what: str) -> str:
    if not isinstance(descriptor, dict):
        raise InvalidArchive(f"{what} descriptor must be an object")
    try:
        return parse_digest(descriptor.get("digest"))
    except ImageError as exc:
        raise InvalidArchive(f"{what} descriptor: {exc}") from exc


def _blob_path(digest: str) -> str:
    return f"blobs/sha256/{digest_hex(digest)}"


def _digest_from_blob_path(path: str) -> str | None:
    """``blobs/sha256/<hex>`` names its digest; legacy ``<id>/layer.tar`` does not."""
    head, _, tail = path.rpartition("/")
    if head.endswith("blobs/sha256"):
        return parse_digest("sha256:" + tail)
    return None


def _digest_from_member(path: str) -> str:
    """A docker-save config is ``<hex>.json`` (legacy) or ``blobs/sha256/<hex>``."""
    found = _digest_from_blob_path(path)
    if found is not None:
        return found
    base = posixpath.basename(path)
    if base.endswith(".json"):
        return parse_digest("sha256:" + base[: -len(".json")])
    raise InvalidArchive(f"manifest.json: config {path!r} does not name its digest")


def _names(descriptor: Any) -> tuple[str, ...]:
    """The image name of an index.json entry, when it carries a full reference (a bare tag
    such as ``latest`` names no repository, so it names nothing)."""
    annotations = descriptor.get("annotations") if isinstance(descriptor, dict) else None
    if not isinstance(annotations, dict):
        return ()
    for key in NAME_ANNOTATIONS:
        value = annotations.get(key)
        if isinstance(value, str) and value and (":" in value or "/" in value):
            return (value,)
    return ()


def _choose_platform(candidates: list[Any]) -> Any:
    arch = host_architecture()
    for candidate in candidates:
        plat = candidate.get("platform") if isinstance(candidate, dict) else None
        if (
            isinstance(plat, dict)
            and plat.get("os") == "linux"
            and plat.get("architecture") == arch
        ):
            return candidate
    if len(candidates) == 1:
        return candidates[0]
    raise InvalidArchive(f"image index has no manifest for linux/{arch}")
