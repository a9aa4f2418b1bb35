"""The image store's typed errors, under the package-wide tree of ``orchestrator.errors``.

Callers mostly catch the base classes (``RuntimeFailure``, ``NotFound``); these subclasses
exist so that tests and the adapter can tell *why* an image was refused.
"""

from __future__ import annotations

from orchestrator.errors import NotFound, RuntimeFailure


class ImageError(RuntimeFailure):
    """Something about an image, an archive or the store is wrong."""


class UnsafeLayer(ImageError):
    """A layer tries to escape its root, hide a device node, or exceed a limit: refused."""


class DigestMismatch(ImageError):
    """Content does not hash to the digest that names it (corruption or tampering)."""


class InvalidArchive(ImageError):
    """An image archive is not a `docker save` or OCI archive we can read."""


class ImageNotFound(NotFound):
    """No image in the store answers to that name, id or digest."""
