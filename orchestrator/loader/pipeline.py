"""The loader's stages in order: one place that says what runs when.

::

    discover → read → parse (YAML 1.2, positions, limits) → interpolate (per file, its env)
      → include → extends → merge (the -f files, in order) → schema
      → canonical (short → long) → normalize (paths, env_file, defaults) → bind (typed model)
      → semantic checks (references, cycles, replicas)

Each stage is a pure function of its inputs (the file reads happen in discover, extends,
include and env_file resolution, through the paths they are given). Problems are collected
per stage and raised together; warnings travel in the result.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import reduce
from pathlib import Path
from typing import Any

from orchestrator.errors import ConfigError, Problem
from orchestrator.loader.discover import (
    Discovered,
    LoadOptions,
    SourceFile,
    active_profiles,
    discover,
    project_name,
    read_source,
)
from orchestrator.loader.document import Document, Positions
from orchestrator.model import Project


@dataclass(frozen=True)
class LoadResult:
    project: Project
    warnings: tuple[Problem, ...] = ()
    # the merged, interpolated, validated document before canonicalisation
    # (what `config --no-normalize` prints)
    merged: dict[str, Any] = field(default_factory=dict)
    environment: Mapping[str, str] = field(default_factory=dict)
    positions: Positions = field(default_factory=dict)  # of the merged document


class _FileLoader:
    """Parses and interpolates files once each (extends and include reach the same files)."""

    def __init__(
        self, env: Mapping[str, str], interpolate: bool, *, use_cache: bool = False
    ) -> None:
        self.env = env
        self.interpolate = interpolate
        self.use_cache = use_cache  # parse_cache: the CLI's LoadOptions.schema_cache
        self.warnings: list[Problem] = []
        self._cache: dict[str, Document] = {}

    def source(self, source: SourceFile) -> Document:
        from orchestrator.loader import interpolate, parse_cache

        doc = parse_cache.parse(
            source.text, source.path, source.directory, use_cache=self.use_cache
        )
        if self.interpolate:
            doc, warnings = interpolate.interpolate(doc, self.env)
            self.warnings.extend(warnings)
        return doc

    def path(self, path: str) -> Document:
        absolute = str(Path(path).resolve())
        if absolute not in self._cache:
            text = read_source(Path(absolute))
            self._cache[absolute] = self.source(
                SourceFile(absolute, text, str(Path(absolute).parent))
            )
        return self._cache[absolute]


def _expand(doc: Document, files: _FileLoader, environ: Mapping[str, str]) -> Document:
    """include, then extends, for one file (each stage imported only when the file uses it)."""
    if "include" in doc.data:
        from orchestrator.loader import include

        doc = include.apply_include(doc, _include_loader(environ, files.interpolate, files))
    services = doc.data.get("services")
    if isinstance(services, dict) and any(
        isinstance(s, dict) and "extends" in s for s in services.values()
    ):
        from orchestrator.loader import extends

        doc = extends.apply_extends(doc, files.path)
    return doc


def _include_loader(
    environ: Mapping[str, str], interpolate: bool, parent: _FileLoader
) -> Callable[[Any], Document]:
    def load(spec: Any) -> Document:
        from orchestrator.loader import envfile

        env = envfile.resolve_environment(
            spec.project_directory, list(spec.env_files) or None, environ
        )
        sub = _FileLoader(env, interpolate, use_cache=parent.use_cache)
        docs = [_expand(sub.path(p), sub, environ) for p in spec.paths]
        parent.warnings.extend(sub.warnings)
        return _merge_all(docs)

    return load


def _merge_all(docs: list[Document]) -> Document:
    from orchestrator.loader import merge

    if len(docs) == 1:
        return merge.strip_markers(docs[0])
    return reduce(merge.merge, docs)


def load_documents(
    options: LoadOptions,
) -> tuple[Document, Discovered, dict[str, str], _FileLoader]:
    """Everything up to and including the schema: the merged, validated document."""
    from orchestrator.loader import envfile, schema_cache

    environ = dict(options.environ if options.environ is not None else os.environ)
    found = discover(options, environ)
    env = envfile.resolve_environment(
        found.project_directory,
        list(options.env_files) if options.env_files is not None else None,
        environ,
    )
    files = _FileLoader(env, options.interpolate, use_cache=options.schema_cache)
    docs = [_expand(files.source(source), files, env) for source in found.sources]
    merged = _merge_all(docs)
    problems = schema_cache.validate(merged, use_cache=options.schema_cache)
    if problems:
        raise ConfigError(problems)
    return merged, found, env, files


def load_project(options: LoadOptions) -> LoadResult:
    """Load, validate and bind a compose project; ConfigError lists every problem found."""
    from orchestrator.loader import bind, canonical, checks, normalize

    merged, found, env, files = load_documents(options)
    name = project_name(options, env, merged.data.get("name"), found.project_directory)
    profiles = active_profiles(options, env)
    doc = canonical.canonicalize(merged)
    doc = normalize.normalize(
        doc, project_name=name, working_dir=found.project_directory, environment=env
    )
    project = bind.bind(
        doc,
        project_name=name,
        working_dir=found.project_directory,
        config_files=found.config_files,
        active_profiles=profiles,
    )
    project = _enable_named(project, options.enabled_services)
    problems = checks.check_project(project, merged.positions) if options.semantic_checks else []
    if problems:
        raise ConfigError(problems)
    return LoadResult(project, tuple(files.warnings), merged.data, env, merged.positions)


def _enable_named(project: Project, names: tuple[str, ...]) -> Project:
    """Services named on the command line run whatever their profiles (as compose does)."""
    wanted = [n for n in names if n in project.disabled_services]
    if not wanted:
        return project
    services = dict(project.services)
    disabled = dict(project.disabled_services)
    for name in wanted:
        services[name] = disabled.pop(name)
    return replace(project, services=services, disabled_services=disabled)

