"""The parse cache: a file read once is read back from its record with every value, type
and position exactly as the YAML reader gave them; problems are never recorded, and any
change to the input is a miss."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import ConfigError, Location
from orchestrator.loader import parse_cache, schema_cache, yaml_source
from orchestrator.loader.discover import LoadOptions
from orchestrator.loader.document import Document, Override, Reset
from orchestrator.loader.pipeline import load_project

CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpus"

TRICKY = """\
x-base: &base
  environment: {A: "1", B: null}
services:
  web:
    <<: *base
    image: nginx
    ports: ["22:22", 8080]
    labels: !reset {}
    command: !override [sh, -c, "echo $$HOME"]
    healthcheck: {retries: 3, interval: 1.5, disable: false}
    sysctls: {net.core.somaxconn: 1024}
    x-floats: [.inf, -.inf, .nan, -0.0, 1e3, 0x1F, 0o17]
    x-strings: [on, "yes", "", "\\u00e9\\u0000\\U0001F600", '1']
    x-empty: !reset
"""


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(schema_cache.ENV_SWITCH, raising=False)
    return tmp_path / "xdg" / "pycompose" / "parsed"


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The file names the real YAML reader is asked to parse."""
    seen: list[str] = []
    real = yaml_source.parse

    def spy(text: str, filename: str, directory: str) -> Document:
        seen.append(filename)
        return real(text, filename, directory)

    monkeypatch.setattr(yaml_source, "parse", spy)
    return seen


def same(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down (1 is not 1.0 nor True; NaN is NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(
            same(k, j) and same(a[k], b[j]) for k, j in zip(a, b, strict=True)
        )
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Reset | Override):
        return same(a.value, b.value)
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return bool(a == b)


def same_document(a: Document, b: Document) -> bool:
    return (
        (a.file, a.directory) == (b.file, b.directory)
        and same(a.data, b.data)
        and list(a.positions.items()) == list(b.positions.items())
    )


def records(directory: Path) -> list[str]:
    return sorted(os.listdir(directory)) if directory.is_dir() else []


def test_a_file_is_parsed_once_then_read_back_exactly(
    cache_home: Path, parses: list[str]
) -> None:
    fresh = parse_cache.parse(TRICKY, "/p/compose.yaml", "/p")
    again = parse_cache.parse(TRICKY, "/p/compose.yaml", "/p")
    assert parses == ["/p/compose.yaml"]
    assert len(records(cache_home)) == 1
    assert same_document(fresh, again)
    assert same_document(again, yaml_source.parse(TRICKY, "/p/compose.yaml", "/p"))
    web = again.data["services"]["web"]
    assert isinstance(web["labels"], Reset) and isinstance(web["command"], Override)
    assert web["ports"] == ["22:22", 8080]
    assert math.isnan(web["x-floats"][2]) and web["x-floats"][5:] == [31, 15]


def test_shapes_json_cannot_carry_alone_round_trip() -> None:
    data: dict[str, Any] = {
        "a": {"\x00": "a user key that looks like the marker", "b": [Reset(None)]},
        "c": Override({"d": Reset([1, 2.0, True, None])}),
        "e": {2: "an int key", None: "a null key", True: "a bool key", 2.5: "a float key"},
    }
    doc = Document("f.yaml", data, {(): _loc(1, 1), ("a", "b", 0): _loc(3, 7)}, "/d")
    assert same_document(_round_trip(doc), doc)


def test_a_value_of_another_type_is_not_recorded(cache_home: Path) -> None:
    doc = Document("f.yaml", {"services": {"web": {"when": ("a", "tuple")}}})
    parse_cache.store(cache_home, "k", doc)
    assert records(cache_home) == []


@pytest.mark.parametrize(
    "change",
    [
        ("services: {web: {image: b}}\n", "/p/compose.yaml", "/p"),
        ("services: {web: {image: a}}\n", "/p/other.yaml", "/p"),
        ("services: {web: {image: a}}\n", "/p/compose.yaml", "/q"),
    ],
)
def test_any_change_to_the_input_is_a_miss(
    cache_home: Path, parses: list[str], change: tuple[str, str, str]
) -> None:
    parse_cache.parse("services: {web: {image: a}}\n", "/p/compose.yaml", "/p")
    changed = parse_cache.parse(*change)
    assert len(parses) == 2
    assert changed.file == change[1] and changed.directory == change[2]
    assert len(records(cache_home)) == 2


def test_a_file_with_a_problem_is_never_recorded(cache_home: Path, parses: list[str]) -> None:
    text = "services:\n  web: {image: a}\n  web: {image: b}\n"
    messages = []
    for _ in range(2):
        with pytest.raises(ConfigError) as caught:
            parse_cache.parse(text, "/p/compose.yaml", "/p")
        messages.append(str(caught.value))
    assert messages[0] == messages[1] and "duplicate key" in messages[0]
    assert len(parses) == 2
    assert records(cache_home) == []


def test_a_damaged_record_is_a_miss_and_is_rewritten(
    cache_home: Path, parses: list[str]
) -> None:
    first = parse_cache.parse(TRICKY, "/p/compose.yaml", "/p")
    (record,) = records(cache_home)
    (cache_home / record).write_text('{"data": {"services": ')
    again = parse_cache.parse(TRICKY, "/p/compose.yaml", "/p")
    assert len(parses) == 2
    assert same_document(first, again)
    assert same_document(parse_cache.load(cache_home / record, "/p/compose.yaml", "/p")
                         or Document("", {}), first)


def test_the_switch_and_the_library_default_keep_it_off(
    cache_home: Path, parses: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    parse_cache.parse(TRICKY, "/p/compose.yaml", "/p", use_cache=False)
    (tmp_path / "compose.yaml").write_text(TRICKY.replace("!reset", "").replace("!override", ""))
    load_project(LoadOptions(project_directory=str(tmp_path)))  # schema_cache=False
    monkeypatch.setenv(schema_cache.ENV_SWITCH, "0")
    parse_cache.parse(TRICKY, "/p/compose.yaml", "/p")
    assert len(parses) == 3
    assert not cache_home.exists()


def test_the_cli_load_path_reads_its_files_back(
    cache_home: Path, parses: list[str], tmp_path: Path
) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: nginx\n")
    options = LoadOptions(project_directory=str(tmp_path), schema_cache=True)
    first, second = load_project(options), load_project(options)
    assert len(parses) == 1
    assert first.project == second.project and first.positions == second.positions


@pytest.mark.corpus
def test_every_corpus_file_reads_back_exactly(cache_home: Path) -> None:
    checked = 0
    for path in sorted(CORPUS.glob("*.y*ml")):
        text = path.read_text()
        try:
            fresh = yaml_source.parse(text, str(path), str(CORPUS))
        except ConfigError:
            continue
        assert same_document(_round_trip(fresh), fresh), path.name
        checked += 1
    assert checked >= 20


def _loc(line: int, column: int) -> Location:
    return Location("f.yaml", line, column)


def _round_trip(doc: Document) -> Document:
    with tempfile.TemporaryDirectory() as folder:
        parse_cache.store(Path(folder), "key", doc)
        back = parse_cache.load(Path(folder) / "key", doc.file, doc.directory)
    assert back is not None, "not recorded"
    return back
