"""The files through which ``DnsService`` and the daemon talk (layout in ``daemon.py``).

Both sides import these; they live apart from the daemon so that importing the package
(and the service) never imports the module ``python -m`` runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.runtime import atomic
from orchestrator.runtime.dns.records import Records


@dataclass(frozen=True)
class StateFiles:
    """Where the daemon's files are in ``state_dir``."""

    state_dir: Path

    @property
    def records(self) -> Path:
        return self.state_dir / "records.json"

    @property
    def pid(self) -> Path:
        return self.state_dir / "dns.pid"

    @property
    def status(self) -> Path:
        return self.state_dir / "status.json"

    @property
    def log(self) -> Path:
        return self.state_dir / "dns.log"

    def all(self) -> tuple[Path, ...]:
        return (self.records, self.pid, self.status, self.log)


def read_json(path: Path) -> Any:
    """The file's JSON value, or None when it is missing or not JSON (a writer may be gone
    half-way; atomic replacement means we never see half a file of ours)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_json_atomic(path: Path, value: Any) -> None:
    """No fsync: these files live as long as the daemon (every ``apply`` rewrites the records
    whole, the daemon its status), and they are written on every container start."""
    atomic.write_json(path, value, durable=False)


def records_from_file(data: Any) -> tuple[int, Records]:
    """(generation, records) from the records file's content; ValueError if malformed."""
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    generation = data.get("generation")
    if not isinstance(generation, int) or isinstance(generation, bool):
        raise ValueError("'generation' must be an integer")
    return generation, Records.from_json(data.get("records"))


def records_to_file(generation: int, records: Records) -> dict[str, Any]:
    return {"generation": generation, "records": records.to_json()}
