"""The client against a small fake registry on 127.0.0.1: the Bearer token flow of
``WWW-Authenticate`` (with Basic credentials to the token service), token caching, a wrong
password, and a blob whose bytes do not match its digest."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from orchestrator.runtime.registry import (
    AuthenticationFailed,
    CorruptBlob,
    Credentials,
    NotInRegistry,
    RegistryClient,
)
from orchestrator.runtime.registry.manifest import OCI_MANIFEST

MANIFEST = json.dumps({"schemaVersion": 2, "config": {}, "layers": []}).encode()
GOOD = b"good blob bytes"
GOOD_DIGEST = "sha256:" + hashlib.sha256(GOOD).hexdigest()
LIAR_DIGEST = "sha256:" + hashlib.sha256(b"what it should be").hexdigest()
USER, PASSWORD, TOKEN = "ann", "right", "tok-123"


class FakeRegistry(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.token_requests: list[dict[str, Any]] = []

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: FakeRegistry

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _challenge(self, scope: str = "") -> None:
        value = f'Bearer realm="http://{self.server.host}/token",service="fake"'
        if scope:
            value += f',scope="{scope}"'
        self._send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": value})

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/token":
            query = parse_qs(url.query)
            self.server.token_requests.append(
                {"query": query, "authorization": self.headers.get("Authorization")}
            )
            expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            if self.headers.get("Authorization") != expected:
                self._send(401, b'{"details":"incorrect username or password"}')
                return
            self._send(200, json.dumps({"token": TOKEN, "expires_in": 300}).encode())
            return
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._challenge("repository:team/app:pull" if url.path != "/v2/" else "")
            return
        if url.path == "/v2/":
            self._send(200, b"{}")
        elif url.path == "/v2/team/app/manifests/1":
            self._send(200, MANIFEST, {"Content-Type": OCI_MANIFEST})
        elif url.path == f"/v2/team/app/blobs/{GOOD_DIGEST}":
            self._send(200, GOOD)
        elif url.path == f"/v2/team/app/blobs/{LIAR_DIGEST}":
            self._send(200, b"tampered content!")
        else:
            self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}')


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    server = FakeRegistry()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_bearer_token_flow_with_basic_credentials(fake: FakeRegistry) -> None:
    with RegistryClient(fake.host, credentials=Credentials(USER, PASSWORD)) as client:
        manifest = client.get_manifest("team/app", "1")
        again = client.get_manifest("team/app", "1")
    assert manifest.data == MANIFEST and manifest.media_type == OCI_MANIFEST
    assert manifest.digest == "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
    assert again == manifest
    (request,) = fake.token_requests  # the token was fetched once, then reused
    assert request["query"] == {"service": ["fake"], "scope": ["repository:team/app:pull"]}
    assert request["authorization"].startswith("Basic ")


def test_wrong_password_is_a_clear_authentication_error(fake: FakeRegistry) -> None:
    client = RegistryClient(fake.host, credentials=Credentials(USER, "wrong"))
    with client, pytest.raises(AuthenticationFailed) as caught:
        client.get_manifest("team/app", "1")
    message = str(caught.value)
    assert "refused to authenticate as 'ann'" in message and "HTTP 401" in message


def test_unknown_manifest_is_not_found(fake: FakeRegistry) -> None:
    client = RegistryClient(fake.host, credentials=Credentials(USER, PASSWORD))
    with client, pytest.raises(NotInRegistry, match="no such image"):
        client.get_manifest("team/app", "2")


def test_blob_is_verified_and_a_corrupted_one_leaves_nothing(
    fake: FakeRegistry, tmp_path: Path
) -> None:
    seen: list[int] = []
    with RegistryClient(fake.host, credentials=Credentials(USER, PASSWORD)) as client:
        client.fetch_blob("team/app", GOOD_DIGEST, tmp_path / "good", advance=seen.append)
        with pytest.raises(CorruptBlob, match="corrupted"):
            client.fetch_blob("team/app", LIAR_DIGEST, tmp_path / "bad")
    assert (tmp_path / "good").read_bytes() == GOOD and sum(seen) == len(GOOD)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good"]


def test_blob_larger_than_its_descriptor_is_refused(fake: FakeRegistry, tmp_path: Path) -> None:
    client = RegistryClient(fake.host, credentials=Credentials(USER, PASSWORD))
    with client, pytest.raises(CorruptBlob, match="larger than"):
        client.fetch_blob("team/app", GOOD_DIGEST, tmp_path / "x", size=3)
    assert list(tmp_path.iterdir()) == []
