"""The namespace backend's own records beside the runtime's: container metadata (name,
labels, image), a name index, networks and volumes. One job: files under the state root.

Layout under the state root (``$PYCOMPOSE_ROOT``, default ``/var/lib/pycompose``)::

    containers/<id>/      the runtime's bundle (state.json, log, exit, health, upper ...)
    meta/<id>.json        name, labels, image, created: what ``observe`` parses
    names/<name>          the id holding that name (created O_EXCL: names are unique)
    networks/<name>.json  labels (a record: bridge networking comes with issue 6)
    volumes/<name>.json   labels; volumes/<name>/_data is what containers mount
    images/               the image store (orchestrator.runtime.images)
    bin/                  the compiled spawner

Every write is atomic (write, fsync, rename); every removal tolerates a half-done earlier
one, so an interrupted ``up`` or ``down`` is finished by the next command.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.errors import Conflict, NotFound, RuntimeFailure
from orchestrator.runtime.atomic import write_atomic

SCHEMA = 1
DEFAULT_ROOT = "/var/lib/pycompose"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")


def state_root() -> Path:
    return Path(os.environ.get("PYCOMPOSE_ROOT") or DEFAULT_ROOT)


@dataclass(frozen=True)
class Meta:
    id: str
    name: str
    image: str
    labels: Mapping[str, str]
    created: float
    attachments: Mapping[str, list[str]] = field(default_factory=dict)  # network -> aliases

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "id": self.id,
            "name": self.name,
            "image": self.image,
            "labels": dict(self.labels),
            "created": self.created,
            "attachments": {k: list(v) for k, v in self.attachments.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Meta:
        if data.get("schema") != SCHEMA:
            raise RuntimeFailure(f"container metadata schema {data.get('schema')!r}")
        return cls(
            id=str(data["id"]),
            name=str(data["name"]),
            image=str(data.get("image", "")),
            labels={str(k): str(v) for k, v in (data.get("labels") or {}).items()},
            created=float(data.get("created", 0.0)),
            attachments={str(k): list(v) for k, v in (data.get("attachments") or {}).items()},
        )


def _write_json(path: Path, data: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(data, sort_keys=True).encode())


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise RuntimeFailure(f"unreadable record {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise RuntimeFailure(f"unreadable record {path}")
    return data


def check_name(name: str, what: str) -> str:
    if not _NAME.match(name):
        raise Conflict(f"invalid {what} name {name!r}: [A-Za-z0-9][A-Za-z0-9_.-]*")
    return name


class Records:
    """The files of one state root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.containers = root / "containers"
        self.meta = root / "meta"
        self.names = root / "names"
        self.networks = root / "networks"
        self.volumes = root / "volumes"

    def _dirs(self) -> None:
        for d in (self.containers, self.meta, self.names, self.networks, self.volumes):
            d.mkdir(parents=True, exist_ok=True, mode=0o711)

    # ---- containers ----

    def claim_name(self, name: str, container_id: str) -> None:
        """Take ``name`` for ``container_id``; Conflict when another container has it."""
        self._dirs()
        path = self.names / check_name(name, "container")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError as exc:
            holder = self.name_owner(name)
            if holder is not None and (self.meta / f"{holder}.json").exists():
                raise Conflict(
                    f"the container name {name!r} is already in use by container {holder}"
                ) from exc
            path.unlink(missing_ok=True)  # a stale claim of an interrupted create/remove
            return self.claim_name(name, container_id)
        with os.fdopen(fd, "w") as f:
            f.write(container_id)

    def name_owner(self, name: str) -> str | None:
        if not _NAME.match(name):
            return None
        try:
            return (self.names / name).read_text().strip() or None
        except FileNotFoundError:
            return None

    def release_name(self, name: str, container_id: str) -> None:
        if self.name_owner(name) == container_id:
            (self.names / name).unlink(missing_ok=True)

    def save_meta(self, meta: Meta) -> None:
        self._dirs()
        _write_json(self.meta / f"{meta.id}.json", meta.to_json())

    def load_meta(self, container_id: str) -> Meta:
        if "/" in container_id or container_id.startswith("."):
            raise NotFound(f"no such container: {container_id}")
        try:
            return Meta.from_json(_read_json(self.meta / f"{container_id}.json"))
        except FileNotFoundError as exc:
            raise NotFound(f"no such container: {container_id}") from exc

    def drop_meta(self, container_id: str) -> None:
        (self.meta / f"{container_id}.json").unlink(missing_ok=True)

    def container_ids(self) -> list[str]:
        if not self.meta.is_dir():
            return []
        return sorted(p.stem for p in self.meta.glob("*.json"))

    def all_meta(self) -> Iterator[Meta]:
        for container_id in self.container_ids():
            with contextlib.suppress(NotFound):
                yield self.load_meta(container_id)

    # ---- networks (records) ----

    def save_network(self, name: str, network_id: str, labels: Mapping[str, str]) -> None:
        self._dirs()
        path = self.networks / f"{check_name(name, 'network')}.json"
        if path.exists():
            raise Conflict(f"network with name {name} already exists")
        _write_json(path, {"schema": SCHEMA, "id": network_id, "labels": dict(labels)})

    def networks_all(self) -> Iterator[tuple[str, str, dict[str, str]]]:
        if not self.networks.is_dir():
            return
        for path in sorted(self.networks.glob("*.json")):
            with contextlib.suppress(FileNotFoundError):
                data = _read_json(path)
                yield path.stem, str(data.get("id", "")), dict(data.get("labels") or {})

    def network_exists(self, name: str) -> bool:
        return bool(_NAME.match(name)) and (self.networks / f"{name}.json").exists()

    def drop_network(self, name: str) -> None:
        if not self.network_exists(name):
            raise NotFound(f"network {name} not found")
        (self.networks / f"{name}.json").unlink(missing_ok=True)

    # ---- volumes (directories) ----

    def volume_path(self, name: str) -> Path:
        return self.volumes / check_name(name, "volume") / "_data"

    def save_volume(self, name: str, labels: Mapping[str, str]) -> None:
        self._dirs()
        record = self.volumes / f"{check_name(name, 'volume')}.json"
        if record.exists():
            return  # docker: creating an existing volume is a no-op
        self.volume_path(name).mkdir(parents=True, exist_ok=True, mode=0o755)
        _write_json(record, {"schema": SCHEMA, "labels": dict(labels)})

    def volumes_all(self) -> Iterator[tuple[str, dict[str, str]]]:
        if not self.volumes.is_dir():
            return
        for path in sorted(self.volumes.glob("*.json")):
            with contextlib.suppress(FileNotFoundError):
                yield path.stem, dict(_read_json(path).get("labels") or {})

    def volume_exists(self, name: str) -> bool:
        return bool(_NAME.match(name)) and (self.volumes / f"{name}.json").exists()

    def drop_volume(self, name: str) -> None:
        if not self.volume_exists(name):
            raise NotFound(f"volume {name} not found")
        shutil.rmtree(self.volumes / name, ignore_errors=True)
        (self.volumes / f"{name}.json").unlink(missing_ok=True)
