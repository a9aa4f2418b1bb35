"""Copy an image out of the Docker engine as a ``docker save`` archive (chunks).

The namespace backend imports images from a local engine on first use; the docker SDK
may only be used in this package, so the factory hands this function to that backend.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import docker

from orchestrator.backends.docker.errors import translated


def export_image(name: str) -> Iterator[bytes]:
    """The archive of ``name`` (NotFound when the engine does not have it)."""
    endpoint = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    with translated(endpoint, f"image {name}"):
        client = docker.from_env(version="auto", timeout=300)
    try:
        with translated(endpoint, f"image {name}"):
            stream = client.api.get_image(name)
            yield from stream
    finally:
        client.close()
