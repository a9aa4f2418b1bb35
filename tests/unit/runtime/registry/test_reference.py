"""Image references parsed the way Docker does: defaults, hosts, ports, tags, digests."""

from __future__ import annotations

import pytest

from orchestrator.errors import UsageError
from orchestrator.runtime.registry import InvalidReference, parse_reference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest", "api_host", "familiar"),
    [
        ("busybox", "docker.io", "library/busybox", "latest", None,
         "registry-1.docker.io", "busybox:latest"),
        ("busybox:1.36", "docker.io", "library/busybox", "1.36", None,
         "registry-1.docker.io", "busybox:1.36"),
        ("team/app", "docker.io", "team/app", "latest", None,
         "registry-1.docker.io", "team/app:latest"),
        ("docker.io/library/redis:7", "docker.io", "library/redis", "7", None,
         "registry-1.docker.io", "redis:7"),
        ("index.docker.io/team/app:v2", "docker.io", "team/app", "v2", None,
         "registry-1.docker.io", "team/app:v2"),
        ("docker.io/redis", "docker.io", "library/redis", "latest", None,
         "registry-1.docker.io", "redis:latest"),
        ("localhost/app", "localhost", "app", "latest", None, "localhost", "localhost/app:latest"),
        ("localhost:5000/a/b/c:t", "localhost:5000", "a/b/c", "t", None,
         "localhost:5000", "localhost:5000/a/b/c:t"),
        ("127.0.0.1:5000/app:1", "127.0.0.1:5000", "app", "1", None,
         "127.0.0.1:5000", "127.0.0.1:5000/app:1"),
        ("ghcr.io/org/tool", "ghcr.io", "org/tool", "latest", None,
         "ghcr.io", "ghcr.io/org/tool:latest"),
        (f"busybox@{DIGEST}", "docker.io", "library/busybox", None, DIGEST,
         "registry-1.docker.io", f"busybox@{DIGEST}"),
        (f"reg.example.com:443/x:2@{DIGEST}", "reg.example.com:443", "x", "2", DIGEST,
         "reg.example.com:443", "reg.example.com:443/x:2"),
        ("my_org/my-app.v2__x", "docker.io", "my_org/my-app.v2__x", "latest", None,
         "registry-1.docker.io", "my_org/my-app.v2__x:latest"),
        ("[::1]:5000/app", "[::1]:5000", "app", "latest", None,
         "[::1]:5000", "[::1]:5000/app:latest"),
    ],
)
def test_reference_table(
    text: str,
    registry: str,
    repository: str,
    tag: str | None,
    digest: str | None,
    api_host: str,
    familiar: str,
) -> None:
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        registry,
        repository,
        tag,
        digest,
    )
    assert ref.api_host == api_host
    assert ref.familiar == familiar
    assert ref.reference == (digest or tag)


def test_string_form_is_fully_qualified_and_reparses() -> None:
    ref = parse_reference("busybox")
    assert str(ref) == "docker.io/library/busybox:latest"
    assert parse_reference(str(ref)) == ref


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "empty"),
        ("Busybox", "lowercase"),
        ("busybox:", "not a valid tag"),
        ("busybox:-x", "not a valid tag"),
        ("a//b", "not a valid repository"),
        ("a/-b", "not a valid repository"),
        ("busybox@sha256:1234", "not a digest"),
        ("busybox@md5:" + "a" * 32, "only sha256"),
        ("localhost:5000/", "repository name is missing"),
        ("bad_host:5000/app", "not a valid registry host"),
    ],
)
def test_invalid_references_say_why(text: str, complaint: str) -> None:
    with pytest.raises(InvalidReference, match=complaint):
        parse_reference(text)


def test_invalid_reference_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        parse_reference("UPPER/case")
