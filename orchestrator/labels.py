"""Label keys written on every resource pycompose creates.

The ``com.docker.compose.*`` keys are the ones the Docker ecosystem reads (``docker compose
ls/ps``, dashboards), so pycompose projects group like compose ones. ``io.pycompose.*`` keys
are ours. Nothing else records state: the engine's labels are the state.
"""

from __future__ import annotations

PROJECT = "com.docker.compose.project"
SERVICE = "com.docker.compose.service"
CONTAINER_NUMBER = "com.docker.compose.container-number"
ONEOFF = "com.docker.compose.oneoff"
WORKING_DIR = "com.docker.compose.project.working_dir"
CONFIG_FILES = "com.docker.compose.project.config_files"
COMPOSE_CONFIG_HASH = "com.docker.compose.config-hash"
COMPOSE_VERSION = "com.docker.compose.version"
NETWORK = "com.docker.compose.network"
VOLUME = "com.docker.compose.volume"

CONFIG_HASH = "io.pycompose.config-hash"
VERSION = "io.pycompose.version"
BACKEND = "io.pycompose.backend"
# set on a replica created by a rolling update, so `ps` can tell old from new
UPDATE_GENERATION = "io.pycompose.update-generation"
# the replica's canonical service config (JSON, or "zlib:" + base64 when large) and the
# one it replaced: what a rollback goes back to (see supervisor/specs.py); no state file
SPEC = "io.pycompose.spec"
PREVIOUS_SPEC = "io.pycompose.previous-spec"
# a service opts out of replacing unhealthy replicas with this label set to "false"
REPLACE_UNHEALTHY = "io.pycompose.replace-unhealthy"


def container_name(project: str, service: str, number: int) -> str:
    """``<project>-<service>-<n>``, as docker compose v2 names containers."""
    return f"{project}-{service}-{number}"


def resource_name(project: str, key: str) -> str:
    """``<project>_<key>``, as docker compose names networks and volumes."""
    return f"{project}_{key}"
