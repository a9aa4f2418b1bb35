"""Loader stage: substitute ``${VAR}`` references in string values (compose "Interpolation").

Runs before validation so that a value like ``"${PORT:-80}:80"`` is checked as what it
will become. Only values are interpolated, never mapping keys, as compose-go does.

Syntax: ``$VAR``, ``${VAR}``, ``${VAR:-default}`` / ``${VAR-default}``,
``${VAR:?error}`` / ``${VAR?error}``, ``${VAR:+replacement}`` / ``${VAR+replacement}``,
``$$`` for a literal ``$``. The word after an operator may itself contain expansions and
is expanded only when it is used, as in a shell. An unset variable with no operator
becomes the empty string and a warning.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from orchestrator.errors import ConfigError, Problem
from orchestrator.loader.document import Document, Override, PathKey, Reset, dotted, locate

__all__ = ["interpolate", "interpolate_string"]

_NAME_RE = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")
_MAX_NESTING = 50
_DOLLAR_HINT = "write $$ for a literal dollar sign"

Warn = Callable[[str], None]


class _TemplateError(Exception):
    """One string could not be interpolated; ``hint`` says how to fix it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def _closing_brace(text: str, start: int) -> int:
    """Index of the ``}`` closing a ``${`` whose body starts at ``start``, or -1.

    Every ``${`` inside opens a nested level, as compose-go counts them.
    """
    depth = 1
    index = start
    end = len(text)
    while index < end:
        char = text[index]
        if char == "}":
            depth -= 1
            if depth == 0:
                return index
        elif char == "$" and index + 1 < end and text[index + 1] == "{":
            depth += 1
            index += 1
        index += 1
    return -1


def _expand(text: str, env: Mapping[str, str], warn: Warn, nesting: int = 0) -> str:
    if "$" not in text:
        return text
    if nesting > _MAX_NESTING:
        raise _TemplateError(f"expansions are nested more than {_MAX_NESTING} levels deep")
    out: list[str] = []
    index = 0
    end = len(text)
    while True:
        dollar = text.find("$", index)
        if dollar < 0:
            out.append(text[index:])
            return "".join(out)
        out.append(text[index:dollar])
        following = text[dollar + 1] if dollar + 1 < end else ""
        if following == "$":
            out.append("$")
            index = dollar + 2
        elif following == "{":
            close = _closing_brace(text, dollar + 2)
            if close < 0:
                raise _TemplateError(
                    f"'${{' at character {dollar + 1} is never closed with '}}'", _DOLLAR_HINT
                )
            out.append(_braced(text[dollar + 2 : close], env, warn, nesting))
            index = close + 1
        else:
            match = _NAME_RE.match(text, dollar + 1)
            if match is None:
                found = f"is followed by {following!r}" if following else "ends the text"
                raise _TemplateError(
                    f"'$' at character {dollar + 1} {found}; expected a variable name, "
                    "'{' or '$' after it",
                    _DOLLAR_HINT,
                )
            name = match.group()
            value = env.get(name)
            if value is None:
                warn(name)
                value = ""
            out.append(value)
            index = match.end()


def _braced(body: str, env: Mapping[str, str], warn: Warn, nesting: int) -> str:
    """Expand the inside of one ``${...}``."""
    match = _NAME_RE.match(body)
    if match is None:
        raise _TemplateError(
            f"'${{{body}}}' does not start with a variable name "
            "(letters, digits and '_', not starting with a digit)"
        )
    name = match.group()
    rest = body[match.end() :]
    value = env.get(name)
    if not rest:
        if value is None:
            warn(name)
            return ""
        return value
    operator = next((op for op in _OPERATORS if rest.startswith(op)), None)
    if operator is None:
        raise _TemplateError(
            f"'${{{body}}}': unexpected {rest[0]!r} after the variable name {name!r}",
            "use one of ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, "
            "${VAR?error}, ${VAR:+replacement}, ${VAR+replacement}",
        )
    word = rest[len(operator) :]
    unset = value is None
    empty = unset or value == ""
    if operator == ":-":
        return _expand(word, env, warn, nesting + 1) if empty else str(value)
    if operator == "-":
        return _expand(word, env, warn, nesting + 1) if unset else str(value)
    if operator == ":+":
        return "" if empty else _expand(word, env, warn, nesting + 1)
    if operator == "+":
        return "" if unset else _expand(word, env, warn, nesting + 1)
    missing = empty if operator == ":?" else unset
    if not missing:
        return str(value)
    reason = _expand(word, env, warn, nesting + 1)
    message = f'required variable "{name}" is missing a value'
    raise _TemplateError(f"{message}: {reason}" if reason else message)


def interpolate_string(text: str, env: Mapping[str, str]) -> str:
    """Interpolate one string; unset variables silently become empty.

    Raises ``ValueError`` with a plain message for bad syntax or a ``${VAR?error}``.
    """
    try:
        return _expand(text, env, lambda _name: None)
    except _TemplateError as exc:
        raise ValueError(exc.message) from None


class _Walker:
    """Copy-on-write walk of a document: containers are rebuilt only if a child changed."""

    def __init__(self, doc: Document, env: Mapping[str, str]) -> None:
        self.doc = doc
        self.env = env
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = []
        self._warned: set[tuple[str, PathKey]] = set()

    def value(self, value: Any, path: PathKey) -> Any:
        if isinstance(value, str):
            return self.string(value, path) if "$" in value else value
        if isinstance(value, dict):
            changed: dict[str, Any] | None = None
            for key, item in value.items():
                new = self.value(item, (*path, key))
                if new is not item:
                    if changed is None:
                        changed = dict(value)
                    changed[key] = new
            return value if changed is None else changed
        if isinstance(value, list):
            items: list[Any] | None = None
            for index, item in enumerate(value):
                new = self.value(item, (*path, index))
                if new is not item:
                    if items is None:
                        items = list(value)
                    items[index] = new
            return value if items is None else items
        if isinstance(value, Reset | Override):
            inner = self.value(value.value, path)
            if inner is value.value:
                return value
            return Reset(inner) if isinstance(value, Reset) else Override(inner)
        return value

    def string(self, text: str, path: PathKey) -> str:
        def warn(name: str) -> None:
            if (name, path) in self._warned:
                return
            self._warned.add((name, path))
            self.warnings.append(
                Problem(
                    f'The "{name}" variable is not set. Defaulting to a blank string.',
                    path=dotted(path),
                    location=locate(self.doc.positions, path),
                )
            )

        try:
            return _expand(text, self.env, warn)
        except _TemplateError as exc:
            self.errors.append(
                Problem(
                    f"cannot interpolate {text!r}: {exc.message}",
                    path=dotted(path),
                    location=locate(self.doc.positions, path),
                    hint=exc.hint,
                )
            )
            return text


def interpolate(doc: Document, env: Mapping[str, str]) -> tuple[Document, list[Problem]]:
    """Interpolate every string value of ``doc``; return the new document and the warnings.

    All errors in the document are collected and raised together as one ``ConfigError``.
    Unchanged subtrees are shared with ``doc``; positions are carried over unchanged.
    """
    walker = _Walker(doc, env)
    data = walker.value(doc.data, ())
    if walker.errors:
        raise ConfigError(walker.errors)
    new_doc = Document(
        file=doc.file, data=data, positions=dict(doc.positions), directory=doc.directory
    )
    return new_doc, walker.warnings
