"""Credentials and the registry auth handshake.

Credentials come from Docker's client config (``$DOCKER_CONFIG/config.json``, default
``~/.docker/config.json``): ``auths.<registry>.auth`` (base64 of ``user:password``) or
``username``/``password``. Credential helpers (``credsStore``, ``credHelpers``) are not
run.

A registry that wants auth answers 401 with ``WWW-Authenticate``:

- ``Basic realm=...``: the credentials go in every request;
- ``Bearer realm=...,service=...,scope=...``: a token is fetched from ``realm`` (with the
  credentials as Basic auth, or anonymously) for the scopes needed, then sent as
  ``Authorization: Bearer``. Tokens are cached per scope set for their lifetime.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from orchestrator.runtime.registry.errors import AuthenticationFailed, RegistryError
from orchestrator.runtime.registry.reference import DOCKER_HUB

HUB_CONFIG_KEYS = (
    "https://index.docker.io/v1/",
    "index.docker.io",
    "docker.io",
    "registry-1.docker.io",
)
DEFAULT_TOKEN_LIFETIME = 60.0


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)

    def basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


@dataclass(frozen=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge: its scheme (lowercase) and parameters."""

    scheme: str
    params: Mapping[str, str]


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    directory = env.get("DOCKER_CONFIG")
    if directory:
        return Path(directory) / "config.json"
    return Path(env.get("HOME") or Path.home()) / ".docker" / "config.json"


def _host_of(key: str) -> str:
    """``https://host:5000/v1/`` → ``host:5000`` (config keys come in both forms)."""
    if "://" in key:
        key = key.split("://", 1)[1]
    return key.split("/", 1)[0].lower()


def load_credentials(registry: str, path: Path | None = None) -> Credentials | None:
    """The credentials config.json holds for ``registry`` (``docker.io`` for the Hub), or
    None. A damaged file is an error, not silence: a push would otherwise go anonymous."""
    path = path or config_path()
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AuthenticationFailed(f"cannot read the Docker client config {path}: {exc}") from exc
    auths = doc.get("auths") if isinstance(doc, dict) else None
    if not isinstance(auths, dict):
        return None
    if registry == DOCKER_HUB:
        wanted = {_host_of(k) for k in HUB_CONFIG_KEYS}
    else:
        wanted = {registry.lower()}
    for key, entry in auths.items():
        if _host_of(str(key)) in wanted and isinstance(entry, dict):
            return _entry_credentials(entry, str(key), path)
    return None


def _entry_credentials(entry: dict[str, Any], key: str, path: Path) -> Credentials | None:
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise AuthenticationFailed(
                f"{path}: auths[{key!r}].auth is not base64 of user:password"
            ) from exc
        user, sep, password = decoded.partition(":")
        if not sep:
            raise AuthenticationFailed(f"{path}: auths[{key!r}].auth has no ':' separator")
        return Credentials(user, password)
    username, secret = entry.get("username"), entry.get("password")
    if isinstance(username, str) and isinstance(secret, str) and username:
        return Credentials(username, secret)
    return None


def parse_challenges(header: str) -> list[Challenge]:
    """Every challenge of a ``WWW-Authenticate`` value (RFC 7235): quoted strings may hold
    commas (``scope="repository:a:pull,push"``) and backslash escapes."""
    challenges: list[Challenge] = []
    i, n = 0, len(header)
    scheme: str | None = None
    params: dict[str, str] = {}
    while i < n:
        while i < n and header[i] in " \t,":
            i += 1
        start = i
        while i < n and header[i] not in " \t,=":
            i += 1
        token = header[start:i]
        if not token:
            break
        j = i
        while j < n and header[j] in " \t":
            j += 1
        if j < n and header[j] == "=" and scheme is not None:
            i = j + 1
            while i < n and header[i] in " \t":
                i += 1
            value, i = _value(header, i)
            params[token.lower()] = value
            continue
        if scheme is not None:
            challenges.append(Challenge(scheme, params))
        scheme, params = token.lower(), {}
        i = j
    if scheme is not None:
        challenges.append(Challenge(scheme, params))
    return challenges


