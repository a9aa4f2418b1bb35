"""An HTTP client for one registry's distribution API (``/v2/``), through ``requests``.

HTTPS with certificate checks by default. A registry is *insecure* when it is on the
loopback (``localhost``, ``127.0.0.1``, ``[::1]``, any port) or listed in
``PYCOMPOSE_INSECURE_REGISTRIES`` (comma-separated ``host[:port]``); as Docker does, HTTPS is
tried first there without verifying the certificate, then plain HTTP.

Every byte that comes back is checked: a manifest fetched by digest must hash to it, a blob
is hashed as it streams to disk and refused (the file deleted) when it does not match.
Errors are the types of :mod:`orchestrator.runtime.registry.errors`; nothing from
``requests`` escapes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import ssl
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO
from urllib.parse import urlencode, urljoin, urlsplit

import requests
from urllib3.exceptions import InsecureRequestWarning

from orchestrator.runtime.images.digest import Readable
from orchestrator.runtime.registry.auth import Authenticator, Credentials, load_credentials
from orchestrator.runtime.registry.blobstream import BlobStream
from orchestrator.runtime.registry.errors import (
    AuthenticationFailed,
    CorruptBlob,
    ManifestUnsupported,
    NotInRegistry,
    RegistryError,
)
from orchestrator.runtime.registry.manifest import (
    ACCEPT,
    DOCKER_SCHEMA1,
    IMAGE_TYPES,
    LIST_TYPES,
    Manifest,
    media_type_of,
)
from orchestrator.runtime.registry.reference import DOCKER_HUB, DOCKER_HUB_API

INSECURE_ENV = "PYCOMPOSE_INSECURE_REGISTRIES"
MAX_MANIFEST_BYTES = 4 << 20
CHUNK = 1 << 20
STREAM_CHUNK = 256 << 10  # small enough that unpacking follows the download closely
TIMEOUT = (10.0, 120.0)  # connect, read
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})

Advance = Callable[[int], None]
"""Told how many more bytes of a blob went through (for progress bars)."""

_UNSET: Any = object()


def _hostname(host: str) -> str:
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_insecure(host: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether plain HTTP (and unverified HTTPS) is allowed for registry ``host``."""
    env = os.environ if environ is None else environ
    if _hostname(host.lower()) in _LOOPBACK:
        return True
    listed = {h.strip().lower() for h in env.get(INSECURE_ENV, "").replace(" ", ",").split(",")}
    return host.lower() in listed or _hostname(host.lower()) in listed


def _speaks_tls(host: str, timeout: float = 5.0) -> bool:
    """Whether ``host`` completes a TLS handshake (certificate unchecked). Asked before
    trying HTTPS on an insecure registry: a plain-HTTP one refuses the handshake, and
    learning that through ``requests`` first loads the system's CA store (some 40 ms) for
    nothing. Unreachable counts as no: plain HTTP is tried next and its error reported."""
    where = urlsplit(f"//{host}")
    try:
        hostname, port = where.hostname, where.port or 443
    except ValueError:
        return True  # a malformed port: let requests say so
    if not hostname:
        return True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((hostname, port), timeout=timeout) as raw,
            context.wrap_socket(raw),
        ):
            return True
    except OSError:  # ssl.SSLError included
        return False


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"


class _UploadBody:
    """A file as a request body that reports progress; ``__len__`` makes ``requests`` send
    a Content-Length (a registry refuses chunked encoding on a monolithic PUT)."""

    def __init__(self, stream: BinaryIO, size: int, advance: Advance | None) -> None:
        self._stream, self._size, self._advance = stream, size, advance

    def __len__(self) -> int:
        return self._size

    def read(self, size: int = -1, /) -> bytes:
        data = self._stream.read(size if size and size > 0 else CHUNK)
        if data and self._advance is not None:
            self._advance(len(data))
        return data


