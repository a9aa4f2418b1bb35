"""The OCI / Docker image config, parsed into a small typed :class:`ImageConfig`.

Only what a runtime honours is kept (the process defaults, ports, volumes, stop signal,
healthcheck, labels) plus the layer diff ids that tie the config to its layers. Missing
keys become empty values; keys of the wrong type are refused, since a config is input
from an archive we do not trust.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from orchestrator.runtime.images.digest import parse_digest
from orchestrator.runtime.images.errors import ImageError


@dataclass(frozen=True)
class Healthcheck:
    """The image's HEALTHCHECK; durations in nanoseconds as the config stores them (0 means
    "the runtime's default"). ``test`` is ``("NONE",)`` when the image disables it."""

    test: tuple[str, ...]
    interval_ns: int = 0
    timeout_ns: int = 0
    start_period_ns: int = 0
    start_interval_ns: int = 0
    retries: int = 0


@dataclass(frozen=True)
class ImageConfig:
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    stop_signal: str | None = None
    healthcheck: Healthcheck | None = None
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    diff_ids: tuple[str, ...] = ()
    architecture: str = ""
    os: str = ""
    created: str = ""

    @property
    def env_map(self) -> dict[str, str]:
        """``env`` as a mapping (a ``KEY`` without ``=`` maps to the empty string)."""
        result: dict[str, str] = {}
        for item in self.env:
            key, _, value = item.partition("=")
            result[key] = value
        return result


def _strings(value: Any, key: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):  # Docker accepts a bare string for Entrypoint/Cmd
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ImageError(f"image config: {key} must be a list of strings")
    return tuple(value)


def _string(value: Any, key: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ImageError(f"image config: {key} must be a string")
    return value


def _keys(value: Any, key: str) -> tuple[str, ...]:
    """``{"80/tcp": {}}`` (how ExposedPorts and Volumes are stored) → its sorted keys."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise ImageError(f"image config: {key} must be an object")
    return tuple(sorted(str(k) for k in value))


def _int(value: Any, key: str) -> int:
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ImageError(f"image config: {key} must be a non-negative integer")
    return value


def _healthcheck(value: Any) -> Healthcheck | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ImageError("image config: Healthcheck must be an object")
    test = _strings(value.get("Test"), "Healthcheck.Test") or ()
    if not test:
        return None  # "inherit": nothing to inherit from at this level
    return Healthcheck(
        test=test,
        interval_ns=_int(value.get("Interval"), "Healthcheck.Interval"),
        timeout_ns=_int(value.get("Timeout"), "Healthcheck.Timeout"),
        start_period_ns=_int(value.get("StartPeriod"), "Healthcheck.StartPeriod"),
        start_interval_ns=_int(value.get("StartInterval"), "Healthcheck.StartInterval"),
        retries=_int(value.get("Retries"), "Healthcheck.Retries"),
    )


def parse_image_config(raw: bytes) -> ImageConfig:
    """Parse the bytes of a config blob; refused when it is not an image config."""
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImageError(f"image config is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ImageError("image config must be a JSON object")
    conf = doc.get("config") or {}
    if not isinstance(conf, dict):
        raise ImageError("image config: config must be an object")
    rootfs = doc.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
        raise ImageError("image config: rootfs must be {type: layers, diff_ids: [...]}")
    diff_ids = rootfs.get("diff_ids") or []
    if not isinstance(diff_ids, list):
        raise ImageError("image config: rootfs.diff_ids must be a list")
    labels = conf.get("Labels") or {}
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise ImageError("image config: Labels must map strings to strings")
    stop_signal = _string(conf.get("StopSignal"), "StopSignal")
    return ImageConfig(
        entrypoint=_strings(conf.get("Entrypoint"), "Entrypoint"),
        cmd=_strings(conf.get("Cmd"), "Cmd"),
        env=_strings(conf.get("Env"), "Env") or (),
        working_dir=_string(conf.get("WorkingDir"), "WorkingDir"),
        user=_string(conf.get("User"), "User"),
        exposed_ports=_keys(conf.get("ExposedPorts"), "ExposedPorts"),
        volumes=_keys(conf.get("Volumes"), "Volumes"),
        stop_signal=stop_signal or None,
        healthcheck=_healthcheck(conf.get("Healthcheck")),
        labels=MappingProxyType(dict(labels)),
        diff_ids=tuple(parse_digest(d) for d in diff_ids),
        architecture=_string(doc.get("architecture"), "architecture"),
        os=_string(doc.get("os"), "os"),
        created=_string(doc.get("created"), "created"),
    )
