"""Restart decisions as tables: (policy, exit, history, now) → Decision, with a fake clock."""

from __future__ import annotations

from dataclasses import replace

import pytest

from orchestrator.model import Service
from orchestrator.model.deploy import Deploy, RestartPolicy
from orchestrator.supervisor.restart import (
    Attempt,
    DockerPolicy,
    ExitInfo,
    GiveUp,
    History,
    Leave,
    Policy,
    Restart,
    SwarmPolicy,
    decide,
    is_supervised,
    policy_for,
    policy_warnings,
    prune,
)

T0 = 1_000_000.0  # the fake clock's epoch


def exited(code: int, ran: float = 1.0, at: float = T0, on_purpose: bool = False) -> ExitInfo:
    return ExitInfo(code, started_at=at - ran, finished_at=at, on_purpose=on_purpose)


def attempts(*decided: float) -> History:
    return History(tuple(Attempt(t - 0.5, t, t + 0.1) for t in decided))


# -- which policy governs a service -----------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        (Service("s"), None),
        (Service("s", restart="no"), DockerPolicy("no")),
        (Service("s", restart="always"), DockerPolicy("always")),
        (Service("s", restart="unless-stopped"), DockerPolicy("unless-stopped")),
        (Service("s", restart="on-failure"), DockerPolicy("on-failure")),
        (Service("s", restart="on-failure", restart_max_retries=3), DockerPolicy("on-failure", 3)),
        # swarm defaults: condition any, delay 5s, unlimited, no window
        (Service("s", deploy=Deploy(restart_policy=RestartPolicy())), SwarmPolicy("any", 5.0)),
        # deploy.restart_policy wins over restart: when both are set
        (
            Service(
                "s",
                restart="always",
                deploy=Deploy(restart_policy=RestartPolicy("on-failure", 2.0, 3, 60.0)),
            ),
            SwarmPolicy("on-failure", 2.0, 3, 60.0),
        ),
        # a deploy section without restart_policy leaves restart: in charge
        (Service("s", restart="always", deploy=Deploy()), DockerPolicy("always")),
    ],
)
def test_policy_for(service: Service, expected: Policy | None) -> None:
    assert policy_for(service) == expected


@pytest.mark.parametrize(
    ("policy", "supervised"),
    [
        (None, False),
        (DockerPolicy("no"), False),
        (DockerPolicy("always"), True),
        (DockerPolicy("on-failure"), True),
        (DockerPolicy("unless-stopped"), True),
        (SwarmPolicy("none"), False),
        (SwarmPolicy("on-failure"), True),
        (SwarmPolicy("any"), True),
    ],
)
def test_is_supervised(policy: Policy | None, supervised: bool) -> None:
    assert is_supervised(policy) is supervised


# -- docker's restart: ------------------------------------------------------------------------

DOCKER_CASES = [
    # (id, policy, exit, history, expected kind, expected restart time)
    ("no policy", None, exited(1), History(), Leave, None),
    ("no", DockerPolicy("no"), exited(1), History(), Leave, None),
    ("always after exit 0", DockerPolicy("always"), exited(0), History(), Restart, T0 + 0.1),
    ("always after exit 1", DockerPolicy("always"), exited(1), History(), Restart, T0 + 0.1),
    ("unless-stopped", DockerPolicy("unless-stopped"), exited(137), History(), Restart, T0 + 0.1),
    ("on-failure, exit 0", DockerPolicy("on-failure"), exited(0), History(), Leave, None),
    ("on-failure, exit 2", DockerPolicy("on-failure"), exited(2), History(), Restart, T0 + 0.1),
    (
        "on-failure unlimited",
        DockerPolicy("on-failure"),
        exited(1),
        replace(attempts(*range(50)), backoff=60.0),
        Restart,
        T0 + 60.0,
    ),
    (
        "on-failure:2 with 1 done",
        DockerPolicy("on-failure", 2),
        exited(1),
        replace(attempts(T0 - 5), backoff=0.1),
        Restart,
        T0 + 0.2,
    ),
    (
        "on-failure:2 with 2 done",
        DockerPolicy("on-failure", 2),
        exited(1),
        attempts(1, 2),
        GiveUp,
        None,
    ),
    (
        "on-failure:0 is unlimited",
        DockerPolicy("on-failure", 0),
        exited(1),
        attempts(1, 2),
        Restart,
        T0 + 0.1,
    ),
    (
        "stopped on purpose",
        DockerPolicy("always"),
        exited(0, on_purpose=True),
        History(),
        Leave,
        None,
    ),
]


