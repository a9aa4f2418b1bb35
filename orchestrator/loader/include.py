"""``include``: other compose projects whose resources become part of this one.

Unlike ``-f`` files, an included project does not override anything: each of its
services, networks, volumes, secrets and configs is added, and a name defined on both
sides is an error (unless both definitions are identical, which happens when two
included projects share a common one). Its relative paths keep meaning its own project
directory, so they are made absolute before its resources join ours.

The caller loads the included project (``load_project``: parse, interpolate with *its*
environment, its own includes and extends, merge of its files) — this module only decides
what to load and how the result joins. Include cycles are caught across those nested
loads through a context variable holding the files being included right now, so the
pipeline does not have to thread the chain through.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import ConfigError, Problem
from orchestrator.loader.document import Document, PathKey, Positions, dotted, locate
from orchestrator.loader.paths import absolutize_paths


@dataclass(frozen=True)
class IncludeSpec:
    """One entry of ``include``, with every path made absolute.

    ``env_files`` empty means "the default": ``.env`` in ``project_directory``, if any.
    """

    paths: tuple[str, ...]
    project_directory: str
    env_files: tuple[str, ...] = ()


ProjectLoader = Callable[[IncludeSpec], Document]

_SECTIONS: tuple[tuple[str, str], ...] = (
    ("services", "service"),
    ("networks", "network"),
    ("volumes", "volume"),
    ("secrets", "secret"),
    ("configs", "config"),
    ("models", "model"),
)

# The files whose ``include`` is being applied right now, outermost first.
_INCLUDING: ContextVar[tuple[str, ...]] = ContextVar("pycompose_including", default=())


def apply_include(doc: Document, load_project: ProjectLoader) -> Document:
    """``doc`` with the resources of every included project added and ``include`` removed.

    Raises ConfigError listing every problem: malformed entries, missing files, cycles
    and names defined twice.
    """
    data = {k: v for k, v in doc.data.items() if k != "include"}
    positions = {p: loc for p, loc in doc.positions.items() if not p or p[0] != "include"}
    raw = doc.data.get("include")
    if raw is None:
        return Document(doc.file, data, positions, doc.directory)

    problems: list[Problem] = []
    specs = list(_specs(raw, doc, problems))
    chain = (*_INCLUDING.get(), _real(doc.file))
    owners: dict[tuple[str, Any], str] = {}
    for section, _ in _SECTIONS:
        if isinstance(data.get(section), dict):
            data[section] = dict(data[section])
            for name in data[section]:
                owners[(section, name)] = doc.file

    for spec, at in specs:
        included = _load(spec, at, doc, chain, load_project, problems)
        if included is None:
            continue
        label = ", ".join(spec.paths)
        resolved = absolutize_paths(included.data, spec.project_directory)
        for section, noun in _SECTIONS:
            items = resolved.get(section)
            if not isinstance(items, dict):
                continue
            target = data.setdefault(section, {})
            if not isinstance(target, dict):
                continue  # the schema stage reports the malformed section
            for name, value in items.items():
                if name in target:
                    if target[name] != value:
                        problems.append(_clash(noun, section, name, owners, label, doc, at))
                    continue
                target[name] = value
                owners[(section, name)] = label
                _copy_positions(included.positions, (section, name), positions)

    if problems:
        raise ConfigError(problems)
    return Document(doc.file, data, positions, doc.directory)


def _real(path: str) -> str:
    return path if path == "-" else os.path.realpath(path)


def _load(
    spec: IncludeSpec,
    at: PathKey,
    doc: Document,
    chain: tuple[str, ...],
    load_project: ProjectLoader,
    problems: list[Problem],
) -> Document | None:
    """The included project, or None after recording why it cannot be had."""
    location = locate(doc.positions, at)
    for path in spec.paths:
        real = _real(path)
        if real in chain:
            cycle = [*chain[chain.index(real) :], real]
            problems.append(
                Problem(
                    "include cycle: " + " → ".join(cycle),
                    path=dotted(at),
                    location=location,
                    hint="a project cannot include itself, directly or through others",
                )
            )
            return None
        if not os.path.isfile(path):
            problems.append(
                Problem(
                    f"included file {path} does not exist",
                    path=dotted(at),
                    location=location,
                    hint="include paths are relative to the directory of the including file",
                )
            )
            return None
    token = _INCLUDING.set(chain)
    try:
        return load_project(spec)
    except ConfigError as exc:
        problems.extend(exc.problems)
    except OSError as exc:
        problems.append(
            Problem(
                f"cannot read included project: {exc.strerror or exc}",
                path=dotted(at),
                location=location,
            )
        )
    finally:
        _INCLUDING.reset(token)
    return None


def _specs(
    raw: Any, doc: Document, problems: list[Problem]
) -> Iterator[tuple[IncludeSpec, PathKey]]:
    """Each entry of ``include`` as a spec, with the path of the entry for messages."""
    if not isinstance(raw, list):
        at: PathKey = ("include",)
        problems.append(
            Problem(
                "include must be a list of paths or of mappings with `path`",
                path="include",
                location=locate(doc.positions, at),
            )
        )
        return
    base = os.path.abspath(doc.directory)
    for index, entry in enumerate(raw):
        at = ("include", index)
        spec = _spec(entry, base)
        if spec is None:
            problems.append(
                Problem(
                    "an include entry is a path, or a mapping with `path` (a path or a list"
                    " of paths) and optional `project_directory` and `env_file`",
                    path=dotted(at),
                    location=locate(doc.positions, at),
                    hint="for example `- path: ./other/compose.yaml`",
                )
            )
            continue
        yield spec, at


def _spec(entry: Any, base: str) -> IncludeSpec | None:
    if isinstance(entry, str) and entry:
        entry = {"path": entry}
    if not isinstance(entry, dict):
        return None
    paths = _strings(entry.get("path"))
    env_files = _strings(entry.get("env_file")) if entry.get("env_file") is not None else ()
    directory = entry.get("project_directory")
    if not paths or env_files is None or not (directory is None or isinstance(directory, str)):
        return None
    absolute = tuple(_absolute(base, p) for p in paths)
    return IncludeSpec(
        paths=absolute,
        project_directory=(
            _absolute(base, directory) if directory else os.path.dirname(absolute[0])
        ),
        env_files=tuple(_absolute(base, p) for p in env_files),
    )


def _strings(value: Any) -> tuple[str, ...] | None:
    """A string or a list of non-empty strings, as a tuple; None if it is anything else."""
    if isinstance(value, str) and value:
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    return None


def _absolute(base: str, path: str) -> str:
    return os.path.normpath(os.path.join(base, os.path.expanduser(path)))


def _clash(
    noun: str,
    section: str,
    name: Any,
    owners: dict[tuple[str, Any], str],
    label: str,
    doc: Document,
    at: PathKey,
) -> Problem:
    first = owners.get((section, name), doc.file)
    here: PathKey = (section, name)
    location = locate(doc.positions, here) if first == doc.file else None
    return Problem(
        f"{noun} {name!r} is defined in {first} and in {label} (included)",
        path=dotted(here),
        location=location or locate(doc.positions, at),
        hint=f"rename one of them; included {section} are not merged or overridden",
    )


def _copy_positions(source: Positions, prefix: PathKey, out: Positions) -> None:
    size = len(prefix)
    for path, loc in source.items():
        if path[:size] == prefix:
            out[path] = loc
