"""What a namespace container gets besides its image: secrets, configs, anonymous volumes,
bind-mount sources and the directories behind named volumes.

Compose rules are pure functions here (targets, modes, owners, which image ``VOLUME``\\ s
become anonymous volumes, which volume drivers we can honour), unit-tested without a
host; the few functions that touch the host (writing a secret, creating a missing bind
source) are at the end and take every path from their caller.

Secrets and configs are copied, never bind-mounted from where the user keeps them, so
``uid``, ``gid`` and ``mode`` can be honoured without touching the user's file: each one is
written into the container's own directory (``<bundle>/mounts``, removed with the
container) and bind-mounted read-only at its target.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from orchestrator.errors import ConfigError, NotFound, Problem, Unsupported
from orchestrator.model import ConfigObject, SecretObject, Service, ServiceFile, Volume
from orchestrator.runtime.config import Mount

SECRETS_DIR = "/run/secrets"
DEFAULT_FILE_MODE = 0o444  # docker's default for secrets and configs
MOUNTS_DIR = "mounts"  # under the container's bundle directory
_PRIVATE_PROPAGATIONS = (None, "", "private", "rprivate")

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


# ---------------------------------------------------------------------------- pure rules


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
                hint="the namespace backend takes numeric ids (names are not resolved)",
            )
        )
    return int(text)


def _value(
    kind: FileKind, obj: SecretObject, environ: Mapping[str, str], path: str
) -> tuple[bytes, str | None]:
    """(content, host directory to bind instead) of one top-level secret or config."""
    if obj.external:
        raise Unsupported(
            f"{kind} {obj.name!r} is external: the namespace backend has no store of "
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


def file_source(directory: Path, entry: FileEntry) -> Path:
    """Where ``entry``'s copy lives on the host, inside the container's directory."""
    return directory / MOUNTS_DIR / f"{entry.kind}s" / str(entry.index)


def file_mounts(directory: Path, entries: Iterable[FileEntry]) -> tuple[Mount, ...]:
    """Read-only bind mounts of the entries' copies (or their directories) at their targets."""
    return tuple(
        Mount(e.target, e.host_path or str(file_source(directory, e)), "bind", read_only=True)
        for e in entries
    )


def anonymous_targets(service: Service, image_volumes: Iterable[str]) -> tuple[str, ...]:
    """Targets that get an anonymous volume: the service's ``volume`` mounts without a
    source, then the image's ``VOLUME``\\ s that no mount of the service covers."""
    covered = {posixpath.normpath(v.target) for v in service.volumes}
    out = [
        posixpath.normpath(v.target)
        for v in service.volumes
        if v.type == "volume" and not v.source
    ]
    for target in image_volumes:
        path = posixpath.normpath("/" + target.lstrip("/"))
        if path not in covered and path not in out:
            out.append(path)
    return tuple(out)


def anonymous_path(directory: Path, index: int) -> Path:
    """The host directory of the container's ``index``-th anonymous volume."""
    return directory / MOUNTS_DIR / "volumes" / str(index)


def bind_device(volume: Volume) -> str | None:
    """The host directory of a bind-style ``local`` volume (``type: none, o: bind,
    device: PATH``), None for a plain one; Unsupported for anything we cannot honour."""
    if volume.driver not in (None, "", "local"):
        raise Unsupported(
            f"volume {volume.name}: driver {volume.driver!r} is not supported by the namespace "
            "backend (local directories and driver_opts type=none,o=bind,device=PATH only)"
        )
    opts = volume.driver_opts
    if not opts:
        return None
    kind = opts.get("type", "")
    options = {o.strip() for o in opts.get("o", "").split(",") if o.strip()}
    device = opts.get("device", "")
    unknown = set(opts) - {"type", "o", "device"}
    if kind != "none" or not ({"bind", "rbind"} & options) or not device or unknown:
        raise Unsupported(
            f"volume {volume.name}: driver_opts {dict(opts)} are not supported by the namespace "
            "backend; only type=none, o=bind, device=PATH (a bind-style volume)"
        )
    if not device.startswith("/"):
        raise ConfigError(
            Problem(
                f"volume {volume.name}: driver_opts.device must be an absolute path, "
                f"got {device!r}",
                path=f"volumes.{volume.key}.driver_opts.device",
            )
        )
    return device


def check_bind_options(service: Service) -> None:
    """Refuse the mount options the namespace backend cannot honour (never silently)."""
    for index, volume in enumerate(service.volumes):
        where = f"service {service.name!r}: volumes[{index}] (target {volume.target})"
        if volume.bind_propagation not in _PRIVATE_PROPAGATIONS:
            raise Unsupported(
                f"{where}: bind propagation {volume.bind_propagation!r} is not supported by "
                "the namespace backend (mounts are private)"
            )
        if volume.volume_subpath:
            raise Unsupported(f"{where}: volume subpath is not supported by the namespace backend")


# ---------------------------------------------------------------------------- the host


def ensure_bind_sources(service: Service) -> None:
    """A missing bind source is created when the mount asks for it (the short syntax
    always does, as docker does); otherwise it is an error before anything starts."""
    for index, volume in enumerate(service.volumes):
        if volume.type != "bind" or not volume.source or os.path.lexists(volume.source):
            continue
        if not volume.bind_create_host_path:
            raise ConfigError(
                Problem(
                    f"bind source path does not exist: {volume.source}",
                    path=f"services.{service.name}.volumes[{index}].source",
                    hint="create it, or set bind.create_host_path: true",
                )
            )
        try:
            os.makedirs(volume.source, mode=0o755, exist_ok=True)
        except OSError as exc:
            raise NotFound(
                f"cannot create the bind source {volume.source}: {exc.strerror}"
            ) from exc


def write_files(directory: Path, entries: Iterable[FileEntry]) -> None:
    """Each entry's copy with its owner and mode, in directories only root can enter."""
    for entry in entries:
        if entry.host_path is not None:
            continue
        path = file_source(directory, entry)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        try:
            os.write(fd, entry.content)
            os.fchown(fd, entry.uid, entry.gid)
            os.fchmod(fd, entry.mode)  # after chown, which clears setuid bits
        finally:
            os.close(fd)


def make_anonymous(directory: Path, count: int) -> None:
    """The (empty) directories of the container's anonymous volumes."""
    for index in range(count):
        anonymous_path(directory, index).mkdir(mode=0o755, parents=True, exist_ok=True)


def link_bind_volume(data: Path, device: str) -> None:
    """Make a volume's data directory point at ``device`` (a bind-style volume): the
    record stays ours, the files stay where the user keeps them."""
    if not os.path.isdir(device):
        raise NotFound(f"the device {device} of a bind-style volume is not a directory")
    if data.is_symlink():
        if os.readlink(data) == device:
            return
        data.unlink()
    elif data.is_dir():
        data.rmdir()  # the empty directory the record was made with
    data.symlink_to(device, target_is_directory=True)
