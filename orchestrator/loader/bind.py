"""Canonical plain data to the frozen, typed model.

One generic binder walks each dataclass's fields (``typing.get_type_hints``) and converts
values by type: a field added to the model binds without touching this file. Explicit
converters exist only where the model's shape differs from the spec's: mount sub-objects
flattened into ``bind_*``/``volume_*``/``tmpfs_*``, ``restart: on-failure:N``, durations,
sizes, octal modes and IPAM. Keys the model does not type land in the object's ``extras``.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, fields, is_dataclass
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from orchestrator import units
from orchestrator.errors import ConfigError, Problem
from orchestrator.labels import resource_name
from orchestrator.loader.document import Document, PathKey, dotted, locate
from orchestrator.model import (
    ConfigObject,
    Healthcheck,
    Network,
    Project,
    ResourceLimits,
    ResourceReservations,
    RestartPolicy,
    SecretObject,
    Service,
    ServiceFile,
    ServiceVolume,
    UpdateConfig,
    Volume,
)

# top-level keys that are not extensions: typed ones, plus `version` (obsolete, ignored)
_TOP_LEVEL = ("name", "version", "services", "networks", "volumes", "secrets", "configs")
_TRUE = ("1", "t", "true", "yes", "y", "on")
_FALSE = ("0", "f", "false", "no", "n", "off")


class _Invalid(Exception):
    """A value that cannot be converted; the binder turns it into a located Problem."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class _Reported(Exception):
    """A nested object failed and its problems are already recorded."""


# a field converter: (binder, path of the value, the value) -> the field's value
FieldConverter = Callable[["_Binder", PathKey, Any], Any]


def bind(
    doc: Document,
    *,
    project_name: str,
    working_dir: str,
    config_files: Sequence[str],
    active_profiles: Sequence[str],
) -> Project:
    """The Project that canonical, normalized ``doc`` describes.

    Services whose ``profiles`` are all inactive go to ``disabled_services``. Raises
    ConfigError listing every value that does not fit the model.
    """
    binder = _Binder(doc)
    data = doc.data
    services: dict[str, Service] = {}
    disabled: dict[str, Service] = {}
    for name, raw in (data.get("services") or {}).items():
        service = binder.top(Service, raw, ("services", str(name)), {"name": str(name)})
        if service is None:
            continue
        if _enabled(service.profiles, active_profiles):
            services[str(name)] = service
        else:
            disabled[str(name)] = service
    resources = {
        section: binder.resources(cls, data.get(section), section, project_name)
        for section, cls in (
            ("networks", Network),
            ("volumes", Volume),
            ("secrets", SecretObject),
            ("configs", ConfigObject),
        )
    }
    if binder.problems:
        raise ConfigError(binder.problems)
    return Project(
        name=project_name,
        working_dir=working_dir,
        config_files=tuple(config_files),
        services=services,
        disabled_services=disabled,
        networks=resources["networks"],
        volumes=resources["volumes"],
        secrets=resources["secrets"],
        configs=resources["configs"],
        profiles=tuple(active_profiles),
        extensions={k: v for k, v in data.items() if k not in _TOP_LEVEL},
    )


def _enabled(profiles: Sequence[str], active: Sequence[str]) -> bool:
    return not profiles or "*" in active or any(p in active for p in profiles)


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = get_type_hints(cls)
    return _HINTS[cls]


