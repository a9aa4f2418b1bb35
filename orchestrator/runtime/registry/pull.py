"""Pulling an image from a registry into the image store.

Resolve the reference to one image manifest (choosing this host's platform from a list),
fetch the config, then the layers the store lacks, a few at a time. Each layer is
downloaded, hashed and unpacked in one pass: the bytes from the network are hashed
(sha256 of the compressed blob), written to the blob's file, and decompressed and untarred
through the hardened extractor as they arrive, into a staging directory of the store.
Nothing there has a name yet: :meth:`Store.import_fetched` then moves the verified blobs
and layers in and names the image, all or nothing. A corrupted blob fails its own
transfer (and stops the others), and the staging directory goes with everything in it,
so nothing is stored.

This overlap is what makes a pull as fast as dockerd's: unpacking after every download
had ended, from files read back twice (once more to hash, once to unpack), was not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.runtime.images import ImageError, ImageNotFound, Store
from orchestrator.runtime.images.config import parse_image_config
from orchestrator.runtime.images.digest import Readable, digest_hex, parse_digest, verify_bytes
from orchestrator.runtime.images.extract import extract_layer
from orchestrator.runtime.registry.client import RegistryClient
from orchestrator.runtime.registry.errors import ManifestUnsupported
from orchestrator.runtime.registry.manifest import IMAGE_TYPES, Manifest, Platform, choose_platform
from orchestrator.runtime.registry.progress import TransferProgress, short
from orchestrator.runtime.registry.reference import Reference, parse_reference
from orchestrator.runtime.registry.transfer import DEFAULT_PARALLEL, Transfers


@dataclass(frozen=True)
class PullResult:
    name: str  # the name the image has in the store (``busybox:latest``)
    digest: str  # the image manifest's digest (of the platform's manifest, for a list)
    id: str  # the config digest: the image id
    downloaded: int  # bytes fetched (0 when the store had everything)
    up_to_date: bool  # the store already had this manifest


def resolve_manifest(
    client: RegistryClient, ref: Reference, platform: Platform | None = None
) -> Manifest:
    """The image manifest ``ref`` designates for ``platform`` (default: this host)."""
    manifest = client.get_manifest(ref.repository, ref.reference)
    for _ in range(2):  # an index of indexes is allowed, once
        if not manifest.is_list:
            return manifest
        entries = manifest.json().get("manifests")
        if not isinstance(entries, list) or not entries:
            raise ManifestUnsupported(f"{ref}: the manifest list is empty")
        chosen = choose_platform(entries, platform)
        manifest = client.get_manifest(ref.repository, _digest(chosen, "manifest list entry"))
    if manifest.media_type not in IMAGE_TYPES:
        raise ManifestUnsupported(f"{ref}: manifest lists nested too deep")
    return manifest


def _digest(descriptor: Any, what: str) -> str:
    try:
        return parse_digest(descriptor.get("digest") if isinstance(descriptor, dict) else None)
    except ImageError as exc:
        raise ManifestUnsupported(f"{what}: {exc}") from exc


def _size(descriptor: dict[str, Any]) -> int | None:
    size = descriptor.get("size")
    return size if isinstance(size, int) and size >= 0 else None


def pull(
    store: Store,
    reference: str | Reference,
    *,
    progress: TransferProgress | None = None,
    platform: Platform | None = None,
    client: RegistryClient | None = None,
    parallel: int = DEFAULT_PARALLEL,
) -> PullResult:
    """Pull ``reference`` into ``store`` and name it by its familiar form."""
    ref = parse_reference(reference) if isinstance(reference, str) else reference
    owned = client is None
    registry = client or RegistryClient(ref.registry)
    try:
        return _pull(store, registry, ref, progress, platform, parallel)
    finally:
        if owned:
            registry.close()


def _pull(
    store: Store,
    client: RegistryClient,
    ref: Reference,
    progress: TransferProgress | None,
    platform: Platform | None,
    parallel: int,
) -> PullResult:
    manifest = resolve_manifest(client, ref, platform)
    name = ref.familiar
    try:  # the store has this very manifest: just (re)name it
        tagged = store.tag(manifest.digest, name)
        return PullResult(name, manifest.digest, tagged.id, 0, True)
    except ImageNotFound:
        pass
    doc = manifest.json()
    config = doc.get("config")
    layers = doc.get("layers")
    if not isinstance(config, dict) or not isinstance(layers, list):
        raise ManifestUnsupported(f"{ref}: the manifest has no config or no layers list")
    blobs: list[tuple[str, int | None]] = []
    for layer in layers:
        if not isinstance(layer, dict):
            raise ManifestUnsupported(f"{ref}: a layer descriptor is not an object")
        if "foreign" in str(layer.get("mediaType", "")):
            raise ManifestUnsupported(
                f"{ref}: foreign (non-distributable) layers are not supported"
            )
        blobs.append((_digest(layer, "layer"), _size(layer)))
    config_digest, config_size = _digest(config, "config"), _size(config)
    transfers = Transfers(progress, parallel)
    with store.staging() as staging:
        downloaded, diff_ids = _fetch_config(
            store, client, ref, transfers, staging, config_digest, config_size
        )
        if len(diff_ids) != len(blobs):
            raise ManifestUnsupported(
                f"{ref}: the manifest lists {len(blobs)} layers but its config "
                f"{len(diff_ids)} diff ids"
            )
        unpacked = staging / "layers"
        unpacked.mkdir()
        jobs = []
        seen: set[str] = set()
        unpacking: set[str] = set()
        for (digest, size), diff_id in zip(blobs, diff_ids, strict=True):
            if digest in seen:
                continue
            seen.add(digest)
            if store.has_blob(digest):  # the store unpacks it again if its layer is gone
                transfers.report(short(digest), size or 0, size or 0)
                continue
            # a layer the store (or an earlier job) already has unpacked is only downloaded
            done = store.layer_path(diff_id).is_dir() or diff_id in unpacking
            unpack = None if done else diff_id
            unpacking.add(diff_id)
            downloaded += size or 0
            work = _fetch(store, client, ref, digest, size, staging, unpack)
            jobs.append((short(digest), size or 0, work))
        transfers.run(jobs)
        imported = store.import_fetched(manifest.data, staging, name=name, verified=True)
    return PullResult(name, manifest.digest, imported.id, downloaded, False)


def _fetch_config(
    store: Store,
    client: RegistryClient,
    ref: Reference,
    transfers: Transfers,
    staging: Path,
    digest: str,
    size: int | None,
) -> tuple[int, tuple[str, ...]]:
    """Fetch the config first (it is small): its diff ids say which layers the store
    already has unpacked and what each layer must unpack to. Bytes downloaded, diff ids."""
    downloaded = 0
    path = store.blob_path(digest)
    if store.has_blob(digest):
        transfers.report(short(digest), size or 0, size or 0)
    else:
        path = staging / digest_hex(digest)
        work = _fetch(store, client, ref, digest, size, staging, None)
        transfers.run([(short(digest), size or 0, work)])
        downloaded = size or 0
    try:
        raw = path.read_bytes()
        verify_bytes(raw, digest, f"config {digest}")
        return downloaded, parse_image_config(raw).diff_ids
    except (OSError, ImageError) as exc:
        raise ManifestUnsupported(f"{ref}: image config {digest}: {exc}") from exc


def _fetch(
    store: Store,
    client: RegistryClient,
    ref: Reference,
    digest: str,
    size: int | None,
    staging: Path,
    unpack: str | None,
) -> Callable[[Callable[[int], None]], None]:
    """The transfer of one blob into ``staging``; with ``unpack`` (the layer's diff id)
    also unpacked on the way into ``staging/layers/<hex>``, verified against it."""

    def consume(stream: Readable) -> None:
        assert unpack is not None
        extract_layer(
            stream,
            staging / "layers" / digest_hex(unpack),
            limits=store.limits,
            expected_diff_id=unpack,
        )

    def work(advance: Callable[[int], None]) -> None:
        client.fetch_blob(
            ref.repository,
            digest,
            staging / digest_hex(digest),
            size=size,
            advance=advance,
            consume=consume if unpack is not None else None,
        )

    return work
