"""Pushing an image from the store to a registry.

The store keeps each image's manifest byte for byte and its compressed layer blobs, so a
push sends exactly what was pulled or loaded and the registry computes the same digest:
blobs the registry lacks are uploaded (a few at a time), then the manifest is put under the
tag. Layers are never recompressed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.runtime.images import Store
from orchestrator.runtime.registry.client import RegistryClient
from orchestrator.runtime.registry.errors import InvalidReference
from orchestrator.runtime.registry.progress import TransferProgress, short
from orchestrator.runtime.registry.reference import Reference, parse_reference
from orchestrator.runtime.registry.transfer import DEFAULT_PARALLEL, Transfers


@dataclass(frozen=True)
class PushResult:
    reference: str  # where it went (``127.0.0.1:5000/team/app:1``)
    digest: str  # the manifest digest the registry now serves under the tag
    uploaded: int  # bytes sent (blobs the registry had are not)


def push(
    store: Store,
    name: str,
    target: str | Reference | None = None,
    *,
    progress: TransferProgress | None = None,
    client: RegistryClient | None = None,
    mount_from: str | None = None,
    parallel: int = DEFAULT_PARALLEL,
) -> PushResult:
    """Push the stored image ``name`` to ``target`` (default: ``name`` itself, which must
    then be a full reference). ``mount_from`` names a repository of the same registry the
    blobs may be mounted from instead of uploaded."""
    stored = store.manifest_of(name)
    if target is None:
        if stored.ref.name is None:
            raise InvalidReference(f"image {name!r} has no name to push it under: give a target")
        target = stored.ref.name
    ref = parse_reference(target) if isinstance(target, str) else target
    if ref.digest is not None and ref.digest != stored.ref.digest:
        raise InvalidReference(
            f"{ref}: the image's manifest digest is {stored.ref.digest}, not {ref.digest}"
        )
    owned = client is None
    registry = client or RegistryClient(ref.registry)
    try:
        transfers = Transfers(progress, parallel)
        uploaded = 0
        jobs = []
        for digest in dict.fromkeys((*stored.layers, stored.config)):
            path = store.blob_path(digest)
            size = path.stat().st_size
            if registry.blob_exists(ref.repository, digest):
                transfers.report(short(digest), size, size)
                continue
            uploaded += size
            jobs.append((short(digest), size, _upload(registry, ref, digest, path, mount_from)))
        transfers.run(jobs)
        digest = registry.put_manifest(
            ref.repository, ref.digest or ref.tag or "latest", stored.data, stored.media_type
        )
        return PushResult(str(ref), digest, uploaded)
    finally:
        if owned:
            registry.close()


def _upload(
    client: RegistryClient, ref: Reference, digest: str, path: Path, mount_from: str | None
) -> Callable[[Callable[[int], None]], None]:
    def work(advance: Callable[[int], None]) -> None:
        client.upload_blob(ref.repository, digest, path, advance=advance, mount_from=mount_from)

    return work
