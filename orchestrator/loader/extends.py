"""``extends``: a service built from another service, in this file or another one.

Follows the current compose spec: the extending service is merged onto its base with the
ordinary merge rules (``merge.py``; ``!reset`` / ``!override`` work against the base), and
*every* key of the base is inherited, including ``depends_on``, ``links``,
``volumes_from`` and ``service:`` references in ``network_mode`` / ``ipc`` / ``pid``.
The spec leaves it to the author to declare what those point to; a dangling reference is
reported later by the semantic checks, not silently dropped here.

Relative paths of a base taken from another file (build context, ``env_file``, bind
mount sources, ...) are rebased onto the extending file's directory and stay relative
(see ``paths.rebase_service_paths``): the output reads as if the base had been written in
the extending file, and the normalise stage makes them absolute later. compose-go
instead makes them absolute at once; we keep them relative so ``config`` output is
portable and so this stage stays a pure function of its inputs' directories.

Markers of the extending service (``command: !reset``) are resolved against the base and
then kept in the output at the same place, so that a later ``merge`` with an earlier
``-f`` file still removes or overrides what that file had, as compose does.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from typing import Any

from orchestrator.errors import ConfigError, Problem
from orchestrator.loader.document import (
    Document,
    Override,
    PathKey,
    Positions,
    Reset,
    dotted,
    locate,
)
from orchestrator.loader.merge import Located, merge_located, strip_located
from orchestrator.loader.paths import rebase_service_paths

Loader = Callable[[str], Document]
_Key = tuple[str, str]  # (file, service name)


def apply_extends(doc: Document, load: Loader) -> Document:
    """Resolve every ``extends`` in ``doc``; ``load(path)`` returns another file's
    (already interpolated) Document. Raises ConfigError listing every problem found."""
    services = doc.data.get("services")
    if not isinstance(services, dict) or not any(_has_extends(s) for s in services.values()):
        return doc
    resolver = _Resolver(doc, load)
    extended = {name for name, svc in services.items() if _has_extends(svc)}
    new_services = dict(services)
    positions = {
        path: loc
        for path, loc in doc.positions.items()
        if not (len(path) >= 2 and path[0] == "services" and path[1] in extended)
    }
    errors: list[ConfigError] = []
    for name in services:
        if name not in extended:
            continue
        try:
            resolved = resolver.resolve(doc, name, ())
        except ConfigError as exc:
            if not any(exc is seen for seen in errors):
                errors.append(exc)
            continue
        new_services[name] = resolved.value
        positions.update(resolved.positions)
    if errors:
        raise ConfigError([problem for exc in errors for problem in exc.problems])
    data = dict(doc.data)
    data["services"] = new_services
    return Document(doc.file, data, positions, doc.directory)


def _has_extends(service: Any) -> bool:
    return isinstance(service, dict) and "extends" in service


def _file_key(doc: Document) -> str:
    return doc.file if doc.file == "-" else os.path.abspath(doc.file)


class _Resolver:
    """Resolves services once each (a base shared by many is merged once), remembering
    failures too so that one cycle is reported once, not by each of its members."""

    def __init__(self, main: Document, load: Loader) -> None:
        self.main_key = _file_key(main)
        self.load = load
        self.docs: dict[str, Document] = {self.main_key: main}
        self.done: dict[_Key, Located | ConfigError] = {}

    def resolve(self, doc: Document, name: str, stack: tuple[_Key, ...]) -> Located:
        key = (_file_key(doc), name)
        known = self.done.get(key)
        if isinstance(known, ConfigError):
            raise known
        if known is not None:
            return known
        service = doc.data["services"][name]
        if not _has_extends(service):
            result = Located(service, doc.positions, ("services", name))
        else:
            try:
                result = self._extend(doc, name, service, (*stack, key))
            except ConfigError as exc:
                self.done[key] = exc
                raise
        self.done[key] = result
        return result

    def _extend(
        self, doc: Document, name: str, service: dict[str, Any], stack: tuple[_Key, ...]
    ) -> Located:
        here: PathKey = ("services", name)
        at: PathKey = (*here, "extends")
        ref, file = _parse_extends(service["extends"], doc, at)
        base_doc = doc if file is None else self._load(file, doc, (*at, "file"))
        base_services = base_doc.data.get("services")
        if not isinstance(base_services, dict) or ref not in base_services:
            raise ConfigError(_not_found(name, ref, doc, base_doc, base_services, at))
        base_key = (_file_key(base_doc), ref)
        if base_key in stack:
            cycle = [*stack[stack.index(base_key) :], base_key]
            raise ConfigError(
                Problem(
                    "extends cycle: " + " → ".join(self._label(k) for k in cycle),
                    path=dotted(at),
                    location=locate(doc.positions, at),
                    hint="a service cannot extend itself, directly or through others",
                )
            )
        base = self.resolve(base_doc, ref, stack)
        base_value, base_positions = strip_located(base, here)
        if not isinstance(base_value, dict):
            base_value = {}
        if _directory(base_doc) != _directory(doc):
            base_value = rebase_service_paths(base_value, base_doc.directory, doc.directory)
        merged, positions = merge_located(
            Located(base_value, base_positions, here), Located(service, doc.positions, here), here
        )
        if not isinstance(merged, dict):  # MISSING cannot happen: neither side is a marker
            merged = {}
        merged.pop("extends", None)
        kept = {p: loc for p, loc in positions.items() if p[: len(at)] != at}
        _keep_markers(service, merged, Located(service, doc.positions, here), kept, here)
        return Located(merged, kept, here)

    def _load(self, file: str, doc: Document, at: PathKey) -> Document:
        path = file if os.path.isabs(file) else os.path.join(doc.directory, file)
        path = os.path.abspath(path)
        cached = self.docs.get(path)
        if cached is not None:
            return cached
        if not os.path.isfile(path):
            raise ConfigError(
                Problem(
                    f"extends refers to {file!r}, but there is no file at {path}",
                    path=dotted(at),
                    location=locate(doc.positions, at),
                    hint="`file` is relative to the directory of the file that uses it",
                )
            )
        try:
            loaded = self.load(path)
        except OSError as exc:
            raise ConfigError(
                Problem(
                    f"cannot read {path}: {exc.strerror or exc}",
                    path=dotted(at),
                    location=locate(doc.positions, at),
                )
            ) from exc
        self.docs[path] = loaded
        return loaded

    def _label(self, key: _Key) -> str:
        file, name = key
        return name if file == self.main_key else f"{name} ({file})"


def _directory(doc: Document) -> str:
    return os.path.abspath(doc.directory)


def _parse_extends(value: Any, doc: Document, at: PathKey) -> tuple[str, str | None]:
    """``extends: name`` or ``extends: {service: name, file: path}``."""
    if isinstance(value, Override):
        value = value.value
    if isinstance(value, str) and value:
        return value, None
    if isinstance(value, dict):
        service, file = value.get("service"), value.get("file")
        if isinstance(service, str) and service and (file is None or isinstance(file, str)):
            return service, file or None
    raise ConfigError(
        Problem(
            "extends must be a service name, or a mapping with `service` (a name) and an"
            " optional `file` (a path)",
            path=dotted(at),
            location=locate(doc.positions, at),
            hint="for example `extends: {service: base, file: common.yaml}`",
        )
    )


def _not_found(
    name: str, ref: str, doc: Document, base_doc: Document, services: Any, at: PathKey
) -> Problem:
    where = "this file" if base_doc is doc else base_doc.file
    names = sorted(str(n) for n in services) if isinstance(services, dict) else []
    close = difflib.get_close_matches(ref, names, n=1)
    if close:
        hint = f"did you mean `{close[0]}`?"
    elif names:
        hint = "services there: " + ", ".join(names)
    else:
        hint = "that file defines no services"
    return Problem(
        f"service {name!r} extends {ref!r}, which is not defined in {where}",
        path=dotted(at),
        location=locate(doc.positions, at),
        hint=hint,
    )


def _keep_markers(
    written: Any, merged: dict[Any, Any], src: Located, positions: Positions, out: PathKey
) -> None:
    """Put the extending service's ``!reset`` / ``!override`` back where it wrote them,
    around the merged values, for the cross-file merge that comes later."""
    if not isinstance(written, dict):
        return
    for key, value in written.items():
        if key == "extends":
            continue
        path = (*out, key)
        if isinstance(value, Reset):
            if key in merged:
                merged[key] = Reset(merged[key])
            else:
                merged[key] = Reset()
                found = src.positions.get((*src.path, key))
                if found is not None:
                    positions[path] = found
        elif isinstance(value, Override):
            if key in merged:
                merged[key] = Override(merged[key])
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            _keep_markers(value, merged[key], src.child(key), positions, path)
