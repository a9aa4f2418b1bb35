"""Image references (``[host[:port]/]path[:tag][@digest]``), parsed the way Docker does.

``busybox`` means ``docker.io/library/busybox:latest``; the first path component is a
registry host only when it looks like one (a ``.`` or a ``:`` in it, or ``localhost``).
Docker Hub's API lives on ``registry-1.docker.io``, not on ``docker.io``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from orchestrator.runtime.registry.errors import InvalidReference

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")
_HOST = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$"
)
MAX_NAME = 255


@dataclass(frozen=True)
class Reference:
    """A parsed reference. ``registry`` is the canonical host (``docker.io`` for the Hub),
    ``repository`` the path inside it (``library/busybox``)."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def api_host(self) -> str:
        """Where the distribution API is served for this registry."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def reference(self) -> str:
        """What goes after ``/manifests/``: the digest when pinned, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def name(self) -> str:
        """``registry/repository``, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def familiar(self) -> str:
        """The short form Docker prints and the image store names images by:
        ``busybox:latest``, ``127.0.0.1:5000/team/app:1``, ``app@sha256:...``."""
        path = self.repository
        if self.registry == DOCKER_HUB:
            if path.startswith("library/") and path.count("/") == 1:
                path = path[len("library/") :]
        else:
            path = f"{self.registry}/{path}"
        if self.tag is not None or self.digest is None:
            return f"{path}:{self.tag or 'latest'}"
        return f"{path}@{self.digest}"

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.registry, self.repository, tag, None)

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def _is_host(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost" or (
        component.startswith("[")
    )


def parse_reference(text: str) -> Reference:
    """Parse ``text`` or raise :class:`InvalidReference` saying what is wrong with it."""
    original = text
    text = text.strip()
    if not text:
        raise InvalidReference("an image reference cannot be empty")
    digest: str | None = None
    if "@" in text:
        text, _, digest = text.partition("@")
        if not _DIGEST.match(digest):
            raise InvalidReference(f"{original!r}: {digest!r} is not a digest (sha256:<hex>)")
        algorithm, _, hexpart = digest.partition(":")
        if algorithm != "sha256" or len(hexpart) != 64:
            raise InvalidReference(
                f"{original!r}: only sha256 digests (64 hex digits) are supported"
            )
        digest = digest.lower()
    registry = DOCKER_HUB
    head, sep, rest = text.partition("/")
    if sep and _is_host(head):
        if not _HOST.match(head):
            raise InvalidReference(f"{original!r}: {head!r} is not a valid registry host")
        registry = DOCKER_HUB if head.lower() in _HUB_ALIASES else head
        text = rest
    tag: str | None = None
    last_slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > last_slash:
        text, tag = text[:colon], text[colon + 1 :]
        if not _TAG.match(tag):
            raise InvalidReference(f"{original!r}: {tag!r} is not a valid tag")
    if not text:
        raise InvalidReference(f"{original!r}: the repository name is missing")
    for component in text.split("/"):
        if not _COMPONENT.match(component):
            hint = " (repository names are lowercase)" if component.lower() != component else ""
            raise InvalidReference(
                f"{original!r}: {component!r} is not a valid repository path component{hint}"
            )
    if registry == DOCKER_HUB and "/" not in text:
        text = f"library/{text}"
    if len(text) > MAX_NAME:
        raise InvalidReference(f"{original!r}: the repository name is longer than {MAX_NAME}")
    if tag is None and digest is None:
        tag = "latest"
    return Reference(registry, text, tag, digest)
