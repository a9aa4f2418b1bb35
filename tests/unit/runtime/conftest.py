"""The spawner binary, built once per session into a temporary cache (nothing is left
outside tmp)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.runtime.spawner import ensure_spawner


@pytest.fixture(scope="session")
def spawner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_spawner(tmp_path_factory.mktemp("pycompose-bin"))
