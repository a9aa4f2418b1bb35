"""Choosing this host's image from a manifest list, and telling manifest kinds apart."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrator.runtime.registry import ManifestUnsupported, Platform
from orchestrator.runtime.registry.manifest import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    choose_platform,
    host_platform,
    media_type_of,
)


def entry(name: str, os: str, arch: str, variant: str = "") -> dict[str, Any]:
    plat = {"os": os, "architecture": arch}
    if variant:
        plat["variant"] = variant
    return {"digest": name, "platform": plat}


LIST = [
    entry("attestation", "unknown", "unknown"),
    entry("arm-v6", "linux", "arm", "v6"),
    entry("arm-v7", "linux", "arm", "v7"),
    entry("arm64", "linux", "arm64", "v8"),
    entry("windows", "windows", "amd64"),
    entry("amd64", "linux", "amd64"),
    entry("s390x", "linux", "s390x"),
]


@pytest.mark.parametrize(
    ("wanted", "chosen"),
    [
        (Platform("linux", "amd64"), "amd64"),
        (Platform("linux", "arm64", "v8"), "arm64"),
        (Platform("linux", "arm64"), "arm64"),  # no wanted variant: any variant will do
        (Platform("linux", "arm", "v7"), "arm-v7"),  # exact variant, not the first arm
        (Platform("linux", "arm", "v6"), "arm-v6"),
        (Platform("windows", "amd64"), "windows"),
    ],
)
def test_platform_choice(wanted: Platform, chosen: str) -> None:
    assert choose_platform(LIST, wanted)["digest"] == chosen


def test_exact_variant_beats_an_entry_without_one() -> None:
    entries = [entry("plain", "linux", "arm64"), entry("v8", "linux", "arm64", "v8")]
    assert choose_platform(entries, Platform("linux", "arm64", "v8"))["digest"] == "v8"
    assert choose_platform(entries[:1], Platform("linux", "arm64", "v8"))["digest"] == "plain"


def test_no_match_names_what_the_list_offers() -> None:
    with pytest.raises(ManifestUnsupported) as caught:
        choose_platform(LIST, Platform("linux", "riscv64"))
    message = str(caught.value)
    assert "linux/riscv64" in message and "linux/arm/v7" in message
    assert "unknown/unknown" not in message


def test_host_platform_is_linux_and_go_named() -> None:
    plat = host_platform()
    assert plat.os == "linux"
    assert plat.architecture in {"amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64"}
    chosen = choose_platform([*LIST, entry("host", "linux", plat.architecture, plat.variant)])
    assert chosen["platform"]["architecture"] == plat.architecture


@pytest.mark.parametrize(
    ("content_type", "doc", "expected"),
    [
        (OCI_MANIFEST, {}, OCI_MANIFEST),
        (DOCKER_LIST + "; charset=utf-8", {}, DOCKER_LIST),
        ("application/json", {"mediaType": DOCKER_MANIFEST}, DOCKER_MANIFEST),
        ("", {"manifests": []}, OCI_INDEX),
        ("application/octet-stream", {"config": {}, "layers": []}, OCI_MANIFEST),
    ],
)
def test_media_type_from_header_or_document(
    content_type: str, doc: dict[str, Any], expected: str
) -> None:
    assert media_type_of(content_type, json.dumps(doc).encode()) == expected
