"""First loader stage: compose file text -> ``Document``, read by YAML 1.2 core rules.

PyYAML resolves plain scalars by YAML 1.1 rules (``22:22`` is 1342, ``on`` is True), which
silently corrupts port mappings and environment values; compose (Go, yaml.v3) reads YAML
1.2. So we keep libyaml's C composer for speed but replace scalar resolution, and build
Python values ourselves from the node tree, recording where every value came from.

Hostile input is refused before it can cost time or memory: a size cap checked before
parsing, a nesting cap enforced while composing (so the C composer never recurses deeply),
and a cap on the number of values once aliases are expanded ("billion laughs").
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from orchestrator.errors import ConfigError, Location, Problem
from orchestrator.loader.document import Document, Override, PathKey, Positions, Reset

__all__ = ["MAX_DEPTH", "MAX_NODES", "MAX_TEXT_CHARS", "dump", "parse"]

MAX_TEXT_CHARS = 10 * 1024 * 1024
"""Largest compose file we read; far above any real one, small enough to parse quickly."""

MAX_NODES = 1_000_000
"""Most values a document may hold once aliases are expanded."""

MAX_DEPTH = 100
"""Deepest nesting of mappings and sequences (the top-level mapping is level 1)."""

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_RESET = "!reset"
_OVERRIDE = "!override"

# The YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution).
_INT10_RE = re.compile(r"[-+]?[0-9]+\Z")
_INT8_RE = re.compile(r"0o[0-7]+\Z")
_INT16_RE = re.compile(r"0x[0-9a-fA-F]+\Z")
_FLOAT_RE = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
_INF_RE = re.compile(r"[-+]?\.(?:inf|Inf|INF)\Z")
_NAN_RE = re.compile(r"\.(?:nan|NaN|NAN)\Z")
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_TRUES = frozenset({"true", "True", "TRUE"})
_FALSES = frozenset({"false", "False", "FALSE"})
# A plain scalar not starting with one of these can only be a string: the fast path.
_NON_STR_STARTS = frozenset("0123456789+-.~nNtTfF<")


def _resolve_plain(value: str) -> str:
    """The tag YAML 1.2 core gives an untagged plain scalar (plus compose's ``<<`` merge)."""
    if value and value[0] not in _NON_STR_STARTS:
        return _STR
    if value in _NULLS:
        return _NULL
    if value in _TRUES or value in _FALSES:
        return _BOOL
    if _INT10_RE.match(value) or _INT8_RE.match(value) or _INT16_RE.match(value):
        return _INT
    if _FLOAT_RE.match(value) or _INF_RE.match(value) or _NAN_RE.match(value):
        return _FLOAT
    if value == "<<":
        return _MERGE
    return _STR


def _to_int(value: str) -> int | None:
    if _INT10_RE.match(value):
        return int(value, 10)
    if _INT8_RE.match(value):
        return int(value[2:], 8)
    if _INT16_RE.match(value):
        return int(value[2:], 16)
    return None


def _to_float(value: str) -> float | None:
    if _FLOAT_RE.match(value):
        return float(value)
    if _INF_RE.match(value):
        return -math.inf if value.startswith("-") else math.inf
    if _NAN_RE.match(value):
        return math.nan
    return None


class _TooDeep(Exception):
    """Raised from inside the C composer to stop it before it recurses any deeper."""

    def __init__(self, node: Node | None) -> None:
        super().__init__()
        self.node = node


class _TooMany(_TooDeep):
    """Raised from inside the C composer once the file itself holds too many values."""


class _Loader(yaml.CSafeLoader):
    """libyaml's composer with YAML 1.2 resolution and nesting/size guards.

    The composer calls ``descend_resolver`` before and ``ascend_resolver`` after each node
    it composes, which is the one hook that lets us count depth without a second pass.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._count = 0

    def resolve(self, kind: type[Node], value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode:
            return _resolve_plain(value) if implicit[0] else _STR
        return _SEQ if kind is SequenceNode else _MAP

    def descend_resolver(self, current_node: Node | None, current_index: Any) -> None:
        self._depth += 1
        self._count += 1
        if self._depth > MAX_DEPTH:
            raise _TooDeep(current_node)
        if self._count > MAX_NODES:
            raise _TooMany(current_node)

    def ascend_resolver(self) -> None:
        self._depth -= 1


def _location(file: str, node: Node) -> Location:
    mark = node.start_mark
    return Location(file, mark.line + 1, mark.column + 1)


def _char_at(text: str, line: int, column: int) -> str:
    """The character at a 0-based line and column, or "" past the end."""
    lines = text.split("\n", line + 1)
    if line >= len(lines):
        return ""
    return lines[line][column : column + 1]


def _yaml_error(exc: yaml.YAMLError, file: str, text: str) -> Problem:
    """A PyYAML/libyaml error in plain words, at the line and column it points to."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        location = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
        problem = exc.problem or "invalid YAML"
        if exc.context:
            message = f"invalid YAML: {problem} ({exc.context})"
        else:
            message = f"invalid YAML: {problem}"
        if "maximum nesting depth" in problem:
            # libyaml's own guard (1,000 levels) can fire before ours while it reads ahead.
            return Problem(
                f"the file nests mappings and lists deeper than {MAX_DEPTH} levels",
                location=location,
            )
        hint = ""
        if mark is not None and _char_at(text, mark.line, mark.column) == "\t":
            hint = "YAML does not allow tabs for indentation; indent with spaces"
        elif "mapping values are not allowed" in problem:
            hint = "quote values that contain ': ', or check the indentation"
        elif "another document" in problem:
            hint = "a compose file holds one YAML document; remove the '---' separator"
        return Problem(message, location=location, hint=hint)
    if isinstance(exc, yaml.reader.ReaderError):
        # libyaml reports a byte offset into the UTF-8 encoding of the text.
        before = text.encode("utf-8")[: exc.position].decode("utf-8", errors="ignore")
        line = before.count("\n") + 1
        column = len(before) - (before.rfind("\n") + 1) + 1
        return Problem(
            f"invalid YAML: character {exc.character!r} is not allowed ({exc.reason})",
            location=Location(file, line, column),
            hint="remove the control character or write it as an escape in a quoted string",
        )
    return Problem(f"invalid YAML: {exc}", location=Location(file))


def _compose(text: str, file: str) -> Node | None:
    try:
        loader = _Loader(text)
    except UnicodeEncodeError as exc:
        # Text decoded with "surrogateescape" carries bytes that were not UTF-8.
        before = text[: exc.start]
        raise ConfigError(
            Problem(
                "the file is not valid UTF-8 text",
                location=Location(
                    file, before.count("\n") + 1, exc.start - (before.rfind("\n") + 1) + 1
                ),
                hint="save the file as UTF-8",
            )
        ) from exc
    try:
        node: Node | None = loader.get_single_node()
    except _TooMany as exc:
        where = _location(file, exc.node) if exc.node is not None else Location(file)
        raise ConfigError(
            Problem(
                f"the file holds more than {MAX_NODES:,} values; refusing to load it",
                location=where,
                hint="split it into several compose files",
            )
        ) from None
    except _TooDeep as exc:
        where = _location(file, exc.node) if exc.node is not None else Location(file)
        raise ConfigError(
            Problem(
                f"the file nests mappings and lists deeper than {MAX_DEPTH} levels",
                location=where,
                hint="a compose file never needs this much nesting; check for a runaway '[' or '{'",
            )
        ) from None
    except RecursionError as exc:
        raise ConfigError(
            Problem(
                f"the file nests mappings and lists deeper than {MAX_DEPTH} levels",
                location=Location(file),
            )
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_error(exc, file, text)) from exc
    finally:
        loader.dispose()
    return node


def _check_expansion(root: Node, file: str) -> None:
    """Refuse alias expansions that are too large, too deep, or that contain themselves.

    Walks the node graph once (aliases are shared nodes), computing how many values and
    how many levels each node expands to, without expanding anything.
    """
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        kids = _children(node)
        if finished:
            total, deepest = 1, 0
            for kid in kids:
                if type(kid) is ScalarNode:
                    total += 1
                    deepest = max(deepest, 1)
                else:
                    total += size[id(kid)]
                    deepest = max(deepest, height[id(kid)])
            size[key] = total
            height[key] = deepest + 1
            active.discard(key)
            if total > MAX_NODES:
                raise ConfigError(
                    Problem(
                        f"aliases expand the file to more than {MAX_NODES:,} values; "
                        "refusing it (this looks like a 'billion laughs' alias bomb)",
                        location=_location(file, node),
                        hint="repeat an anchor fewer times, or nest aliases less",
                    )
                )
            if deepest + 1 > MAX_DEPTH:
                raise ConfigError(
                    Problem(
                        f"aliases nest mappings and lists deeper than {MAX_DEPTH} levels",
                        location=_location(file, node),
                    )
                )
            continue
        if key in size:
            continue
        if key in active:
            raise ConfigError(
                Problem(
                    "an alias refers to the value that contains it, which would never end",
                    location=_location(file, node),
                    hint="an alias may only point to an anchor outside of itself",
                )
            )
        active.add(key)
        stack.append((node, True))
        stack.extend((kid, False) for kid in kids if type(kid) is not ScalarNode)


def _children(node: Node) -> list[Node]:
    if type(node) is MappingNode:
        return [part for pair in node.value for part in pair]
    if type(node) is SequenceNode:
        return list(node.value)
    return []


class _Builder:
    """Turns the (checked) node tree into plain data, recording positions and problems.

    Recursion is safe here: ``_check_expansion`` and the composer guard bound the depth.
    """

    def __init__(self, file: str) -> None:
        self.file = file
        self.positions: Positions = {}
        self.problems: list[Problem] = []

    def problem(self, node: Node, message: str, hint: str = "") -> None:
        self.problems.append(Problem(message, location=_location(self.file, node), hint=hint))

    def build(self, node: Node, path: PathKey) -> Any:
        tag = node.tag
        if tag in (_RESET, _OVERRIDE):
            inner = self._untagged(node, path)
            return Reset(inner) if tag == _RESET else Override(inner)
        kind = type(node)
        if kind is ScalarNode:
            return self._scalar(node, tag)
        if kind is MappingNode:
            if tag != _MAP:
                self._bad_tag(node)
            return self._mapping(node, path, frozenset())
        if tag != _SEQ:
            self._bad_tag(node)
        return self._sequence(node, path)

    def _untagged(self, node: Node, path: PathKey) -> Any:
        """The value under ``!reset``/``!override``, resolved as if it had no tag."""
        if isinstance(node, ScalarNode):
            plain = not node.style
            return self._scalar(node, _resolve_plain(node.value) if plain else _STR)
        if isinstance(node, MappingNode):
            return self._mapping(node, path, frozenset())
        return self._sequence(node, path)

    def _bad_tag(self, node: Node) -> None:
        self.problem(
            node,
            f"unknown tag {node.tag!r}",
            hint="compose understands only the !reset and !override tags",
        )

    def _scalar(self, node: Node, tag: str) -> Any:
        value: str = node.value
        if tag == _STR:
            return value
        if tag == _NULL:
            if value in _NULLS:
                return None
            self.problem(node, f"{value!r} is not a null value (expected null or ~)")
            return None
        if tag == _BOOL:
            if value in _TRUES:
                return True
            if value in _FALSES:
                return False
            self.problem(node, f"{value!r} is not a boolean (expected true or false)")
            return value
        if tag == _INT:
            number = _to_int(value)
            if number is None:
                self.problem(node, f"{value!r} is not an integer")
                return value
            return number
        if tag == _FLOAT:
            real = _to_float(value)
            if real is None:
                self.problem(node, f"{value!r} is not a number")
                return value
            return real
        if tag == _MERGE:
            # A lone "<<" outside a mapping key is just text.
            return value
        self._bad_tag(node)
        return value

    def _sequence(self, node: Node, path: PathKey) -> list[Any]:
        out: list[Any] = []
        positions = self.positions
        for index, item in enumerate(node.value):
            child = (*path, index)
            positions[child] = _location(self.file, item)
            out.append(self.build(item, child))
        return out

    def _mapping(self, node: Node, path: PathKey, exclude: frozenset[str]) -> dict[str, Any]:
        """Build a mapping; keys in ``exclude`` are already set by a mapping merging this one.

        Merge keys (``<<: *a`` or ``<<: [*a, *b]``) follow the YAML merge-key rules: the
        mapping's own keys win, and among several merged mappings the earlier one wins.
        """
        own: dict[str, Any] = {}
        sources: list[Node] = []
        positions = self.positions
        for key_node, value_node in node.value:
            if type(key_node) is not ScalarNode:
                self.problem(
                    key_node,
                    "a mapping key must be a plain value, not a mapping or a list",
                )
                continue
            if key_node.tag == _MERGE:
                sources.extend(self._merge_sources(value_node))
                continue
            key: str = key_node.value
            if key in own:
                self.problem(
                    key_node,
                    f"duplicate key {key!r} in the same mapping",
                    hint="each key may appear once; remove or rename one of them",
                )
                continue
            if key in exclude:
                own[key] = None  # reserve the key so duplicates are still caught
                continue
            child = (*path, key)
            positions[child] = _location(self.file, key_node)
            own[key] = self.build(value_node, child)
        if not sources:
            if exclude:
                return {k: v for k, v in own.items() if k not in exclude}
            return own
        taken = set(exclude) | own.keys()
        merged: dict[str, Any] = {}
        for source in sources:
            part = self._mapping(source, path, frozenset(taken))
            merged.update(part)
            taken.update(part)
        merged.update((k, v) for k, v in own.items() if k not in exclude)
        return merged

    def _merge_sources(self, value: Node) -> list[Node]:
        if type(value) is MappingNode:
            return [value]
        if type(value) is SequenceNode and all(type(v) is MappingNode for v in value.value):
            return list(value.value)
        self.problem(
            value,
            "a merge key '<<' needs a mapping or a list of mappings (usually aliases)",
            hint="write '<<: *anchor' or '<<: [*a, *b]'",
        )
        return []


def parse(text: str, filename: str, directory: str) -> Document:
    """Parse one compose file; every problem becomes a located ``ConfigError``."""
    if len(text) > MAX_TEXT_CHARS:
        raise ConfigError(
            Problem(
                f"the file is larger than {MAX_TEXT_CHARS // (1024 * 1024)} MiB; "
                "refusing to load it",
                location=Location(filename),
                hint="a compose file this large is almost certainly not what you meant",
            )
        )
    root = _compose(text, filename)
    if root is None or (type(root) is ScalarNode and root.tag == _NULL):
        raise ConfigError(
            Problem(
                "empty compose file",
                location=Location(filename),
                hint="a compose file needs at least a top-level 'services:' mapping",
            )
        )
    if type(root) is not MappingNode:
        kind = "a list" if type(root) is SequenceNode else "a single value"
        raise ConfigError(
            Problem(
                f"expected a mapping at the top of the file, found {kind}",
                location=_location(filename, root),
                hint="start the file with 'services:'",
            )
        )
    if "*" in text:
        _check_expansion(root, filename)
    builder = _Builder(filename)
    builder.positions[()] = _location(filename, root)
    try:
        data = builder.build(root, ())
    except RecursionError as exc:  # defensive: the checks above should make this unreachable
        raise ConfigError(
            Problem(f"the file nests deeper than {MAX_DEPTH} levels", location=Location(filename))
        ) from exc
    if builder.problems:
        raise ConfigError(list(dict.fromkeys(builder.problems)))
    if not isinstance(data, dict):
        raise ConfigError(
            Problem(
                "expected a mapping at the top of the file, found a tagged value",
                location=_location(filename, root),
            )
        )
    return Document(file=filename, data=data, positions=builder.positions, directory=directory)


# --- dump -------------------------------------------------------------------------------

_BLOCK_UNSAFE = re.compile("[^\n\x20-\x7e\xa0-\ud7ff\ue000-\ufeff\U00010000-\U0010ffff]|[ \t]\n")


# YAML 1.1 booleans that PyYAML's own 1.1 resolver forgets.
_YAML11_ONLY_BOOLS = frozenset({"y", "Y", "n", "N"})


class _Dumper(yaml.CSafeDumper):
    """Emits YAML that both 1.1 and 1.2 readers load back as the same values.

    The emitter quotes a string whenever ``resolve`` says its plain form would read as
    something else, so we answer with whichever of the two rule sets is not "string".
    """

    def resolve(self, kind: type[Node], value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode and implicit[0]:
            tag = _resolve_plain(value)
            if tag != _STR:
                return tag
            if value in _YAML11_ONLY_BOOLS:
                return _BOOL
        resolved: str = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
        return resolved


def _represent_str(dumper: _Dumper, data: str) -> ScalarNode:
    style = "|" if "\n" in data and not _BLOCK_UNSAFE.search(data) else None
    return dumper.represent_scalar(_STR, data, style=style)


def _represent_tagged(dumper: _Dumper, data: Reset | Override) -> Node:
    node = dumper.represent_data(data.value)
    node.tag = _RESET if isinstance(data, Reset) else _OVERRIDE
    return node


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(Reset, _represent_tagged)
_Dumper.add_representer(Override, _represent_tagged)
_Dumper.add_representer(tuple, yaml.SafeDumper.represent_list)


def dump(data: Any) -> str:
    """YAML for ``pycompose config``: block style, insertion order, ambiguous strings quoted."""
    try:
        text: str = yaml.dump(
            data,
            Dumper=_Dumper,
            default_flow_style=False,
            sort_keys=False,
            allow_unicode=True,
            width=2**31 - 1,
        )
    except (yaml.YAMLError, UnicodeError) as exc:
        raise ConfigError(f"cannot write the configuration as YAML: {exc}") from exc
    return text
