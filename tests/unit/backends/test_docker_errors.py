"""errors.py: every docker/requests failure becomes one of our errors, worded for a user."""

from __future__ import annotations

import docker.errors
import pytest
import requests
import requests.exceptions

from orchestrator.backends.docker.errors import is_transient, map_error, translated
from orchestrator.errors import (
    BackendError,
    Conflict,
    EngineUnavailable,
    NotFound,
    PycomposeError,
)

SOCK = "unix:///var/run/docker.sock"


def api_error(status: int, explanation: str, cls: type = docker.errors.APIError) -> Exception:
    response = requests.Response()
    response.status_code = status
    error: Exception = cls("boom", response=response, explanation=explanation)
    return error


@pytest.mark.parametrize(
    ("exc", "kind", "words"),
    [
        (
            api_error(404, "No such container: x", docker.errors.NotFound),
            NotFound,
            "No such container",
        ),
        (
            api_error(404, "No such image: x", docker.errors.ImageNotFound),
            NotFound,
            "No such image",
        ),
        (api_error(409, 'The container name "/a" is already in use'), Conflict, "already in use"),
        (
            api_error(
                500,
                "driver failed programming external connectivity on endpoint a: "
                "Bind for 0.0.0.0:8080 failed: port is already allocated",
            ),
            Conflict,
            "host port 8080 is already in use",
        ),
        (
            api_error(
                500,
                "driver failed programming external connectivity on endpoint a: Error starting "
                "userland proxy: listen tcp4 127.0.0.1:9090: bind: address already in use",
            ),
            Conflict,
            "host port 9090 is already in use (binding 127.0.0.1:9090)",
        ),
        (
            api_error(403, "error while removing network: network n has active endpoints"),
            Conflict,
            "active endpoints",
        ),
        (
            api_error(500, "something broke"),
            BackendError,
            "the Docker engine refused: something broke",
        ),
        (
            requests.exceptions.ConnectionError("Connection aborted"),
            EngineUnavailable,
            f"cannot reach the Docker engine at {SOCK}: is dockerd running?",
        ),
        (FileNotFoundError(2, "No such file"), EngineUnavailable, "is dockerd running?"),
        (
            docker.errors.DockerException("Error while fetching server API version: boom"),
            EngineUnavailable,
            "cannot reach the Docker engine",
        ),
        (requests.exceptions.ReadTimeout("slow"), BackendError, "did not answer in time"),
    ],
)
def test_map_error(exc: Exception, kind: type[PycomposeError], words: str) -> None:
    mapped = map_error(exc, SOCK, "container a")
    assert type(mapped) is kind
    assert words in str(mapped)


def test_translated_chains_the_cause() -> None:
    cause = api_error(409, "in use")
    with pytest.raises(Conflict) as caught, translated(SOCK, "volume v"):
        raise cause
    assert caught.value.__cause__ is cause
    assert str(caught.value) == "volume v: in use"


def test_translated_lets_our_errors_through() -> None:
    with pytest.raises(NotFound, match=r"^mine$"), translated(SOCK):
        raise NotFound("mine")


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (api_error(503, "Service Unavailable"), True),
        (api_error(429, "toomanyrequests"), True),
        (api_error(500, "net/http: TLS handshake timeout"), True),
        (api_error(500, 'Get "https://registry-1.docker.io/v2/": dial tcp: no such host'), False),
        (api_error(404, "manifest unknown", docker.errors.NotFound), False),
        (requests.exceptions.ReadTimeout("slow"), True),
        (ValueError("no"), False),
    ],
)
def test_is_transient(exc: Exception, expected: bool) -> None:
    assert is_transient(exc) is expected
