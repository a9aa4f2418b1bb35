"""A service's configuration carried on its own containers, so a rollback needs no state file.

Every replica pycompose creates carries ``io.pycompose.spec``: the canonical service
mapping (``model.serialize.service_to_dict``) as compact JSON, or ``zlib:`` + base64 of it
when the JSON is longer than :data:`COMPRESS_ABOVE` bytes (labels travel in every inspect
and list call, so big ones are squeezed). A replica made by a rolling update also carries
``io.pycompose.previous-spec``: the spec of the container it replaced. ``pycompose
rollback`` and ``failure_action: rollback`` bind that text back to a ``Service`` with the
loader's own stages (canonical → bind), so what comes back is exactly what was loaded.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Mapping

from orchestrator import labels
from orchestrator.errors import ConfigError, NotFound
from orchestrator.model import Service
from orchestrator.model.serialize import service_to_dict

COMPRESS_ABOVE = 1024
_ZLIB = "zlib:"


def encode_service(service: Service) -> str:
    """The label value for ``service``: JSON, compressed when long."""
    text = json.dumps(service_to_dict(service), sort_keys=True, separators=(",", ":"))
    if len(text) <= COMPRESS_ABOVE:
        return text
    packed = zlib.compress(text.encode("utf-8"), 9)
    return _ZLIB + base64.b64encode(packed).decode("ascii")


def decode_service(name: str, text: str) -> Service:
    """The Service a label value describes; ConfigError when it cannot be read back."""
    from orchestrator.loader.bind import bind
    from orchestrator.loader.canonical import canonicalize
    from orchestrator.loader.document import Document

    try:
        if text.startswith(_ZLIB):
            text = zlib.decompress(base64.b64decode(text[len(_ZLIB) :])).decode("utf-8")
        data = json.loads(text)
    except (ValueError, zlib.error) as exc:
        raise ConfigError(f"label {labels.SPEC} of service {name!r} is unreadable: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"label {labels.SPEC} of service {name!r} is not a mapping")
    where = f"<label {labels.SPEC} of service {name}>"
    doc = canonicalize(Document(file=where, data={"services": {name: data}}))
    project = bind(doc, project_name="", working_dir="", config_files=(), active_profiles=("*",))
    return {**project.services, **project.disabled_services}[name]


def spec_labels(service: Service, previous: str | None = None) -> dict[str, str]:
    """The labels that record ``service`` (and the spec it replaced, when given)."""
    out = {labels.SPEC: encode_service(service)}
    if previous:
        out[labels.PREVIOUS_SPEC] = previous
    return out


def previous_service(name: str, container_labels: Mapping[str, str]) -> Service:
    """The service config a replica replaced; NotFound when it records none."""
    text = container_labels.get(labels.PREVIOUS_SPEC)
    if not text:
        raise NotFound(
            f"service {name!r} has no previous configuration to roll back to "
            "(it has not been updated since it was created)"
        )
    return decode_service(name, text)
