"""Documents built from Python data for loader-stage tests, with made-up positions.

Every value gets a position: line numbers in depth-first order, so tests can tell which
document a merged value's position came from. Markers (Reset/Override) add no path
segment, as in the YAML parser.
"""

from __future__ import annotations

import os
from typing import Any

import yaml

from orchestrator.errors import Location
from orchestrator.loader.document import Document, Override, PathKey, Positions, Reset


def make_doc(data: dict[str, Any], file: str = "a.yaml", directory: str = ".") -> Document:
    positions: Positions = {}
    _walk(data, (), file, positions)
    return Document(file, data, positions, directory)


def _walk(value: Any, path: PathKey, file: str, positions: Positions) -> None:
    positions[path] = Location(file, len(positions) + 1, 1)
    if isinstance(value, Reset | Override):
        value = value.value
    if isinstance(value, dict):
        for key, child in value.items():
            _walk(child, (*path, key), file, positions)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            _walk(child, (*path, index), file, positions)


def service_doc(service: Any, file: str = "a.yaml", name: str = "web") -> Document:
    return make_doc({"services": {name: service}}, file)


class _TaggedLoader(yaml.SafeLoader):
    """SafeLoader that understands the compose merge tags (just enough for tests)."""


def _tagged(marker: type[Reset] | type[Override]) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        if isinstance(node, yaml.MappingNode):
            value: Any = loader.construct_mapping(node, deep=True)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_scalar(node) or None  # type: ignore[arg-type]
        return marker(value)

    return construct


_TaggedLoader.add_constructor("!reset", _tagged(Reset))
_TaggedLoader.add_constructor("!override", _tagged(Override))


def yaml_doc(text: str, file: str = "a.yaml", directory: str = ".") -> Document:
    data = yaml.load(text, Loader=_TaggedLoader)  # a SafeLoader subclass
    return make_doc(data if data is not None else {}, file, directory)


def load_file(path: str) -> Document:
    """What the pipeline's loader gives extends/include: a parsed file and its directory."""
    with open(path, encoding="utf-8") as handle:
        return yaml_doc(handle.read(), path, os.path.dirname(path))
