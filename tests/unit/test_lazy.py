"""lazy_module: nothing is imported until an attribute is read; then it is the real module,
once, even when several threads read first at the same time."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.lazy import lazy_module


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"lazy_probe_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(
        "import time\nLOADS = []\nLOADS.append(1)\ntime.sleep(0.05)\nVALUE = 42\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_nothing_is_imported_before_the_first_attribute(package: str) -> None:
    module = lazy_module(package)
    assert package not in sys.modules
    assert repr(module).endswith("(not loaded yet)>")
    assert module.VALUE == 42
    assert sys.modules[package].VALUE == 42
    assert repr(module).endswith("(loaded)>")


def test_threads_reading_first_at_once_share_one_import(package: str) -> None:
    module = lazy_module(package)
    seen: list[int] = []
    threads = [threading.Thread(target=lambda: seen.append(module.VALUE)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [42] * 8
    assert module.LOADS == [1]


def test_a_missing_name_is_an_attribute_error_of_the_module(package: str) -> None:
    with pytest.raises(AttributeError, match="nope"):
        lazy_module(package).nope  # noqa: B018
