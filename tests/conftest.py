"""Shared fixtures: a Docker client (or a skip/fail saying why not), the busybox test image,
a unique project name per test, and cleanup of everything labelled with that project."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator import labels

_UNREACHABLE: list[str] = []  # the reason the daemon did not answer, once known


def _connect() -> Any | None:
    """A docker SDK client, or None (the reason kept in _UNREACHABLE)."""
    if _UNREACHABLE:
        return None
    try:
        import docker

        client = docker.from_env(version="auto", timeout=120)
        client.ping()
    except Exception as exc:  # any failure means "no usable daemon" here
        _UNREACHABLE.append(f"no Docker daemon answers ({exc})")
        return None
    return client


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """The SDK client; skips without a daemon, fails when PYCOMPOSE_REQUIRE_DOCKER=1 (CI)."""
    client = _connect()
    if client is None:
        reason = _UNREACHABLE[0]
        if os.environ.get("PYCOMPOSE_REQUIRE_DOCKER") == "1":
            pytest.fail(f"PYCOMPOSE_REQUIRE_DOCKER=1 but {reason}")
        pytest.skip(reason)
    yield client
    client.close()


@pytest.fixture(scope="session")
def busybox_image(docker_client: Any) -> str:
    from tests.support.images import ensure_busybox_image

    return ensure_busybox_image(docker_client)


def remove_project_resources(client: Any, project: str) -> None:
    """Remove every container (with its anonymous volumes), network and volume labelled
    with ``project``; containers first, since they hold the others."""
    import docker.errors

    label = {"label": f"{labels.PROJECT}={project}"}
    for container in client.containers.list(all=True, filters=label):
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True, v=True)
    for network in client.networks.list(filters=label):
        with contextlib.suppress(docker.errors.NotFound):
            network.remove()
    for volume in client.volumes.list(filters=label):
        with contextlib.suppress(docker.errors.NotFound):
            volume.remove(force=True)


@pytest.fixture
def project_name() -> Iterator[str]:
    """A project name no other test uses; whatever carries its label is removed afterwards."""
    name = "pyct" + secrets.token_hex(5)
    yield name
    client = _connect()  # None without a daemon: then nothing can have been created there
    if client is not None:
        try:
            remove_project_resources(client, name)
        finally:
            client.close()


@pytest.fixture(scope="session", autouse=True)
def _private_run_and_state_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every daemon a test starts (ingress proxies, the supervisor) keeps its files in tmp
    dirs of this session, and none outlives the session: CLI subprocesses inherit these."""
    root = tmp_path_factory.mktemp("pycompose-dirs")
    saved = {
        k: os.environ.get(k) for k in ("PYCOMPOSE_RUN_DIR", "PYCOMPOSE_STATE_DIR", "XDG_CACHE_HOME")
    }
    os.environ["PYCOMPOSE_RUN_DIR"] = str(root / "run")
    os.environ["PYCOMPOSE_STATE_DIR"] = str(root / "state")
    os.environ["XDG_CACHE_HOME"] = str(root / "cache")  # the CLI's schema cache
    try:
        yield
    finally:
        from orchestrator.supervisor import client

        with contextlib.suppress(Exception):
            client.stop()
        ingress = root / "run" / "ingress"
        for pidfile in ingress.glob("*.pid") if ingress.is_dir() else []:
            with contextlib.suppress(Exception):
                os.kill(int(pidfile.read_text().strip()), 15)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
