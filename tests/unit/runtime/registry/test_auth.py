"""Credentials from the Docker client config, WWW-Authenticate parsing, insecure hosts."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from orchestrator.runtime.registry import AuthenticationFailed, is_insecure, load_credentials
from orchestrator.runtime.registry.auth import (
    Challenge,
    Credentials,
    config_path,
    parse_challenges,
    pick_challenge,
)


def test_bearer_challenge_with_commas_inside_quotes() -> None:
    header = (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/busybox:pull,push"'
    )
    assert parse_challenges(header) == [
        Challenge(
            "bearer",
            {
                "realm": "https://auth.docker.io/token",
                "service": "registry.docker.io",
                "scope": "repository:library/busybox:pull,push",
            },
        )
    ]


def test_basic_challenge_and_unquoted_values() -> None:
    assert parse_challenges("Basic realm=registry") == [Challenge("basic", {"realm": "registry"})]
    assert parse_challenges('basic  realm = "a \\"quoted\\" realm"') == [
        Challenge("basic", {"realm": 'a "quoted" realm'})
    ]


def test_several_challenges_and_bearer_is_preferred() -> None:
    challenges = parse_challenges('Basic realm="r", Bearer realm="https://t/token",service=s')
    assert [c.scheme for c in challenges] == ["basic", "bearer"]
    chosen = pick_challenge(challenges)
    assert chosen is not None and chosen.params == {"realm": "https://t/token", "service": "s"}
    assert pick_challenge(parse_challenges("Negotiate abc")) is None


def write_config(directory: Path, auths: dict[str, object]) -> Path:
    path = directory / "config.json"
    path.write_text(json.dumps({"auths": auths}))
    return path


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_credentials_from_base64_auth(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"reg.example:5000": {"auth": b64("ann:s3:cr:et")}})
    assert load_credentials("reg.example:5000", path) == Credentials("ann", "s3:cr:et")
    assert load_credentials("other.example", path) is None


def test_credentials_from_username_password_and_url_keys(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, {"https://reg.example/v1/": {"username": "bob", "password": "pw"}}
    )
    assert load_credentials("reg.example", path) == Credentials("bob", "pw")


def test_docker_hub_credentials_under_the_index_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"https://index.docker.io/v1/": {"auth": b64("hub:tok")}})
    assert load_credentials("docker.io", path) == Credentials("hub", "tok")


def test_damaged_auth_is_an_error_not_anonymous(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"reg.example": {"auth": "not base64!"}})
    with pytest.raises(AuthenticationFailed, match="base64"):
        load_credentials("reg.example", path)
    path.write_text("{not json")
    with pytest.raises(AuthenticationFailed, match="cannot read"):
        load_credentials("reg.example", path)


def test_missing_config_means_no_credentials(tmp_path: Path) -> None:
    assert load_credentials("reg.example", tmp_path / "absent.json") is None


def test_config_path_honours_docker_config(tmp_path: Path) -> None:
    assert config_path({"DOCKER_CONFIG": str(tmp_path)}) == tmp_path / "config.json"
    assert config_path({"HOME": "/home/x"}) == Path("/home/x/.docker/config.json")


def test_secret_is_not_in_repr() -> None:
    assert "hunter2" not in repr(Credentials("u", "hunter2"))
    assert Credentials("u", "p").basic() == "Basic " + b64("u:p")


@pytest.mark.parametrize(
    ("host", "env", "insecure"),
    [
        ("localhost:5000", "", True),
        ("127.0.0.1:41234", "", True),
        ("[::1]:5000", "", True),
        ("localhost", "", True),
        ("reg.example:5000", "", False),
        ("reg.example:5000", "reg.example:5000", True),
        ("reg.example:5000", "other:1, reg.example", True),
        ("reg.example:5000", "reg.example:6000", False),
        ("registry-1.docker.io", "", False),
    ],
)
def test_insecure_registries(host: str, env: str, insecure: bool) -> None:
    assert is_insecure(host, {"PYCOMPOSE_INSECURE_REGISTRIES": env}) is insecure
