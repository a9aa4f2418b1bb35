"""The schema cache: a document that passed once is not validated again; nothing else is
remembered, and any change to the document, the schema or the checker is a miss."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import ConfigError, Problem
from orchestrator.loader import schema, schema_cache
from orchestrator.loader.discover import LoadOptions
from orchestrator.loader.document import Document
from orchestrator.loader.pipeline import load_project

VALID: dict[str, Any] = {"services": {"web": {"image": "nginx", "ports": ["80:80"]}}}
INVALID: dict[str, Any] = {"services": {"web": {"image": "nginx", "replicas": 2}}}


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(schema_cache.ENV_SWITCH, raising=False)
    return tmp_path / "xdg" / "pycompose" / "schema-ok"


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Records every document the real schema stage is asked about."""
    seen: list[dict[str, Any]] = []
    real = schema.validate

    def spy(doc: Document) -> list[Problem]:
        seen.append(doc.data)
        return real(doc)

    monkeypatch.setattr(schema, "validate", spy)
    return seen


def doc(data: dict[str, Any]) -> Document:
    return Document("compose.yaml", data)


def records(directory: Path) -> list[str]:
    return sorted(os.listdir(directory)) if directory.is_dir() else []


def test_a_valid_document_is_validated_once_then_answered_from_the_cache(
    cache_home: Path, calls: list[dict[str, Any]]
) -> None:
    assert schema_cache.validate(doc(VALID)) == []
    assert len(records(cache_home)) == 1
    assert schema_cache.validate(doc(VALID)) == []
    assert len(calls) == 1


def test_an_invalid_document_is_never_recorded_and_reports_the_same_problems_every_time(
    cache_home: Path, calls: list[dict[str, Any]]
) -> None:
    first = schema_cache.validate(doc(INVALID))
    second = schema_cache.validate(doc(INVALID))
    assert first and first == second
    assert 'unknown key "replicas"' in first[0].message
    assert records(cache_home) == []
    assert len(calls) == 2


def test_use_cache_false_neither_reads_nor_writes(
    cache_home: Path, calls: list[dict[str, Any]]
) -> None:
    schema_cache.validate(doc(VALID))
    schema_cache.validate(doc(VALID), use_cache=False)
    schema_cache.validate(doc(dict(VALID, name="other")), use_cache=False)
    assert len(calls) == 3
    assert len(records(cache_home)) == 1


@pytest.mark.parametrize("value", ["0", "off", "false"])
def test_the_environment_switch_turns_the_cache_off(
    cache_home: Path, calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(schema_cache.ENV_SWITCH, value)
    schema_cache.validate(doc(VALID))
    schema_cache.validate(doc(VALID))
    assert len(calls) == 2
    assert records(cache_home) == []


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ({"x": 1}, {"x": "1"}),
        ({"x": True}, {"x": 1}),
        ({"x": 1}, {"x": 1.0}),
        ({"x": [1]}, {"x": (1,)}),
        ({"x": None}, {"x": "null"}),
        ({1: "a"}, {"1": "a"}),
        ({"x": ["a", "b"]}, {"x": ["ab"]}),
        ({"x": {"a": "b"}}, {"x": {"ab": ""}}),
    ],
)
def test_values_that_print_alike_but_differ_in_type_or_shape_have_different_keys(
    one: dict[Any, Any], other: dict[Any, Any]
) -> None:
    assert schema_cache.digest(doc(one)) != schema_cache.digest(doc(other))


def test_the_key_covers_the_schema_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = schema_cache.digest(doc(VALID))
    edited = tmp_path / "compose-spec.json"
    edited.write_bytes(schema_cache._SCHEMA_FILE.read_bytes() + b"\n")
    monkeypatch.setattr(schema_cache, "_SCHEMA_FILE", edited)
    assert schema_cache.digest(doc(VALID)) not in (None, before)


def test_the_key_covers_the_checker_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = schema_cache.digest(doc(VALID))
    edited = tmp_path / "schema.py"
    edited.write_bytes(schema_cache._CHECKER_FILE.read_bytes() + b"# edited\n")
    monkeypatch.setattr(schema_cache, "_CHECKER_FILE", edited)
    assert schema_cache.digest(doc(VALID)) not in (None, before)


def test_the_key_covers_the_installed_jsonschema(monkeypatch: pytest.MonkeyPatch) -> None:
    before = schema_cache.digest(doc(VALID))
    real_stat = os.stat

    def newer(path: Any, *args: Any, **kwargs: Any) -> Any:
        info = real_stat(path, *args, **kwargs)
        if str(path).endswith(os.path.join("jsonschema", "validators.py")):
            return os.stat_result((*info[:8], info.st_mtime + 1, info.st_ctime))
        return info

    monkeypatch.setattr(os, "stat", newer)
    assert schema_cache.digest(doc(VALID)) not in (None, before)


def test_a_document_holding_non_plain_values_is_validated_but_not_recorded(
    cache_home: Path, calls: list[dict[str, Any]]
) -> None:
    odd = {"services": {"web": {"image": "nginx", "labels": {"a": b"bytes"}}}}
    assert schema_cache.digest(doc(odd)) is None
    problems = schema_cache.validate(doc(odd))
    assert problems == schema.validate(doc(odd))
    assert records(cache_home) == []


def test_an_unusable_cache_directory_only_means_a_miss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls: list[dict[str, Any]]
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert schema_cache.validate(doc(VALID)) == []
    assert schema_cache.validate(doc(VALID)) == []
    assert len(calls) == 2


def test_a_relative_xdg_cache_home_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert schema_cache.cache_directory() == tmp_path / ".cache" / "pycompose" / "schema-ok"


def test_the_oldest_records_are_dropped_beyond_the_limit(
    cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(schema_cache, "MAX_ENTRIES", 3)
    keys = []
    for n in range(5):
        data = dict(VALID, name=f"p{n}")
        keys.append(schema_cache.digest(doc(data)))
        schema_cache.validate(doc(data))
        # distinct mtimes, so "oldest" is well defined on coarse clocks too
        os.utime(cache_home / str(keys[-1]), (n, n))
    assert records(cache_home) == sorted(str(k) for k in keys[2:])


def test_the_pipeline_uses_the_cache_only_when_asked(
    tmp_path: Path, cache_home: Path, calls: list[dict[str, Any]]
) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: nginx\n")
    plain = LoadOptions(working_directory=str(tmp_path), environ={})
    cached = LoadOptions(working_directory=str(tmp_path), environ={}, schema_cache=True)
    load_project(plain)
    assert records(cache_home) == []
    first = load_project(cached)
    second = load_project(cached)
    assert len(records(cache_home)) == 1
    assert len(calls) == 2  # plain, then the first cached load; the second was a hit
    assert first.project == second.project


def test_a_cached_pipeline_still_reports_an_invalid_file(
    tmp_path: Path, cache_home: Path
) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: nginx\n    replica: 2\n")
    options = LoadOptions(working_directory=str(tmp_path), environ={}, schema_cache=True)
    for _ in range(2):
        with pytest.raises(ConfigError) as caught:
            load_project(options)
        assert 'unknown key "replica"' in str(caught.value)
    assert records(cache_home) == []


def test_the_key_hashes_the_schema_file_the_checker_reads() -> None:
    assert schema_cache._SCHEMA_FILE == schema.SCHEMA_PATH
    assert Path(schema.__file__) == schema_cache._CHECKER_FILE
