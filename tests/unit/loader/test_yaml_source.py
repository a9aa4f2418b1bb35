"""yaml_source: YAML 1.2 scalars, positions, tags, merge keys, limits, dump round trip."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.errors import ConfigError, Location
from orchestrator.loader import yaml_source
from orchestrator.loader.document import Override, Reset
from orchestrator.loader.yaml_source import MAX_DEPTH, MAX_TEXT_CHARS, dump, parse

FILE = "compose.yaml"


def load(text: str) -> dict[str, Any]:
    return parse(text, FILE, "/project").data


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(text, FILE, "/project")
    return info.value


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # YAML 1.1 sexagesimal and booleans are plain strings under 1.2
        ("22:22", "22:22"),
        ("1:2:3", "1:2:3"),
        ("on", "on"),
        ("off", "off"),
        ("yes", "yes"),
        ("no", "no"),
        ("y", "y"),
        ("n", "n"),
        ("Y", "Y"),
        ("NO", "NO"),
        # only the 1.2 spellings are booleans
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("false", False),
        ("False", False),
        ("FALSE", False),
        ("tRUE", "tRUE"),
        # nulls
        ("null", None),
        ("Null", None),
        ("NULL", None),
        ("~", None),
        ("", None),
        ("nULL", "nULL"),
        # integers: decimal (a leading 0 is still decimal), 0o octal, 0x hex
        ("0", 0),
        ("42", 42),
        ("-12", -12),
        ("+12", 12),
        ("0755", 755),
        ("0o17", 15),
        ("0x1F", 31),
        ("0xff", 255),
        ("0b11", "0b11"),
        ("1_000", "1_000"),
        ("0o8", "0o8"),
        ("0x", "0x"),
        ("0X1F", "0X1F"),
        # floats
        ("1.5", 1.5),
        (".5", 0.5),
        ("1.", 1.0),
        ("1e3", 1000.0),
        ("-2.5E-2", -0.025),
        (".inf", math.inf),
        ("+.Inf", math.inf),
        ("-.INF", -math.inf),
        ("1.2.3", "1.2.3"),
        ("12e", "12e"),
        ("inf", "inf"),
        # things PyYAML 1.1 would turn into dates or other types
        ("2001-12-14", "2001-12-14"),
        ("=", "="),
        ("<<", "<<"),
        # quoting and explicit tags
        ("'123'", "123"),
        ('"true"', "true"),
        ("'~'", "~"),
        ("!!str 123", "123"),
        ("!!str 22:22", "22:22"),
        ('!!int "12"', 12),
        ("!!float 1", 1.0),
        ('!!bool "false"', False),
        ("!!null ''", None),
    ],
)
def test_yaml_12_core_scalars(source: str, expected: Any) -> None:
    value = load(f"v: {source}\n")["v"]
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize("source", [".nan", ".NaN", ".NAN"])
def test_nan_is_a_float(source: str) -> None:
    value = load(f"v: {source}\n")["v"]
    assert isinstance(value, float) and math.isnan(value)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1: a", {"1": "a"}),
        ("true: a", {"true": "a"}),
        ("null: a", {"null": "a"}),
        ("'x y': a", {"x y": "a"}),
        ("net.core.somaxconn: 1024", {"net.core.somaxconn": 1024}),
    ],
)
def test_mapping_keys_are_always_the_text_written(source: str, expected: Any) -> None:
    assert load(source) == expected


NESTED = """\
services:
  web:
    image: nginx
    ports:
      - "80:80"
      - target: 443
    environment: {A: 1, B: two}
