"""``user: name[:group]`` to numeric ids, read from the image's ``/etc/passwd`` and
``/etc/group`` (the spawner only takes numbers: name lookup stays out of the container).

The files are read from the layers without following any symlink, so a hostile image
cannot make us read a host file. Parsing and resolution are pure.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.errors import RuntimeFailure
from orchestrator.runtime.config import User


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


def parse_passwd(text: str) -> list[PasswdEntry]:
    out: list[PasswdEntry] = []
    for line in text.splitlines():
        f = line.split(":")
        if len(f) >= 6 and f[2].isdigit() and f[3].isdigit():
            out.append(PasswdEntry(f[0], int(f[2]), int(f[3]), f[5]))
    return out


def parse_group(text: str) -> list[GroupEntry]:
    out: list[GroupEntry] = []
    for line in text.splitlines():
        f = line.split(":")
        if len(f) >= 4 and f[2].isdigit():
            out.append(GroupEntry(f[0], int(f[2]), tuple(m for m in f[3].split(",") if m)))
    return out


def resolve(spec: str, passwd: list[PasswdEntry], groups: list[GroupEntry]) -> User:
    """Docker's rules: a user name must exist; a numeric uid need not (gid 0 then); the
    group, when given, replaces the primary group; supplementary groups come from
    ``/etc/group`` membership of a named user."""
    user_part, _, group_part = (spec or "0").partition(":")
    entry: PasswdEntry | None = None
    if user_part.isdigit():
        uid = int(user_part)
        entry = next((p for p in passwd if p.uid == uid), None)
        gid = entry.gid if entry else 0
    else:
        entry = next((p for p in passwd if p.name == user_part), None)
        if entry is None:
            raise RuntimeFailure(f"unable to find user {user_part}: no matching entries in passwd")
        uid, gid = entry.uid, entry.gid
    if group_part:
        if group_part.isdigit():
            gid = int(group_part)
        else:
            match = next((g for g in groups if g.name == group_part), None)
            if match is None:
                raise RuntimeFailure(f"unable to find group {group_part}")
            gid = match.gid
    extra: tuple[int, ...] = ()
    if entry is not None:
        extra = tuple(sorted({g.gid for g in groups if entry.name in g.members} - {gid}))
    return User(uid=uid, gid=gid, additional_gids=extra)


def read_in_layer(layer: str, relative: str) -> str | None:
    """A file's text inside ``layer``, refusing every symlink on the way (None if absent)."""
    parts = [p for p in relative.split("/") if p and p != "."]
    if not parts or ".." in parts:
        return None
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(layer, flags | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        for part in parts[:-1]:
            nxt = os.open(part, flags | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        leaf = os.open(parts[-1], flags, dir_fd=fd)
        with os.fdopen(leaf, "r", encoding="utf-8", errors="replace") as f:
            return f.read(1 << 20)
    except OSError:
        return None
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


def _layered(lowerdirs: Sequence[str], relative: str) -> str:
    for layer in lowerdirs:  # topmost first: the first layer with the file wins
        text = read_in_layer(layer, relative)
        if text is not None:
            return text
    return ""


def resolve_in_layers(spec: str, lowerdirs: Sequence[str]) -> User:
    """Resolve ``spec`` against the image layers (topmost first)."""
    passwd = parse_passwd(_layered(lowerdirs, "etc/passwd"))
    groups = parse_group(_layered(lowerdirs, "etc/group"))
    return resolve(spec, passwd, groups)
