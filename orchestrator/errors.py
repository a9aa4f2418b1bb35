"""Typed errors of pycompose, one tree for the whole package.

Library code raises these (mapping foreign exceptions at the adapter boundary with
``raise ... from exc``); only ``orchestrator.cli`` turns them into exit codes.

::

    PycomposeError                 base of everything we raise on purpose
    ├── ConfigError                the compose files are wrong (carries every Problem found)
    ├── UsageError                 the command line asks for something impossible
    ├── NotFound                   a service, container, image, network or volume is missing
    ├── Conflict                   a name or a port is already taken
    ├── Unsupported                the backend cannot do what the file asks
    ├── DependencyFailed           a service could not start because a dependency failed
    ├── WaitTimeout                ``--wait`` or a health gate ran out of time
    ├── RolloutFailed              a rolling update did not complete
    │   ├── RolloutPaused          it paused (failure_action pause, or a failed rollback)
    │   └── RolledBack             it failed and was rolled back to the previous config
    ├── BackendError               the engine answered with an error
    │   └── EngineUnavailable      no engine answers at all
    └── RuntimeFailure             the built-in namespace runtime failed
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where a problem is: a file and, when known, a 1-based line and column."""

    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        if self.column is None:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the configuration.

    ``path`` is the dotted key path (``services.web.ports[0]``), ``message`` says what is
    wrong and what was expected in plain words, ``hint`` is a suggestion ("did you mean
    `image`?") or empty.
    """

    message: str
    path: str = ""
    location: Location | None = None
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        at = f"{self.path}: " if self.path else ""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{where}{at}{self.message}{hint}"


class PycomposeError(Exception):
    """Base of every error pycompose raises on purpose."""


class ConfigError(PycomposeError):
    """The compose configuration is invalid. Carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem] | Problem | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class UsageError(PycomposeError):
    """The command line asks for something that cannot be done (bad flag combination...)."""


class NotFound(PycomposeError):
    """A service, container, image, network or volume does not exist."""


class Conflict(PycomposeError):
    """Something is already taken: a container name, a host port."""


class Unsupported(PycomposeError):
    """The chosen backend cannot honour what the configuration asks."""


class DependencyFailed(PycomposeError):
    """A service was not started because one of its dependencies failed."""


class WaitTimeout(PycomposeError):
    """A wait (``up --wait``, a health gate) ran out of time."""


class RolloutFailed(PycomposeError):
    """A rolling update did not complete; ``service`` names the service it was updating."""

    def __init__(self, message: str, *, service: str = "") -> None:
        super().__init__(message)
        self.service = service


class RolloutPaused(RolloutFailed):
    """The update paused: too many new replicas failed and ``failure_action`` is ``pause``
    (or the rollback itself failed). Replicas already updated keep the new config."""


class RolledBack(RolloutFailed):
    """The update failed and ``failure_action: rollback`` brought every replica back to the
    previous configuration."""


class BackendError(PycomposeError):
    """The container engine answered with an error."""


class EngineUnavailable(BackendError):
    """No container engine answers (daemon down, socket missing)."""


class RuntimeFailure(PycomposeError):
    """The built-in namespace runtime failed to do something."""
