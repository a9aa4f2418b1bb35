"""Stops made on purpose, so the supervisor does not "repair" them.

Whoever stops, kills or removes a container of a project on purpose — the executor for
``stop``/``down``/recreates, a rolling update retiring an old replica — calls
:func:`note_intentional_stop` *before* doing it. The supervisor then leaves that container
alone when it sees it exit, instead of applying the restart policy.

One small file per container (``<state dir>/intents/<container id>.json``, written
atomically) so concurrent writers never race on a shared file. An intent lasts until the
container is started again after it was recorded (``start``, ``up``): the supervisor then
deletes it and supervises the container anew (docker's rule: a manual start resets the
restart count). Intents of containers that no longer exist are swept by the supervisor.

Only projects registered with the supervisor get intents (nothing else reads them), so
unsupervised projects leave no files behind.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.errors import PycomposeError
from orchestrator.supervisor import paths
from orchestrator.supervisor.atomic import write_json

SCHEMA = 1


@dataclass(frozen=True)
class Intent:
    container_id: str
    project: str
    at: float  # unix seconds, comparable with the engine's StartedAt


def note_intentional_stop(project: str, container_ids: Sequence[str]) -> None:
    """Record that ``container_ids`` of ``project`` are about to be stopped on purpose.

    Call it before stopping/killing/removing. A no-op when the project is not registered
    with the supervisor. Raises PycomposeError when the record cannot be written (better
    to fail the stop than to have the supervisor restart what the user stopped).
    """
    if not container_ids or not paths.project_file(project).exists():
        return
    now = time.time()
    for container_id in container_ids:
        record = {"schema": SCHEMA, "project": project, "container_id": container_id, "at": now}
        try:
            write_json(paths.intents_dir() / f"{container_id}.json", record)
        except OSError as exc:
            raise PycomposeError(
                f"cannot record that container {container_id[:12]} is stopped on purpose "
                f"in {paths.intents_dir()}: {exc}"
            ) from exc


def read_intents() -> dict[str, Intent]:
    """Every recorded intent by container id (unreadable records are skipped)."""
    out: dict[str, Intent] = {}
    folder = paths.intents_dir()
    if not folder.is_dir():
        return out
    for path in folder.glob("*.json"):
        try:
            data = json.loads(path.read_text())
            intent = Intent(str(data["container_id"]), str(data["project"]), float(data["at"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        out[intent.container_id] = intent
    return out


def clear_intent(container_id: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (paths.intents_dir() / f"{container_id}.json").unlink()
