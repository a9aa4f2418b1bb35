"""Merging compose documents by the compose-spec rules (``-f a.yaml -f b.yaml``, extends).

The override's values win. Mappings merge recursively, scalars are replaced, sequences are
appended; the exceptions are not scattered in if-chains but listed once, in ``_RULES``, a
table from path pattern (``services.*.environment``) to a merge function, the way
compose-go's ``override/merge.go`` does it. To learn how a key merges, read the table.

``!reset`` and ``!override`` (``document.Reset`` / ``document.Override``) are resolved here
and never survive into the output:

- ``!reset`` with no value (or any value but an empty sequence/mapping) removes the key,
  whatever the base had;
- ``!reset []`` / ``!reset {}`` leave the key present but empty;
- ``!override X`` replaces the base value wholesale with ``X`` (no merge, no append).

Positions travel with the values: every value in the output keeps the position of the
document it came from, so a later error about a merged value points at the file (and line)
that wrote it. Values re-keyed by a rule (``- KEY=VAL`` becoming ``KEY``) keep the
position of the list item they came from.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from orchestrator.errors import Location
from orchestrator.loader.document import Document, Override, PathKey, Positions, Reset


class _Missing:
    """The value of a key that a merge removed (``!reset``)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


@dataclass(frozen=True)
class Located:
    """A value with the positions table it came from and its path in that table.

    Merging works on these so that positions can follow values even when a rule moves
    them (a list item becoming a mapping key, a base service copied under another name).
    """

    value: Any
    positions: Mapping[PathKey, Location] = field(default_factory=dict)
    path: PathKey = ()

    def child(self, key: str | int) -> Located:
        return Located(self.value[key], self.positions, (*self.path, key))

    def at(self, value: Any) -> Located:
        """Another value standing where this one stood (a converted short form)."""
        return Located(value, self.positions, self.path)


def merge(base: Document, override: Document) -> Document:
    """``base`` with ``override`` applied on top, as ``-f base -f override`` does.

    The result keeps ``base``'s file and directory: the first file names the project and
    its directory is the one relative paths are resolved against.
    """
    merger = _Merger()
    data = merger.merge_mapping(
        Located(base.data, base.positions), Located(override.data, override.positions), ()
    )
    return Document(base.file, data, merger.positions, base.directory)


def strip_markers(doc: Document) -> Document:
    """Resolve ``!reset`` / ``!override`` in a file merged with nothing.

    With no base there is nothing to reset or override: a reset key disappears (or stays
    as the empty sequence/mapping it was given), an overridden value is just its value.
    """
    value, positions = strip_located(Located(doc.data, doc.positions), ())
    data = value if isinstance(value, dict) else {}
    return Document(doc.file, data, positions, doc.directory)


def merge_located(base: Located, override: Located, out: PathKey) -> tuple[Any, Positions]:
    """Merge two located values as if they stood at ``out``: the rules applied are those of
    ``out`` (``("services", "web")`` merges with the service rules).

    Returns the merged value (``MISSING`` if a reset removed it) and its positions keyed
    under ``out``. This is what ``extends`` reuses to merge a service onto its base.
    """
    merger = _Merger()
    value = merger.merge(base, override, out)
    return value, merger.positions


def strip_located(value: Located, out: PathKey) -> tuple[Any, Positions]:
    """``value`` with its markers resolved, its positions re-keyed under ``out``."""
    merger = _Merger()
    result = merger.take(value, out)
    return result, merger.positions


Rule = Callable[["_Merger", Located, Located, PathKey], Any]


