"""Manifest media types, and choosing one image of a multi-platform list.

A tag may name an image manifest (OCI or Docker schema 2) or a list of them, one per
platform (OCI index, Docker manifest list). A list is resolved to the entry for this host:
``linux`` and the host's architecture (and variant, when both say one), skipping the
``unknown/unknown`` entries build tools add for attestations.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from typing import Any

from orchestrator.runtime.registry.errors import ManifestUnsupported

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
LIST_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))

# platform.machine() → GOARCH, and the variant Go assumes when none is given
_ARCH = {
    "x86_64": ("amd64", ""),
    "amd64": ("amd64", ""),
    "aarch64": ("arm64", "v8"),
    "arm64": ("arm64", "v8"),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i686": ("386", ""),
    "i386": ("386", ""),
    "ppc64le": ("ppc64le", ""),
    "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""),
}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text


def host_platform() -> Platform:
    arch, variant = _ARCH.get(platform.machine(), (platform.machine(), ""))
    return Platform("linux", arch, variant)


@dataclass(frozen=True)
class Manifest:
    """A manifest as the registry sent it: the bytes are what its digest names."""

    media_type: str
    data: bytes
    digest: str

    def json(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ManifestUnsupported(f"manifest {self.digest} is not JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise ManifestUnsupported(f"manifest {self.digest} is not a JSON object")
        return doc

    @property
    def is_list(self) -> bool:
        return self.media_type in LIST_TYPES


def media_type_of(content_type: str, data: bytes) -> str:
    """The manifest's media type: the ``Content-Type`` the registry sent, else the
    document's own ``mediaType`` (an OCI manifest may omit both: then its shape)."""
    declared = content_type.split(";", 1)[0].strip()
    if declared in IMAGE_TYPES | LIST_TYPES or declared in DOCKER_SCHEMA1:
        return declared
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return declared
    if isinstance(doc, dict):
        inner = doc.get("mediaType")
        if isinstance(inner, str) and inner:
            return inner
        if "manifests" in doc:
            return OCI_INDEX
        if "config" in doc and "layers" in doc:
            return OCI_MANIFEST
    return declared


def _platform_of(entry: dict[str, Any]) -> Platform | None:
    plat = entry.get("platform")
    if not isinstance(plat, dict):
        return None
    return Platform(
        str(plat.get("os", "")), str(plat.get("architecture", "")), str(plat.get("variant", ""))
    )


def choose_platform(entries: list[Any], wanted: Platform | None = None) -> dict[str, Any]:
    """The entry of a manifest list for ``wanted`` (default: this host).

    An exact variant match wins over an entry without a variant; an entry with another
    variant never matches. Raises :class:`ManifestUnsupported` naming what the list has.
    """
    wanted = wanted or host_platform()
    best: dict[str, Any] | None = None
    best_score = -1
    offered: list[str] = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        plat = _platform_of(entry)
        if plat is None:
            continue
        offered.append(str(plat))
        if plat.os != wanted.os or plat.architecture != wanted.architecture:
            continue
        if plat.variant == wanted.variant:
            score = 2
        elif not plat.variant or not wanted.variant:
            score = 1
        else:
            continue
        if score > best_score:
            best, best_score = entry, score
    if best is None:
        have = ", ".join(p for p in offered if p != "unknown/unknown") or "none"
        raise ManifestUnsupported(
            f"the manifest list has no image for {wanted} (it has: {have})"
        )
    return best
