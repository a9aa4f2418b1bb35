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
from collections.abc import Iterable
from pathlib import Path

# the secret/config rules are shared with the docker backend; re-exported here for this
# backend's callers
from orchestrator.backends.files import (
    DEFAULT_FILE_MODE,
    SECRETS_DIR,
    FileEntry,
    FileKind,
    file_target,
    plan_files,
)
from orchestrator.errors import ConfigError, NotFound, Problem, Unsupported
from orchestrator.model import Service, Volume
from orchestrator.runtime.config import Mount

MOUNTS_DIR = "mounts"  # under the container's bundle directory
_PRIVATE_PROPAGATIONS = (None, "", "private", "rprivate")

# DEFAULT_FILE_MODE, SECRETS_DIR, FileEntry, FileKind, file_target and plan_files are
# re-exported from orchestrator.backends.files (shared with the docker backend)
__all__ = [
    "DEFAULT_FILE_MODE",
    "SECRETS_DIR",
    "FileEntry",
    "FileKind",
    "anonymous_path",
    "anonymous_targets",
    "bind_device",
    "check_bind_options",
    "ensure_bind_sources",
    "file_mounts",
    "file_source",
    "file_target",
    "link_bind_volume",
    "make_anonymous",
    "plan_files",
    "write_files",
]

# ---------------------------------------------------------------------------- pure rules


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