def _value(header: str, i: int) -> tuple[str, int]:
    n = len(header)
    if i < n and header[i] == '"':
        i += 1
        out = []
        while i < n and header[i] != '"':
            if header[i] == "\\" and i + 1 < n:
                i += 1
            out.append(header[i])
            i += 1
        return "".join(out), i + 1
    start = i
    while i < n and header[i] not in ",":
        i += 1
    return header[start:i].strip(), i


def pick_challenge(challenges: list[Challenge]) -> Challenge | None:
    """Bearer if offered (a token limits what a leaked header can do), else Basic."""
    for scheme in ("bearer", "basic"):
        for challenge in challenges:
            if challenge.scheme == scheme:
                return challenge
    return None


class Authenticator:
    """Turns challenges into ``Authorization`` values for one registry, caching tokens."""

    def __init__(self, registry: str, credentials: Credentials | None) -> None:
        self.registry = registry
        self.credentials = credentials
        self._challenge: Challenge | None = None
        self._tokens: dict[tuple[str, ...], tuple[str, float]] = {}
        self._lock = threading.Lock()

    @property
    def challenged(self) -> bool:
        return self._challenge is not None

    def learn(self, header: str) -> None:
        """Remember the challenge of a 401; refuses schemes we cannot answer."""
        challenge = pick_challenge(parse_challenges(header))
        if challenge is None:
            raise AuthenticationFailed(
                f"{self.registry} asks for an authentication scheme we do not support: {header!r}"
            )
        with self._lock:
            self._challenge = challenge

    def header(self, session: requests.Session, scopes: tuple[str, ...]) -> str | None:
        """The ``Authorization`` value for a request needing ``scopes`` (None until the
        registry has asked for auth)."""
        challenge = self._challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            if self.credentials is None:
                raise AuthenticationFailed(
                    f"{self.registry} requires a login and the Docker client config "
                    f"({config_path()}) has no credentials for it"
                )
            return self.credentials.basic()
        key = tuple(sorted(scopes))
        with self._lock:
            cached = self._tokens.get(key)
            if cached is not None and cached[1] > time.monotonic():
                return f"Bearer {cached[0]}"
        token, lifetime = self._fetch_token(session, challenge, key)
        with self._lock:
            self._tokens[key] = (token, time.monotonic() + max(lifetime - 5.0, 1.0))
        return f"Bearer {token}"

    def forget(self, scopes: tuple[str, ...]) -> None:
        with self._lock:
            self._tokens.pop(tuple(sorted(scopes)), None)

    def _fetch_token(
        self, session: requests.Session, challenge: Challenge, scopes: tuple[str, ...]
    ) -> tuple[str, float]:
        realm = challenge.params.get("realm")
        if not realm:
            raise AuthenticationFailed(f"{self.registry}: the Bearer challenge has no realm")
        params: list[tuple[str, str]] = []
        if challenge.params.get("service"):
            params.append(("service", challenge.params["service"]))
        params.extend(("scope", scope) for scope in scopes)
        headers = {}
        if self.credentials is not None:
            headers["Authorization"] = self.credentials.basic()
        try:
            response = session.get(realm, params=params, headers=headers, timeout=30)
        except requests.RequestException as exc:
            raise RegistryError(f"cannot reach the token service {realm}: {exc}") from exc
        if response.status_code in (401, 403):
            who = f"as {self.credentials.username!r}" if self.credentials else "anonymously"
            raise AuthenticationFailed(
                f"{self.registry}: the token service {realm} refused to authenticate {who} "
                f"for {' '.join(scopes)} (HTTP {response.status_code}); check the "
                f"credentials in {config_path()}"
            )
        if response.status_code != 200:
            raise RegistryError(
                f"{self.registry}: the token service {realm} answered HTTP "
                f"{response.status_code}: {response.text[:200]}"
            )
        try:
            doc = response.json()
        except ValueError as exc:
            raise RegistryError(f"the token service {realm} did not answer JSON") from exc
        token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"the token service {realm} answered without a token")
        lifetime = doc.get("expires_in", DEFAULT_TOKEN_LIFETIME)
        return token, float(lifetime) if isinstance(lifetime, int | float) else 60.0
