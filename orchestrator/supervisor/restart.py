"""Restart decisions: (policy, exit, history, now) → Decision. Pure; the daemon only acts.

Two policy languages, each with its own engine's meaning:

- ``restart:`` (docker): ``no`` | ``always`` | ``on-failure[:N]`` | ``unless-stopped``.
  Back-off as dockerd's restart manager: the first restart waits 100 ms, each next one
  twice the previous, capped at 1 minute; a container that ran at least 10 s before it
  exited resets the back-off to 100 ms. ``on-failure:N`` gives up after N restarts
  (N unset or 0: never). A stop made on purpose is never undone (for ``always`` too).
- ``deploy.restart_policy`` (swarm): ``condition`` none | on-failure | any, ``delay``
  before each restart (default 5 s), ``max_attempts`` (unset or 0: unlimited) and
  ``window``. Restarts are counted, as swarmkit does, at the moment they are decided;
  with a window only those decided within the last ``window`` seconds count, so a
  replica that fails in a burst gives up while one that fails rarely keeps going.
  Edge case, also swarm's: with ``window <= delay`` every earlier restart has left the
  window by the time the next exit is judged, so ``max_attempts`` never binds;
  :func:`policy_warnings` says so.

When a service sets both, ``deploy.restart_policy`` wins (the compose spec's rule, and
what ``backends.spec.engine_restart`` does), and ``restart:`` is ignored.

The restart time is measured from the exit (``finished_at + delay``), not from when the
supervisor noticed it: a supervisor that was down for longer than the delay restarts at
once, and one restarted mid-delay does not wait twice. An exit already answered (its
``finished_at`` is in the history) gets the recorded answer back, so a supervisor that
crashed between recording a restart and doing it neither counts it twice nor skips it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from orchestrator.model import Service
from orchestrator.model.deploy import RestartCondition

DOCKER_INITIAL_BACKOFF = 0.1  # seconds (dockerd: defaultTimeout)
DOCKER_MAX_BACKOFF = 60.0  # seconds (dockerd: maxRestartTimeout)
DOCKER_RESET_AFTER = 10.0  # a container that ran this long resets the back-off
# two exits are the same exit when their finish times are this close (engine rounding)
SAME_EXIT = 0.001

DockerMode = Literal["no", "always", "on-failure", "unless-stopped"]


@dataclass(frozen=True)
class DockerPolicy:
    """``restart:``; ``max_retries`` is the N of ``on-failure:N`` (None/0: unlimited)."""

    mode: DockerMode
    max_retries: int | None = None


@dataclass(frozen=True)
class SwarmPolicy:
    """``deploy.restart_policy``; ``max_attempts`` None/0 is unlimited, ``window`` 0 none."""

    condition: RestartCondition = "any"
    delay: float = 5.0
    max_attempts: int | None = None
    window: float = 0.0


Policy = DockerPolicy | SwarmPolicy


@dataclass(frozen=True)
class ExitInfo:
    """How a container ended. ``on_purpose``: a stop intent was recorded for it."""

    exit_code: int
    started_at: float
    finished_at: float
    on_purpose: bool = False


@dataclass(frozen=True)
class Attempt:
    """One restart the supervisor decided: which exit it answered, when, and for when."""

    exit_at: float  # finished_at of the exit it answers
    decided_at: float
    restart_at: float


@dataclass(frozen=True)
class History:
    """What the supervisor did for one replica slot; persisted in state.json."""

    attempts: tuple[Attempt, ...] = ()
    backoff: float = 0.0  # docker: the last back-off used (0: none yet)
    gave_up_at: float | None = None  # finished_at of the exit we gave up on

    def answered(self, exit_at: float) -> Attempt | None:
        for attempt in reversed(self.attempts):
            if abs(attempt.exit_at - exit_at) < SAME_EXIT:
                return attempt
        return None


@dataclass(frozen=True)
class Restart:
    """Start the container again at ``at`` (now or later); ``history`` records it."""

    at: float
    history: History
    reason: str


@dataclass(frozen=True)
class GiveUp:
    """The policy allows no more restarts: leave it down, and say so once."""

    history: History
    reason: str


@dataclass(frozen=True)
class Leave:
    """Nothing to do for this exit (no policy, a clean exit under on-failure, on purpose)."""

    reason: str
    history: History = field(default_factory=History)


Decision = Restart | GiveUp | Leave


def policy_for(service: Service) -> Policy | None:
    """The policy governing ``service``: deploy.restart_policy wins over restart:."""
    swarm = service.deploy.restart_policy if service.deploy is not None else None
    if swarm is not None:
        return SwarmPolicy(swarm.condition, swarm.delay, swarm.max_attempts, swarm.window)
    if service.restart is None:
        return None
    return DockerPolicy(service.restart, service.restart_max_retries)


def is_supervised(policy: Policy | None) -> bool:
    """True when the policy may ever restart a container."""
    if policy is None:
        return False
    if isinstance(policy, SwarmPolicy):
        return policy.condition != "none"
    return policy.mode != "no"


def policy_warnings(service: Service) -> list[str]:
    """Settings that do not mean what they seem (the window ≤ delay edge case)."""
    policy = policy_for(service)
    if (
        isinstance(policy, SwarmPolicy)
        and policy.max_attempts
        and 0 < policy.window <= policy.delay
    ):
        return [
            f"service {service.name!r}: deploy.restart_policy.window ({policy.window:g}s) is "
            f"not longer than its delay ({policy.delay:g}s), so no earlier restart is ever "
            "inside the window and max_attempts never stops the restarts (as in swarm)"
        ]
    return []


def decide(policy: Policy | None, exit: ExitInfo, history: History, now: float) -> Decision:
    """What to do about a container that exited."""
    if exit.on_purpose:
        return Leave("stopped on purpose", history)
    if policy is None or not is_supervised(policy):
        return Leave("no restart policy", history)
    done = history.answered(exit.finished_at)
    if done is not None:
        return Restart(done.restart_at, history, "restart already decided for this exit")
    if history.gave_up_at is not None and abs(history.gave_up_at - exit.finished_at) < SAME_EXIT:
        return GiveUp(history, "already gave up")
    if isinstance(policy, SwarmPolicy):
        return _swarm(policy, exit, history, now)
    return _docker(policy, exit, history, now)


def _docker(policy: DockerPolicy, exit: ExitInfo, history: History, now: float) -> Decision:
    if policy.mode == "on-failure" and exit.exit_code == 0:
        return Leave("exited 0 (on-failure)", history)
    count = len(history.attempts)
    if policy.mode == "on-failure" and policy.max_retries and count >= policy.max_retries:
        return GiveUp(
            replace(history, gave_up_at=exit.finished_at),
            f"gave up after {count} restarts (on-failure:{policy.max_retries})",
        )
    ran = exit.finished_at - exit.started_at
    previous = 0.0 if ran >= DOCKER_RESET_AFTER else history.backoff
    backoff = DOCKER_INITIAL_BACKOFF if previous <= 0 else min(previous * 2, DOCKER_MAX_BACKOFF)
    at = max(now, exit.finished_at + backoff)
    attempt = Attempt(exit.finished_at, now, at)
    new = History((*history.attempts, attempt), backoff, None)
    return Restart(at, new, f"restart: {policy.mode}, exit {exit.exit_code}, back-off {backoff:g}s")


def _swarm(policy: SwarmPolicy, exit: ExitInfo, history: History, now: float) -> Decision:
    if policy.condition == "on-failure" and exit.exit_code == 0:
        return Leave("exited 0 (condition: on-failure)", history)
    if policy.max_attempts:
        if policy.window > 0:
            counted = [a for a in history.attempts if a.decided_at > now - policy.window]
        else:
            counted = list(history.attempts)
        if len(counted) >= policy.max_attempts:
            within = f" within {policy.window:g}s" if policy.window > 0 else ""
            return GiveUp(
                replace(history, gave_up_at=exit.finished_at),
                f"gave up after {len(counted)} restarts{within} "
                f"(max_attempts: {policy.max_attempts})",
            )
    at = max(now, exit.finished_at + policy.delay)
    attempt = Attempt(exit.finished_at, now, at)
    new = History((*history.attempts, attempt), history.backoff, None)
    reason = f"restart_policy {policy.condition}, exit {exit.exit_code}, delay {policy.delay:g}s"
    return Restart(at, new, reason)


def prune(history: History, policy: Policy | None, now: float, keep: int = 100) -> History:
    """Drop attempts that can no longer matter, so the state file stays small."""
    attempts = history.attempts
    if isinstance(policy, SwarmPolicy) and policy.window > 0:
        inside = tuple(a for a in attempts if a.decided_at > now - policy.window)
        attempts = inside or attempts[-1:]  # the last one still says "already answered"
    limit = keep
    if isinstance(policy, SwarmPolicy) and policy.max_attempts:
        limit = max(keep, policy.max_attempts)
    if isinstance(policy, DockerPolicy) and policy.max_retries:
        limit = max(keep, policy.max_retries)
    return replace(history, attempts=attempts[-limit:])
