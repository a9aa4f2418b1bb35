"""Test images built locally, because nothing can be pulled from a registry here.

The busybox image is Debian's static busybox copied onto ``scratch``; its ``--install``
step runs inside the build (a static binary needs no libc), so every applet (sh, httpd,
nslookup, sleep...) is on ``/bin``. Built once per daemon and reused by tag.

For an HTTP server that tells replicas apart, run busybox's httpd with :data:`HTTPD_COMMAND`:
it writes the container's hostname into ``/www/index.html`` and serves it on port 80.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path
from typing import Any

import docker
import docker.errors

BUSYBOX_TAG = "pycompose-test/busybox:1"
BUSYBOX_BINARY = Path("/bin/busybox")

_DOCKERFILE = b"""FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["/bin/sh"]
"""

# `sh -c` script: serve the hostname on port 80 so each replica answers with its own name
HTTPD_COMMAND: tuple[str, ...] = (
    "/bin/sh",
    "-c",
    "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www",
)


def _build_context(binary: Path) -> io.BytesIO:
    """A tar build context in memory: nothing to clean up on disk afterwards."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(_DOCKERFILE)
        tar.addfile(info, io.BytesIO(_DOCKERFILE))
        tar.add(str(binary), arcname="busybox")
    buffer.seek(0)
    return buffer


def ensure_busybox_image(client: Any) -> str:
    """The tag of the busybox test image, building it first when the daemon lacks it."""
    try:
        client.images.get(BUSYBOX_TAG)
        return BUSYBOX_TAG
    except docker.errors.ImageNotFound:
        pass
    binary = Path(shutil.which("busybox") or BUSYBOX_BINARY)
    if not binary.exists():
        raise RuntimeError(
            f"cannot build {BUSYBOX_TAG}: no static busybox at {binary} "
            "(apt-get install busybox-static)"
        )
    client.images.build(
        fileobj=_build_context(binary),
        custom_context=True,
        tag=BUSYBOX_TAG,
        rm=True,
        forcerm=True,
        pull=False,
        labels={"io.pycompose.test-image": "busybox"},
    )
    return BUSYBOX_TAG
