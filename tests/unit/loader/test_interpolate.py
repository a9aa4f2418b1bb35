"""interpolate: the compose interpolation syntax, warnings, located errors, speed."""

from __future__ import annotations

import time
from typing import Any

import pytest

from orchestrator.errors import ConfigError, Location
from orchestrator.loader.document import Document, Override, Reset
from orchestrator.loader.interpolate import interpolate, interpolate_string
from orchestrator.loader.yaml_source import parse

ENV = {"SET": "value", "EMPTY": "", "PORT": "8080", "B": "bee"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("", ""),
        ("$SET", "value"),
        ("${SET}", "value"),
        ("a-$SET-b", "a-value-b"),
        ("$SET.x", "value.x"),
        ("${SET}x", "valuex"),
        ("$SETx", ""),
        ("$UNSET", ""),
        ("${UNSET}", ""),
        ("$$", "$"),
        ("$$SET", "$SET"),
        ("$${SET}", "${SET}"),
        ("cost: $$5", "cost: $5"),
        ("$$$SET", "$value"),
        # :- uses the default when unset or empty; - only when unset
        ("${UNSET:-d}", "d"),
        ("${EMPTY:-d}", "d"),
        ("${SET:-d}", "value"),
        ("${UNSET-d}", "d"),
        ("${EMPTY-d}", ""),
        ("${SET-d}", "value"),
        ("${UNSET:-}", ""),
        ("${UNSET:-a b:c}", "a b:c"),
        # :+ uses the replacement when set and non-empty; + when set
        ("${SET:+r}", "r"),
        ("${EMPTY:+r}", ""),
        ("${UNSET:+r}", ""),
        ("${SET+r}", "r"),
        ("${EMPTY+r}", "r"),
        ("${UNSET+r}", ""),
        # ? and :? pass set values through
        ("${SET:?boom}", "value"),
        ("${SET?boom}", "value"),
        ("${EMPTY?boom}", ""),
        # nested expansions in the word
        ("${UNSET:-${B}}", "bee"),
        ("${UNSET:-${ALSO_UNSET:-x}}", "x"),
        ("${UNSET:-$B}", "bee"),
        ("${UNSET:-${ALSO:-${B}}}-tail", "bee-tail"),
        ("${SET:+[${B}]}", "[bee]"),
        ("${UNSET:-$${B}}", "${B}"),
        ("${UNSET:-a}${B}", "abee"),
        ("${PORT:-80}:80", "8080:80"),
        # the word is only expanded when used, so an unused :? never fails
        ("${SET:-${NOPE:?never}}", "value"),
        ("${_under_score_1:-u}", "u"),
    ],
)
def test_interpolate_string(text: str, expected: str) -> None:
    assert interpolate_string(text, ENV) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("${UNSET:?please set it}", 'required variable "UNSET" is missing a value: please set it'),
        ("${EMPTY:?no empty}", 'required variable "EMPTY" is missing a value: no empty'),
        ("${UNSET?}", 'required variable "UNSET" is missing a value'),
        ("${UNSET:?need ${B}}", "missing a value: need bee"),
        ("${", "never closed"),
        ("${SET", "never closed"),
        ("${UNSET:-${B}", "never closed"),
        ("a $ b", "is followed by ' '"),
        ("end$", "ends the text"),
        ("$1", "is followed by '1'"),
        ("${}", "does not start with a variable name"),
        ("${1ABC}", "does not start with a variable name"),
        ("${A B}", "unexpected ' '"),
        ("${A.B}", "unexpected '.'"),
        ("${A=x}", "unexpected '='"),
        ("${" * 100 + "}" * 100, "does not start with a variable name"),
        ("${A:-" * 80 + "}" * 80, "nested more than"),
    ],
)
def test_interpolate_string_errors(text: str, words: str) -> None:
    with pytest.raises(ValueError) as info:
        interpolate_string(text, ENV)
    assert words in str(info.value)


COMPOSE = """\
services:
  web:
    image: "nginx:${TAG:-latest}"
    ports:
      - "${PORT}:80"
    environment:
      A: $SET
      B: 12
      C: ~
      $KEY: literal-key
    command: !reset ["${SET}"]
    labels: !override {x: $B}
"""


