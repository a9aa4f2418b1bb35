"""The config hash: did a service change in a way its containers must be recreated for?

The hash is sha256 over canonical JSON (sorted keys, no spaces) of the service's long-form
plain data (``serialize.service_to_dict``, defaults omitted so a new optional model field
changes no existing hash) minus the keys that change how pycompose drives the service, not
what its containers are:

- ``build``, ``pull_policy``: how the image is obtained, not which image runs;
- ``scale``, ``deploy.replicas``: how many containers, handled by scaling;
- ``depends_on``: start order only;
- ``profiles``: whether the service is enabled at all;
- ``deploy.update_config``, ``deploy.rollback_config``: how an update is rolled out;
- ``deploy.restart_policy``: how a stopped container is restarted (by the supervisor).

Added to it: the engine-side names of the networks and volumes the service uses, because
renaming a network (``name:``) must move the containers onto the new one.

The hash is written on every container (``io.pycompose.config-hash``) and compared on the
next ``up``, so it must not change between pycompose versions for the same service: a test
pins the hash of a fixed service to a literal string.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from orchestrator.model import Project, Service
from orchestrator.model.serialize import service_to_dict

EXCLUDED_KEYS: tuple[str, ...] = ("build", "pull_policy", "scale", "depends_on", "profiles")
EXCLUDED_DEPLOY_KEYS: tuple[str, ...] = (
    "replicas",
    "update_config",
    "rollback_config",
    "restart_policy",
)
# Where the engine-side resource names ride in the hashed data; not a compose key.
_RESOURCES_KEY = "x-pycompose-resources"


def hashed_data(service: Service, project: Project) -> dict[str, Any]:
    """The plain data the hash is computed over (useful to explain a recreate)."""
    data = dict(service_to_dict(service))
    for key in EXCLUDED_KEYS:
        data.pop(key, None)
    deploy = data.get("deploy")
    if isinstance(deploy, dict):
        deploy = {k: v for k, v in deploy.items() if k not in EXCLUDED_DEPLOY_KEYS}
        if deploy:
            data["deploy"] = deploy
        else:
            del data["deploy"]
    networks = {
        key: project.networks[key].name for key in service.networks if key in project.networks
    }
    volumes = {
        mount.source: project.volumes[mount.source].name
        for mount in service.volumes
        if mount.type == "volume" and mount.source and mount.source in project.volumes
    }
    data[_RESOURCES_KEY] = {"networks": networks, "volumes": volumes}
    return data


def config_hash(service: Service, project: Project) -> str:
    """sha256 hex of the canonical JSON of ``hashed_data(service, project)``."""
    text = json.dumps(
        hashed_data(service, project), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
