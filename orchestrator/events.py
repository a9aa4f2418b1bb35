"""Progress events. Library code emits them; only the CLI renders them (rich/plain/JSON)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Status = Literal[
    "working", "done", "skipped", "failed", "warning", "info"
]


@dataclass(frozen=True)
class Event:
    """One step of progress on one resource.

    ``resource`` is a kind ("container", "network", "volume", "service", "image",
    "project"), ``name`` its name, ``action`` what is being done ("Creating", "Started",
    "Recreate", "Removed"...), ``status`` how it stands, ``message`` extra words.
    """

    resource: str
    name: str
    action: str
    status: Status = "working"
    message: str = ""
    timestamp: float = field(default_factory=time.time)


EventSink = Callable[[Event], None]


def discard(_: Event) -> None:
    """An EventSink that drops everything (the default for library calls)."""
