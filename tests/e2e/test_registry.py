"""Pull and push against a real registry: Debian's ``docker-registry`` on 127.0.0.1,
started per module (and one with htpasswd auth for the login tests), stopped and removed
after. The busybox test image goes from our store to the registry and back, then runs on
the namespace backend; a manifest list picks this host's image; a tampered blob is refused
with nothing stored; ``pull_policy`` is honoured by ``up``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.runtime.images import Store
from orchestrator.runtime.registry import (
    AuthenticationFailed,
    CorruptBlob,
    RegistryClient,
    host_platform,
    pull,
    push,
)
from orchestrator.runtime.registry.manifest import OCI_INDEX, OCI_MANIFEST
from tests.support.registry import LocalRegistry, running_registry

pytestmark = [
    pytest.mark.root,
    pytest.mark.docker,
    pytest.mark.skipif(os.geteuid() != 0, reason="unpacking layers and containers need root"),
]

PYCOMPOSE = str(Path(sys.executable).parent / "pycompose")


@pytest.fixture(scope="module")
def registry() -> Iterator[LocalRegistry]:
    with running_registry() as made:
        yield made


@pytest.fixture(scope="module")
def busybox_archive(
    docker_client: Any, busybox_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    path = tmp_path_factory.mktemp("busybox-archive") / "busybox.tar"
    with path.open("wb") as out:
        for chunk in docker_client.images.get(busybox_image).save(named=True):
            out.write(chunk)
    return path


def store_contents(store: Store) -> dict[str, list[str]]:
    return {
        sub: sorted(p.name for p in (store.root / sub).iterdir())
        for sub in ("oci/blobs/sha256", "layers", "tmp", "staging")
        if (store.root / sub).is_dir()
    }


def cli(root: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    result = subprocess.run(
        [PYCOMPOSE, "--progress", "plain", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYCOMPOSE_ROOT": str(root), **(env or {})},
        cwd=root,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


# --- a tiny image of our own, pushed blob by blob ---------------------------------------


def layer(files: dict[str, bytes]) -> tuple[bytes, str]:
    """A gzipped layer tar and its diff id."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 1_600_000_000
            tar.addfile(info, io.BytesIO(data))
    plain = raw.getvalue()
    return gzip.compress(plain, mtime=0), "sha256:" + hashlib.sha256(plain).hexdigest()


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_image(
    client: RegistryClient,
    repository: str,
    tag: str,
    layers: list[tuple[bytes, str]],
    tmp: Path,
    architecture: str,
) -> tuple[str, bytes]:
    """Upload the blobs and put an OCI manifest; its digest and bytes."""
    config = json.dumps(
        {
            "architecture": architecture,
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [diff for _, diff in layers]},
        }
    ).encode()
    descriptors = []
    for blob, media in [(config, "application/vnd.oci.image.config.v1+json")] + [
        (data, "application/vnd.oci.image.layer.v1.tar+gzip") for data, _ in layers
    ]:
        path = tmp / digest_of(blob).split(":")[1]
        path.write_bytes(blob)
        client.upload_blob(repository, digest_of(blob), path)
        descriptors.append({"mediaType": media, "digest": digest_of(blob), "size": len(blob)})
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptors[0],
            "layers": descriptors[1:],
        }
    ).encode()
    return client.put_manifest(repository, tag, manifest, OCI_MANIFEST), manifest


# --- the tests ----------------------------------------------------------------------------


def test_push_remove_pull_back_and_run(
    registry: LocalRegistry, busybox_archive: Path, busybox_image: str, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    store = Store.at_state_root(root)
    (loaded,) = store.load_archive(busybox_archive)
    target = f"{registry.host}/pyc/busybox:1"

    pushed = cli(root, "image", "push", busybox_image, target, "--format", "json")
    assert pushed.returncode == 0, pushed.stderr
    assert json.loads(pushed.stdout)["digest"] == loaded.digest  # the same bytes, same digest
    assert "push complete" in pushed.stderr  # a progress line per layer

    assert cli(root, "image", "rm", busybox_image).returncode == 0
    assert store.list() == ()
    pulled = cli(root, "image", "pull", target, "--format", "json")
    assert pulled.returncode == 0, pulled.stderr
    result = json.loads(pulled.stdout)
    assert (result["digest"], result["id"], result["up_to_date"]) == (
        loaded.digest,
        loaded.id,
        False,
    )
    listed = json.loads(cli(root, "image", "ls", "--format", "json").stdout)
    assert [(i["names"], i["digest"]) for i in listed] == [([target], loaded.digest)]
    again = json.loads(cli(root, "image", "pull", target, "--format", "json").stdout)
    assert again["up_to_date"] is True and again["downloaded"] == 0

    # run it on the namespace backend
    project = tmp_path / "project"
    project.mkdir()
    (project / "compose.yaml").write_text(
        f"services:\n  app:\n    image: {target}\n    command: [echo, pulled-image-runs]\n"
    )
    name = "pycreg" + os.urandom(4).hex()
    try:
        run = cli(project, "--backend", "namespace", "-p", name, "run", "--rm", "app",
                  env={"PYCOMPOSE_ROOT": str(root)})
        assert run.returncode == 0, run.stderr
        assert "pulled-image-runs" in run.stdout
    finally:
        cli(project, "--backend", "namespace", "-p", name, "down", "-t", "0",
            env={"PYCOMPOSE_ROOT": str(root)})


def test_manifest_list_picks_this_hosts_image(registry: LocalRegistry, tmp_path: Path) -> None:
    ours = host_platform()
    other = "s390x" if ours.architecture != "s390x" else "amd64"
    with RegistryClient(registry.host) as client:
        mine_digest, mine = push_image(
            client, "pyc/multi", "mine", [layer({"which": b"ours"})], tmp_path, ours.architecture
        )
        theirs_digest, theirs = push_image(
            client, "pyc/multi", "theirs", [layer({"which": b"theirs"})], tmp_path, other
        )
        index = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [  # ours is not first: the choice is by platform
                    {
                        "mediaType": OCI_MANIFEST,
                        "digest": theirs_digest,
                        "size": len(theirs),
                        "platform": {"os": "linux", "architecture": other},
                    },
                    {
                        "mediaType": OCI_MANIFEST,
                        "digest": mine_digest,
                        "size": len(mine),
                        "platform": {"os": "linux", "architecture": ours.architecture},
                    },
                ],
            }
        ).encode()
        client.put_manifest("pyc/multi", "1", index, OCI_INDEX)
    store = Store(tmp_path / "store")
    result = pull(store, f"{registry.host}/pyc/multi:1")
    assert result.digest == mine_digest
    image = store.resolve(f"{registry.host}/pyc/multi:1")
    assert (image.layers[0] / "which").read_bytes() == b"ours"