class _Merger:
    """One merge: walks both trees and collects the output's positions as it goes."""

    def __init__(self) -> None:
        self.positions: Positions = {}

    def place(self, src: Located, out: PathKey) -> None:
        found = src.positions.get(src.path)
        if found is not None:
            self.positions[out] = found

    def take(self, src: Located, out: PathKey) -> Any:
        """Copy ``src`` to ``out`` as is (no base under it), resolving its markers."""
        value = src.value
        if isinstance(value, Reset):
            inner = value.value
            if isinstance(inner, list | dict) and not inner:
                self.place(src, out)
                return type(inner)()
            return MISSING
        if isinstance(value, Override):
            return self.take(src.at(value.value), out)
        self.place(src, out)
        if isinstance(value, dict):
            mapping: dict[Any, Any] = {}
            for key in value:
                taken = self.take(src.child(key), (*out, key))
                if taken is not MISSING:
                    mapping[key] = taken
            return mapping
        if isinstance(value, list):
            items: list[Any] = []
            for index in range(len(value)):
                taken = self.take(src.child(index), (*out, len(items)))
                if taken is not MISSING:
                    items.append(taken)
            return items
        return value

    def merge(self, base: Located, over: Located, out: PathKey) -> Any:
        """The override's value at ``out`` applied to the base's."""
        if isinstance(over.value, Reset | Override):
            return self.take(over, out)
        if isinstance(base.value, Override):
            base = base.at(base.value.value)
        if isinstance(base.value, Reset):
            return self.take(over, out)
        rule = _rule_for(out)
        if rule is not None:
            return rule(self, base, over, out)
        return _default(self, base, over, out)

    def merge_mapping(self, base: Located, over: Located, out: PathKey) -> dict[Any, Any]:
        self.place(base, out)
        self.place(over, out)
        result: dict[Any, Any] = {}
        ours, theirs = base.value, over.value
        for key in ours:
            if key in theirs:
                merged = self.merge(base.child(key), over.child(key), (*out, key))
            else:
                merged = self.take(base.child(key), (*out, key))
            if merged is not MISSING:
                result[key] = merged
        for key in theirs:
            if key not in ours:
                taken = self.take(over.child(key), (*out, key))
                if taken is not MISSING:
                    result[key] = taken
        return result

    def take_all(self, sources: list[Located], out: PathKey) -> list[Any]:
        items: list[Any] = []
        for src in sources:
            taken = self.take(src, (*out, len(items)))
            if taken is not MISSING:
                items.append(taken)
        return items


# --- the generic rule ---------------------------------------------------------------


def _default(m: _Merger, base: Located, over: Located, out: PathKey) -> Any:
    """Mappings merge, sequences append, anything else is replaced.

    A null override keeps the base (``key:`` with nothing after it is not a way to
    remove a value; ``!reset`` is). When the two sides have different shapes the
    override wins and the schema stage judges it.
    """
    if over.value is None:
        return m.take(base, out)
    if isinstance(base.value, dict) and isinstance(over.value, dict):
        return m.merge_mapping(base, over, out)
    if isinstance(base.value, list) and isinstance(over.value, list):
        return _append(m, base, over, out)
    return m.take(over, out)


# --- rules ------------------------------------------------------------------------------


def _replace(m: _Merger, base: Located, over: Located, out: PathKey) -> Any:
    """Shell commands: the last file's command is the command, never a concatenation."""
    return m.take(over, out)


def _items(src: Located) -> list[Located]:
    """A sequence's items; a lone scalar (``dns: 8.8.8.8``) counts as a one-item list."""
    value = src.value
    if value is None:
        return []
    if isinstance(value, list):
        return [src.child(i) for i in range(len(value))]
    return [src]


def _append(m: _Merger, base: Located, over: Located, out: PathKey) -> list[Any]:
    m.place(base, out)
    m.place(over, out)
    return m.take_all([*_items(base), *_items(over)], out)


def _keyed_list(key_of: Callable[[Any], str | None]) -> Rule:
    """Sequences whose items are unique by a key: a later item with the same key takes
    the earlier one's place; items without a key are appended."""

    def rule(m: _Merger, base: Located, over: Located, out: PathKey) -> list[Any]:
        m.place(base, out)
        m.place(over, out)
        slots: list[Located] = []
        index: dict[str, int] = {}
        for item in [*_items(base), *_items(over)]:
            value = item.value
            if isinstance(value, Reset):
                continue
            if isinstance(value, Override):
                item = item.at(value.value)
            key = key_of(item.value)
            if key is not None and key in index:
                slots[index[key]] = item
                continue
            if key is not None:
                index[key] = len(slots)
            slots.append(item)
        return m.take_all(slots, out)

    return rule


ItemParser = Callable[[str], tuple[str, Any]]


def _keyed_mapping(parse: ItemParser, *, deep: bool = False, accumulate: bool = False) -> Rule:
    """Values written either as a mapping or as a list of ``KEY=VALUE`` strings.

    Both sides are turned into mappings first, then merged by key; the result is always
    a mapping. ``deep`` merges the values of a shared key (``depends_on.db``) instead of
    replacing them; ``accumulate`` gathers repeated list keys into a list (a host with
    several ``extra_hosts`` addresses).
    """

    def rule(m: _Merger, base: Located, over: Located, out: PathKey) -> dict[Any, Any]:
        m.place(base, out)
        m.place(over, out)
        entries: dict[Any, tuple[Located | None, Located]] = {}
        for key, src in _pairs(base, parse, accumulate):
            entries[key] = (None, src)
        for key, src in _pairs(over, parse, accumulate):
            previous = entries.get(key)
            if deep and previous is not None:
                entries[key] = (previous[1], src)
            else:
                entries[key] = (None, src)
        result: dict[Any, Any] = {}
        for key, (under, src) in entries.items():
            path = (*out, key)
            value = m.merge(under, src, path) if under is not None else m.take(src, path)
            if value is not MISSING:
                result[key] = value
        return result

    return rule


