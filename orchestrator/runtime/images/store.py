"""The content-addressed image store: an OCI image layout plus unpacked layers.

On disk, under the root the caller gives::

    lock                       flock(2) taken for every change (load, remove, unpack)
    oci/oci-layout             {"imageLayoutVersion": "1.0.0"}
    oci/index.json             one entry per name (annotation org.opencontainers.image.ref.name);
                               an image without a name has one entry without annotations
    oci/blobs/sha256/<hex>     manifests, configs and layer blobs, each verified before named
    layers/<hex>/              a layer unpacked once, keyed by its diff id (a lowerdir)
    tmp/                       spooled archives and blobs being written

A blob or layer directory exists only complete (written aside, then renamed). A blob lives
as long as a manifest in the index references it: :meth:`Store.remove` drops names, then
sweeps what no remaining manifest (or its config's diff ids) references. A load that fails
sweeps the same way, so it leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol

from orchestrator.runtime import atomic
from orchestrator.runtime.images.archive import Archive, ArchiveImage, BlobSource
from orchestrator.runtime.images.config import ImageConfig, parse_image_config
from orchestrator.runtime.images.digest import (
    HashingReader,
    Readable,
    digest_hex,
    parse_digest,
    sha256_bytes,
    verify_bytes,
)
from orchestrator.runtime.images.errors import DigestMismatch, ImageError, ImageNotFound
from orchestrator.runtime.images.extract import Limits, extract_layer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
REF_NAME = "org.opencontainers.image.ref.name"
_CHUNK = 1 << 20
_ID_PREFIX = re.compile(r"^[0-9a-f]{12,64}$")


@dataclass(frozen=True)
class ImageRef:
    """A stored image: ``id`` is its config digest (Docker's image id), ``digest`` its
    manifest's; ``name`` is the name it was loaded under, if any."""

    name: str | None
    id: str
    digest: str


@dataclass(frozen=True)
class Image:
    """What a runtime needs to start a container from an image."""

    ref: ImageRef
    config: ImageConfig
    layers: tuple[Path, ...]  # unpacked layer directories, bottom layer first

    @property
    def lowerdir(self) -> str:
        """The overlayfs ``lowerdir=`` value: the *top* layer comes first there."""
        return ":".join(str(path) for path in reversed(self.layers))


@dataclass(frozen=True)
class ImageSummary:
    names: tuple[str, ...]
    id: str
    digest: str
    size: int  # bytes of the layer blobs as stored
    created: str


def normalize_name(name: str) -> str:
    """Docker's familiar form: ``docker.io/library/busybox`` → ``busybox:latest``."""
    name = name.strip()
    for prefix in ("docker.io/", "index.docker.io/", "registry-1.docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
            if name.startswith("library/") and name.count("/") == 1:
                name = name[len("library/") :]
            break
    if "@" not in name and ":" not in name.rpartition("/")[2]:
        name += ":latest"
    return name


@dataclass(frozen=True)
class StoredManifest:
    """An image's manifest exactly as stored (its bytes are what its digest names), for a
    registry push: the blobs it references are at :meth:`Store.blob_path`."""

    ref: ImageRef
    data: bytes
    media_type: str
    config: str  # digest of the config blob
    layers: tuple[str, ...]  # digests of the layer blobs, bottom first


class _Blobs(Protocol):
    """Where :meth:`Store._import` reads an image's blobs from: an archive, or files fetched
    from a registry."""

    def read_small(self, path: str) -> bytes: ...

    def open(self, path: str) -> IO[bytes]: ...


class _FetchedBlobs:
    """Blobs fetched into a staging directory (files named by their hex digest); a blob
    not fetched because the store already had it is read from the store."""

    def __init__(self, directory: Path, store: Store) -> None:
        self._directory = directory
        self._store = store

    def open(self, path: str) -> IO[bytes]:
        fetched = self._directory / path
        try:
            return fetched.open("rb") if fetched.exists() else self._store.blob_path(
                "sha256:" + path
            ).open("rb")
        except FileNotFoundError:
            raise ImageError(f"blob sha256:{path} was neither fetched nor in the store") from None

    def read_small(self, path: str) -> bytes:
        with self.open(path) as stream:
            return stream.read()


@dataclass
class _Entry:
    """One index.json descriptor."""

    digest: str
    size: int
    name: str | None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"mediaType": OCI_MANIFEST, "digest": self.digest, "size": self.size}
        if self.name is not None:
            doc["annotations"] = {REF_NAME: self.name}
        return doc


def _canonical(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


class Store:
    """An image store rooted at ``root`` (created on first use)."""

    def __init__(self, root: Path | str, *, limits: Limits | None = None) -> None:
        self.root = Path(root)
        self.limits = limits or Limits()
        self._oci = self.root / "oci"
        self._blobs = self._oci / "blobs" / "sha256"
        self._layers = self.root / "layers"
        self._tmp = self.root / "tmp"
        self._index = self._oci / "index.json"

    @classmethod
    def at_state_root(cls, state_root: Path | str, *, limits: Limits | None = None) -> Store:
        """The store inside a runtime state root (``<state_root>/images``), so that the
        CLI and the namespace adapter agree on where images live."""
        return cls(Path(state_root) / "images", limits=limits)

    # --- layout, locking, index -----------------------------------------------------

    def _ensure_layout(self) -> None:
        for path in (self.root, self._blobs, self._layers, self._tmp):
            path.mkdir(mode=0o711, parents=True, exist_ok=True)
        layout = self._oci / "oci-layout"
        if not layout.exists():
            self._write_atomic(layout, _canonical({"imageLayoutVersion": "1.0.0"}))
        if not self._index.exists():
            self._write_index([])

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._ensure_layout()
        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _write_atomic(self, path: Path, data: bytes) -> None:
        atomic.write_atomic(path, data)

    def _read_index(self) -> list[_Entry]:
        try:
            doc = json.loads(self._index.read_bytes())
        except FileNotFoundError:
            return []
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ImageError(f"{self._index} is damaged: {exc}") from exc
        entries = []
        for item in doc.get("manifests", []):
            name = (item.get("annotations") or {}).get(REF_NAME)
            entries.append(_Entry(parse_digest(item["digest"]), int(item["size"]), name))
        return entries

    def _write_index(self, entries: list[_Entry]) -> None:
        doc = {"schemaVersion": 2, "manifests": [e.to_json() for e in entries]}
        self._write_atomic(self._index, json.dumps(doc, indent=2).encode())

    # --- blobs ----------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self._blobs / digest_hex(digest)

    def _read_blob(self, digest: str) -> bytes:
        try:
            data = self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise ImageError(f"blob {digest} is missing from the store") from None
        verify_bytes(data, digest, f"blob {digest}")
        return data

    def _put_blob(
        self, source: Readable | IO[bytes], expected: str | None, what: str
    ) -> tuple[str, int]:
        """Copy a stream into the store, hashing it; refused unless it matches ``expected``."""
        fd, tmp = tempfile.mkstemp(prefix="blob-", dir=self._tmp)
        try:
            reader = HashingReader(source)
            with os.fdopen(fd, "wb") as out:
                while chunk := reader.read(_CHUNK):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            digest = reader.digest
            if expected is not None and digest != expected:
                raise DigestMismatch(f"{what}: content hashes to {digest}, expected {expected}")
            final = self.blob_path(digest)
            if final.exists():
                os.unlink(tmp)
            else:
                os.rename(tmp, final)
            return digest, reader.count
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _put_bytes(self, data: bytes) -> tuple[str, int]:
        digest = sha256_bytes(data)
        if not self.blob_path(digest).exists():
            self._write_atomic(self.blob_path(digest), data)
        return digest, len(data)

    # --- layers ---------------------------------------------------------------------

    def layer_path(self, diff_id: str) -> Path:
        return self._layers / digest_hex(diff_id)

    def _unpack(self, blob: str, diff_id: str) -> Path:
        dest = self.layer_path(diff_id)
        if dest.is_dir():
            return dest
        with self.blob_path(blob).open("rb") as source:
            extract_layer(source, dest, limits=self.limits, expected_diff_id=diff_id)
        return dest

    # --- loading --------------------------------------------------------------------

    def load_archive(
        self, source: Path | str | BinaryIO, *, name: str | None = None
    ) -> tuple[ImageRef, ...]:
        """Import every image of a ``docker save`` or OCI archive; returns one ref per
        image name (an unnamed image gets ``name`` if given, else one ref without name).

        All or nothing: digests are verified and every layer unpacked before any name is
        written to the index; on failure whatever this load added is swept away.
        """
        with self._locked(), self._opened(source) as fileobj:
            archive = Archive(fileobj)
            try:
                entries = self._read_index()
                refs: list[ImageRef] = []
                try:
                    for image in archive.images():
                        refs.extend(self._import(archive, image, name, entries))
                except BaseException:
                    self._sweep(self._read_index())
                    raise
                self._write_index(entries)
                return tuple(refs)
            finally:
                archive.close()

    @contextlib.contextmanager
    def _opened(self, source: Path | str | BinaryIO) -> Iterator[BinaryIO]:
        """A seekable file for ``source``; a pipe or a socket is spooled into ``tmp/``."""
        if isinstance(source, str | Path):
            try:
                handle = open(source, "rb")  # noqa: SIM115 (closed below, after the yield)
            except FileNotFoundError:
                raise ImageNotFound(f"no archive at {source}") from None
            with handle:
                yield handle
            return
        seekable = False
        with contextlib.suppress(AttributeError, OSError):
            seekable = source.seekable()
        if seekable:
            yield source
            return
        with tempfile.TemporaryFile(dir=self._tmp) as spool:
            shutil.copyfileobj(source, spool, _CHUNK)
            spool.seek(0)
            yield spool

    def _import(
        self, archive: _Blobs, image: ArchiveImage, name: str | None, entries: list[_Entry]
    ) -> list[ImageRef]:
        raw_config = archive.read_small(image.config.member)
        if image.config.digest is not None:
            verify_bytes(raw_config, image.config.digest, f"config {image.config.member}")
        config = parse_image_config(raw_config)
        if len(config.diff_ids) != len(image.layers):
            raise ImageError(
                f"image has {len(image.layers)} layers but its config lists "
                f"{len(config.diff_ids)} diff ids"
            )
        config_digest, config_size = self._put_bytes(raw_config)
        layer_descriptors = []
        for layer, diff_id in zip(image.layers, config.diff_ids, strict=True):
            digest, size = self._put_layer(archive, layer, diff_id)
            self._unpack(digest, diff_id)
            media_type = layer.media_type or self._sniff_media_type(digest)
            layer_descriptors.append({"mediaType": media_type, "digest": digest, "size": size})
        manifest = image.manifest
        if manifest is None:  # docker save: write the OCI manifest it implies
            manifest = _canonical(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": {
                        "mediaType": OCI_CONFIG,
                        "digest": config_digest,
                        "size": config_size,
                    },
                    "layers": layer_descriptors,
                }
            )
        manifest_digest, manifest_size = self._put_bytes(manifest)
        names = [normalize_name(n) for n in image.names] or ([normalize_name(name)] if name else [])
        for new in names:
            displaced = [e for e in entries if e.name == new and e.digest != manifest_digest]
            entries[:] = [e for e in entries if e.name != new]
            entries.append(_Entry(manifest_digest, manifest_size, new))
            for old in displaced:  # the image that had the name stays, unnamed (`<none>`)
                if not any(e.digest == old.digest for e in entries):
                    entries.append(_Entry(old.digest, old.size, None))
        if not names:
            if not any(e.digest == manifest_digest for e in entries):
                entries.append(_Entry(manifest_digest, manifest_size, None))
            return [ImageRef(None, config_digest, manifest_digest)]
        # an unnamed entry of the same manifest is now redundant
        entries[:] = [e for e in entries if e.name is not None or e.digest != manifest_digest]
        return [ImageRef(n, config_digest, manifest_digest) for n in names]

    def _put_layer(self, archive: _Blobs, layer: BlobSource, diff_id: str) -> tuple[str, int]:
        if layer.digest is not None and self.blob_path(layer.digest).exists():
            return layer.digest, self.blob_path(layer.digest).stat().st_size
        with archive.open(layer.member) as stream:
            digest, size = self._put_blob(stream, layer.digest, f"layer {layer.member}")
        if (
            layer.digest is None
            and self._sniff_media_type(digest) == OCI_LAYER
            and digest != diff_id
        ):
            # an uncompressed layer's digest is its diff id
            raise DigestMismatch(
                f"layer {layer.member}: content hashes to {digest}, the config says {diff_id}"
            )
        return digest, size

    def _sniff_media_type(self, digest: str) -> str:
        with self.blob_path(digest).open("rb") as blob:
            head = blob.read(4)
        if head.startswith(b"\x1f\x8b"):
            return OCI_LAYER + "+gzip"
        if head.startswith(b"\x28\xb5\x2f\xfd"):
            return OCI_LAYER + "+zstd"
        return OCI_LAYER

    # --- registry transfers -----------------------------------------------------------

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        """A fresh directory on the store's filesystem for blobs being fetched (removed
        afterwards). Outside ``tmp/``, so a concurrent sweep does not delete a pull's
        downloads half-way."""
        self._ensure_layout()
        parent = self.root / "staging"
        parent.mkdir(mode=0o700, exist_ok=True)
        directory = Path(tempfile.mkdtemp(prefix="fetch-", dir=parent))
        try:
            yield directory
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def import_fetched(
        self, manifest: bytes, directory: Path, *, name: str | None, verified: bool = False
    ) -> ImageRef:
        """Import the image ``manifest`` describes (an OCI or Docker schema 2 image
        manifest, kept byte for byte) from blobs fetched into ``directory`` (a
        :meth:`staging` directory; files named by hex digest), or already in the store.

        Every blob is verified again as it is copied in, layers are unpacked, then the name
        is written; all or nothing, like :meth:`load_archive`.

        ``verified=True`` is the streaming pull's promise that each blob file appeared
        only once its bytes hashed to its name (as ``RegistryClient.fetch_blob`` does) and
        that each directory ``layers/<hex>`` is a layer ``extract_layer`` unpacked with
        ``expected_diff_id``: the blobs are then moved in without a second hash and the
        layers are moved into place instead of being unpacked again.
        """
        doc = json.loads(manifest)
        if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict):
            raise ImageError("manifest has no config descriptor")
        layers = doc.get("layers")
        if not isinstance(layers, list):
            raise ImageError("manifest has no layers list")
        config_digest = parse_digest(doc["config"].get("digest"))
        image = ArchiveImage(
            names=(),
            config=BlobSource(digest_hex(config_digest), config_digest),
            layers=tuple(
                BlobSource(digest_hex(d), d, str(layer.get("mediaType", "")))
                for layer in layers
                for d in [parse_digest(layer.get("digest") if isinstance(layer, dict) else None)]
            ),
            manifest=manifest,
        )
        with self._locked():
            entries = self._read_index()
            try:
                self._adopt(directory, verified)
                (ref,) = self._import(_FetchedBlobs(directory, self), image, name, entries)
            except BaseException:
                self._sweep(self._read_index())
                raise
            self._write_index(entries)
            return ref

    def _adopt(self, directory: Path, verified: bool = False) -> None:
        """Move fetched blobs into ``blobs/`` by rename (same filesystem) rather than copy;
        each is hashed again first unless the fetcher ``verified`` it as it streamed, so
        nothing unverified gets a name. Verified pulls also bring unpacked layers."""
        if verified:
            self._adopt_layers(directory / "layers")
        for path in directory.iterdir():
            if not re.fullmatch(r"[0-9a-f]{64}", path.name) or not path.is_file():
                continue
            digest = "sha256:" + path.name
            if self.has_blob(digest):
                continue
            if verified:
                os.rename(path, self.blob_path(digest))
                continue
            with path.open("rb") as blob:
                reader = HashingReader(blob)
                reader.drain(_CHUNK)
                os.fsync(blob.fileno())
            if reader.digest != digest:
                raise DigestMismatch(f"fetched blob {digest}: content hashes to {reader.digest}")
            os.rename(path, self.blob_path(digest))

    def _adopt_layers(self, directory: Path) -> None:
        """Rename layers a streaming pull unpacked (each verified against its diff id by
        ``extract_layer``) into ``layers/``; one already there is as good as ours."""
        if not directory.is_dir():
            return
        for path in directory.iterdir():
            if not re.fullmatch(r"[0-9a-f]{64}", path.name) or path.is_symlink():
                continue
            if not path.is_dir() or self.layer_path("sha256:" + path.name).is_dir():
                continue
            os.rename(path, self.layer_path("sha256:" + path.name))

    def manifest_of(self, name: str) -> StoredManifest:
        """The manifest of the image ``name`` designates, as stored, for a push."""
        self._ensure_layout()
        found, _ = self._matching(self._read_index(), name)
        if not found:
            raise ImageNotFound(f"no image {name!r} in the store at {self.root}")
        entry = found[0]
        data = self._read_blob(entry.digest)
        doc = self._manifest(entry.digest)
        return StoredManifest(
            ref=ImageRef(entry.name, parse_digest(doc["config"]["digest"]), entry.digest),
            data=data,
            media_type=str(doc.get("mediaType") or OCI_MANIFEST),
            config=parse_digest(doc["config"]["digest"]),
            layers=tuple(parse_digest(layer["digest"]) for layer in doc["layers"]),
        )

    def tag(self, source: str, target: str) -> ImageRef:
        """Give the image ``source`` designates the name ``target`` too (an image that had
        ``target`` keeps its other names, or stays unnamed, as with a load)."""
        with self._locked():
            entries = self._read_index()
            found, _ = self._matching(entries, source)
            if not found:
                raise ImageNotFound(f"no image {source!r} in the store at {self.root}")
            entry = found[0]
            new = normalize_name(target)
            displaced = [e for e in entries if e.name == new and e.digest != entry.digest]
            entries = [e for e in entries if e.name != new]
            entries.append(_Entry(entry.digest, entry.size, new))
            for old in displaced:
                if not any(e.digest == old.digest for e in entries):
                    entries.append(_Entry(old.digest, old.size, None))
            entries = [e for e in entries if e.name is not None or e.digest != entry.digest]
            self._write_index(entries)
            return ImageRef(new, self._config_of(entry), entry.digest)

    # --- reading --------------------------------------------------------------------

    def _matching(self, entries: list[_Entry], name: str) -> tuple[list[_Entry], bool]:
        """Index entries ``name`` designates, and whether it named a tag (not an id)."""
        if name.startswith("sha256:"):
            wanted = parse_digest(name)
            return [e for e in entries if e.digest == wanted or self._config_of(e) == wanted], False
        normalized = normalize_name(name)
        by_name = [e for e in entries if e.name == normalized]
        if by_name or not _ID_PREFIX.match(name):
            return by_name, True
        manifests = {e.digest for e in entries if self._config_of(e).split(":")[1].startswith(name)}
        if len(manifests) > 1:
            raise ImageError(f"{name!r} is an ambiguous image id prefix")
        return [e for e in entries if e.digest in manifests], False

    def _manifest(self, digest: str) -> dict[str, Any]:
        doc = json.loads(self._read_blob(digest))
        if not isinstance(doc, dict):
            raise ImageError(f"manifest {digest} is not an object")
        return doc

    def _config_of(self, entry: _Entry) -> str:
        return parse_digest(self._manifest(entry.digest)["config"]["digest"])

    def resolve(self, name: str) -> Image:
        """The image ``name`` designates (a name, ``sha256:`` id or manifest digest, or an
        id prefix of at least 12 hex digits), its layers unpacked (again, if they were
        removed from disk)."""
        self._ensure_layout()
        found, _ = self._matching(self._read_index(), name)
        if not found:
            raise ImageNotFound(f"no image {name!r} in the store at {self.root}")
        entry = found[0]
        manifest = self._manifest(entry.digest)
        config_digest = parse_digest(manifest["config"]["digest"])
        config = parse_image_config(self._read_blob(config_digest))
        blobs = [parse_digest(layer["digest"]) for layer in manifest["layers"]]
        if len(blobs) != len(config.diff_ids):
            raise ImageError(f"image {name!r}: manifest and config disagree on the layers")
        paths = tuple(self.layer_path(d) for d in config.diff_ids)
        if not all(p.is_dir() for p in paths):
            with self._locked():
                for blob, diff_id in zip(blobs, config.diff_ids, strict=True):
                    self._unpack(blob, diff_id)
        return Image(ImageRef(entry.name, config_digest, entry.digest), config, paths)

    # --- removing -------------------------------------------------------------------

    def remove(self, name: str) -> tuple[ImageRef, ...]:
        """Drop ``name`` (a tag: that name only; an id or digest: every name of that image)
        and delete the blobs and layers no remaining manifest references."""
        with self._locked():
            entries = self._read_index()
            found, is_tag = self._matching(entries, name)
            if not found:
                raise ImageNotFound(f"no image {name!r} in the store at {self.root}")
            doomed = (
                {id(e) for e in found}
                if is_tag
                else {id(e) for e in entries if e.digest in {f.digest for f in found}}
            )
            removed = [e for e in entries if id(e) in doomed]
            kept = [e for e in entries if id(e) not in doomed]
            refs = tuple(ImageRef(e.name, self._config_of(e), e.digest) for e in removed)
            self._write_index(kept)
            self._sweep(kept)
            return refs

    def _sweep(self, entries: list[_Entry]) -> None:
        """Delete every blob, layer and temporary file that ``entries`` do not reference.
        Runs under the lock, so no load is half-way and every tmp file is garbage."""
        blobs: set[str] = set()
        diff_ids: set[str] = set()
        for entry in entries:
            manifest = self._manifest(entry.digest)
            config_digest = parse_digest(manifest["config"]["digest"])
            blobs.update({entry.digest, config_digest})
            blobs.update(parse_digest(layer["digest"]) for layer in manifest["layers"])
            diff_ids.update(parse_image_config(self._read_blob(config_digest)).diff_ids)
        keep_blobs = {digest_hex(d) for d in blobs}
        keep_layers = {digest_hex(d) for d in diff_ids}
        for path in self._blobs.iterdir():
            if path.name not in keep_blobs:
                path.unlink()
        for path in self._layers.iterdir():
            if path.name not in keep_layers:
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        for path in self._tmp.iterdir():
            if not path.is_dir() or path.is_symlink():
                path.unlink()
            else:
                shutil.rmtree(path)

    # --- listing (last: the name `list` shadows the builtin in the class body) -------

    def list(self) -> tuple[ImageSummary, ...]:
        """Every stored image, one summary per manifest, in load order."""
        self._ensure_layout()
        summaries: dict[str, ImageSummary] = {}
        for entry in self._read_index():
            if entry.digest in summaries:
                old = summaries[entry.digest]
                if entry.name:
                    summaries[entry.digest] = ImageSummary(
                        (*old.names, entry.name), old.id, old.digest, old.size, old.created
                    )
                continue
            manifest = self._manifest(entry.digest)
            config_digest = parse_digest(manifest["config"]["digest"])
            config = parse_image_config(self._read_blob(config_digest))
            size = sum(int(layer.get("size", 0)) for layer in manifest["layers"])
            names = (entry.name,) if entry.name else ()
            summaries[entry.digest] = ImageSummary(
                names, config_digest, entry.digest, size, config.created
            )
        return tuple(summaries.values())