"""


@pytest.mark.parametrize(
    ("path", "line", "column"),
    [
        ((), 1, 1),
        (("services",), 1, 1),
        (("services", "web"), 2, 3),
        (("services", "web", "image"), 3, 5),
        (("services", "web", "ports"), 4, 5),
        (("services", "web", "ports", 0), 5, 9),
        (("services", "web", "ports", 1), 6, 9),
        (("services", "web", "ports", 1, "target"), 6, 9),
        (("services", "web", "environment"), 7, 5),
        (("services", "web", "environment", "B"), 7, 25),
    ],
)
def test_positions_of_keys_and_items(path: tuple[str | int, ...], line: int, column: int) -> None:
    doc = parse(NESTED, FILE, "/project")
    assert doc.positions[path] == Location(FILE, line, column)


def test_document_carries_file_and_directory() -> None:
    doc = parse("services: {}\n", "/p/compose.yaml", "/p")
    assert (doc.file, doc.directory, doc.data) == ("/p/compose.yaml", "/p", {"services": {}})


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("!reset null", Reset(None)),
        ("!reset", Reset(None)),
        ("!reset []", Reset([])),
        ("!reset {}", Reset({})),
        ("!reset [a]", Reset(["a"])),
        ("!override {a: 1}", Override({"a": 1})),
        ("!override [1, on]", Override([1, "on"])),
        ("!override 22:22", Override("22:22")),
        ("!override '8'", Override("8")),
    ],
)
def test_reset_and_override_tags(source: str, expected: Any) -> None:
    assert load(f"v: {source}\n")["v"] == expected


@pytest.mark.parametrize(
    ("source", "line", "column", "words"),
    [
        ("a: !foo x\n", 1, 4, "unknown tag '!foo'"),
        ("a:\n  b: !!binary aGk=\n", 2, 6, "unknown tag"),
        ("a: !!map [1]\n", 1, 4, "unknown tag"),
        ("a: !!int x\n", 1, 4, "not an integer"),
    ],
)
def test_bad_tags_are_located(source: str, line: int, column: int, words: str) -> None:
    problem = error_of(source).problems[0]
    assert problem.location == Location(FILE, line, column)
    assert words in problem.message


MERGES: list[tuple[str, dict[str, Any]]] = [
    (
        "x: &a {p: 1, q: 2}\ny:\n  <<: *a\n  q: 3\n",
        {"x": {"p": 1, "q": 2}, "y": {"p": 1, "q": 3}},
    ),
    (
        "a: &a {p: 1}\nb: &b {p: 2, r: 2}\nc:\n  <<: [*a, *b]\n",
        {"a": {"p": 1}, "b": {"p": 2, "r": 2}, "c": {"p": 1, "r": 2}},
    ),
    (
        "a: &a {p: 1}\nc:\n  z: 0\n  <<: {p: 9, z: 9}\n",
        {"a": {"p": 1}, "c": {"p": 9, "z": 0}},
    ),
    (
        "a: &a {p: &n {deep: 1}}\nb: &b {<<: *a, q: 2}\nc: {<<: *b, r: 3}\n",
        {
            "a": {"p": {"deep": 1}},
            "b": {"p": {"deep": 1}, "q": 2},
            "c": {"p": {"deep": 1}, "q": 2, "r": 3},
        },
    ),
    ("a: {'<<': 1}\n", {"a": {"<<": 1}}),
]


@pytest.mark.parametrize(("source", "expected"), MERGES)
def test_merge_keys(source: str, expected: dict[str, Any]) -> None:
    assert load(source) == expected


def test_aliases_expand_to_independent_copies() -> None:
    data = load("a: &a {p: [1]}\nb: *a\n")
    data["b"]["p"].append(2)
    assert data["a"] == {"p": [1]}


def test_merged_keys_are_located_at_the_anchor() -> None:
    doc = parse("x: &a\n  p: 1\ny:\n  <<: *a\n  q: 2\n", FILE, ".")
    assert doc.positions[("y", "p")] == Location(FILE, 2, 3)
    assert doc.positions[("y", "q")] == Location(FILE, 5, 3)


@pytest.mark.parametrize(
    ("source", "line", "column", "words"),
    [
        ("", None, None, "empty compose file"),
        ("# only a comment\n", None, None, "empty compose file"),
        ("~\n", None, None, "empty compose file"),
        ("- a\n- b\n", 1, 1, "expected a mapping at the top of the file"),
        ("just text\n", 1, 1, "expected a mapping at the top of the file"),
        ("services:\n\tweb: {}\n", 2, 1, "cannot start any token"),
        ("a: b: c\n", 1, 5, "mapping values are not allowed"),
        ("a: 'open\n", 2, 1, "end of stream"),
        ("a: [1, 2\n", 2, 1, "did not find expected"),
        ("a: *nowhere\n", 1, 4, "undefined alias"),
        ("a: 1\n---\nb: 2\n", 2, 1, "another document"),
        ("a: x\x07\n", 1, 5, "not allowed"),
        ("a: é\x01\n", 1, 5, "not allowed"),
        ("a: 1\nb: x\udc80\n", 2, 5, "not valid UTF-8"),
        ("a: 1\nb: 2\na: 3\n", 3, 1, "duplicate key 'a'"),
        ("s:\n  web:\n    image: x\n    image: y\n", 4, 5, "duplicate key 'image'"),
        ("a: {<<: 1}\n", 1, 9, "merge key"),
        ("a: {[x]: 1}\n", 1, 5, "mapping key must be a plain value"),
    ],
)
def test_errors_are_located(source: str, line: int | None, column: int | None, words: str) -> None:
    problem = error_of(source).problems[0]
    assert problem.location == Location(FILE, line, column)
    assert words in problem.message


@pytest.mark.parametrize("source", ["a:\n\tb: 1\n", "é: 1\nb:\n  c: 1\n\td: 2\n"])
def test_tab_indentation_gets_a_hint(source: str) -> None:
    assert "tabs" in error_of(source).problems[0].hint


def test_every_problem_is_reported_at_once() -> None:
    error = error_of("a: !x 1\nb: 1\nb: 2\nc: !y 2\n")
    assert [p.location.line for p in error.problems if p.location] == [1, 3, 4]


def _billion_laughs(levels: int, fanout: int) -> str:
    lines = [f"l0: &l0 [{', '.join(['lol'] * fanout)}]"]
    for level in range(1, levels):
        refs = ", ".join([f"*l{level - 1}"] * fanout)
        lines.append(f"l{level}: &l{level} [{refs}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("source", "words"),
    [
        (_billion_laughs(9, 10), "alias bomb"),
        (_billion_laughs(30, 2), "alias bomb"),
        ("x: " + "[" * 100_000 + "]" * 100_000 + "\n", f"deeper than {MAX_DEPTH}"),
        ("x: " + "{a: " * 5_000 + "1" + "}" * 5_000 + "\n", f"deeper than {MAX_DEPTH}"),
        ("".join("  " * i + f"k{i}:\n" for i in range(150)) + "  " * 150 + "v\n", "deeper"),
        ("x:\n" + "- " * 5_000 + "1\n", f"deeper than {MAX_DEPTH}"),
        (
            "a: &a " + "[" * 80 + "]" * 80 + "\nb: &b " + "[" * 40 + "*a" + "]" * 40 + "\n",
            f"deeper than {MAX_DEPTH}",
        ),
        ("a: &a [1, *a]\n", "contains it"),
        ("a: &a {b: *a}\n", "contains it"),
        ("a: " + "x" * (MAX_TEXT_CHARS + 1) + "\n", "larger than 10 MiB"),
        ("#" * (MAX_TEXT_CHARS + 1), "larger than 10 MiB"),
    ],
    ids=[
        "billion-laughs",
        "binary-bomb",
        "deep-flow-seq",
        "deep-flow-map",
        "deep-block-map",
        "deep-block-seq",
        "deep-through-alias",
        "recursive-seq",
        "recursive-map",
        "big-value",
        "big-comment",
    ],
)
def test_hostile_input_is_refused_quickly(source: str, words: str) -> None:
    start = time.monotonic()
    error = error_of(source)
    assert time.monotonic() - start < 2.0
    assert words in str(error)
    assert all(p.location is not None and p.location.file == FILE for p in error.problems)


def test_node_count_is_capped_while_composing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yaml_source, "MAX_NODES", 50)
    assert "more than 50 values" in str(error_of("a:\n" + "  - x\n" * 60))
    assert load("a:\n" + "  - x\n" * 40)["a"] == ["x"] * 40


def test_a_thousand_services_parse_quickly() -> None:
    service = (
        "  svc{i}:\n    <<: *common\n    image: nginx:1.{i}\n    ports: ['80{i}:80', 22:22]\n"
        "    environment:\n      A: on\n      B: '${{X:-y}}'\n    depends_on: [db]\n"
        "    healthcheck: {{test: [CMD, 'true'], interval: 10s}}\n"
    )
    text = "x-c: &common {restart: always}\nservices:\n" + "".join(
        service.format(i=i) for i in range(1000)
    )
    start = time.monotonic()
    data = load(text)
    assert time.monotonic() - start < 1.0
    assert len(data["services"]) == 1000
    assert data["services"]["svc7"]["ports"] == ["807:80", "22:22"]
    assert data["services"]["svc7"]["restart"] == "always"


AMBIGUOUS = [
    "22:22",
    "on",
    "no",
    "yes",
    "off",
    "y",
    "N",
    "1e3",
    "0o17",
    "0x1F",
    "0755",
    "1_000",
    "0b11",
    "~",
    "",
    "null",
    "true",
    "False",
    "12",
    "-1.5",
    ".inf",
    ".nan",
    "<<",
    "2001-12-14",
]


@pytest.mark.parametrize("text", AMBIGUOUS)
def test_dump_quotes_strings_that_read_as_something_else(text: str) -> None:
    out = dump({"v": text})
    assert out in (f"v: '{text}'\n", f'v: "{text}"\n')
    assert load(out) == {"v": text}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"b": 1, "a": 2}, "b: 1\na: 2\n"),
        ({"s": {"w": {"ports": ["80:80"]}}}, "s:\n  w:\n    ports:\n    - 80:80\n"),
        ({"v": "a\nb\n"}, "v: |\n  a\n  b\n"),
        ({"v": "a\nb"}, "v: |-\n  a\n  b\n"),
        ({"v": None, "w": True, "x": 1.5}, "v: null\nw: true\nx: 1.5\n"),
        ({"v": Reset(None)}, "v: !reset null\n"),
        ({"v": Override([1])}, "v: !override\n- 1\n"),
        ({"k": "x" * 200}, "k: " + "x" * 200 + "\n"),
    ],
)
def test_dump_layout(data: dict[str, Any], expected: str) -> None:
    assert dump(data) == expected


@pytest.mark.parametrize("data", [{"v": "\udc80"}, {"v": object()}])
def test_dump_refuses_what_yaml_cannot_hold(data: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="cannot write the configuration as YAML"):
        dump(data)


def test_dump_round_trips_tags() -> None:
    data = {"a": Reset([]), "b": Override({"x": "on"}), "c": Reset(None)}
    assert load(dump(data)) == data


_text = st.one_of(
    st.text(),
    st.text(alphabet=" \t\n\r\x85\u2028\ufeff\xa0:#-'\"{}[]&*!|>%@`,?\x00\\.~<eE+0xo1"),
    st.sampled_from(AMBIGUOUS),
)
_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), _text)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_text, _values, min_size=1, max_size=5))
def test_dump_then_parse_gives_back_the_data(data: dict[str, Any]) -> None:
    assert parse(dump(data), FILE, ".").data == data