def _pairs(src: Located, parse: ItemParser, accumulate: bool) -> Iterator[tuple[Any, Located]]:
    value = src.value
    if isinstance(value, dict):
        for key in value:
            yield key, src.child(key)
        return
    found: dict[Any, Located] = {}
    for item in _items(src):
        raw = item.value
        reset = isinstance(raw, Reset)
        if isinstance(raw, Reset | Override):
            raw = raw.value
        if raw is None or isinstance(raw, dict | list):
            continue
        key, parsed = parse(str(raw) if not isinstance(raw, str) else raw)
        if reset:
            found[key] = item.at(Reset())
        elif accumulate and key in found and parsed is not None:
            earlier = found[key].value
            gathered = [*(earlier if isinstance(earlier, list) else [earlier]), parsed]
            found[key] = found[key].at(gathered)
        else:
            found[key] = item.at(parsed)
    yield from found.items()


def _split_assignment(item: str) -> tuple[str, Any]:
    """``KEY=VALUE`` -> (KEY, VALUE); a bare ``KEY`` has no value (taken from the shell)."""
    key, sep, value = item.partition("=")
    return key, value if sep else None


def _split_host(item: str) -> tuple[str, Any]:
    """``host=ip`` or ``host:ip`` (the host never contains ``:``, an IPv6 address may)."""
    sep = "=" if "=" in item else ":"
    host, found, address = item.partition(sep)
    return host, address if found else None


def _name_with(default: Mapping[str, Any] | None) -> ItemParser:
    """A list of names standing for a mapping of names to ``default``."""

    def parse(item: str) -> tuple[str, Any]:
        return item, dict(default) if default is not None else None

    return parse


def _build(m: _Merger, base: Located, over: Located, out: PathKey) -> Any:
    """``build: ./dir`` is ``build: {context: ./dir}``; then merge as mappings."""
    if over.value is None:
        return m.take(base, out)
    left, right = _as_build(base), _as_build(over)
    if isinstance(left.value, dict) and isinstance(right.value, dict):
        return m.merge_mapping(left, right, out)
    return m.take(over, out)


def _as_build(src: Located) -> Located:
    return src.at({"context": src.value}) if isinstance(src.value, str) else src


def _logging(m: _Merger, base: Located, over: Located, out: PathKey) -> Any:
    """Logging options only make sense for their driver: a different driver replaces the
    whole block, the same (or an unnamed) driver merges options."""
    if isinstance(base.value, dict) and isinstance(over.value, dict):
        ours, theirs = base.value.get("driver"), over.value.get("driver")
        if ours is not None and theirs is not None and ours != theirs:
            return m.take(over, out)
        return m.merge_mapping(base, over, out)
    return _default(m, base, over, out)


def _mapping_or_replace(m: _Merger, base: Located, over: Located, out: PathKey) -> Any:
    """``ulimits.nofile``: two mappings merge, a plain number replaces."""
    if isinstance(base.value, dict) and isinstance(over.value, dict):
        return m.merge_mapping(base, over, out)
    return m.take(over, out)


# --- item keys ----------------------------------------------------------------------------


def _text(value: Any) -> str:
    """One spelling per value, so equal items written differently still compare equal."""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value).strip()


def _port_key(value: Any) -> str:
    if isinstance(value, dict):
        meaningful = {
            k: str(v)
            for k, v in value.items()
            if not (k == "protocol" and v == "tcp") and not (k == "mode" and v == "ingress")
        }
        return json.dumps(meaningful, sort_keys=True)
    text = str(value).strip()
    return text.removesuffix("/tcp")


def _mount_target(value: Any) -> str | None:
    """The container-side path of a volume or device, in short or long syntax."""
    if isinstance(value, dict):
        target = value.get("target")
        return None if target is None else str(target)
    if isinstance(value, str):
        parts = value.split(":")
        return parts[1] if len(parts) >= 2 else parts[0]
    return None


