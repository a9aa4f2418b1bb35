"""Pull and push images with the OCI distribution API (a library: it knows nothing of
compose). What callers use::

    from orchestrator.runtime.registry import pull, push, parse_reference

    result = pull(store, "127.0.0.1:5000/team/app:1", progress=callback)
    result.name, result.digest, result.id          # "127.0.0.1:5000/team/app:1", ...
    push(store, "app:1", "127.0.0.1:5000/team/app:1", progress=callback)

``callback(blob_short_id, bytes_done, bytes_total)`` is called from worker threads.
Credentials come from ``~/.docker/config.json`` (or ``$DOCKER_CONFIG``); plain HTTP is
used only for loopback registries and those in ``PYCOMPOSE_INSECURE_REGISTRIES``.
Errors: :class:`NotInRegistry` (a ``NotFound``), :class:`AuthenticationFailed`,
:class:`CorruptBlob`, :class:`ManifestUnsupported` (all :class:`RegistryError`, a
``BackendError``), :class:`InvalidReference` (a ``UsageError``).
"""

from orchestrator.runtime.registry.auth import Credentials, load_credentials
from orchestrator.runtime.registry.client import INSECURE_ENV, RegistryClient, is_insecure
from orchestrator.runtime.registry.errors import (
    AuthenticationFailed,
    CorruptBlob,
    InvalidReference,
    ManifestUnsupported,
    NotInRegistry,
    RegistryError,
)
from orchestrator.runtime.registry.manifest import Manifest, Platform, host_platform
from orchestrator.runtime.registry.progress import TransferProgress
from orchestrator.runtime.registry.pull import PullResult, pull
from orchestrator.runtime.registry.push import PushResult, push
from orchestrator.runtime.registry.reference import Reference, parse_reference

__all__ = [
    "INSECURE_ENV",
    "AuthenticationFailed",
    "CorruptBlob",
    "Credentials",
    "InvalidReference",
    "Manifest",
    "ManifestUnsupported",
    "NotInRegistry",
    "Platform",
    "PullResult",
    "PushResult",
    "Reference",
    "RegistryClient",
    "RegistryError",
    "TransferProgress",
    "host_platform",
    "is_insecure",
    "load_credentials",
    "parse_reference",
    "pull",
    "push",
]
