"""Which compose files to read, from which project directory, under which project name.

Compose's rules: ``-f`` (repeatable, ``-` for stdin), else ``COMPOSE_FILE`` (split on
``COMPOSE_PATH_SEPARATOR``, ``:`` by default), else the first of ``compose.yaml``,
``compose.yml``, ``docker-compose.yaml``, ``docker-compose.yml`` found in the working
directory or one of its parents, together with its ``*.override.*`` sibling when present.
The project directory is ``--project-directory``, else the directory of the first file.
The project name is ``-p``, else ``COMPOSE_PROJECT_NAME``, else the top-level ``name``, else
the project directory's base name, normalised as compose does.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import ConfigError, Location, Problem, UsageError

DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
OVERRIDE_FILES = {
    "compose.yaml": ("compose.override.yaml", "compose.override.yml"),
    "compose.yml": ("compose.override.yml", "compose.override.yaml"),
    "docker-compose.yaml": ("docker-compose.override.yaml", "docker-compose.override.yml"),
    "docker-compose.yml": ("docker-compose.override.yml", "docker-compose.override.yaml"),
}
# Files larger than this are refused before being read: no compose file is anywhere near it.
MAX_FILE_BYTES = 10 * 1024 * 1024
STDIN = "-"


@dataclass(frozen=True)
class SourceFile:
    """One compose file's text. ``path`` is absolute, or ``-`` for stdin."""

    path: str
    text: str
    directory: str


@dataclass(frozen=True)
class LoadOptions:
    """Everything the command line says about which project to load."""

    files: tuple[str, ...] = ()
    project_name: str | None = None
    project_directory: str | None = None
    env_files: tuple[str, ...] | None = None
    profiles: tuple[str, ...] = ()
    interpolate: bool = True
    normalize: bool = True
    working_directory: str | None = None  # defaults to the process cwd
    environ: Mapping[str, str] | None = None  # defaults to os.environ
    stdin_text: str | None = None  # what `-f -` reads; defaults to sys.stdin
    # ``up web``: services named explicitly are enabled whatever their profiles
    enabled_services: tuple[str, ...] = ()
    # False skips the cross-reference checks (for parse/normalise-only uses of a file)
    semantic_checks: bool = True
    # True lets the schema stage answer from the record of documents that passed before
    # (``schema_cache``): the CLI turns it on; library callers get no files written
    schema_cache: bool = False


@dataclass(frozen=True)
class Discovered:
    sources: tuple[SourceFile, ...]
    project_directory: str
    config_files: tuple[str, ...] = field(default=())


def read_source(path: Path) -> str:
    """A compose file's text; oversized or unreadable files are a located ConfigError."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ConfigError(
            Problem(f"cannot read compose file: {exc.strerror}", location=Location(str(path)))
        ) from exc
    if size > MAX_FILE_BYTES:
        raise ConfigError(
            Problem(
                f"compose file is {size} bytes; files over {MAX_FILE_BYTES // (1024 * 1024)} MiB"
                " are refused",
                location=Location(str(path)),
            )
        )
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            Problem("compose file is not valid UTF-8 text", location=Location(str(path)))
        ) from exc
    except OSError as exc:
        raise ConfigError(
            Problem(f"cannot read compose file: {exc.strerror}", location=Location(str(path)))
        ) from exc


def _find_default(start: Path) -> list[Path]:
    for directory in (start, *start.parents):
        for name in DEFAULT_FILES:
            candidate = directory / name
            if candidate.is_file():
                found = [candidate]
                for override in OVERRIDE_FILES[name]:
                    if (directory / override).is_file():
                        found.append(directory / override)
                        break
                return found
    raise UsageError(
        f"no compose file found in {start} or its parents: looked for "
        + ", ".join(DEFAULT_FILES)
        + " (or name one with -f)"
    )


def discover(options: LoadOptions, environ: Mapping[str, str]) -> Discovered:
    """Resolve the files to load and the project directory."""
    cwd = Path(options.working_directory or os.getcwd()).resolve()
    names: list[str] = list(options.files)
    if not names and environ.get("COMPOSE_FILE"):
        separator = environ.get("COMPOSE_PATH_SEPARATOR", os.pathsep)
        names = [n for n in environ["COMPOSE_FILE"].split(separator) if n]
    base = Path(options.project_directory).resolve() if options.project_directory else cwd
    if names:
        paths: list[Path | None] = [
            None if n == STDIN else (Path(n) if os.path.isabs(n) else cwd / n) for n in names
        ]
    else:
        paths = list(_find_default(base))
    if names.count(STDIN) > 1:
        raise UsageError("stdin (-f -) can be named only once")
    sources: list[SourceFile] = []
    for path in paths:
        if path is None:
            text = options.stdin_text if options.stdin_text is not None else sys.stdin.read()
            if len(text) > MAX_FILE_BYTES:
                raise ConfigError(
                    Problem("compose file on stdin is too large", location=Location(STDIN))
                )
            sources.append(SourceFile(STDIN, text, str(base)))
            continue
        path = path.resolve() if path.exists() else path.absolute()
        if not path.exists():
            raise UsageError(f"compose file not found: {path}")
        sources.append(SourceFile(str(path), read_source(path), str(path.parent)))
    if options.project_directory:
        project_dir = str(base)
    elif sources[0].path != STDIN:
        project_dir = sources[0].directory
    else:
        project_dir = str(cwd)
    return Discovered(tuple(sources), project_dir, tuple(s.path for s in sources))


_INVALID = re.compile(r"[^a-z0-9_-]")
_VALID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def normalize_project_name(raw: str) -> str:
    """Compose's normalisation of an implicit name: lowercase, keep ``[a-z0-9_-]``."""
    name = _INVALID.sub("", raw.lower()).lstrip("_-")
    return name


def project_name(
    options: LoadOptions,
    environ: Mapping[str, str],
    top_level_name: object,
    project_dir: str,
) -> str:
    """The project name, by compose's precedence; explicit names must already be valid."""
    explicit: list[tuple[str, str | None]] = [
        ("-p", options.project_name),
        ("COMPOSE_PROJECT_NAME", environ.get("COMPOSE_PROJECT_NAME") or None),
        ("the top-level `name`", top_level_name if isinstance(top_level_name, str) else None),
    ]
    for origin, value in explicit:
        if value:
            if not _VALID.match(value):
                raise UsageError(
                    f"invalid project name {value!r} (from {origin}): it must contain only"
                    " lowercase letters, digits, dashes and underscores, and start with a"
                    f" letter or digit; try {normalize_project_name(value)!r}"
                )
            return value
    name = normalize_project_name(Path(project_dir).name)
    if not name:
        raise UsageError(
            f"cannot derive a project name from the directory {project_dir!r}: give one with -p"
        )
    return name


def active_profiles(options: LoadOptions, environ: Mapping[str, str]) -> tuple[str, ...]:
    if options.profiles:
        return tuple(options.profiles)
    raw = environ.get("COMPOSE_PROFILES", "")
    return tuple(p.strip() for p in raw.split(",") if p.strip())


def split_list(values: Sequence[str]) -> tuple[str, ...]:
    """Flags like ``--profile a,b --profile c`` → ("a", "b", "c")."""
    out: list[str] = []
    for value in values:
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return tuple(out)
