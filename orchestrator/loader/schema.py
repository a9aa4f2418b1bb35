"""The schema stage: check a document against the compose JSON schema, in plain words.

jsonschema's own messages ("[...] is not valid under any of the given schemas") describe
the schema, not the file; users need the dotted path, the line, what was expected and a
hint. So every jsonschema error is turned into one or more ``Problem``s here, and this is
the only module that imports jsonschema (see DESIGN.md, "Layers").

The schema's ``title``s are noun phrases that complete "expected ..." (see the
``$comment`` at the top of schemas/compose-spec.json); messages are built from them.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

import orchestrator
from orchestrator.errors import Location, Problem, PycomposeError
from orchestrator.loader.document import Document, PathKey, dotted, locate
from orchestrator.loader.suggest import did_you_mean

SCHEMA_PATH = Path(orchestrator.__file__).parent / "schemas" / "compose-spec.json"

_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "null": "nothing",
}
_LONGEST_QUOTED = 60


def validate(doc: Document) -> list[Problem]:
    """Every way ``doc`` breaks the compose schema, in file order (empty when it is valid)."""
    validator = _validator()
    try:
        errors = list(validator.iter_errors(doc.data))
    except TypeError:
        # A non-string mapping key (YAML allows `80: x`) makes the regex keywords raise;
        # keys are strings in compose's model, so check the stringified document instead.
        try:
            errors = list(validator.iter_errors(_stringify_keys(doc.data)))
        except TypeError as exc:
            raise PycomposeError(f"{doc.file}: holds values that are not plain data") from exc
    problems: dict[Problem, None] = {}
    for error in errors:
        for problem in _problems(error, doc):
            problems.setdefault(problem)
    return sorted(problems, key=_file_order)


@functools.cache
def service_keys() -> frozenset[str]:
    """The keys a service may have, so later stages can tell known-but-unhonoured keys apart."""
    service = _schema()["$defs"]["service"]
    return frozenset(service["properties"])


@functools.cache
def _schema() -> dict[str, Any]:
    try:
        loaded = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PycomposeError(f"cannot read the bundled compose schema {SCHEMA_PATH}") from exc
    if not isinstance(loaded, dict):
        raise PycomposeError(f"the bundled compose schema {SCHEMA_PATH} is not a JSON object")
    return loaded


@functools.cache
def _validator() -> Draft202012Validator:
    """Compiled once per process, with local ``$ref``s inlined.

    Following a ``$ref`` costs jsonschema a resource lookup on every visit; inlining them
    (the definitions are shared, not copied) cuts validation time by about 40%.
    """
    # The schema is checked against the metaschema by a unit test, not on every run: that
    # check costs more than validating a 1,000-service file.
    schema = _schema()
    inlined = _inline(schema, schema.get("$defs", {}), {}, frozenset())
    return Draft202012Validator(inlined)


def _inline(
    node: Any, defs: Mapping[str, Any], done: dict[str, Any], resolving: frozenset[str]
) -> Any:
    """``node`` with every ``{"$ref": "#/$defs/x"}`` replaced by definition x itself.

    A definition that refers to itself, directly or not, keeps its ``$ref`` (the ``$defs``
    stay in the schema, so jsonschema still resolves it).
    """
    if isinstance(node, list):
        return [_inline(item, defs, done, resolving) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if len(node) == 1 and isinstance(ref, str) and ref.startswith("#/$defs/"):
        name = ref[len("#/$defs/") :]
        if name in done:
            return done[name]
        if name in resolving or name not in defs:
            return node
        done[name] = _inline(defs[name], defs, done, resolving | {name})
        return done[name]
    return {key: _inline(value, defs, done, resolving) for key, value in node.items()}


def _problems(error: ValidationError, doc: Document) -> Iterator[Problem]:
    path: PathKey = tuple(error.absolute_path)
    keyword = error.validator
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    instance: Any = error.instance
    value: Any = error.validator_value

    if keyword == "additionalProperties" and isinstance(instance, Mapping):
        for key in _unknown_keys(instance, schema):
            hint = _unknown_key_hint(str(key), schema)
            yield _problem(doc, path, f'unknown key "{key}"', hint=hint, at=(*path, key))
    elif len(error.relative_schema_path) >= 2 and error.relative_schema_path[-2] == "propertyNames":
        yield _problem(
            doc,
            path,
            f"invalid name {_literal(instance)}: expected {_expected(schema)}",
            at=(*path, instance),
        )
    elif keyword in ("anyOf", "oneOf"):
        yield from _from_alternatives(error, doc)
    elif keyword == "type":
        yield _problem(doc, path, f"expected {_expected(schema)}, got {_describe(instance)}")
    elif keyword == "enum":
        choices = ", ".join(_literal(choice) for choice in value)
        hint = ""
        if isinstance(instance, str):
            hint = did_you_mean(instance, (c for c in value if isinstance(c, str)))
        message = f"expected one of {choices}, got {_literal(instance)}"
        yield _problem(doc, path, message, hint=hint)
    elif keyword == "const":
        message = f"expected {_literal(value)}, got {_literal(instance)}"
        yield _problem(doc, path, message)
    elif keyword == "required" and isinstance(instance, Mapping):
        for key in value:
            if key not in instance:
                yield _problem(doc, path, f'missing required key "{key}"')
    elif keyword == "pattern":
        expected = schema.get("title") or f"a value matching {value}"
        examples = [e for e in schema.get("examples", []) if isinstance(e, str)]
        hint = did_you_mean(instance, examples) if isinstance(instance, str) else ""
        yield _problem(doc, path, f"expected {expected}, got {_literal(instance)}", hint=hint)
    elif keyword in _BOUNDS:
        bound = f"{_BOUNDS[keyword]} {value}"
        yield _problem(doc, path, f"expected a number {bound}, got {_literal(instance)}")
    elif keyword in _SIZES:
        noun, relation = _SIZES[keyword]
        size = _count(value, noun)
        yield _problem(doc, path, f"expected {relation} {size}, got {_describe(instance)}")
    elif keyword == "uniqueItems" and isinstance(instance, list):
        repeated = _first_repeat(instance)
        yield _problem(doc, path, f"{_literal(repeated)} appears more than once in the list")
    else:
        yield _problem(doc, path, error.message)


def _from_alternatives(error: ValidationError, doc: Document) -> Iterator[Problem]:
    """Explain an anyOf/oneOf failure by the one form the value was evidently aiming at.

    A value whose type fits one alternative (a mapping where "a port string or a mapping"
    is allowed) is judged by that alternative's errors, so an unknown key inside a long
    port syntax is reported as such; a value that fits no alternative gets one line
    naming every accepted form (the schema's title).
    """
    path: PathKey = tuple(error.absolute_path)
    branches: dict[int, list[ValidationError]] = {}
    for sub in error.context or []:
        branch = sub.relative_schema_path[0] if sub.relative_schema_path else -1
        if isinstance(branch, int):
            branches.setdefault(branch, []).append(sub)
    fitting = [
        subs
        for _, subs in sorted(branches.items())
        if not any(sub.validator == "type" and not sub.relative_path for sub in subs)
    ]
    if not fitting:
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        yield _problem(doc, path, f"expected {_expected(schema)}, got {_describe(error.instance)}")
        return
    chosen = fitting[0]
    if len(fitting) > 1:
        best = best_match([sub for subs in fitting for sub in subs])
        chosen = next((subs for subs in fitting if best in subs), chosen)
    for sub in chosen:
        yield from _problems(sub, doc)


_BOUNDS = {
    "minimum": "of at least",
    "maximum": "of at most",
    "exclusiveMinimum": "greater than",
    "exclusiveMaximum": "less than",
}
_SIZES = {
    "minItems": ("item", "at least"),
    "maxItems": ("item", "at most"),
    "minLength": ("character", "at least"),
    "maxLength": ("character", "at most"),
    "minProperties": ("key", "at least"),
    "maxProperties": ("key", "at most"),
}


def _problem(
    doc: Document, path: PathKey, message: str, *, hint: str = "", at: PathKey | None = None
) -> Problem:
    location = locate(doc.positions, path if at is None else at) or Location(doc.file)
    return Problem(message=message, path=dotted(path), location=location, hint=hint)


def _unknown_keys(instance: Mapping[Any, Any], schema: Mapping[str, Any]) -> list[Any]:
    known = schema.get("properties", {})
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    return [
        key
        for key in instance
        if key not in known and not any(p.search(str(key)) for p in patterns)
    ]


def _unknown_key_hint(key: str, schema: Mapping[str, Any]) -> str:
    """Where ``key`` was probably meant to go.

    A key that exists one level down (``replicas`` written beside ``image`` instead of
    under ``deploy``) is a misplacement, which a spelling match would hide behind a
    look-alike ("restart_policy" -> "restart"); so that check comes first.
    """
    allowed: Mapping[str, Any] = schema.get("properties", {})
    homes = []
    for name, child in allowed.items():
        if isinstance(child, Mapping) and "$ref" in child:
            child = _resolve(child["$ref"])
        if isinstance(child, Mapping) and key in child.get("properties", {}):
            homes.append(f"{name}.{key}")
    if homes:
        return f'did you mean "{min(homes)}"?'
    return did_you_mean(key, allowed)


def _expected(schema: Mapping[str, Any]) -> str:
    """What ``schema`` accepts, as a noun phrase."""
    title = schema.get("title")
    if isinstance(title, str):
        return title
    if "enum" in schema:
        return "one of " + ", ".join(_literal(choice) for choice in schema["enum"])
    if "const" in schema:
        return _literal(schema["const"])
    if "$ref" in schema:
        return _expected(_resolve(schema["$ref"]))
    types = schema.get("type")
    if isinstance(types, str):
        types = [types]
    if isinstance(types, list) and types:
        return _or([_TYPE_WORDS.get(t, t) for t in types])
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(alternatives, list) and alternatives:
        return _or([_expected(alt) for alt in alternatives])
    return "a valid value"


def _resolve(ref: str) -> Mapping[str, Any]:
    """The local definition ``#/$defs/name`` points to ({} for anything else)."""
    prefix = "#/$defs/"
    if ref.startswith(prefix):
        found = _schema()["$defs"].get(ref[len(prefix) :])
        if isinstance(found, Mapping):
            return found
    return {}


def _or(words: list[str]) -> str:
    unique = list(dict.fromkeys(words))
    if len(unique) == 1:
        return unique[0]
    return ", ".join(unique[:-1]) + " or " + unique[-1]


def _describe(value: Any) -> str:
    """The kind of ``value`` in plain words, with the value itself when it is short."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({_literal(value)})"
    if isinstance(value, int | float):
        return f"a number ({_literal(value)})"
    if isinstance(value, str):
        return f"a string ({_literal(value)})"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _literal(value: Any) -> str:
    """``value`` as it would be written in the file: "text", 42, true, null."""
    if isinstance(value, str):
        text = value if len(value) <= _LONGEST_QUOTED else value[: _LONGEST_QUOTED - 3] + "..."
        return json.dumps(text, ensure_ascii=False)
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    return _describe(value)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _first_repeat(items: list[Any]) -> Any:
    seen: set[str] = set()
    for item in items:
        fingerprint = json.dumps(item, sort_keys=True, default=str)
        if fingerprint in seen:
            return item
        seen.add(fingerprint)
    return items[0] if items else None


def _stringify_keys(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _stringify_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_stringify_keys(item) for item in value]
    return value


def _file_order(problem: Problem) -> tuple[str, int, int]:
    location = problem.location
    if location is None:
        return ("", 0, 0)
    return (location.file, location.line or 0, location.column or 0)
