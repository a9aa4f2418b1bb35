"""Typed errors → exit codes: the one place that decides them (documented in the README)."""

from __future__ import annotations

from orchestrator import errors

OK = 0
FAILURE = 1
USAGE = 2
ROLLOUT_PAUSED = 12  # `up`/`rollback`: a rolling update paused
ROLLED_BACK = 13  # `up`: a rolling update failed and was rolled back

# Most specific first: the first isinstance match wins.
_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (errors.UsageError, USAGE),
    (errors.ConfigError, 3),
    (errors.NotFound, 4),
    (errors.Conflict, 5),
    (errors.Unsupported, 6),
    (errors.DependencyFailed, 7),
    (errors.WaitTimeout, 8),
    (errors.EngineUnavailable, 10),
    (errors.BackendError, 9),
    (errors.RuntimeFailure, 11),
    (errors.RolloutPaused, ROLLOUT_PAUSED),
    (errors.RolledBack, ROLLED_BACK),
    (errors.PycomposeError, FAILURE),
)


def exit_code(error: BaseException) -> int:
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    return FAILURE
