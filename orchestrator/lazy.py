"""A module imported on first use, for adapters whose commands need only part of them.

A CLI run is a fresh interpreter, and start-up is most of a warm `build` or `ps`: a
backend module that names its networking or conversion helpers at the top makes every
command pay for them. ``lazy_module`` keeps the familiar ``module.name`` call sites while
deferring the import to the first attribute read.

Written out rather than ``importlib.util.LazyLoader``: on Python 3.11 that loader is not
safe when two threads touch the module first at once (the executor runs backend calls in
parallel), whereas ``importlib.import_module`` holds the import lock of the module.
Callers keep the real import under ``TYPE_CHECKING`` so type checkers see the module.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands in for the module ``name`` until an attribute is read, then forwards to it."""

    __slots__ = ("_module", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attr)

    def __repr__(self) -> str:
        state = "loaded" if self._module is not None else "not loaded yet"
        return f"<lazy module {self._name!r} ({state})>"


def lazy_module(name: str) -> Any:
    """``name`` (absolute), imported when first used. Typed ``Any``: declare the real
    module under ``TYPE_CHECKING`` beside it."""
    return LazyModule(name)
