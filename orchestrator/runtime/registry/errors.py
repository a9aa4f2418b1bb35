"""The registry client's typed errors, under the package-wide tree of ``orchestrator.errors``.

A registry is a remote engine of sorts: what it answers wrongly is a ``BackendError``;
an image or tag it does not have is a ``NotFound``; a malformed reference is a usage
error. Subclasses let callers and tests tell *why* a transfer failed.
"""

from __future__ import annotations

from orchestrator.errors import BackendError, NotFound, UsageError


class InvalidReference(UsageError):
    """An image reference that does not parse (``Busybox``, ``a:b:c``, a bad digest...)."""


class RegistryError(BackendError):
    """The registry answered with an error, or could not be reached."""


class AuthenticationFailed(RegistryError):
    """The registry refused the credentials (or asked for some and none were configured)."""


class CorruptBlob(RegistryError):
    """What the registry sent does not hash to the digest that names it: refused."""


class ManifestUnsupported(RegistryError):
    """A manifest we cannot use: schema 1, an unknown media type, no matching platform."""


class NotInRegistry(NotFound):
    """The registry has no such repository, tag or manifest."""
