from __future__ import annotations

import subprocess
from pathlib import Path

from orchestrator.runtime.spawner import binary_name, ensure_spawner


def test_name_follows_source_and_flags() -> None:
    assert binary_name(b"a", ("-O2",)) != binary_name(b"b", ("-O2",))
    assert binary_name(b"a", ("-O2",)) != binary_name(b"a", ("-O0",))
    assert binary_name(b"a", ("-O2",)).startswith("pycompose-spawner-")


def test_built_once_then_cached(tmp_path: Path, spawner: Path) -> None:
    first = ensure_spawner(tmp_path)
    mtime = first.stat().st_mtime_ns
    assert ensure_spawner(tmp_path) == first and first.stat().st_mtime_ns == mtime
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temp file left
    usage = subprocess.run([str(first)], capture_output=True, text=True, check=False)
    assert usage.returncode == 2 and "usage" in usage.stderr
