"""Volumes, bind mounts, tmpfs, secrets and configs on the namespace backend, for real:
`pycompose --backend namespace ...` as root, with a test image built on the busybox one.

The image (built in the local Docker engine, removed at the end of the module) holds what
the tests need from an image: content to copy up (owned 1234:2345, modes 0750/0640), a
``VOLUME`` with a file in it, and hostile symlinks — ``/data -> /etc`` and ``/escape ->``
a directory of this host — so that mount targets resolved outside the root would show.
Every test ends with ``down -v`` and checks that nothing of its project is left.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import NamespaceStack

pytestmark = [
    pytest.mark.root,
    pytest.mark.docker,
    pytest.mark.skipif(os.geteuid() != 0, reason="the namespace backend needs root"),
]


DOCKERFILE = """FROM {base}
RUN mkdir -p /seed /anon && echo hello > /seed/file && chown -R 1234:2345 /seed \\
 && chmod 0750 /seed && chmod 0640 /seed/file && echo anonymous > /anon/x \\
 && ln -s /etc /data && ln -s {victim} /escape
VOLUME /anon
"""


@pytest.fixture(scope="module")
def victim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A host directory the image's ``/escape`` symlink names: it must stay empty."""
    return tmp_path_factory.mktemp("victim")


@pytest.fixture(scope="module")
def volumes_image(docker_client: Any, busybox_image: str, victim: Path) -> Iterator[str]:
    tag = f"pycompose-test/volumes:{secrets.token_hex(4)}"
    text = DOCKERFILE.format(base=busybox_image, victim=victim).encode()
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text))
    context.seek(0)
    docker_client.images.build(
        fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True, pull=False
    )
    yield tag
    docker_client.images.remove(tag, force=True)


@pytest.fixture(scope="module")
def state_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pycompose-ns-volumes")


class Stack(NamespaceStack):
    """A project directory and the CLI pointed at it, with tmp state everywhere."""

    def __init__(self, directory: Path, name: str, root: Path, image: str) -> None:
        super().__init__(directory, name, image, root=root,
                         env={"API_KEY": "from-the-environment"})

    def out(self, service: str, script: str) -> str:
        return str(self.sh(service, script, check=True).stdout)

    def volume_dir(self, key: str) -> Path:
        return self.root / "volumes" / f"{self.name}_{key}" / "_data"

    def leftovers(self) -> list[str]:
        """Records of this project still in the state root (containers, volumes...)."""
        found = [
            str(p) for sub in ("names", "volumes") for p in (self.root / sub).glob(f"{self.name}*")
        ]
        meta = self.root / "meta"
        return found + [str(p) for p in meta.glob("*.json") if self.name in p.read_text()]


@pytest.fixture
def stack(
    tmp_path: Path, project_name: str, state_root: Path, volumes_image: str
) -> Iterator[Stack]:
    made = Stack(tmp_path, project_name, state_root, volumes_image)
    yield made
    if (tmp_path / "compose.yaml").exists():
        made.run("down", "-v", "-t", "0", check=False)
    made.stop_supervisor()


