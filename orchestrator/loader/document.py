"""The value passed between loader stages: parsed YAML plus where each value came from.

Stages work on plain data (dicts, lists, str, int, float, bool, None) so each one stays a
small pure function; positions ride beside the data in ``Positions``, keyed by the path
of the value (``("services", "web", "ports", 0)``). A stage that moves values keeps the
positions it can; ``locate`` falls back to the nearest known ancestor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import Location

PathKey = tuple[str | int, ...]
Positions = dict[PathKey, Location]


@dataclass(frozen=True)
class Reset:
    """A value tagged ``!reset``: the merge removes what the base had at this path."""

    value: Any = None


@dataclass(frozen=True)
class Override:
    """A value tagged ``!override``: the merge replaces the base value instead of merging."""

    value: Any


@dataclass
class Document:
    """One compose file (or the merge of several) on its way through the pipeline.

    ``file`` is the path it was read from ("-" for stdin); ``directory`` is the directory
    its relative paths are relative to.
    """

    file: str
    data: dict[str, Any]
    positions: Positions = field(default_factory=dict)
    directory: str = "."


def dotted(path: PathKey) -> str:
    """``("services", "web", "ports", 0)`` -> ``services.web.ports[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def locate(positions: Mapping[PathKey, Location], path: PathKey) -> Location | None:
    """The position of ``path``, or of its nearest ancestor that has one."""
    for end in range(len(path), -1, -1):
        found = positions.get(path[:end])
        if found is not None:
            return found
    return None
