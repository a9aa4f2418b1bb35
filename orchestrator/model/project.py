"""The top level of a compose project."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.model.service import Service


@dataclass(frozen=True)
class Network:
    """A top-level network. ``name`` is the engine-side name (``<project>_<key>`` unless set)."""

    key: str
    name: str
    driver: str | None = None
    driver_opts: dict[str, str] = field(default_factory=dict)
    external: bool = False
    internal: bool = False
    attachable: bool = False
    enable_ipv6: bool = False
    ipam_driver: str | None = None
    # each: {"subnet": ..., "gateway": ..., "ip_range": ..., "aux_addresses": {...}}
    ipam_config: tuple[dict[str, Any], ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Volume:
    """A top-level volume. ``name`` is the engine-side name (``<project>_<key>`` unless set)."""

    key: str
    name: str
    driver: str | None = None
    driver_opts: dict[str, str] = field(default_factory=dict)
    external: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SecretObject:
    """A top-level secret: exactly one of file / environment / content (or external)."""

    key: str
    name: str
    file: str | None = None  # absolute
    environment: str | None = None
    content: str | None = None
    external: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConfigObject(SecretObject):
    """A top-level config: same shape as a secret."""


@dataclass(frozen=True)
class Project:
    name: str
    working_dir: str  # absolute project directory
    config_files: tuple[str, ...] = ()
    services: dict[str, Service] = field(default_factory=dict)  # enabled services only
    disabled_services: dict[str, Service] = field(default_factory=dict)  # by profiles
    networks: dict[str, Network] = field(default_factory=dict)
    volumes: dict[str, Volume] = field(default_factory=dict)
    secrets: dict[str, SecretObject] = field(default_factory=dict)
    configs: dict[str, ConfigObject] = field(default_factory=dict)
    profiles: tuple[str, ...] = ()  # the active ones
    extensions: dict[str, Any] = field(default_factory=dict)  # top-level x-*

    def service(self, name: str) -> Service:
        """The enabled service ``name``; KeyError when absent."""
        return self.services[name]