@pytest.mark.parametrize(
    ("policy", "exit_info", "history", "kind", "at"),
    [case[1:] for case in DOCKER_CASES],
    ids=[case[0] for case in DOCKER_CASES],
)
def test_docker_restart(
    policy: Policy | None,
    exit_info: ExitInfo,
    history: History,
    kind: type,
    at: float | None,
) -> None:
    decision = decide(policy, exit_info, history, now=T0)
    assert isinstance(decision, kind), decision
    if at is not None:
        assert isinstance(decision, Restart)
        assert decision.at == pytest.approx(at)


@pytest.mark.parametrize(
    ("ran", "previous", "expected"),
    [
        (1.0, 0.0, 0.1),  # first restart: 100 ms
        (1.0, 0.1, 0.2),  # doubling
        (1.0, 0.2, 0.4),
        (1.0, 12.8, 25.6),
        (1.0, 51.2, 60.0),  # capped at one minute
        (1.0, 60.0, 60.0),
        (9.99, 3.2, 6.4),  # ran just under 10 s: keeps doubling
        (10.0, 3.2, 0.1),  # ran 10 s: the back-off starts over
        (3600.0, 60.0, 0.1),
    ],
)
def test_docker_backoff(ran: float, previous: float, expected: float) -> None:
    history = replace(attempts(T0 - 100), backoff=previous)
    decision = decide(DockerPolicy("always"), exited(1, ran=ran), history, now=T0)
    assert isinstance(decision, Restart)
    assert decision.history.backoff == pytest.approx(expected)
    assert decision.at == pytest.approx(T0 + expected)


def test_the_delay_counts_from_the_exit_not_from_when_it_was_noticed() -> None:
    policy = SwarmPolicy("any", delay=2.0)
    late = decide(policy, exited(1, at=T0), History(), now=T0 + 1.5)
    assert isinstance(late, Restart) and late.at == pytest.approx(T0 + 2.0)
    very_late = decide(policy, exited(1, at=T0), History(), now=T0 + 30)
    assert isinstance(very_late, Restart) and very_late.at == pytest.approx(T0 + 30)


# -- swarm's deploy.restart_policy ----------------------------------------------------------

SWARM_CASES = [
    ("none", SwarmPolicy("none"), exited(1), History(), Leave, None),
    ("any, exit 0", SwarmPolicy("any", 5.0), exited(0), History(), Restart, T0 + 5.0),
    ("any, exit 1", SwarmPolicy("any", 5.0), exited(1), History(), Restart, T0 + 5.0),
    ("on-failure, exit 0", SwarmPolicy("on-failure", 5.0), exited(0), History(), Leave, None),
    ("on-failure, exit 1", SwarmPolicy("on-failure", 2.0), exited(1), History(), Restart, T0 + 2.0),
    ("delay 0", SwarmPolicy("any", 0.0), exited(1), History(), Restart, T0),
    ("max 3, 2 done", SwarmPolicy("on-failure", 0.0, 3), exited(1), attempts(1, 2), Restart, T0),
    (
        "max 3, 3 done",
        SwarmPolicy("on-failure", 0.0, 3),
        exited(1),
        attempts(1, 2, 3),
        GiveUp,
        None,
    ),
    ("max 0 is unlimited", SwarmPolicy("any", 0.0, 0), exited(1), attempts(*range(9)), Restart, T0),
    (
        "max None is unlimited",
        SwarmPolicy("any", 0.0, None),
        exited(1),
        attempts(*range(9)),
        Restart,
        T0,
    ),
    # window: only restarts decided within the last `window` seconds count
    (
        "window, all inside",
        SwarmPolicy("any", 0.0, 2, 60.0),
        exited(1),
        attempts(T0 - 30, T0 - 10),
        GiveUp,
        None,
    ),
    (
        "window, one outside",
        SwarmPolicy("any", 0.0, 2, 60.0),
        exited(1),
        attempts(T0 - 90, T0 - 10),
        Restart,
        T0,
    ),
    (
        "window, exactly at the edge",
        SwarmPolicy("any", 0.0, 2, 60.0),
        exited(1),
        attempts(T0 - 60, T0 - 10),
        Restart,
        T0,
    ),
    (
        "window without max_attempts",
        SwarmPolicy("any", 1.0, None, 60.0),
        exited(1),
        attempts(*(T0 - i for i in range(1, 20))),
        Restart,
        T0 + 1.0,
    ),
    ("on purpose", SwarmPolicy("any"), exited(0, on_purpose=True), History(), Leave, None),
]


