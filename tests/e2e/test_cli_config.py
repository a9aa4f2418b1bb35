"""`pycompose config` and friends through the real console script, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PYCOMPOSE = str(Path(sys.executable).parent / "pycompose")

COMPOSE = """\
name: shop
services:
  web:
    image: nginx:${TAG:-1.25}
    ports: ["8080:80"]
    depends_on: [db]
  db:
    image: postgres:16
    volumes: [data:/var/lib/postgresql/data]
  debug:
    image: busybox
    profiles: [debug]
volumes:
  data: {}
"""


def run(cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYCOMPOSE, *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    )


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    return tmp_path


def test_config_prints_a_normalised_file(project: Path) -> None:
    result = run(project, "config")
    assert result.returncode == 0, result.stderr
    assert "image: nginx:1.25" in result.stdout
    assert "target: 80" in result.stdout and "published: '8080'" in result.stdout
    assert "condition: service_started" in result.stdout


def test_config_output_is_itself_a_valid_compose_file(project: Path) -> None:
    first = run(project, "config")
    (project / "out.yaml").write_text(first.stdout)
    second = run(project, "-f", "out.yaml", "config")
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout


def test_config_json(project: Path) -> None:
    result = run(project, "config", "--format", "json")
    data = json.loads(result.stdout)
    assert data["name"] == "shop"
    assert set(data["services"]) == {"web", "db"}


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("--services", ["web", "db"]),
        ("--volumes", ["data"]),
        ("--networks", ["default"]),
        ("--profiles", ["debug"]),
        ("--images", ["nginx:1.25", "postgres:16"]),
    ],
)
def test_config_listings(project: Path, flag: str, expected: list[str]) -> None:
    result = run(project, "config", flag)
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split()) == sorted(expected)


def test_config_hash_is_per_service_and_stable(project: Path) -> None:
    first = run(project, "config", "--hash", "*")
    lines = dict(line.split() for line in first.stdout.splitlines())
    assert set(lines) == {"web", "db"} and all(len(h) == 64 for h in lines.values())
    assert run(project, "config", "--hash", "web").stdout == f"web {lines['web']}\n"


def test_config_hash_ignores_replicas_but_not_image(project: Path) -> None:
    base = run(project, "config", "--hash", "web").stdout
    (project / "compose.yaml").write_text(
        COMPOSE.replace("    depends_on: [db]\n", "    depends_on: [db]\n    scale: 3\n")
    )
    assert run(project, "config", "--hash", "web").stdout == base
    (project / "compose.yaml").write_text(COMPOSE.replace("nginx:", "httpd:"))
    assert run(project, "config", "--hash", "web").stdout != base


def test_config_no_interpolate_keeps_variables(project: Path) -> None:
    result = run(project, "config", "--no-interpolate", "--no-normalize")
    assert "${TAG:-1.25}" in result.stdout


def test_config_output_file(project: Path) -> None:
    result = run(project, "config", "-o", "out.yaml")
    assert result.returncode == 0 and result.stdout == ""
    assert "services:" in (project / "out.yaml").read_text()


def test_config_from_stdin(tmp_path: Path) -> None:
    result = run(
        tmp_path, "-f", "-", "-p", "x", "config", "--services", stdin="services: {a: {image: b}}\n"
    )
    assert result.stdout == "a\n"


def test_invalid_file_gives_located_errors_and_exit_code(project: Path) -> None:
    (project / "compose.yaml").write_text(
        "services:\n  web:\n    imgae: nginx\n    ports: [70000]\n"
    )
    result = run(project, "config", "-q")
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert "compose.yaml:3" in result.stderr and 'did you mean "image"' in result.stderr
    assert "services.web" in result.stderr


def test_errors_as_json(project: Path) -> None:
    (project / "compose.yaml").write_text("services:\n  web:\n    imgae: nginx\n")
    result = run(project, "--progress", "json", "config", "-q")
    payload = json.loads(result.stderr.splitlines()[-1])
    assert payload["error"] == "ConfigError"
    assert payload["problems"][0]["line"] == 3


def test_no_compose_file_is_a_usage_error(tmp_path: Path) -> None:
    result = run(tmp_path, "config")
    assert result.returncode == 2
    assert "no compose file found" in result.stderr and "Traceback" not in result.stderr


def test_yaml_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 12):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    (tmp_path / "compose.yaml").write_text("\n".join(lines) + "\nservices: {}\n")
    result = run(tmp_path, "config", "-q")
    assert result.returncode == 3 and "Traceback" not in result.stderr


def test_version_and_help_start(tmp_path: Path) -> None:
    assert run(tmp_path, "--version").stdout.startswith("pycompose")
    assert "config" in run(tmp_path, "--help").stdout