def _source(value: Any) -> str | None:
    if isinstance(value, dict):
        source = value.get("source")
        return None if source is None else str(source)
    return None if value is None else str(value)


def _field(name: str) -> Callable[[Any], str | None]:
    def key(value: Any) -> str | None:
        if isinstance(value, dict):
            found = value.get(name)
            return None if found is None else str(found)
        return None if value is None else str(value)

    return key


_unique = _keyed_list(_text)
_by_assignment = _keyed_mapping(_split_assignment)

# --- the table --------------------------------------------------------------------------

_RULES: Final[dict[str, Rule]] = {
    # shell commands replace
    "services.*.command": _replace,
    "services.*.entrypoint": _replace,
    "services.*.healthcheck.test": _replace,
    # mappings that may be written as KEY=VALUE lists: merge by key
    "services.*.environment": _by_assignment,
    "services.*.labels": _by_assignment,
    "services.*.annotations": _by_assignment,
    "services.*.sysctls": _by_assignment,
    "services.*.build.args": _by_assignment,
    "services.*.build.labels": _by_assignment,
    "services.*.build.additional_contexts": _by_assignment,
    "services.*.deploy.labels": _by_assignment,
    "services.*.extra_hosts": _keyed_mapping(_split_host, accumulate=True),
    "services.*.build.extra_hosts": _keyed_mapping(_split_host, accumulate=True),
    "networks.*.labels": _by_assignment,
    "volumes.*.labels": _by_assignment,
    "secrets.*.labels": _by_assignment,
    "configs.*.labels": _by_assignment,
    # lists of names that stand for mappings: merge by name, values deep-merged
    "services.*.depends_on": _keyed_mapping(
        _name_with({"condition": "service_started"}), deep=True
    ),
    "services.*.networks": _keyed_mapping(_name_with(None), deep=True),
    # unique resources: the later definition for the same key wins, in place
    "services.*.volumes": _keyed_list(_mount_target),
    "services.*.devices": _keyed_list(_mount_target),
    "services.*.secrets": _keyed_list(_source),
    "services.*.configs": _keyed_list(_source),
    "services.*.build.secrets": _keyed_list(_source),
    "services.*.ports": _keyed_list(_port_key),
    "services.*.env_file": _keyed_list(_field("path")),
    "services.*.label_file": _unique,
    "services.*.blkio_config.device_read_bps": _keyed_list(_field("path")),
    "services.*.blkio_config.device_read_iops": _keyed_list(_field("path")),
    "services.*.blkio_config.device_write_bps": _keyed_list(_field("path")),
    "services.*.blkio_config.device_write_iops": _keyed_list(_field("path")),
    "services.*.blkio_config.weight_device": _keyed_list(_field("path")),
    "networks.*.ipam.config": _keyed_list(_field("subnet")),
    # sequences that append without duplicates
    "services.*.cap_add": _unique,
    "services.*.cap_drop": _unique,
    "services.*.dns": _unique,
    "services.*.dns_opt": _unique,
    "services.*.dns_search": _unique,
    "services.*.expose": _unique,
    "services.*.external_links": _unique,
    "services.*.links": _unique,
    "services.*.security_opt": _unique,
    "services.*.profiles": _unique,
    "services.*.tmpfs": _unique,
    "services.*.device_cgroup_rules": _unique,
    "services.*.group_add": _unique,
    "services.*.volumes_from": _unique,
    "services.*.build.cache_from": _unique,
    "services.*.build.cache_to": _unique,
    "services.*.build.tags": _unique,
    "services.*.build.platforms": _unique,
    "services.*.deploy.placement.constraints": _unique,
    "services.*.deploy.placement.preferences": _unique,
    # shapes that need their own handling
    "services.*.build": _build,
    "services.*.logging": _logging,
    "services.*.ulimits.*": _mapping_or_replace,
}


def _compile(rules: Mapping[str, Rule]) -> dict[int, list[tuple[tuple[str, ...], Rule]]]:
    """Patterns grouped by length: a path can only match a pattern as long as itself."""
    by_length: dict[int, list[tuple[tuple[str, ...], Rule]]] = {}
    for pattern, rule in rules.items():
        parts = tuple(pattern.split("."))
        by_length.setdefault(len(parts), []).append((parts, rule))
    return by_length


_PATTERNS: Final = _compile(_RULES)


def _rule_for(path: PathKey) -> Rule | None:
    for parts, rule in _PATTERNS.get(len(path), ()):
        if all(p == "*" or p == k for p, k in zip(parts, path, strict=True)):
            return rule
    return None
