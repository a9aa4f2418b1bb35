"""Where the supervisor keeps its files, so the daemon, its client and the core agree.

- state dir (``$PYCOMPOSE_STATE_DIR``, default ``/var/lib/pycompose/supervisor``): what
  must survive a crash or a reboot — ``state.json`` (restart history, written by the
  daemon alone), ``projects/<name>.json`` (one registration per project, written by the
  client) and ``intents/<container id>.json`` (stops the core made on purpose).
- run dir (``$PYCOMPOSE_RUN_DIR``, default ``/run/pycompose``): ``supervisor.pid``, which
  the daemon holds locked while it lives (a tmpfs: gone after a reboot, as it should be).
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_STATE_DIR = "/var/lib/pycompose/supervisor"
DEFAULT_RUN_DIR = "/run/pycompose"


def state_dir() -> Path:
    return Path(os.environ.get("PYCOMPOSE_STATE_DIR") or DEFAULT_STATE_DIR)


def run_dir() -> Path:
    return Path(os.environ.get("PYCOMPOSE_RUN_DIR") or DEFAULT_RUN_DIR)


def pidfile() -> Path:
    return run_dir() / "supervisor.pid"


def state_file() -> Path:
    return state_dir() / "state.json"


def projects_dir() -> Path:
    return state_dir() / "projects"


def project_file(project: str) -> Path:
    return projects_dir() / f"{project}.json"


def intents_dir() -> Path:
    return state_dir() / "intents"


def log_file() -> Path:
    return state_dir() / "supervisor.log"
