"""The config hash: pinned across versions, blind to what must not recreate, sensitive to
everything else (including the engine-side names of networks and volumes)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from orchestrator.model import (
    Build,
    DependsOn,
    Deploy,
    Network,
    PortConfig,
    RestartPolicy,
    ServiceVolume,
    UpdateConfig,
    Volume,
)
from orchestrator.plan.hashing import config_hash
from tests.unit.plan.helpers import project, svc

FIXED = svc(
    "web",
    image="nginx:1.27",
    command=("nginx", "-g", "daemon off;"),
    environment={"MODE": "prod"},
    ports=(PortConfig(80, "8080"),),
    volumes=(ServiceVolume("volume", "/data", "data"),),
)
VOLUMES = {"data": Volume("data", "p_data")}


def hash_of(**changes: Any) -> str:
    service = replace(FIXED, **changes)
    return config_hash(service, project(service, volumes=VOLUMES))


def test_the_hash_of_a_fixed_service_never_changes() -> None:
    # If this fails, every container of every user gets recreated on upgrade: don't.
    assert hash_of() == "0803f084f1b2473c887896912437f038ab24a659781987fc6091e811840c415a"


@pytest.mark.parametrize(
    "changes",
    [
        {"build": Build(context="/srv/p")},
        {"pull_policy": "always"},
        {"scale": 3},
        {"deploy": Deploy(replicas=3)},
        {"depends_on": {"db": DependsOn()}},
        {"profiles": ("debug",)},
        {"deploy": Deploy(update_config=UpdateConfig(parallelism=2, order="start-first"))},
        {"deploy": Deploy(rollback_config=UpdateConfig(parallelism=0))},
        {"deploy": Deploy(restart_policy=RestartPolicy(condition="on-failure", max_attempts=3))},
    ],
    ids=[
        "build",
        "pull_policy",
        "scale",
        "deploy.replicas",
        "depends_on",
        "profiles",
        "update_config",
        "rollback_config",
        "restart_policy",
    ],
)
def test_keys_that_must_not_recreate(changes: dict[str, Any]) -> None:
    assert hash_of(**changes) == hash_of()


@pytest.mark.parametrize(
    "changes",
    [
        {"image": "nginx:1.28"},
        {"command": ("nginx",)},
        {"environment": {"MODE": "dev"}},
        {"ports": (PortConfig(80, "8081"),)},
        {"labels": {"team": "a"}},
        {"deploy": Deploy(labels={"x": "1"})},
        {"restart": "always"},
    ],
    ids=["image", "command", "environment", "ports", "labels", "deploy.labels", "restart"],
)
def test_keys_that_recreate(changes: dict[str, Any]) -> None:
    assert hash_of(**changes) != hash_of()


@pytest.mark.parametrize(
    ("networks", "volumes"),
    [
        ({"default": Network("default", "p_front")}, VOLUMES),
        (None, {"data": Volume("data", "shared-data", external=True)}),
    ],
    ids=["network renamed", "volume renamed"],
)
def test_renamed_resources_recreate(
    networks: dict[str, Network] | None, volumes: dict[str, Volume]
) -> None:
    assert config_hash(FIXED, project(FIXED, networks=networks, volumes=volumes)) != hash_of()