def test_interpolate_document_values_not_keys() -> None:
    doc = parse(COMPOSE, "compose.yaml", "/p")
    new, warnings = interpolate(doc, ENV)
    web = new.data["services"]["web"]
    assert web["image"] == "nginx:latest"
    assert web["ports"] == ["8080:80"]
    assert web["environment"] == {"A": "value", "B": 12, "C": None, "$KEY": "literal-key"}
    assert web["command"] == Reset(["value"])
    assert web["labels"] == Override({"x": "bee"})
    assert warnings == []


def test_interpolate_leaves_the_input_alone_and_keeps_positions() -> None:
    doc = parse(COMPOSE, "compose.yaml", "/p")
    before = doc.data["services"]["web"]["ports"][0]
    new, _ = interpolate(doc, ENV)
    assert doc.data["services"]["web"]["ports"][0] == before == "${PORT}:80"
    assert new is not doc
    assert new.positions == doc.positions
    assert (new.file, new.directory) == (doc.file, doc.directory)


def test_unchanged_subtrees_are_shared_changed_ones_copied() -> None:
    doc = Document("f", {"a": {"x": [1, "plain"]}, "b": {"y": "$SET"}})
    new, _ = interpolate(doc, ENV)
    assert new.data["a"] is doc.data["a"]
    assert new.data["b"] is not doc.data["b"]
    assert doc.data["b"] == {"y": "$SET"}


def test_unset_variable_warns_with_location() -> None:
    doc = parse("services:\n  web:\n    image: $NOPE\n    x: [a, '${NOPE}$NOPE']\n", "c.yml", ".")
    new, warnings = interpolate(doc, {})
    assert new.data["services"]["web"]["image"] == ""
    assert [(w.message, w.path, w.location) for w in warnings] == [
        (
            'The "NOPE" variable is not set. Defaulting to a blank string.',
            "services.web.image",
            Location("c.yml", 3, 5),
        ),
        (
            'The "NOPE" variable is not set. Defaulting to a blank string.',
            "services.web.x[1]",
            Location("c.yml", 4, 12),
        ),
    ]


def test_all_errors_are_collected_with_variable_file_line_and_path() -> None:
    text = (
        "services:\n"
        "  db:\n"
        "    environment:\n"
        "      PASSWORD: ${DB_PASSWORD:?set DB_PASSWORD in .env}\n"
        "    image: 'postgres:${'\n"
        "    command: [ok, 'a $ b']\n"
    )
    doc = parse(text, "/p/compose.yaml", "/p")
    with pytest.raises(ConfigError) as info:
        interpolate(doc, {})
    problems = info.value.problems
    assert [(p.path, p.location) for p in problems] == [
        ("services.db.environment.PASSWORD", Location("/p/compose.yaml", 4, 7)),
        ("services.db.image", Location("/p/compose.yaml", 5, 5)),
        ("services.db.command[1]", Location("/p/compose.yaml", 6, 19)),
    ]
    first = str(problems[0])
    for part in ("DB_PASSWORD", "set DB_PASSWORD in .env", "/p/compose.yaml:4:7", "PASSWORD"):
        assert part in first
    assert "$$" in problems[2].hint


@pytest.mark.parametrize("value", [1, 1.5, True, None, [], {}])
def test_non_strings_are_left_as_they_are(value: Any) -> None:
    new, warnings = interpolate(Document("f", {"v": value}), ENV)
    assert new.data == {"v": value}
    assert warnings == []


def test_a_thousand_services_interpolate_quickly() -> None:
    services = {
        f"svc{i}": {
            "image": "nginx:${TAG:-1.25}",
            "ports": ["${PORT}:80", "22:22"],
            "environment": {"A": "$SET", "B": "plain", "C": "$$literal"},
            "labels": {"x": "y", "z": "w"},
        }
        for i in range(1000)
    }
    start = time.monotonic()
    new, _ = interpolate(Document("f", {"services": services}), ENV)
    assert time.monotonic() - start < 1.0
    assert new.data["services"]["svc999"]["ports"][0] == "8080:80"
    assert new.data["services"]["svc999"]["environment"]["C"] == "$literal"
