"""The one-pass blob download: :class:`BlobStream` hands a consumer the bytes it writes and
hashes, and ends only on a verified blob; ``fetch_blob(consume=...)`` names a corrupted
download as such even when the consumer choked on it first; the TLS probe that spares a
plain-HTTP registry the HTTPS attempt."""

from __future__ import annotations

import hashlib
import io
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from orchestrator.runtime.images.digest import Readable
from orchestrator.runtime.registry import CorruptBlob, RegistryClient
from orchestrator.runtime.registry.blobstream import BlobStream
from orchestrator.runtime.registry.client import _speaks_tls

DATA = bytes(range(256)) * 1000  # 256,000 bytes
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()
BAD_DIGEST = "sha256:" + hashlib.sha256(b"something else").hexdigest()


def chunks(data: bytes, size: int = 7000) -> Iterator[bytes]:
    return iter([data[i : i + size] for i in range(0, len(data), size)])


def stream(
    data: bytes, digest: str, out: io.BytesIO, size: int | None = None, **kw: Any
) -> BlobStream:
    return BlobStream(chunks(data), out, digest=digest, size=size, origin="test", **kw)


# --- BlobStream --------------------------------------------------------------------------


@pytest.mark.parametrize("read_size", [1, 512, 8192, 10240, 1 << 20, -1])
def test_reads_of_any_size_give_the_blob_and_tee_it(read_size: int) -> None:
    out = io.BytesIO()
    seen: list[int] = []
    blob = stream(DATA, DIGEST, out, size=len(DATA), advance=seen.append)
    got = bytearray()
    while piece := blob.read(read_size):
        if read_size > 0:
            assert len(piece) <= read_size
        got += piece
    assert bytes(got) == DATA and out.getvalue() == DATA
    assert sum(seen) == len(DATA) == blob.count


def test_a_corrupted_blob_never_reaches_its_end() -> None:
    blob = stream(DATA, BAD_DIGEST, io.BytesIO())
    got = bytearray()
    with pytest.raises(CorruptBlob, match="corrupted"):
        while piece := blob.read(4096):
            got += piece
    assert bytes(got) == DATA  # every byte went through, but no clean end of stream


def test_more_bytes_than_the_descriptor_says_are_refused_at_once() -> None:
    blob = stream(DATA, DIGEST, io.BytesIO(), size=10_000)
    with pytest.raises(CorruptBlob, match="larger than the 10000 bytes"):
        blob.read(-1)
    assert blob.count < 20_000  # refused on the chunk that crossed the line, not at the end


def test_fewer_bytes_than_the_descriptor_says_are_refused() -> None:
    with pytest.raises(CorruptBlob, match="the manifest says"):
        stream(DATA, DIGEST, io.BytesIO(), size=len(DATA) + 1).finish()


def test_finish_reads_what_the_consumer_left() -> None:
    out = io.BytesIO()
    blob = stream(DATA, DIGEST, out)
    assert blob.read(100) == DATA[:100]
    blob.finish()
    assert out.getvalue() == DATA


def test_is_corrupt_after_a_cancelled_transfer_does_not_download_the_rest() -> None:
    def cancel(count: int) -> None:
        raise RuntimeError("a sibling failed")

    blob = stream(DATA, BAD_DIGEST, io.BytesIO(), advance=cancel)
    with pytest.raises(RuntimeError):
        blob.read(10)
    assert blob.aborted and blob.is_corrupt() is None and blob.count == 7000


# --- fetch_blob with a consumer -----------------------------------------------------------


class Blobs(ThreadingHTTPServer):
    """A registry with two blobs, ``good`` (DATA) and ``liar`` (DATA, one byte off)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = b"{}"
        if self.path == f"/v2/team/app/blobs/{DIGEST}":
            body = DATA
        elif self.path == f"/v2/team/app/blobs/{BAD_DIGEST}":
            body = DATA[:1000] + b"X" + DATA[1001:]
        elif self.path != "/v2/":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[Blobs]:
    made = Blobs()
    thread = threading.Thread(target=made.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield made
    finally:
        made.shutdown()
        made.server_close()
        thread.join(5)


def test_consumer_reads_the_same_bytes_as_the_file_gets(server: Blobs, tmp_path: Path) -> None:
    consumed = bytearray()

    def consume(source: Readable) -> None:
        while piece := source.read(8192):
            consumed.extend(piece)

    with RegistryClient(server.host, credentials=None) as client:
        client.fetch_blob("team/app", DIGEST, tmp_path / "blob", size=len(DATA), consume=consume)
    assert bytes(consumed) == DATA == (tmp_path / "blob").read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["blob"]


def test_a_consumer_choking_on_a_corrupted_blob_reports_the_blob(
    server: Blobs, tmp_path: Path
) -> None:
    def consume(source: Readable) -> None:
        source.read(2000)
        raise ValueError("not a gzip stream")  # what an extractor says of damaged bytes

    client = RegistryClient(server.host, credentials=None)
    with client, pytest.raises(CorruptBlob, match="corrupted") as caught:
        client.fetch_blob("team/app", BAD_DIGEST, tmp_path / "blob", consume=consume)
    assert isinstance(caught.value.__cause__, ValueError)
    assert list(tmp_path.iterdir()) == []


def test_a_consumer_failing_on_a_good_blob_keeps_its_error_and_stores_nothing(
    server: Blobs, tmp_path: Path
) -> None:
    def consume(source: Readable) -> None:
        source.read(2000)
        raise ValueError("layer refused")

    client = RegistryClient(server.host, credentials=None)
    with client, pytest.raises(ValueError, match="layer refused"):
        client.fetch_blob("team/app", DIGEST, tmp_path / "blob", consume=consume)
    assert list(tmp_path.iterdir()) == []


# --- the TLS probe ------------------------------------------------------------------------


def test_a_plain_http_registry_does_not_speak_tls(server: Blobs) -> None:
    assert _speaks_tls(server.host) is False
    client = RegistryClient(server.host, credentials=None)
    with client:
        assert client.base_url() == f"http://{server.host}"


def test_a_closed_port_does_not_speak_tls() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert _speaks_tls(f"127.0.0.1:{port}", timeout=2) is False


def test_a_tls_server_is_recognised(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with context.wrap_socket(conn, server_side=True):
                pass
        except (OSError, ssl.SSLError):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        assert _speaks_tls(f"127.0.0.1:{port}", timeout=5) is True
    finally:
        thread.join(5)
        listener.close()
