"""Map what the docker SDK and requests raise onto ``orchestrator.errors``.

The adapter boundary: every call into the SDK goes through :func:`translated`, so callers of
the docker backend only ever see our error tree, each with a sentence a user can act on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import docker.errors
import requests.exceptions

from orchestrator.errors import (
    BackendError,
    Conflict,
    EngineUnavailable,
    NotFound,
    PycomposeError,
)

_PORT_TAKEN = re.compile(
    r"(?:Bind for |listen (?:tcp|udp|sctp)[46]? )(?P<addr>\S*?):(?P<port>\d+)"
    r"(?: failed)?:? .*?(?:port is already allocated|address already in use)",
    re.IGNORECASE,
)
_TRANSIENT_WORDS = (
    "timeout",
    "timed out",
    "tls handshake",
    "connection reset",
    "connection refused",
    "unexpected eof",
    "too many requests",
    "service unavailable",
    "temporarily unavailable",
)


def unreachable_message(endpoint: str) -> str:
    return f"cannot reach the Docker engine at {endpoint}: is dockerd running?"


def port_conflict_message(explanation: str) -> str | None:
    """A sentence naming the host port when the engine says it is taken, else None."""
    match = _PORT_TAKEN.search(explanation)
    if match is None:
        if "port is already allocated" in explanation or "address already in use" in explanation:
            return (
                "a published host port is already in use "
                f"(the engine said: {explanation}); free it or publish another port"
            )
        return None
    addr = match.group("addr") or "0.0.0.0"
    port = match.group("port")
    return (
        f"host port {port} is already in use (binding {addr}:{port}); "
        "stop whatever holds it or publish another port"
    )


def _explanation(exc: docker.errors.APIError) -> str:
    text = exc.explanation
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text or exc).strip()


def map_error(exc: BaseException, endpoint: str, what: str = "") -> PycomposeError:
    """Our error for ``exc``; ``what`` names the resource for the message ("container web-1")."""
    prefix = f"{what}: " if what else ""
    if isinstance(exc, PycomposeError):
        return exc
    if isinstance(exc, docker.errors.APIError):
        explanation = _explanation(exc)
        if isinstance(exc, docker.errors.NotFound) or exc.status_code == 404:
            return NotFound(f"{prefix}{explanation}")
        port = port_conflict_message(explanation)
        if port is not None:
            return Conflict(f"{prefix}{port}")
        if exc.status_code == 409:
            return Conflict(f"{prefix}{explanation}")
        if exc.status_code == 403 and "active endpoints" in explanation:
            return Conflict(f"{prefix}{explanation}")
        return BackendError(f"{prefix}the Docker engine refused: {explanation}")
    if isinstance(exc, requests.exceptions.ConnectionError | FileNotFoundError):
        if isinstance(exc, requests.exceptions.ReadTimeout):
            return BackendError(f"{prefix}the Docker engine did not answer in time")
        return EngineUnavailable(unreachable_message(endpoint))
    if isinstance(exc, requests.exceptions.Timeout):
        return BackendError(f"{prefix}the Docker engine did not answer in time")
    if isinstance(exc, docker.errors.DockerException):
        text = str(exc)
        if "Error while fetching server API version" in text or "Connection" in text:
            return EngineUnavailable(unreachable_message(endpoint))
        return BackendError(f"{prefix}{text}")
    if isinstance(exc, requests.exceptions.RequestException | OSError):
        return BackendError(f"{prefix}talking to the Docker engine failed: {exc}")
    return BackendError(f"{prefix}unexpected error from the docker SDK: {exc!r}")


def is_transient(exc: BaseException) -> bool:
    """Whether retrying ``exc`` (a pull, typically) has a fair chance of working."""
    if isinstance(exc, docker.errors.APIError):
        if exc.status_code in (429, 502, 503, 504):
            return True
        text = _explanation(exc).lower()
        return (exc.status_code or 0) >= 500 and any(w in text for w in _TRANSIENT_WORDS)
    return isinstance(exc, requests.exceptions.Timeout | requests.exceptions.ChunkedEncodingError)


@contextmanager
def translated(endpoint: str, what: str = "") -> Iterator[None]:
    """Run a block of SDK calls, re-raising anything foreign as one of our errors."""
    try:
        yield
    except PycomposeError:
        raise
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise map_error(exc, endpoint, what) from exc
