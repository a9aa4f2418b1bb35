"""Pushing an image through the Docker engine (``docker push``), for ``pycompose push`` on
the docker backend. The engine does the transfer with its own credentials; we relay its
per-layer progress and turn an error it reports mid-stream into ours.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import docker

from orchestrator.backends.docker.errors import translated
from orchestrator.errors import BackendError

Progress = Callable[[str, int, int], None]
_DONE = ("Pushed", "Layer already exists", "Mounted from")


def push_image(name: str, progress: Progress | None = None) -> str:
    """Push ``name`` (``repo[:tag]``) to its registry; the manifest digest the engine
    reports (empty when it reports none)."""
    endpoint = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    repository, tag = docker.utils.parse_repository_tag(name)
    digest = ""
    with translated(endpoint, f"image {name}"):
        client = docker.from_env(version="auto", timeout=300)
        try:
            for event in client.api.push(repository, tag=tag or "latest", stream=True, decode=True):
                if not isinstance(event, dict):
                    continue
                if event.get("error"):
                    raise BackendError(f"push of {name} failed: {event['error']}")
                aux = event.get("aux")
                if isinstance(aux, dict) and isinstance(aux.get("Digest"), str):
                    digest = aux["Digest"]
                detail = event.get("progressDetail") or {}
                layer = event.get("id")
                if progress is None or not isinstance(layer, str) or not isinstance(detail, dict):
                    continue
                if "total" in detail:
                    progress(layer, int(detail.get("current", 0)), int(detail["total"]))
                elif str(event.get("status", "")).startswith(_DONE):
                    progress(layer, 1, 1)
        finally:
            client.close()
    return digest
