"""Secrets and configs of a service, resolved for any backend: where each lands, with
which owner and mode, and its content. Pure but for reading the ``file:`` sources and the
environment it is given; both backends place the result (the namespace one by copies it
bind-mounts, the docker one by copying into the created container)."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from orchestrator.errors import ConfigError, NotFound, Problem, Unsupported
from orchestrator.model import ConfigObject, SecretObject, Service, ServiceFile

SECRETS_DIR = "/run/secrets"
DEFAULT_FILE_MODE = 0o444  # docker's default for secrets and configs

FileKind = Literal["secret", "config"]


@dataclass(frozen=True)
class FileEntry:
    """One secret or config to place in a container, its value resolved.

    ``host_path`` is set for a ``file:`` source that is a directory: that one is bound
    read-only as it is (a directory cannot take one owner and mode), everything else is
    copied into the container's directory as ``content``.
    """

    kind: FileKind
    name: str
    index: int
    target: str
    uid: int
    gid: int
    mode: int
    content: bytes = b""
    host_path: str | None = None


def file_target(kind: FileKind, ref: ServiceFile) -> str:
    """Where a secret or config appears: secrets under /run/secrets (a relative target
    too), configs at /<name>; an absolute ``target`` as given."""
    base = SECRETS_DIR if kind == "secret" else "/"
    target = ref.target or ref.source
    return posixpath.normpath(posixpath.join(base, target))


def _numeric_id(value: str | None, what: str, path: str) -> int:
    if value is None or value == "":
        return 0
    text = str(value).strip()
    if not text.isdigit():
        raise ConfigError(
            Problem(
                f"{what} must be a number, got {value!r}",
                path=path,
                hint="give numeric ids (user and group names are not resolved)",
            )
        )
    return int(text)


def _value(
    kind: FileKind, obj: SecretObject, environ: Mapping[str, str], path: str
) -> tuple[bytes, str | None]:
    """(content, host directory to bind instead) of one top-level secret or config."""
    if obj.external:
        raise Unsupported(
            f"{kind} {obj.name!r} is external: outside swarm there is no store of "
            f"{kind}s to take it from; give it a file, environment or content"
        )
    if obj.content is not None:
        return obj.content.encode(), None
    if obj.environment is not None:
        value = environ.get(obj.environment)
        if value is None:
            raise ConfigError(
                Problem(
                    f"{kind} {obj.name!r} comes from the environment variable "
                    f"{obj.environment!r}, which is not set",
                    path=path,
                    hint=f"export {obj.environment} before running pycompose",
                )
            )
        return value.encode(), None
    if obj.file is not None:
        if os.path.isdir(obj.file):
            return b"", obj.file
        try:
            return Path(obj.file).read_bytes(), None
        except OSError as exc:
            raise NotFound(f"{kind} {obj.name!r}: cannot read {obj.file}: {exc.strerror}") from exc
    raise ConfigError(
        Problem(f"{kind} {obj.name!r} has no file, environment or content", path=path)
    )


def plan_files(
    service: Service,
    secrets: Mapping[str, SecretObject],
    configs: Mapping[str, ConfigObject],
    environ: Mapping[str, str],
) -> tuple[FileEntry, ...]:
    """Every secret and config of ``service`` with its value, owner and mode."""
    out: list[FileEntry] = []
    sections: tuple[tuple[FileKind, str, Sequence[ServiceFile], Mapping[str, SecretObject]], ...]
    sections = (
        ("secret", "secrets", service.secrets, secrets),
        ("config", "configs", service.configs, configs),
    )
    for kind, section, refs, declared in sections:
        for index, ref in enumerate(refs):
            path = f"services.{service.name}.{section}[{index}]"
            obj = declared.get(ref.source)
            if obj is None:
                raise ConfigError(
                    Problem(f"service {service.name!r} uses undefined {kind} {ref.source!r}",
                            path=path)
                )
            content, directory = _value(kind, obj, environ, f"{section}.{ref.source}")
            uid = _numeric_id(ref.uid, "uid", f"{path}.uid")
            gid = _numeric_id(ref.gid, "gid", f"{path}.gid")
            mode = DEFAULT_FILE_MODE if ref.mode is None else ref.mode
            if mode < 0 or mode > 0o7777:
                raise ConfigError(Problem(f"mode {mode:o} is not a file mode", path=f"{path}.mode"))
            if directory is not None and (ref.uid or ref.gid or ref.mode is not None):
                raise Unsupported(
                    f"service {service.name!r}: {kind} {ref.source!r} is a directory "
                    f"({directory}): uid, gid and mode apply to files only"
                )
            out.append(
                FileEntry(kind, ref.source, index, file_target(kind, ref), uid, gid, mode,
                          content, directory)
            )
    return tuple(out)
