"""Replacing unhealthy replicas, as a table: opt-outs, conditions, pacing (fake clock)."""

from __future__ import annotations

import pytest

from orchestrator import labels
from orchestrator.backends.base import Health
from orchestrator.model import Service
from orchestrator.model.deploy import Deploy, RestartPolicy
from orchestrator.supervisor.health import (
    Keep,
    Replace,
    decide_unhealthy,
    pause_before,
    replace_unhealthy_enabled,
)

T0 = 1_000_000.0
OFF = {labels.REPLACE_UNHEALTHY: "false"}


@pytest.mark.parametrize(
    ("service", "enabled"),
    [
        (Service("s"), True),  # the default: replace
        (Service("s", labels=OFF), False),
        (Service("s", labels={labels.REPLACE_UNHEALTHY: "False"}), False),
        (Service("s", labels={labels.REPLACE_UNHEALTHY: "true"}), True),
        (Service("s", deploy=Deploy(labels=OFF)), False),
        (Service("s", extras={"x-pycompose": {"replace_unhealthy": False}}), False),
        (Service("s", extras={"x-pycompose": {"replace_unhealthy": "no"}}), False),
        (Service("s", extras={"x-pycompose": {"replace_unhealthy": True}}), True),
        (Service("s", extras={"x-pycompose": {}}), True),
        (Service("s", extras={"x-pycompose": "junk"}), True),
        # the label opting out wins over an x- key saying yes
        (Service("s", labels=OFF, extras={"x-pycompose": {"replace_unhealthy": True}}), False),
    ],
)
def test_opt_out(service: Service, enabled: bool) -> None:
    assert replace_unhealthy_enabled(service) is enabled


@pytest.mark.parametrize(
    ("service", "health", "replacements", "expected"),
    [
        (Service("s"), "healthy", (), Keep),
        (Service("s"), "starting", (), Keep),
        (Service("s"), "none", (), Keep),
        (Service("s"), "unhealthy", (), Replace(T0, "unhealthy")),
        (Service("s", labels=OFF), "unhealthy", (), Keep),
        (
            Service("s", deploy=Deploy(restart_policy=RestartPolicy("none"))),
            "unhealthy",
            (),
            Keep,
        ),
        (
            Service("s", deploy=Deploy(restart_policy=RestartPolicy("on-failure"))),
            "unhealthy",
            (),
            Replace(T0, "unhealthy"),
        ),
        # paced: 1 s after one recent replacement, 2 s after two …
        (Service("s"), "unhealthy", (T0 - 0.5,), Replace(T0 + 0.5, "unhealthy")),
        (Service("s"), "unhealthy", (T0 - 10, T0 - 1), Replace(T0 + 1, "unhealthy")),
        (Service("s"), "unhealthy", (T0 - 5,), Replace(T0, "unhealthy")),  # long enough ago
        # a slot left alone for 5 minutes starts over
        (Service("s"), "unhealthy", (T0 - 400, T0 - 350), Replace(T0, "unhealthy")),
    ],
)
def test_decide_unhealthy(
    service: Service, health: Health, replacements: tuple[float, ...], expected: object
) -> None:
    decision = decide_unhealthy(service, health, replacements, T0)
    if isinstance(expected, type):
        assert isinstance(decision, expected)
    else:
        assert decision == expected


@pytest.mark.parametrize(
    ("count", "pause"),
    [(0, 0.0), (1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (7, 60.0), (20, 60.0)],
)
def test_pause_doubles_and_is_capped(count: int, pause: float) -> None:
    recent = tuple(T0 - 100 + i for i in range(count))
    assert pause_before(recent, T0) == pause
