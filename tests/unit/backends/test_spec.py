"""Service → ContainerSpec: names, labels, attachments, network_mode, ports, restart policy."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import __version__, labels
from orchestrator.backends.base import Attachment, ObservedContainer, ObservedState
from orchestrator.backends.spec import build_container_spec, engine_restart, restart_warnings
from orchestrator.errors import ConfigError, DependencyFailed
from orchestrator.model import (
    Deploy,
    Network,
    PortConfig,
    RestartPolicy,
    Service,
    ServiceNetwork,
    ServiceVolume,
    Volume,
)
from tests.unit.plan.helpers import project, svc

EMPTY = ObservedState("p")


def build(service: Service, number: int = 1, observed: ObservedState = EMPTY, **kw: Any) -> Any:
    target = project(
        service,
        networks={
            "default": Network("default", "p_default"),
            "back": Network("back", "corp-back"),
        },
        volumes={"data": Volume("data", "p_data")},
    )
    kw.setdefault("supervised_restarts", False)
    return build_container_spec(target, service, number, config_hash="h", observed=observed, **kw)


def test_name_and_labels() -> None:
    spec = build(svc("web", labels={"team": "a"}), 2)

    assert spec.name == "p-web-2"
    assert dict(spec.labels) == {
        "team": "a",
        labels.PROJECT: "p",
        labels.SERVICE: "web",
        labels.CONTAINER_NUMBER: "2",
        labels.ONEOFF: "False",
        labels.WORKING_DIR: "/srv/p",
        labels.CONFIG_FILES: "/srv/p/compose.yaml",
        labels.COMPOSE_CONFIG_HASH: "h",
        labels.CONFIG_HASH: "h",
        labels.VERSION: __version__,
    }


@pytest.mark.parametrize(
    ("service", "number", "kw", "name"),
    [
        (svc("web", container_name="front"), 1, {}, "front"),
        (svc("web"), 3, {"oneoff": True}, "p-web-run-3"),
    ],
    ids=["container_name", "oneoff"],
)
def test_other_names(service: Service, number: int, kw: dict[str, Any], name: str) -> None:
    assert build(service, number, **kw).name == name


def test_container_name_refuses_a_second_replica() -> None:
    with pytest.raises(ConfigError, match="container_name"):
        build(svc("web", container_name="front"), 2)


def test_attachments_use_engine_names_and_answer_to_the_service_name() -> None:
    service = svc(
        "web",
        networks={
            "default": ServiceNetwork(),
            "back": ServiceNetwork(aliases=("www",), priority=5),
        },
    )

    assert build(service).attachments == (
        Attachment("corp-back", aliases=("web", "www")),
        Attachment("p_default", aliases=("web",)),
    )


def running(service: str, container_id: str, status: str = "running") -> ObservedContainer:
    return ObservedContainer(container_id, f"p-{service}-1", "p", service, 1, status, {})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mode", "observed", "expected"),
    [
        ("host", EMPTY, "host"),
        ("service:vpn", ObservedState("p", (running("vpn", "abc"),)), "container:abc"),
        ("container:xyz", EMPTY, "container:xyz"),
    ],
)
def test_network_mode(mode: str, observed: ObservedState, expected: str) -> None:
    spec = build(svc("web", network_mode=mode, networks={}), observed=observed)

    assert (spec.network_mode, spec.attachments) == (expected, ())


@pytest.mark.parametrize(
    "observed",
    [EMPTY, ObservedState("p", (running("vpn", "abc", "exited"),))],
    ids=["none", "stopped"],
)
def test_network_mode_of_a_service_that_is_not_running(observed: ObservedState) -> None:
    with pytest.raises(DependencyFailed, match="vpn"):
        build(svc("web", network_mode="service:vpn", networks={}), observed=observed)


def test_volume_and_port_resolution() -> None:
    service = svc(
        "web",
        volumes=(ServiceVolume("volume", "/d", "data"), ServiceVolume("volume", "/tmp/x")),
        ports=(
            PortConfig(80, "8080"),
            PortConfig(81, "8081", mode="host"),
            PortConfig(82),
            PortConfig(83, "8083", protocol="sctp"),
        ),
    )
    spec = build(service)

    assert dict(spec.volume_names) == {"data": "p_data"}
    assert spec.publish_ports == (1, 2, 3)


@pytest.mark.parametrize(
    ("fields", "supervised", "expected"),
    [
        ({}, False, ("no", 0)),
        ({"restart": "always"}, False, ("always", 0)),
        ({"restart": "unless-stopped"}, False, ("unless-stopped", 0)),
        ({"restart": "on-failure", "restart_max_retries": 4}, False, ("on-failure", 4)),
        ({"deploy": Deploy(restart_policy=RestartPolicy("none"))}, False, ("no", 0)),
        ({"deploy": Deploy(restart_policy=RestartPolicy("any"))}, False, ("always", 0)),
        (
            {"deploy": Deploy(restart_policy=RestartPolicy("on-failure", max_attempts=2))},
            False,
            ("on-failure", 2),
        ),
        (
            {"restart": "always", "deploy": Deploy(restart_policy=RestartPolicy("none"))},
            False,
            ("no", 0),
        ),
        ({"restart": "always"}, True, ("no", 0)),
    ],
)
def test_engine_restart(
    fields: dict[str, Any], supervised: bool, expected: tuple[str, int]
) -> None:
    service = svc("web", **fields)

    assert engine_restart(service, supervised_restarts=supervised) == expected
    spec = build(service, supervised_restarts=supervised)
    assert (spec.engine_restart, spec.engine_restart_max_retries) == expected


@pytest.mark.parametrize(
    ("policy", "supervised", "count"),
    [
        (RestartPolicy("any", delay=5.0), False, 1),
        (RestartPolicy("any", delay=0.0, max_attempts=3), False, 1),
        (RestartPolicy("on-failure", delay=1.0, window=60.0), False, 1),
        (RestartPolicy("any", delay=0.0), False, 0),
        (RestartPolicy("none"), False, 0),
        (RestartPolicy("any", delay=5.0), True, 0),
    ],
)
def test_restart_warnings(policy: RestartPolicy, supervised: bool, count: int) -> None:
    service = svc("web", deploy=Deploy(restart_policy=policy))

    assert len(restart_warnings(service, supervised_restarts=supervised)) == count
