"""DockerBackend.ensure_image decisions and pull retries, over a stub of the SDK's APIClient."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import docker.errors
import pytest
import requests
from tenacity import wait_none

from orchestrator.backends.docker import DockerBackend
from orchestrator.errors import NotFound


def api_error(status: int, explanation: str) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    cls = docker.errors.ImageNotFound if status == 404 else docker.errors.APIError
    error: docker.errors.APIError = cls("x", response=response, explanation=explanation)
    return error


class StubAPI:
    """Just enough of APIClient: images present or not, and scripted pull failures."""

    def __init__(self, present: bool, pull_failures: list[Exception]) -> None:
        self.present = present
        self.pull_failures = pull_failures
        self.pulls: list[tuple[str, str | None]] = []

    def inspect_image(self, image: str) -> dict[str, Any]:
        if not self.present:
            raise api_error(404, f"No such image: {image}")
        return {"Id": "sha256:1"}

    def pull(self, repository: str, tag: str | None = None, **_: Any) -> Iterator[dict[str, Any]]:
        self.pulls.append((repository, tag))
        if self.pull_failures:
            raise self.pull_failures.pop(0)
        self.present = True
        return iter([{"status": "Downloaded newer image"}])


@pytest.fixture(autouse=True)
def no_retry_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DockerBackend._pull.retry, "wait", wait_none())


@pytest.mark.parametrize(
    ("present", "policy", "pulls"),
    [
        (True, None, 0),
        (True, "missing", 0),
        (True, "never", 0),
        (True, "always", 1),
        (False, None, 1),
        (False, "missing", 1),
        (False, "if_not_present", 1),
        (False, "daily", 1),
    ],
)
def test_pull_only_when_the_policy_asks(present: bool, policy: str | None, pulls: int) -> None:
    api = StubAPI(present, [])
    DockerBackend(api).ensure_image("redis:7", policy)
    assert api.pulls == [("redis", "7")] * pulls


@pytest.mark.parametrize("policy", ["never", "build"])
def test_missing_image_under_a_no_pull_policy(policy: str) -> None:
    api = StubAPI(False, [])
    with pytest.raises(NotFound, match="image redis:7 not found locally and could not be pulled"):
        DockerBackend(api).ensure_image("redis:7", policy)
    assert api.pulls == []


def test_transient_pull_failures_are_retried() -> None:
    api = StubAPI(False, [api_error(503, "Service Unavailable"), api_error(500, "i/o timeout")])
    DockerBackend(api).ensure_image("redis", None)
    assert api.pulls == [("redis", "latest")] * 3


def test_permanent_pull_failure_is_not_retried() -> None:
    api = StubAPI(False, [api_error(500, "dial tcp: lookup registry-1.docker.io: no such host")])
    with pytest.raises(NotFound, match="no such host"):
        DockerBackend(api).ensure_image("redis", None)
    assert len(api.pulls) == 1