@pytest.mark.parametrize(
    ("policy", "exit_info", "history", "kind", "at"),
    [case[1:] for case in SWARM_CASES],
    ids=[case[0] for case in SWARM_CASES],
)
def test_swarm_restart_policy(
    policy: Policy, exit_info: ExitInfo, history: History, kind: type, at: float | None
) -> None:
    decision = decide(policy, exit_info, history, now=T0)
    assert isinstance(decision, kind), decision
    if at is not None:
        assert isinstance(decision, Restart)
        assert decision.at == pytest.approx(at)


def run_crash_loop(policy: SwarmPolicy, runs_for: float, exits: int) -> int:
    """Simulate a container that always exits ``runs_for`` after it starts; restarts done."""
    now, history, restarts = T0, History(), 0
    for _ in range(exits):
        started = now
        now = started + runs_for
        decision = decide(policy, exited(1, ran=runs_for, at=now), history, now)
        if not isinstance(decision, Restart):
            break
        history, restarts, now = decision.history, restarts + 1, decision.at
    return restarts


@pytest.mark.parametrize(
    ("policy", "runs_for", "restarts"),
    [
        (SwarmPolicy("on-failure", 2.0, 3), 0.3, 3),  # exactly max_attempts, then gives up
        (SwarmPolicy("on-failure", 2.0, 3, window=60.0), 0.3, 3),  # a burst inside the window
        (SwarmPolicy("on-failure", 2.0, 3, window=10.0), 30.0, 20),  # rare failures go on
        # the window <= delay edge case (swarm's too): max_attempts never binds
        (SwarmPolicy("on-failure", 2.0, 3, window=2.0), 0.0, 20),
        (SwarmPolicy("on-failure", 5.0, 3, window=1.0), 0.3, 20),
        # a window holding fewer than max_attempts crash cycles (2.3 s each) never fills up
        (SwarmPolicy("on-failure", 2.0, 3, window=5.0), 0.3, 20),
        # one holding max_attempts of them does
        (SwarmPolicy("on-failure", 2.0, 3, window=7.0), 0.3, 3),
    ],
)
def test_crash_loops(policy: SwarmPolicy, runs_for: float, restarts: int) -> None:
    assert run_crash_loop(policy, runs_for, exits=20) == restarts


def test_window_not_longer_than_delay_is_warned_about() -> None:
    def service(window: float, max_attempts: int | None = 3) -> Service:
        policy = RestartPolicy("on-failure", delay=2.0, max_attempts=max_attempts, window=window)
        return Service("s", deploy=Deploy(restart_policy=policy))

    assert policy_warnings(service(2.0)) and policy_warnings(service(1.0))
    assert not policy_warnings(service(2.5))
    assert not policy_warnings(service(0.0))  # no window at all
    assert not policy_warnings(service(1.0, max_attempts=None))  # nothing to bind
    assert not policy_warnings(Service("s", restart="always"))


# -- crash safety: an exit already answered gets the recorded answer --------------------------


@pytest.mark.parametrize("policy", [SwarmPolicy("on-failure", 2.0, 3), DockerPolicy("always")])
def test_an_answered_exit_is_not_counted_twice(policy: Policy) -> None:
    first = decide(policy, exited(1), History(), now=T0)
    assert isinstance(first, Restart)
    # the supervisor crashed after recording, before starting; a new one judges again later
    again = decide(policy, exited(1), first.history, now=T0 + 1.0)
    assert isinstance(again, Restart)
    assert again.at == first.at and again.history == first.history


def test_a_given_up_exit_stays_given_up() -> None:
    policy = SwarmPolicy("on-failure", 0.0, 1)
    gave_up = decide(policy, exited(1), attempts(1), now=T0)
    assert isinstance(gave_up, GiveUp) and gave_up.history.gave_up_at == T0
    again = decide(policy, exited(1), gave_up.history, now=T0 + 100)
    assert isinstance(again, GiveUp) and again.history == gave_up.history


def test_prune_keeps_what_still_counts() -> None:
    many = attempts(*(T0 - i for i in range(300, 0, -1)))
    assert len(prune(many, SwarmPolicy("any", 0.0, None), T0).attempts) == 100
    assert len(prune(many, SwarmPolicy("any", 0.0, 250), T0).attempts) == 250
    windowed = prune(many, SwarmPolicy("any", 0.0, 5, 10.0), T0)
    assert [a.decided_at for a in windowed.attempts] == [T0 - i for i in range(9, 0, -1)]
    old = prune(attempts(T0 - 500), SwarmPolicy("any", 0.0, 5, 10.0), T0)
    assert len(old.attempts) == 1  # the last answer is kept, so it is not answered twice