def eventually(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


VOLUMES = """\
services:
  app:
    image: IMAGE
    command: ["sh", "-c", "echo run >> /seed/log; exec sleep 3600"]
    volumes: [seed:/seed, "raw:/seed-raw:nocopy"]
  raw:
    image: IMAGE
    command: ["sleep", "3600"]
    volumes: ["raw:/seed:nocopy"]
  twin:
    image: IMAGE
    command: ["sleep", "3600"]
    deploy: {replicas: 2}
    volumes: [twins:/seed]
volumes:
  seed: {}
  raw: {}
  twins: {}
"""


def test_named_volume_copy_up_survives_down_and_up_and_goes_with_down_v(stack: Stack) -> None:
    stack.write(VOLUMES)
    stack.run("up", "-d")
    data = stack.volume_dir("seed")
    eventually(lambda: (data / "log").exists(), 20, "the app to write into its volume")

    # docker's copy-up: the image's /seed with owners and modes, into the new volume
    assert (data / "file").read_text() == "hello\n"
    st, top = os.stat(data / "file"), os.stat(data)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1234, 2345, 0o640)
    assert (top.st_uid, top.st_gid, top.st_mode & 0o7777) == (1234, 2345, 0o750)
    # nocopy: the other volume stays empty although the image has files at /seed
    assert list(stack.volume_dir("raw").iterdir()) == []
    # two replicas starting at once with one new volume: copied once, both run
    rows = json.loads(stack.run("ps", "--format", "json").stdout)
    assert sorted(r["state"] for r in rows if r["service"] == "twin") == ["running", "running"]
    assert [p.name for p in stack.volume_dir("twins").iterdir()] == ["file"]
    # the image's VOLUME /anon: an anonymous volume with the image's content, per container
    assert stack.out("app", "cat /anon/x; echo more > /anon/y; ls /anon") == "anonymous\nx\ny\n"

    stack.run("down", "-t", "0")
    assert (data / "log").read_text() == "run\n"  # the volume outlives its containers
    stack.run("up", "-d")
    eventually(lambda: (data / "log").read_text() == "run\nrun\n", 20, "the second run")
    # a new container gets a new anonymous volume: the old one went with its container
    assert stack.out("app", "ls /anon") == "x\n"

    stack.run("down", "-v", "-t", "0")
    assert not data.parent.exists()
    assert not stack.volume_dir("raw").parent.exists()
    assert stack.leftovers() == []
    assert list((stack.root / "containers").iterdir()) == []


FILES = """\
services:
  app:
    image: IMAGE
    user: "1000:1001"
    command: ["sleep", "3600"]
    secrets:
      - source: token
        uid: "1000"
        gid: "1001"
        mode: "0400"
      - source: api
        target: /etc/api-key
    configs:
      - source: app
        target: /etc/app.conf
        mode: 0o640
        gid: "1001"
secrets:
  token: {file: ./token.txt}
  api: {environment: API_KEY}
configs:
  app: {content: "key=value"}
"""


def test_secret_and_config_files_have_the_requested_owner_and_mode(stack: Stack) -> None:
    (stack.dir / "token.txt").write_text("s3cret\n")
    os.chmod(stack.dir / "token.txt", 0o600)
    stack.write(FILES)
    stack.run("up", "-d")
    stats = stack.out(
        "app", "stat -c '%n %a %u %g' /run/secrets/token /etc/api-key /etc/app.conf"
    )
    assert stats.splitlines() == [
        "/run/secrets/token 400 1000 1001",
        "/etc/api-key 444 0 0",
        "/etc/app.conf 640 0 1001",
    ]
    # read by the service's own user, who owns the secret
    assert stack.out("app", "cat /run/secrets/token /etc/api-key; echo; cat /etc/app.conf") == (
        "s3cret\nfrom-the-environment\nkey=value"
    )
    denied = stack.run("exec", "-T", "app", "sh", "-c", "echo x > /run/secrets/token", check=False)
    assert denied.returncode != 0
    # the user's file is untouched: copied, never chowned
    st = os.stat(stack.dir / "token.txt")
    assert (st.st_uid, st.st_mode & 0o7777) == (0, 0o600)
    stack.run("down", "-t", "0")
    assert stack.leftovers() == []


TMPFS = """\
services:
  frozen:
    image: IMAGE
    read_only: true
    command: ["sleep", "3600"]
    volumes:
      - type: tmpfs
        target: /scratch
        tmpfs: {size: 1m, mode: "0750"}
      - work:/work
volumes:
  work: {}
"""


