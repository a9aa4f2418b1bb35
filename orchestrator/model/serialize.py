"""The model back to compose long-syntax plain data (``config`` output, the config hash).

Values equal to their dataclass default are omitted (except where the compose schema
requires the key, like ``depends_on.*.condition``), so adding a defaulted field to the
model later changes neither the printed config nor the hash of existing services. Loading
the output again (canonical, normalize, bind) gives an equal Project: a fixed point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, Field, fields, is_dataclass
from typing import Any

from orchestrator.model.deploy import RestartPolicy, UpdateConfig
from orchestrator.model.project import ConfigObject, Network, Project, SecretObject, Volume
from orchestrator.model.service import DependsOn, Healthcheck, Service, ServiceVolume
from orchestrator.units import format_duration

# a field writer puts one model field into the output mapping, in the spec's spelling
FieldWriter = Callable[[Any, Any, dict[str, Any]], None]


def service_to_dict(service: Service) -> dict[str, Any]:
    """``service`` as a compose long-syntax mapping (without its name, which is the key)."""
    return _dump(service)


def project_to_dict(project: Project) -> dict[str, Any]:
    """``project`` as a compose file; disabled services are left out."""
    out: dict[str, Any] = {"name": project.name}
    out["services"] = {name: service_to_dict(s) for name, s in project.services.items()}
    for section, entries in (
        ("networks", project.networks),
        ("volumes", project.volumes),
        ("secrets", project.secrets),
        ("configs", project.configs),
    ):
        if entries:
            out[section] = {key: _dump(entry) for key, entry in entries.items()}
    out.update(project.extensions)
    return out


def _is_default(spec: Field[Any], value: Any) -> bool:
    if spec.default is not MISSING:
        return bool(value == spec.default)
    if spec.default_factory is not MISSING:
        return bool(value == spec.default_factory())
    return False


def _dump(obj: Any) -> dict[str, Any]:
    cls = type(obj)
    writers = _WRITERS.get(cls, {})
    skipped = _SKIPPED.get(cls, ())
    out: dict[str, Any] = {}
    for spec in fields(obj):
        if spec.name in skipped or spec.name == "extras":
            continue
        value = getattr(obj, spec.name)
        if _is_default(spec, value) and spec.name not in _ALWAYS.get(cls, ()):
            continue
        writer = writers.get(spec.name)
        if writer is not None:
            writer(obj, value, out)
        else:
            out[spec.name] = _plain(value)
    extras = getattr(obj, "extras", None)
    if extras:
        for key, value in extras.items():
            if key in out and isinstance(out[key], dict) and isinstance(value, dict):
                out[key] = {**value, **out[key]}
            else:
                out.setdefault(key, value)
    return out


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _dump(value)
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _duration(obj: Any, value: Any, out: dict[str, Any], *, name: str) -> None:
    out[name] = None if value is None else format_duration(value)


def _durations(*names: str) -> dict[str, FieldWriter]:
    def writer(name: str) -> FieldWriter:
        return lambda obj, value, out: _duration(obj, value, out, name=name)

    return {name: writer(name) for name in names}


def _restart(service: Service, value: Any, out: dict[str, Any]) -> None:
    if service.restart_max_retries is not None:
        out["restart"] = f"{value}:{service.restart_max_retries}"
    else:
        out["restart"] = value


def _nested(prefix: str) -> FieldWriter:
    """``bind_propagation`` back under ``bind: {propagation: ...}``, and so on."""

    def write(obj: Any, value: Any, out: dict[str, Any]) -> None:
        section, _, key = prefix.partition("_")
        out.setdefault(section, {})[key] = value

    return write


def _ipam_driver(network: Network, value: Any, out: dict[str, Any]) -> None:
    out.setdefault("ipam", {})["driver"] = value


def _ipam_config(network: Network, value: Any, out: dict[str, Any]) -> None:
    out.setdefault("ipam", {})["config"] = _plain(value)


_WRITERS: dict[type[Any], dict[str, FieldWriter]] = {
    Service: {"restart": _restart, **_durations("stop_grace_period")},
    Healthcheck: _durations("interval", "timeout", "start_period", "start_interval"),
    UpdateConfig: _durations("delay", "monitor"),
    RestartPolicy: _durations("delay", "window"),
    ServiceVolume: {
        name: _nested(name)
        for name in (
            "bind_propagation",
            "bind_create_host_path",
            "bind_selinux",
            "volume_nocopy",
            "volume_subpath",
            "tmpfs_size",
            "tmpfs_mode",
        )
    },
    Network: {"ipam_driver": _ipam_driver, "ipam_config": _ipam_config},
}

# fields the compose schema requires even at their default value
_ALWAYS: dict[type[Any], tuple[str, ...]] = {
    DependsOn: ("condition",),
}

# fields that are keys of the enclosing mapping, or folded into another field
_SKIPPED: dict[type[Any], tuple[str, ...]] = {
    Service: ("name", "restart_max_retries"),
    Network: ("key",),
    Volume: ("key",),
    SecretObject: ("key",),
    ConfigObject: ("key",),
}
