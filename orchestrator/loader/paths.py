"""Where the relative paths of a compose document live, and how to move them.

A service taken from another file (``extends.file``) or another project (``include``)
carries paths written relative to *its* file. Both stages need the same list of places a
path can hide in, so it is kept here once, as a table of walkers, and each stage supplies
only the transformation (rebase onto another directory, or make absolute).

Paths we leave alone: absolute ones, ``~``-relative ones (expanded later, where the home
directory is known) and remote build contexts (git URLs, ``https://...``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from orchestrator.loader.document import Override

PathFn = Callable[[str], str]


def is_relative_path(value: str) -> bool:
    """A local path that depends on the directory it is read from."""
    return bool(value) and not value.startswith(("/", "~")) and not is_remote(value)


def is_remote(value: str) -> bool:
    """A build context or resource that is not on the local disk at all."""
    return "://" in value or value.startswith(("git@", "github.com/"))


def rebase_service_paths(service: dict[str, Any], from_dir: str, to_dir: str) -> dict[str, Any]:
    """Make ``service``'s relative paths, written against ``from_dir``, mean the same from
    ``to_dir``.

    Relative paths stay relative (``config`` output stays portable and the later
    normalise stage still makes them absolute against the project directory); they are
    re-expressed relative to ``to_dir`` and always start with ``./`` or ``../`` so that a
    volume source like ``data`` can never turn into a named volume.
    """

    def rebase(path: str) -> str:
        if not is_relative_path(path):
            return path
        moved = os.path.relpath(os.path.join(from_dir, path), to_dir)
        return _dotted(moved)

    return map_service_paths(service, rebase)


def absolutize_paths(doc_data: dict[str, Any], base_dir: str) -> dict[str, Any]:
    """Make every relative path of a whole document absolute against ``base_dir``.

    Used for included projects, whose paths must keep meaning their own project
    directory once their resources sit in the including document.
    """
    base = os.path.abspath(base_dir)

    def absolute(path: str) -> str:
        if not is_relative_path(path):
            return path
        return os.path.normpath(os.path.join(base, path))

    out = dict(doc_data)
    services = out.get("services")
    if isinstance(services, dict):
        out["services"] = {
            name: map_service_paths(svc, absolute) if isinstance(svc, dict) else svc
            for name, svc in services.items()
        }
    for section in ("secrets", "configs"):
        items = out.get(section)
        if isinstance(items, dict):
            out[section] = {
                name: _map_key(item, "file", absolute) if isinstance(item, dict) else item
                for name, item in items.items()
            }
    volumes = out.get("volumes")
    if isinstance(volumes, dict):
        out["volumes"] = {
            name: _volume_driver_device(vol, absolute) if isinstance(vol, dict) else vol
            for name, vol in volumes.items()
        }
    return out


def map_service_paths(service: dict[str, Any], fn: PathFn) -> dict[str, Any]:
    """Apply ``fn`` to every path-valued field of one service; the rest is copied as is.

    Returns a new mapping; the input is not modified.
    """
    out = dict(service)
    for key, walker in _SERVICE_PATHS.items():
        if key in out:
            out[key] = _through_override(out[key], walker, fn)
    return out


def _through_override(value: Any, walker: Callable[[Any, PathFn], Any], fn: PathFn) -> Any:
    """Paths under an ``!override`` tag are still paths."""
    if isinstance(value, Override):
        return Override(walker(value.value, fn))
    return walker(value, fn)


def _dotted(path: str) -> str:
    if path == "." or path.startswith(("./", "../")) or path == "..":
        return path
    return "./" + path


def _build(value: Any, fn: PathFn) -> Any:
    if isinstance(value, str):
        return fn(value)
    if not isinstance(value, dict):
        return value
    out = _map_key(value, "context", fn)
    extra = out.get("additional_contexts")
    if isinstance(extra, dict):
        out["additional_contexts"] = {
            k: fn(v) if isinstance(v, str) and not v.startswith(("service:", "target:")) else v
            for k, v in extra.items()
        }
    return out


def _path_list(value: Any, fn: PathFn) -> Any:
    """``env_file`` / ``label_file``: a string, or a list of strings or ``{path: ...}``."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list):
        return [
            fn(v) if isinstance(v, str) else _map_key(v, "path", fn) if isinstance(v, dict) else v
            for v in value
        ]
    return value


def _volumes(value: Any, fn: PathFn) -> Any:
    if not isinstance(value, list):
        return value
    return [_volume(v, fn) for v in value]


def _volume(entry: Any, fn: PathFn) -> Any:
    if isinstance(entry, str):
        parts = entry.split(":")
        if len(parts) >= 2 and is_bind_source(parts[0]):
            return ":".join([fn(parts[0]), *parts[1:]])
        return entry
    if isinstance(entry, dict) and entry.get("type") == "bind":
        return _map_key(entry, "source", fn)
    return entry


def is_bind_source(source: str) -> bool:
    """In short volume syntax, a source that names a host path rather than a volume."""
    return source.startswith((".", "/", "~")) or "/" in source


def _extends(value: Any, fn: PathFn) -> Any:
    return _map_key(value, "file", fn) if isinstance(value, dict) else value


def _develop(value: Any, fn: PathFn) -> Any:
    if not isinstance(value, dict) or not isinstance(value.get("watch"), list):
        return value
    out = dict(value)
    out["watch"] = [_map_key(w, "path", fn) if isinstance(w, dict) else w for w in value["watch"]]
    return out


def _map_key(mapping: dict[str, Any], key: str, fn: PathFn) -> dict[str, Any]:
    value = mapping.get(key)
    if not isinstance(value, str):
        return mapping
    out = dict(mapping)
    out[key] = fn(value)
    return out


def _volume_driver_device(volume: dict[str, Any], fn: PathFn) -> dict[str, Any]:
    """A ``local`` volume with ``o: bind`` is a bind mount of ``device`` in disguise."""
    opts = volume.get("driver_opts")
    if volume.get("driver", "local") != "local" or not isinstance(opts, dict):
        return volume
    if opts.get("o") != "bind":
        return volume
    out = dict(volume)
    out["driver_opts"] = _map_key(opts, "device", fn)
    return out


# Where paths live inside one service: key -> walker(value, fn).
_SERVICE_PATHS: dict[str, Callable[[Any, PathFn], Any]] = {
    "build": _build,
    "env_file": _path_list,
    "label_file": _path_list,
    "volumes": _volumes,
    "extends": _extends,
    "develop": _develop,
}