class _Binder:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.problems: list[Problem] = []

    def problem(self, path: PathKey, message: str, hint: str = "") -> None:
        self.problems.append(Problem(message, dotted(path), locate(self.doc.positions, path), hint))

    def top(
        self, cls: type[Any], raw: Any, path: PathKey, fixed: dict[str, Any]
    ) -> Any | None:
        """Bind one top-level object; None when it could not be built (problems recorded)."""
        try:
            return self.dataclass(cls, raw, path, fixed)
        except _Invalid as exc:
            self.problem(path, exc.message, exc.hint)
        except _Reported:
            pass
        return None

    def resources(
        self, cls: type[Any], raw: Any, section: str, project: str
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if not isinstance(raw, Mapping):
            return out
        for key, entry in raw.items():
            entry = dict(entry or {})
            if entry.get("name") is None:
                # normalize sets it; the fallback keeps bind usable on its own
                entry["name"] = str(key) if entry.get("external") else resource_name(project, key)
            found = self.top(cls, entry, (section, str(key)), {"key": str(key)})
            if found is not None:
                out[str(key)] = found
        return out

    # --- the generic part ----------------------------------------------------------------

    def dataclass(
        self, cls: type[Any], raw: Any, path: PathKey, fixed: Mapping[str, Any] | None = None
    ) -> Any:
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise _Invalid(f"expected a mapping, got {_show(raw)}")
        custom = _CLASS_BINDERS.get(cls)
        if custom is not None:
            raw = custom(self, path, raw)
        hints = _hints(cls)
        known = {f.name: f for f in fields(cls)}
        converters = _FIELD_CONVERTERS.get(cls, {})
        kwargs: dict[str, Any] = dict(fixed or {})
        extras: dict[str, Any] = {}
        failed = False
        for key, value in raw.items():
            key = str(key)
            if key in kwargs:
                continue
            converter = converters.get(key)
            if converter is None and (key not in known or key == "extras"):
                extras[key] = value
                continue
            try:
                if converter is not None:
                    result = converter(self, (*path, key), value)
                    if isinstance(result, _Fields):
                        kwargs.update(result.values)
                        extras.update(result.extras)
                        continue
                    kwargs[key] = result
                else:
                    kwargs[key] = self.convert(hints[key], value, (*path, key))
            except _Invalid as exc:
                self.problem((*path, key), exc.message, exc.hint)
                failed = True
            except _Reported:
                failed = True
        if extras and "extras" in known:
            kwargs["extras"] = extras
        for name, spec in known.items():
            if (
                name not in kwargs
                and spec.default is MISSING
                and spec.default_factory is MISSING
            ):
                self.problem(path, f"`{name}` is required here")
                failed = True
        if failed:
            raise _Reported
        return cls(**kwargs)

    def convert(self, tp: Any, value: Any, path: PathKey) -> Any:
        origin = get_origin(tp)
        if tp is Any:
            return value
        if origin in (Union, types.UnionType):
            args = get_args(tp)
            if value is None and type(None) in args:
                return None
            options = [a for a in args if a is not type(None)]
            for option in options[:-1]:
                try:
                    return self.convert(option, value, path)
                except _Invalid:
                    continue
            return self.convert(options[-1], value, path)
        if origin is Literal:
            allowed = get_args(tp)
            if value in allowed:
                return value
            raise _Invalid(f"expected one of {', '.join(map(str, allowed))}, got {_show(value)}")
        if origin is tuple:
            if not isinstance(value, list | tuple):
                raise _Invalid(f"expected a list, got {_show(value)}")
            item_type = get_args(tp)[0]
            return tuple(self._item(item_type, item, (*path, i)) for i, item in enumerate(value))
        if origin is dict:
            if not isinstance(value, Mapping):
                raise _Invalid(f"expected a mapping, got {_show(value)}")
            value_type = get_args(tp)[1]
            return {str(k): self._item(value_type, v, (*path, str(k))) for k, v in value.items()}
        if isinstance(tp, type) and is_dataclass(tp):
            return self.dataclass(tp, value, path)
        if tp in _SCALARS:
            return _SCALARS[tp](value)
        raise _Invalid(f"cannot bind a value of type {tp!r}")  # a model type we do not know

    def _item(self, tp: Any, value: Any, path: PathKey) -> Any:
        """One element of a collection: located where it is, not where its parent is."""
        try:
            return self.convert(tp, value, path)
        except _Invalid as exc:
            self.problem(path, exc.message, exc.hint)
            raise _Reported from exc


class _Fields:
    """A converter's answer when one spec key sets several model fields (or extras)."""

    def __init__(self, values: dict[str, Any], extras: dict[str, Any] | None = None) -> None:
        self.values = values
        self.extras = extras or {}


def _show(value: Any) -> str:
    return "nothing" if value is None else repr(value)


# --- scalars -----------------------------------------------------------------------------


def _to_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise _Invalid(f"expected a string, got {_show(value)}")


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise _Invalid(f"expected a whole number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise _Invalid(f"expected a whole number, got {_show(value)}")


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise _Invalid(f"expected a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise _Invalid(f"expected a number, got {_show(value)}")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise _Invalid(f"expected true or false, got {_show(value)}")


_SCALARS: dict[Any, Callable[[Any], Any]] = {
    str: _to_str,
    int: _to_int,
    float: _to_float,
    bool: _to_bool,
}


# --- explicit converters -----------------------------------------------------------------


def _duration(binder: _Binder, path: PathKey, value: Any) -> float | None:
    if value is None:
        return None
    try:
        # durations have nanosecond resolution; rounding there makes them round-trip
        return round(units.parse_duration(value), 9)
    except (TypeError, ValueError) as exc:
        raise _Invalid(str(exc)) from exc


def _size(binder: _Binder, path: PathKey, value: Any) -> int | None:
    if value is None:
        return None
    try:
        return units.parse_size(value)
    except (TypeError, ValueError) as exc:
        raise _Invalid(str(exc)) from exc


def _octal(binder: _Binder, path: PathKey, value: Any) -> int | None:
    """File modes: a YAML int is taken as is, a string ("0440") as octal, as compose does."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return int(value.strip(), 8)
        except ValueError as exc:
            raise _Invalid(f"expected an octal file mode like '0440', got {value!r}") from exc
    return _to_int(value)


def _restart(binder: _Binder, path: PathKey, value: Any) -> _Fields:
    text = "no" if value is False else _to_str(value)
    policy, sep, retries = text.partition(":")
    if policy not in ("no", "always", "on-failure", "unless-stopped"):
        raise _Invalid(f"expected no, always, on-failure[:N] or unless-stopped, got {text!r}")
    count = None
    if sep:
        if policy != "on-failure" or not retries.isdigit():
            raise _Invalid(f"only on-failure takes a retry count (on-failure:3), got {text!r}")
        count = int(retries)
    return _Fields({"restart": policy, "restart_max_retries": count})


def _devices(binder: _Binder, path: PathKey, value: Any) -> tuple[str, ...]:
    """Long-syntax devices become the "source:target:permissions" strings the model keeps."""
    if not isinstance(value, list):
        raise _Invalid(f"expected a list, got {_show(value)}")
    out: list[str] = []
    for index, item in enumerate(value):
        if isinstance(item, Mapping):
            if not item.get("source"):
                binder.problem((*path, index), "a device needs a `source`")
                raise _Reported
            parts = [_to_str(item["source"]), _to_str(item.get("target") or item["source"])]
            if item.get("permissions"):
                parts.append(_to_str(item["permissions"]))
            out.append(":".join(parts))
        else:
            out.append(_to_str(item))
    return tuple(out)


def _env_file(binder: _Binder, path: PathKey, value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    return tuple(
        _to_str(item.get("path") if isinstance(item, Mapping) else item) for item in items
    )


def _ipam(binder: _Binder, path: PathKey, value: Any) -> _Fields:
    if value is None:
        return _Fields({})
    if not isinstance(value, Mapping):
        raise _Invalid(f"expected a mapping, got {_show(value)}")
    rest = {k: v for k, v in value.items() if k not in ("driver", "config")}
    config = value.get("config") or []
    if not isinstance(config, list):
        raise _Invalid("expected `config` to be a list of subnets")
    fields_ = {
        "ipam_driver": None if value.get("driver") is None else _to_str(value["driver"]),
        "ipam_config": tuple(dict(c) for c in config),
    }
    return _Fields(fields_, {"ipam": rest} if rest else {})


def _service_volume(binder: _Binder, path: PathKey, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten the spec's ``bind:``/``volume:``/``tmpfs:`` sub-objects into prefixed fields."""
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if key in ("bind", "volume", "tmpfs") and isinstance(value, Mapping):
            for sub, sub_value in value.items():
                flat[f"{key}_{sub}"] = sub_value
        elif key in ("bind", "volume", "tmpfs") and value is None:
            continue
        else:
            flat[key] = value
    return flat


_CLASS_BINDERS: dict[type[Any], Callable[[_Binder, PathKey, Mapping[str, Any]], Any]] = {
    ServiceVolume: _service_volume,
}

_FIELD_CONVERTERS: dict[type[Any], dict[str, FieldConverter]] = {
    Service: {
        "restart": _restart,
        "devices": _devices,
        "env_file": _env_file,
        "stop_grace_period": _duration,
        "shm_size": _size,
        "mem_limit": _size,
        "mem_reservation": _size,
    },
    Healthcheck: {
        "interval": _duration,
        "timeout": _duration,
        "start_period": _duration,
        "start_interval": _duration,
    },
    UpdateConfig: {"delay": _duration, "monitor": _duration},
    RestartPolicy: {"delay": _duration, "window": _duration},
    ResourceLimits: {"memory": _size},
    ResourceReservations: {"memory": _size},
    ServiceVolume: {"tmpfs_size": _size, "tmpfs_mode": _octal},
    ServiceFile: {"mode": _octal},
    Network: {"ipam": _ipam},
}