def test_tmpfs_size_and_mode_and_read_only_root(stack: Stack) -> None:
    stack.write(TMPFS)
    stack.run("up", "-d")
    mounts = stack.out("frozen", "grep ' /scratch ' /proc/mounts")
    assert "size=1024k" in mounts and "mode=750" in mounts, mounts
    script = "touch /x 2>/dev/null; echo root=$?; touch /scratch/x; echo tmpfs=$?; " \
        "touch /work/x; echo volume=$?"
    assert stack.out("frozen", script).split() == ["root=1", "tmpfs=0", "volume=0"]
    stack.run("down", "-v", "-t", "0")
    assert stack.leftovers() == []


ESCAPES = """\
services:
  box:
    image: IMAGE
    working_dir: /escape/wd
    command: ["sleep", "3600"]
    volumes:
      - ./src:/data
      - ./src:/escape/sub
      - type: tmpfs
        target: /escape/tmp
  writer:
    image: IMAGE
    command: ["ln", "-s", "../../../../../../../../../../VICTIM", "/v/link"]
    volumes: [shared:/v]
  reader:
    image: IMAGE
    command: ["sleep", "3600"]
    depends_on:
      writer: {condition: service_completed_successfully}
    volumes:
      - shared:/v
      - ./src:/v/link/sub
volumes:
  shared: {}
"""


def test_symlinked_mount_targets_stay_inside_the_root(stack: Stack, victim: Path) -> None:
    (stack.dir / "src").mkdir()
    (stack.dir / "src" / "payload").write_text("payload\n")
    stack.write(ESCAPES.replace("VICTIM", str(victim).lstrip("/")))
    stack.run("up", "-d")

    # the image's /data -> /etc: the bind lands on the container's /etc
    assert stack.out("box", "cat /etc/payload /data/payload") == "payload\npayload\n"
    assert not Path("/etc/payload").exists()
    # /escape -> a host directory: bind, tmpfs and working_dir land inside the root
    assert stack.out("box", "cat /escape/sub/payload; pwd") == f"payload\n{victim}/wd\n"
    assert f" {victim}/tmp tmpfs " in stack.out("box", "cat /proc/mounts")
    # a relative symlink a container left in a volume (the reader starts once the writer
    # has exited 0): `..` stops at the container's root
    assert stack.out("reader", "cat /v/link/sub/payload") == "payload\n"
    # and the host directory the symlinks name was never touched
    assert list(victim.iterdir()) == []
    stack.run("down", "-v", "-t", "0")
    assert list(victim.iterdir()) == []
    assert stack.leftovers() == []


BINDS = """\
services:
  app:
    image: IMAGE
    command: ["sh", "-c", "echo kept > /dev-vol/file; exec sleep 3600"]
    volumes:
      - ./short-made:/short
      - device:/dev-vol
volumes:
  device:
    driver_opts: {type: none, o: bind, device: DEVICE}
"""


def test_bind_sources_and_bind_style_volumes(stack: Stack) -> None:
    device = stack.dir / "device"
    device.mkdir()
    stack.write(BINDS.replace("DEVICE", str(device)))
    stack.run("up", "-d")
    eventually(lambda: (device / "file").exists(), 20, "the write into the device")
    assert (stack.dir / "short-made").is_dir()  # the short syntax creates it, as docker does
    stack.run("down", "-v", "-t", "0")
    assert (device / "file").read_text() == "kept\n"  # down -v leaves the user's directory

    # the long syntax does not create a missing source unless it says so
    (stack.dir / "compose.yaml").write_text(
        f"services:\n  app:\n    image: {stack.image}\n    command: [sleep, '1']\n"
        "    volumes: [{type: bind, source: ./nowhere, target: /x}]\n"
    )
    refused = stack.run("up", "-d", check=False)
    assert refused.returncode == 3, refused.stderr
    assert "bind source path does not exist" in refused.stderr
    assert not (stack.dir / "nowhere").exists()
    stack.run("down", "-v", "-t", "0")
    assert stack.leftovers() == []
