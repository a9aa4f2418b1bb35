"""The CI-facing flags of `up` and `exec`, through the console script against dockerd:
`--exit-code-from`, `--abort-on-container-exit`, and options after an exec'd command
belonging to that command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

PYCOMPOSE = str(Path(sys.executable).parent / "pycompose")

STACK = """\
services:
  server:
    image: {image}
    command: ["sleep", "3600"]
    stop_grace_period: 1s
  tests:
    image: {image}
    command: ["sh", "-c", "echo suite-started; sleep 1; exit {code}"]
"""


def run(
    root: Path, project: str, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [PYCOMPOSE, "-p", project, "--backend", "docker", "--progress", "plain", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(root),
            **{k: v for k, v in os.environ.items() if k.startswith("PYCOMPOSE_")},
        },
    )
    assert "Traceback" not in result.stderr
    return result


@pytest.fixture
def stack(tmp_path: Path, project_name: str, busybox_image: str):  # type: ignore[no-untyped-def]
    def write(code: int) -> Path:
        (tmp_path / "compose.yaml").write_text(STACK.format(image=busybox_image, code=code))
        return tmp_path

    yield write
    run(tmp_path, project_name, "down", "-v", "-t", "1")


@pytest.mark.parametrize("code", [0, 3])
def test_exit_code_from_returns_the_services_code_and_stops_the_stack(
    stack, project_name: str, code: int  # type: ignore[no-untyped-def]
) -> None:
    root = stack(code)
    result = run(root, project_name, "up", "--exit-code-from", "tests", "-t", "1")
    assert result.returncode == code, result.stderr
    assert "suite-started" in result.stdout
    assert f"exited with code {code}" in result.stderr
    ps = json.loads(run(root, project_name, "ps", "-a", "--format", "json").stdout)
    assert {c["service"]: c["state"] for c in ps} == {"server": "exited", "tests": "exited"}


def test_abort_on_container_exit_stops_everything_when_one_container_exits(
    stack, project_name: str  # type: ignore[no-untyped-def]
) -> None:
    root = stack(5)
    result = run(root, project_name, "up", "--abort-on-container-exit", "-t", "1")
    assert result.returncode == 5, result.stderr
    ps = json.loads(run(root, project_name, "ps", "-a", "--format", "json").stdout)
    assert all(c["state"] == "exited" for c in ps) and len(ps) == 2


def test_exit_code_from_an_unknown_service_is_a_usage_error_before_anything_starts(
    stack, project_name: str  # type: ignore[no-untyped-def]
) -> None:
    root = stack(0)
    result = run(root, project_name, "up", "--exit-code-from", "nope")
    assert result.returncode != 0
    assert "nope" in result.stderr
    assert json.loads(run(root, project_name, "ps", "-a", "--format", "json").stdout) == []


def test_detached_abort_is_refused(stack, project_name: str) -> None:  # type: ignore[no-untyped-def]
    root = stack(0)
    result = run(root, project_name, "up", "-d", "--abort-on-container-exit")
    assert result.returncode == 2
    assert "attached" in result.stderr


def test_exec_passes_options_after_the_command_to_the_command(
    stack, project_name: str  # type: ignore[no-untyped-def]
) -> None:
    root = stack(0)
    assert run(root, project_name, "up", "-d", "server").returncode == 0
    # `-h` and `-n` belong to the command, not to pycompose (which has -h for help)
    result = run(root, project_name, "exec", "-T", "server", "sh", "-c", "echo -n hi; echo -h")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hi-h\n"
