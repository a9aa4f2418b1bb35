"""The supervisor's state: schema-versioned, atomic, and what happens to bad files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from orchestrator.supervisor import intents, paths, state
from orchestrator.supervisor.restart import Attempt, History
from orchestrator.supervisor.state import (
    Slot,
    StateError,
    SupervisorState,
    load_state,
    save_state,
)


@pytest.fixture(autouse=True)
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PYCOMPOSE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PYCOMPOSE_RUN_DIR", str(tmp_path / "run"))
    return tmp_path


def sample() -> SupervisorState:
    history = History((Attempt(10.0, 10.5, 12.0), Attempt(20.0, 20.1, 22.0)), 0.4, 30.0)
    return SupervisorState(
        boot_id="b1",
        slots={
            "p/web/1": Slot("abc", history, (5.0, 6.0), None),
            "p/db/1": Slot("def", History(), (), "old"),
        },
    )


def test_round_trip() -> None:
    save_state(sample())
    assert load_state() == sample()
    data = json.loads(paths.state_file().read_text())
    assert data["schema"] == state.SCHEMA


def test_missing_file_is_an_empty_state() -> None:
    assert load_state() == SupervisorState()


def test_writes_are_atomic_and_leave_no_temporary_files() -> None:
    save_state(sample())
    save_state(SupervisorState(boot_id="b2"))
    assert [p.name for p in paths.state_dir().iterdir()] == ["state.json"]
    assert load_state().boot_id == "b2"


def test_a_newer_schema_is_refused() -> None:
    paths.state_dir().mkdir(parents=True)
    paths.state_file().write_text(json.dumps({"schema": 99, "slots": {}}))
    with pytest.raises(StateError, match="schema 99"):
        load_state()
    assert paths.state_file().exists()  # left alone for the newer pycompose


@pytest.mark.parametrize(
    "content", ["{not json", "[]", '{"schema": 1, "slots": {"k": {"container_id": "x"}}}']
)
def test_a_corrupt_file_is_moved_aside(content: str) -> None:
    paths.state_dir().mkdir(parents=True)
    paths.state_file().write_text(content)
    assert load_state() == SupervisorState()
    assert not paths.state_file().exists()
    assert paths.state_file().with_name("state.json.corrupt").read_text() == content


def test_registrations() -> None:
    assert state.registrations() == {}
    state.register("p", "docker", {"services": {"a": {"image": "x"}}}, working_dir="/w")
    state.register("q", "docker", {"services": {}})
    found = state.registrations()
    assert sorted(found) == ["p", "q"]
    assert found["p"].config == {"services": {"a": {"image": "x"}}}
    assert found["p"].working_dir == "/w" and found["p"].backend == "docker"
    (paths.projects_dir() / "broken.json").write_text("{")
    assert sorted(state.registrations()) == ["p", "q"]  # an unreadable one is skipped
    assert state.unregister("p") and not state.unregister("p")
    assert sorted(state.registrations()) == ["q"]


def test_intents_only_for_registered_projects() -> None:
    intents.note_intentional_stop("p", ["c1"])
    assert intents.read_intents() == {}  # not registered: nothing written
    state.register("p", "docker", {"services": {}})
    intents.note_intentional_stop("p", ["c1", "c2"])
    found = intents.read_intents()
    assert sorted(found) == ["c1", "c2"] and found["c1"].project == "p"
    intents.clear_intent("c1")
    intents.clear_intent("c1")  # idempotent
    assert sorted(intents.read_intents()) == ["c2"]


def test_boot_id_is_stable_within_a_boot() -> None:
    assert state.boot_id() == state.boot_id()
    if os.path.exists("/proc/sys/kernel/random/boot_id"):
        assert state.boot_id()
