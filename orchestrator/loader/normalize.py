"""Fill in what the files leave implicit, so the bound model never has to guess.

Runs on canonical (long-syntax) data: relative paths become absolute against the project
directory, env files are read into ``environment``, the implicit ``default`` network and
engine-side resource names appear, and ``deploy`` carries swarm's defaults. After this
stage the data says everything the project means, which is what makes ``config`` output
reproducible and the config hash stable.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from dataclasses import MISSING, fields
from typing import Any

from orchestrator.errors import ConfigError, Problem
from orchestrator.labels import resource_name
from orchestrator.loader.document import Document, PathKey, dotted, locate
from orchestrator.model.deploy import RestartPolicy, UpdateConfig

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_REMOTE_PREFIXES = ("git@", "github.com/")
_RESOURCE_SECTIONS = ("networks", "volumes", "secrets", "configs")


def normalize(
    doc: Document,
    *,
    project_name: str,
    working_dir: str,
    environment: Mapping[str, str],
) -> Document:
    """``doc`` with paths absolute, env files merged and implicit defaults made explicit.

    Raises ConfigError listing every problem (a required env file missing, a service
    with neither ``image`` nor ``build``).
    """
    state = _State(doc, os.path.abspath(working_dir), environment)
    data = copy.deepcopy(doc.data)
    services = data.get("services") or {}
    for name, service in services.items():
        if isinstance(service, dict):
            state.service(("services", str(name)), service)
    _default_network(data, services)
    _resource_names(data, project_name)
    for key in ("secrets", "configs"):
        for entry in (data.get(key) or {}).values():
            if isinstance(entry, dict) and isinstance(entry.get("file"), str):
                entry["file"] = state.path(entry["file"])
    if state.problems:
        raise ConfigError(state.problems)
    return Document(
        file=doc.file, data=data, positions=dict(doc.positions), directory=doc.directory
    )


def is_remote(context: str) -> bool:
    """True when a build context is a URL or git remote rather than a local directory."""
    return bool(_URL.match(context)) or context.startswith(_REMOTE_PREFIXES)


class _State:
    def __init__(self, doc: Document, working_dir: str, environment: Mapping[str, str]) -> None:
        self.doc = doc
        self.working_dir = working_dir
        self.environment = environment
        self.home = environment.get("HOME") or os.path.expanduser("~")
        self.problems: list[Problem] = []

    def problem(self, path: PathKey, message: str, hint: str = "") -> None:
        self.problems.append(Problem(message, dotted(path), locate(self.doc.positions, path), hint))

    def path(self, value: str) -> str:
        """``value`` absolute: ``~`` is the environment's HOME, relative is the project's."""
        if value == "~" or value.startswith("~/"):
            value = self.home + value[1:]
        if os.path.isabs(value):
            return value
        return os.path.normpath(os.path.join(self.working_dir, value))

    def service(self, path: PathKey, service: dict[str, Any]) -> None:
        build = service.get("build")
        if isinstance(build, dict):
            self.build(build)
        if service.get("env_file") is not None:
            self.env_file(path, service)
        env = service.get("environment")
        if isinstance(env, dict):
            for key, value in env.items():
                if value is None and key in self.environment:
                    env[key] = self.environment[key]
        for volume in service.get("volumes") or []:
            if (
                isinstance(volume, dict)
                and volume.get("type") == "bind"
                and isinstance(volume.get("source"), str)
            ):
                volume["source"] = self.path(volume["source"])
        if isinstance(service.get("deploy"), dict):
            service["deploy"] = _deploy_defaults(service["deploy"])
        if not service.get("image") and service.get("build") is None:
            self.problem(
                path,
                f"service {path[-1]} has neither an image nor a build section",
                "add `image:` to run an existing image, or `build:` to build one",
            )

    def build(self, build: dict[str, Any]) -> None:
        context = build.get("context")
        if context is None:
            build["context"] = self.working_dir
        elif isinstance(context, str) and not is_remote(context):
            build["context"] = self.path(context)
        extra = build.get("additional_contexts")
        if isinstance(extra, dict):
            for key, value in extra.items():
                if isinstance(value, str) and ":" not in value:
                    extra[key] = self.path(value)

    def env_file(self, path: PathKey, service: dict[str, Any]) -> None:
        """Read the env files into ``environment`` (the service's own values win)."""
        read: list[str] = []
        values: dict[str, str] = {}
        for index, entry in enumerate(service["env_file"]):
            spec = entry if isinstance(entry, dict) else {"path": entry, "required": True}
            file = self.path(str(spec.get("path", "")))
            if not os.path.isfile(file):
                if spec.get("required", True):
                    self.problem(
                        (*path, "env_file", index),
                        f"env file {file} does not exist",
                        "create it, or mark the entry `required: false`",
                    )
                continue
            values.update(self._read_env_file((*path, "env_file", index), file))
            read.append(file)
        own = service.get("environment") or {}
        merged: dict[str, Any] = {**values, **own}
        for key, value in own.items():
            if value is None and key not in self.environment and key in values:
                merged[key] = values[key]
        service["environment"] = merged
        # files that were optional and absent are dropped: the list records what was read
        service["env_file"] = read

    def _read_env_file(self, path: PathKey, file: str) -> dict[str, str]:
        # envfile.py is a sibling stage; imported late so this module loads without it
        from orchestrator.loader.envfile import parse_env_file

        try:
            return dict(parse_env_file(file, self.environment))
        except ConfigError as exc:
            self.problems.extend(exc.problems)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            self.problem(path, f"cannot read env file {file}: {exc}")
        return {}


def _default_network(data: dict[str, Any], services: Mapping[str, Any]) -> None:
    """Services that name no network join ``default``, as docker compose does."""
    needed = False
    for service in services.values():
        if (
            isinstance(service, dict)
            and service.get("network_mode") is None
            and not service.get("networks")
        ):
            service["networks"] = {"default": {}}
            needed = True
    if needed:
        if not isinstance(data.get("networks"), dict):
            data["networks"] = {}
        if data["networks"].get("default") is None:
            data["networks"]["default"] = {}


def _resource_names(data: dict[str, Any], project: str) -> None:
    for section in _RESOURCE_SECTIONS:
        entries = data.get(section)
        if not isinstance(entries, dict):
            continue
        for key, entry in entries.items():
            if entry is None:
                entry = entries[key] = {}
            if isinstance(entry, dict) and entry.get("name") is None:
                entry["name"] = str(key) if entry.get("external") else resource_name(project, key)


def _defaults(cls: type[Any]) -> dict[str, Any]:
    """The scalar defaults of a deploy dataclass, as plain data."""
    return {
        f.name: f.default
        for f in fields(cls)
        if f.default is not MISSING and f.default is not None
    }


def _deploy_defaults(deploy: dict[str, Any]) -> dict[str, Any]:
    out = dict(deploy)
    out.setdefault("mode", "replicated")
    for key in ("update_config", "rollback_config"):
        out[key] = {**_defaults(UpdateConfig), **(out.get(key) or {})}
    if out.get("restart_policy") is not None:
        out["restart_policy"] = {**_defaults(RestartPolicy), **out["restart_policy"]}
    return out
