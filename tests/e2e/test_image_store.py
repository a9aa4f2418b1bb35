"""The image store against the real thing: the busybox test image copied out of the Docker
engine (``docker save`` through the SDK), unpacked, and the ``pycompose image`` commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.runtime.images import Store, load_docker_save

PYCOMPOSE = str(Path(sys.executable).parent / "pycompose")

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(os.geteuid() != 0, reason="unpacking layers needs root"),
]


def run(state_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYCOMPOSE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYCOMPOSE_ROOT": str(state_root)},
    )


@pytest.fixture(scope="module")
def busybox_archive(
    docker_client: Any, busybox_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    path = tmp_path_factory.mktemp("archive") / "busybox.tar"
    with path.open("wb") as out:
        for chunk in docker_client.images.get(busybox_image).save(named=True):
            out.write(chunk)
    return path


def test_image_copied_from_the_engine(
    docker_client: Any, busybox_image: str, tmp_path: Path
) -> None:
    store = Store(tmp_path / "store")
    engine_image = docker_client.images.get(busybox_image)
    (ref,) = load_docker_save(store, engine_image.save(named=True))
    assert ref.name == busybox_image
    assert ref.id == engine_image.id  # our image id is the engine's: the same config digest
    image = store.resolve(busybox_image)
    assert image.config.cmd == ("/bin/sh",)
    assert any(e.startswith("PATH=") for e in image.config.env)
    assert dict(image.config.labels) == {"io.pycompose.test-image": "busybox"}
    assert len(image.layers) == len(engine_image.attrs["RootFS"]["Layers"])
    busybox = image.layers[0] / "bin/busybox"
    assert busybox.stat().st_size > 100_000 and os.access(busybox, os.X_OK)
    assert os.readlink(image.layers[-1] / "bin/sh") == "/bin/busybox"


def test_image_commands(busybox_archive: Path, busybox_image: str, tmp_path: Path) -> None:
    loaded = run(tmp_path, "image", "load", "-i", str(busybox_archive))
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == f"Loaded image: {busybox_image}"

    listed = run(tmp_path, "image", "ls", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    (entry,) = json.loads(listed.stdout)
    assert entry["names"] == [busybox_image] and entry["size"] > 100_000

    table = run(tmp_path, "image", "ls")
    assert busybox_image in table.stdout and entry["id"].split(":")[1][:12] in table.stdout

    removed = run(tmp_path, "image", "rm", busybox_image)
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.strip() == f"Untagged: {busybox_image}"
    images = tmp_path / "images"
    assert os.listdir(images / "layers") == [] and os.listdir(images / "oci/blobs/sha256") == []

    missing = run(tmp_path, "image", "rm", busybox_image)
    assert missing.returncode == 4 and "no image" in missing.stderr


def test_image_load_refuses_a_corrupt_archive(busybox_archive: Path, tmp_path: Path) -> None:
    data = bytearray(busybox_archive.read_bytes())
    data[len(data) // 2] ^= 0xFF  # somewhere inside the busybox binary's layer
    corrupt = tmp_path / "corrupt.tar"
    corrupt.write_bytes(bytes(data))
    result = run(tmp_path, "image", "load", "-i", str(corrupt))
    assert result.returncode == 11, result.stderr
    assert "hashes to" in result.stderr
    images = tmp_path / "images"
    assert os.listdir(images / "layers") == [] and os.listdir(images / "oci/blobs/sha256") == []
