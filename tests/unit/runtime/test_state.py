from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.errors import RuntimeFailure
from orchestrator.runtime.atomic import write_atomic
from orchestrator.runtime.state import (
    ExitRecord,
    Record,
    derive,
    load,
    parse_exit,
    save,
)

CREATED = Record(id="c", created_at=1.0, config={}, cgroup_version=1)
STARTED = Record(id="c", created_at=1.0, config={}, cgroup_version=1, pid=9, started_at=2.0)
EXITED = ExitRecord(code=3, signal=0, finished_at=5.0)


@pytest.mark.parametrize(
    ("record", "exit_record", "alive", "status", "code", "pid"),
    [
        (CREATED, None, False, "created", None, None),
        (STARTED, None, True, "running", None, 9),
        (STARTED, EXITED, True, "exited", 3, None),  # exit recorded: shim may linger
        (STARTED, EXITED, False, "exited", 3, None),
        (STARTED, None, False, "exited", -1, None),  # process gone, nothing recorded
    ],
)
def test_derive(
    record: Record,
    exit_record: ExitRecord | None,
    alive: bool,
    status: str,
    code: int | None,
    pid: int | None,
) -> None:
    state = derive(record, exit_record, alive)
    assert (state.status, state.exit_code, state.pid) == (status, code, pid)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0 0 1500000000\n", ExitRecord(0, 0, 1.5)),
        ("137 9 2000000000\n", ExitRecord(137, 9, 2.0)),
        ("", None),
        ("13", None),
        ("a b c", None),
    ],
)
def test_parse_exit(text: str, expected: ExitRecord | None) -> None:
    assert parse_exit(text) == expected


def test_save_and_load(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    save(path, STARTED)
    assert load(path) == STARTED
    assert json.loads(path.read_text())["schema"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temp file left


def test_other_schema_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_atomic(path, json.dumps({**STARTED.to_json(), "schema": 99}).encode())
    with pytest.raises(RuntimeFailure, match="schema"):
        load(path)