def test_corrupted_blob_is_refused_and_nothing_is_stored(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    good = layer({"fine": b"intact layer"})
    bad = layer({"data": os.urandom(4096)})
    with RegistryClient(registry.host) as client:
        push_image(client, "pyc/corrupt", "1", [good, bad], tmp_path, host_platform().architecture)
    blob = registry.blob_file(digest_of(bad[0]))
    content = bytearray(blob.read_bytes())
    content[len(content) // 2] ^= 0xFF  # same size, one byte flipped
    blob.write_bytes(bytes(content))

    store = Store(tmp_path / "store")
    with pytest.raises(CorruptBlob, match="corrupted"):
        pull(store, f"{registry.host}/pyc/corrupt:1")
    assert store.list() == ()
    assert store_contents(store) == {"oci/blobs/sha256": [], "layers": [], "tmp": [], "staging": []}


def test_basic_auth_from_docker_config(
    busybox_archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path / "store")
    (loaded,) = store.load_archive(busybox_archive)
    with running_registry(auth=True) as secured:
        target = f"{secured.host}/pyc/private:1"
        monkeypatch.setenv("DOCKER_CONFIG", str(secured.docker_config(tmp_path / "good")))
        assert push(store, loaded.name or "", target).digest == loaded.digest
        fresh = Store(tmp_path / "fresh")
        assert pull(fresh, target).digest == loaded.digest

        monkeypatch.setenv("DOCKER_CONFIG", str(secured.docker_config(tmp_path / "bad", "nope")))
        with pytest.raises(AuthenticationFailed) as caught:
            pull(Store(tmp_path / "other"), target)
        assert "refused the login as 'tester'" in str(caught.value)
        assert "config.json" in str(caught.value)

        monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "none"))
        with pytest.raises(AuthenticationFailed, match="has no credentials"):
            pull(Store(tmp_path / "other"), target)


def test_pull_policy_during_up(
    registry: LocalRegistry, busybox_archive: Path, busybox_image: str, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    seed = Store(tmp_path / "seed")
    seed.load_archive(busybox_archive)
    image = f"{registry.host}/pyc/policy:1"
    first = push(seed, busybox_image, image).digest
    project = tmp_path / "project"
    project.mkdir()
    name = "pycpol" + os.urandom(4).hex()

    def up(policy: str) -> Any:
        (project / "compose.yaml").write_text(
            f"services:\n  app:\n    image: {image}\n    pull_policy: {policy}\n"
            "    command: [sleep, '30']\n"
        )
        return cli(project, "--backend", "namespace", "-p", name, "up", "-d",
                   env={"PYCOMPOSE_ROOT": str(root)})

    def down() -> None:
        done = cli(project, "--backend", "namespace", "-p", name, "down", "-t", "0",
                   env={"PYCOMPOSE_ROOT": str(root)})
        assert done.returncode == 0, done.stderr

    def stored_digest() -> str:
        return Store.at_state_root(root).manifest_of(image).ref.digest

    try:
        refused = up("never")
        assert refused.returncode == 4, refused.stderr
        assert "pull_policy is 'never'" in refused.stderr and "image pull" in refused.stderr
        assert Store.at_state_root(root).list() == ()

        started = up("missing")
        assert started.returncode == 0, started.stderr
        assert stored_digest() == first
        down()

        # a new image under the same tag: `missing` keeps the stored one, `always` pulls
        seed.tag(busybox_image, "relabelled:1")
        with RegistryClient(registry.host) as client:
            data = json.loads(seed.manifest_of(busybox_image).data)
            data["annotations"] = {"org.example.version": "2"}
            manifest = json.dumps(data).encode()
            second = client.put_manifest("pyc/policy", "1", manifest, OCI_MANIFEST)
        assert second != first
        assert up("missing").returncode == 0
        assert stored_digest() == first
        down()
        updated = up("always")
        assert updated.returncode == 0, updated.stderr
        assert stored_digest() == second
    finally:
        down()
