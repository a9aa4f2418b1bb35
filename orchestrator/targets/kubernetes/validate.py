"""Strict schema validation of rendered objects against one pinned Kubernetes version.

``kubernetes-validate`` is an optional dependency (the tests and ``convert --validate``
use it), so it is imported only when asked for.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from orchestrator.errors import ConfigError, Problem, Unsupported

KUBERNETES_VERSION = "1.31.0"


def problems(objects: Iterable[dict[str, Any]], version: str = KUBERNETES_VERSION) -> list[Problem]:
    """Every object that does not validate strictly, one Problem each (empty: all valid)."""
    try:
        import kubernetes_validate  # type: ignore[import-untyped]
        from kubernetes_validate.utils import (  # type: ignore[import-untyped]
            SchemaNotFoundError,
            VersionNotSupportedError,
        )
    except ImportError as exc:
        raise Unsupported(
            "validating manifests needs the kubernetes-validate package: "
            "pip install kubernetes-validate"
        ) from exc
    found: list[Problem] = []
    for obj in objects:
        where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            at = ".".join(str(part) for part in exc.path)
            found.append(Problem(f"{exc.message} (Kubernetes {version})", path=f"{where}:{at}"))
        except SchemaNotFoundError as exc:
            found.append(Problem(exc.message, path=where))
        except VersionNotSupportedError as exc:
            raise Unsupported(exc.message) from exc
    return found


def validate(objects: Iterable[dict[str, Any]], version: str = KUBERNETES_VERSION) -> None:
    """ConfigError listing every invalid object."""
    found = problems(objects, version)
    if found:
        raise ConfigError(found)