class RegistryClient:
    """The distribution API of the registry ``registry`` (a host as in a reference:
    ``docker.io`` means Docker Hub). Thread-safe: blobs may be transferred in parallel."""

    def __init__(
        self,
        registry: str,
        *,
        credentials: Credentials | None = _UNSET,
        session: requests.Session | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.registry = registry
        self.host = DOCKER_HUB_API if registry == DOCKER_HUB else registry
        if credentials is _UNSET:
            credentials = load_credentials(registry)
        self.insecure = is_insecure(self.host, environ)
        self._session = session or requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=16)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._auth = Authenticator(registry, credentials)
        self._base: str | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    # ------------------------------------------------------------------ transport

    @contextlib.contextmanager
    def _quiet(self) -> Iterator[None]:
        """Unverified HTTPS to an insecure registry is on purpose: no warning per request."""
        if not self.insecure:
            yield
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InsecureRequestWarning)
            yield

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", TIMEOUT)
        with self._quiet():
            return self._session.request(method, url, verify=not self.insecure, **kwargs)

    def base_url(self) -> str:
        """``https://host`` or, for an insecure registry without TLS, ``http://host``;
        found once by asking ``/v2/`` (which also learns the auth challenge)."""
        with self._lock:
            if self._base is not None:
                return self._base
            schemes: tuple[str, ...] = ("https",)
            if self.insecure:
                schemes = ("https", "http") if _speaks_tls(self.host) else ("http",)
            last: Exception | None = None
            for scheme in schemes:
                try:
                    response = self._send("GET", f"{scheme}://{self.host}/v2/", timeout=(5.0, 30.0))
                except requests.RequestException as exc:
                    last = exc
                    continue
                if response.status_code == 401:
                    self._auth.learn(response.headers.get("WWW-Authenticate", ""))
                elif response.status_code >= 400:
                    raise RegistryError(
                        f"{self.host} does not speak the registry API v2 "
                        f"(GET /v2/ answered HTTP {response.status_code})"
                    )
                self._base = f"{scheme}://{self.host}"
                return self._base
            hint = (
                "" if self.insecure else f" (for a plain-HTTP registry add it to {INSECURE_ENV})"
            )
            raise RegistryError(f"cannot reach the registry {self.host}: {last}{hint}")

    def request(
        self,
        method: str,
        path: str,
        scopes: tuple[str, ...],
        *,
        body: Callable[[], Any] | None = None,
        ok: tuple[int, ...] = (200,),
        **kwargs: Any,
    ) -> requests.Response:
        """One API call, authenticated for ``scopes``; retried once after a 401 that
        brings a (new) challenge. ``body`` makes a fresh request body for each attempt."""
        url = urljoin(self.base_url() + "/", path)
        headers = dict(kwargs.pop("headers", {}))
        for attempt in (1, 2):
            authorization = self._auth.header(self._session, scopes)
            if authorization:
                headers["Authorization"] = authorization
            if body is not None:
                kwargs["data"] = body()
            try:
                response = self._send(method, url, headers=headers, **kwargs)
            except requests.RequestException as exc:
                raise RegistryError(f"{method} {url} failed: {exc}") from exc
            if response.status_code == 401 and attempt == 1:
                response.close()
                self._auth.forget(scopes)
                self._auth.learn(response.headers.get("WWW-Authenticate", ""))
                continue
            if response.status_code in ok:
                return response
            self._raise(response, method, url, scopes)
        raise AssertionError("unreachable")  # pragma: no cover

    def _raise(
        self, response: requests.Response, method: str, url: str, scopes: tuple[str, ...]
    ) -> None:
        detail = _error_detail(response)
        response.close()
        status = response.status_code
        if status == 401:
            who = (
                f"as {self._auth.credentials.username!r}"
                if self._auth.credentials
                else "without credentials"
            )
            raise AuthenticationFailed(
                f"{self.host} refused the login {who} for {' '.join(scopes)}: {detail}"
                " (check the credentials in the Docker client config, "
                "$DOCKER_CONFIG/config.json or ~/.docker/config.json)"
            )
        if status == 403:
            raise AuthenticationFailed(f"{self.host}: access denied to {method} {url}: {detail}")
        if status == 404:
            raise NotInRegistry(f"{self.host}: not found: {method} {url}: {detail}")
        raise RegistryError(f"{self.host}: {method} {url} answered HTTP {status}: {detail}")

    # ------------------------------------------------------------------ manifests

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        """The manifest (or list) ``reference`` (a tag or a digest) names."""
        try:
            response = self.request(
                "GET",
                f"/v2/{repository}/manifests/{reference}",
                (pull_scope(repository),),
                headers={"Accept": ACCEPT},
                stream=True,
            )
        except NotInRegistry as exc:
            raise NotInRegistry(
                f"{self.registry}/{repository}:{reference}: no such image in the registry "
                f"(manifest unknown)"
            ) from exc
        with response:
            data = _read_capped(response, MAX_MANIFEST_BYTES, "manifest")
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise CorruptBlob(
                f"manifest {reference} from {self.host} hashes to {digest}: refused"
            )
        media_type = media_type_of(response.headers.get("Content-Type", ""), data)
        if media_type in DOCKER_SCHEMA1:
            raise ManifestUnsupported(
                f"{repository}:{reference} has a Docker schema 1 manifest, which is not "
                "supported (push it again with a current Docker)"
            )
        if media_type not in IMAGE_TYPES | LIST_TYPES:
            raise ManifestUnsupported(
                f"{repository}:{reference}: unsupported manifest media type {media_type!r}"
            )
        return Manifest(media_type, data, digest)

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        """Store a manifest under ``reference`` (a tag, or its own digest); its digest."""
        response = self.request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            (push_scope(repository),),
            body=lambda: data,
            headers={"Content-Type": media_type},
            ok=(200, 201, 202),
        )
        response.close()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        answered = response.headers.get("Docker-Content-Digest")
        if answered and answered != digest:
            raise RegistryError(
                f"{self.host} stored the manifest as {answered}, but it hashes to {digest}"
            )
        return digest

    # ------------------------------------------------------------------ blobs

    def fetch_blob(
        self,
        repository: str,
        digest: str,
        dest: Path,
        *,
        size: int | None = None,
        advance: Advance | None = None,
        consume: Callable[[Readable], None] | None = None,
    ) -> None:
        """Stream the blob ``digest`` to ``dest``, hashing it on the way. ``dest`` appears
        only when the content matches; otherwise nothing is left and :class:`CorruptBlob`
        says so. ``size`` (from the manifest) caps what is accepted.

        ``consume``, when given, reads the same bytes as they arrive (a layer is unpacked
        while it downloads, in the same pass); the stream it reads ends only once the blob
        is verified, and raises :class:`CorruptBlob` instead when it is not. When
        ``consume`` fails on a blob that turns out to be corrupted, :class:`CorruptBlob` is
        what is raised; otherwise its own error."""
        response = self.request(
            "GET", f"/v2/{repository}/blobs/{digest}", (pull_scope(repository),), stream=True
        )
        partial = dest.with_name(dest.name + ".part")
        try:
            with response, partial.open("wb") as out:
                stream = BlobStream(
                    _chunks(response, digest),
                    out,
                    digest=digest,
                    size=size,
                    origin=f"{self.host}/{repository}",
                    advance=advance,
                )
                if consume is not None:
                    try:
                        consume(stream)
                    except CorruptBlob:
                        raise
                    except Exception as exc:
                        corrupt = stream.is_corrupt()
                        if corrupt is not None:
                            raise corrupt from exc
                        raise
                stream.finish()
            os.replace(partial, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
            raise

    def blob_exists(self, repository: str, digest: str) -> bool:
        try:
            response = self.request(
                "HEAD", f"/v2/{repository}/blobs/{digest}", (push_scope(repository),)
            )
        except NotInRegistry:
            return False
        response.close()
        return True

    def upload_blob(
        self,
        repository: str,
        digest: str,
        path: Path,
        *,
        advance: Advance | None = None,
        mount_from: str | None = None,
    ) -> bool:
        """Upload the file ``path`` as blob ``digest`` (one POST, then one monolithic PUT).
        With ``mount_from`` (a repository of the same registry holding the blob) the
        registry is first asked to mount it instead; True when it did, nothing sent."""
        scopes: tuple[str, ...] = (push_scope(repository),)
        query = ""
        if mount_from:
            scopes = (*scopes, pull_scope(mount_from))
            query = "?" + urlencode({"mount": digest, "from": mount_from})
        started = self.request(
            "POST", f"/v2/{repository}/blobs/uploads/{query}", scopes, ok=(201, 202)
        )
        started.close()
        if started.status_code == 201:
            return True
        location = started.headers.get("Location")
        if not location:
            raise RegistryError(f"{self.host}: an upload started without a Location")
        separator = "&" if "?" in location else "?"
        target = urljoin(self.base_url() + "/", location) + separator + urlencode(
            {"digest": digest}
        )
        size = path.stat().st_size
        with path.open("rb") as stream:

            def body() -> _UploadBody:
                stream.seek(0)  # a retry after a 401 sends the whole blob again
                return _UploadBody(stream, size, advance)

            try:
                done = self.request(
                    "PUT",
                    target,
                    scopes,
                    body=body,
                    headers={"Content-Type": "application/octet-stream"},
                    ok=(201, 204),
                )
            except RegistryError as exc:
                if "DIGEST_INVALID" in str(exc):
                    raise CorruptBlob(f"{self.host} refused blob {digest}: {exc}") from exc
                raise
        done.close()
        return False


def _chunks(response: requests.Response, digest: str) -> Iterator[bytes]:
    """The body of a blob response in :data:`STREAM_CHUNK` pieces, with transport errors
    as :class:`RegistryError`."""
    try:
        yield from response.iter_content(STREAM_CHUNK)
    except requests.RequestException as exc:
        raise RegistryError(f"download of blob {digest} failed: {exc}") from exc


def _read_capped(response: requests.Response, cap: int, what: str) -> bytes:
    data = bytearray()
    try:
        for chunk in response.iter_content(64 << 10):
            data += chunk
            if len(data) > cap:
                raise ManifestUnsupported(f"{what} is larger than {cap} bytes: refused")
    except requests.RequestException as exc:
        raise RegistryError(f"reading the {what} failed: {exc}") from exc
    return bytes(data)


def _error_detail(response: requests.Response) -> str:
    """The registry's own words: ``errors[].code/message`` of the body, when JSON."""
    try:
        doc = response.json()
    except ValueError:
        return (response.text or response.reason or "").strip()[:300]
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if isinstance(errors, list) and errors:
        return "; ".join(
            f"{e.get('code', '')}: {e.get('message', '')}".strip(": ")
            for e in errors
            if isinstance(e, dict)
        )
    return str(doc)[:300]
