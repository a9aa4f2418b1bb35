"""The whole loader, end to end in-process: discovery, names, env, merge, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import ConfigError, UsageError
from orchestrator.loader.discover import LoadOptions, normalize_project_name
from orchestrator.loader.pipeline import load_project


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def load(tmp_path: Path, **kw: object):  # type: ignore[no-untyped-def]
    kw.setdefault("working_directory", str(tmp_path))
    kw.setdefault("environ", {})
    return load_project(LoadOptions(**kw))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name", ["compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"]
)
def test_default_file_names_are_found(tmp_path: Path, name: str) -> None:
    write(tmp_path / name, "services: {web: {image: nginx}}\n")
    result = load(tmp_path)
    assert list(result.project.services) == ["web"]
    assert result.project.config_files == (str(tmp_path / name),)


def test_default_file_found_in_a_parent_directory(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", "services: {web: {image: nginx}}\n")
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    result = load(tmp_path, working_directory=str(sub))
    assert result.project.working_dir == str(tmp_path)


def test_override_file_is_merged(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", "services: {web: {image: nginx, environment: {A: '1'}}}\n")
    write(tmp_path / "compose.override.yaml", "services: {web: {environment: {B: '2'}}}\n")
    env = load(tmp_path).project.services["web"].environment
    assert env == {"A": "1", "B": "2"}


def test_multiple_files_merge_in_order(tmp_path: Path) -> None:
    a = write(tmp_path / "a.yaml", "services: {web: {image: one, ports: ['80:80']}}\n")
    b = write(tmp_path / "b.yaml", "services: {web: {image: two, ports: ['81:81']}}\n")
    web = load(tmp_path, files=(str(a), str(b))).project.services["web"]
    assert web.image == "two"
    assert [p.published for p in web.ports] == ["80", "81"]


def test_compose_file_variable(tmp_path: Path) -> None:
    write(tmp_path / "x.yaml", "services: {x: {image: nginx}}\n")
    write(tmp_path / "y.yaml", "services: {y: {image: nginx}}\n")
    result = load(tmp_path, environ={"COMPOSE_FILE": "x.yaml:y.yaml"})
    assert sorted(result.project.services) == ["x", "y"]


def test_stdin_file(tmp_path: Path) -> None:
    result = load(tmp_path, files=("-",), stdin_text="services: {s: {image: nginx}}\n")
    assert list(result.project.services) == ["s"]
    assert result.project.working_dir == str(tmp_path)


@pytest.mark.parametrize(
    ("options", "environ", "text", "expected"),
    [
        (
            {"project_name": "fromflag"},
            {"COMPOSE_PROJECT_NAME": "fromenv"},
            "name: fromfile\n",
            "fromflag",
        ),
        ({}, {"COMPOSE_PROJECT_NAME": "fromenv"}, "name: fromfile\n", "fromenv"),
        ({}, {}, "name: fromfile\n", "fromfile"),
        ({}, {}, "", "mydir-1"),
    ],
)
def test_project_name_precedence(
    tmp_path: Path, options: dict[str, str], environ: dict[str, str], text: str, expected: str
) -> None:
    root = tmp_path / "My.Dir-1"
    write(root / "compose.yaml", text + "services: {web: {image: nginx}}\n")
    result = load(root, environ=environ, **options)
    assert result.project.name == expected


def test_invalid_explicit_project_name_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", "services: {web: {image: nginx}}\n")
    with pytest.raises(UsageError, match="invalid project name 'Bad Name'"):
        load(tmp_path, project_name="Bad Name")


@pytest.mark.parametrize(
    ("raw", "expected"), [("My App", "myapp"), ("_x.Y", "xy"), ("ok-1_2", "ok-1_2")]
)
def test_normalize_project_name(raw: str, expected: str) -> None:
    assert normalize_project_name(raw) == expected


def test_dot_env_of_the_project_directory_feeds_interpolation(tmp_path: Path) -> None:
    write(tmp_path / ".env", "TAG=1.2\nCOMPOSE_PROFILES=debug\n")
    write(
        tmp_path / "compose.yaml",
        "services:\n  web: {image: 'nginx:${TAG}'}\n  dbg: {image: busybox, profiles: [debug]}\n",
    )
    project = load(tmp_path).project
    assert project.services["web"].image == "nginx:1.2"
    assert "dbg" in project.services  # COMPOSE_PROFILES from .env


def test_env_file_flag_replaces_dot_env(tmp_path: Path) -> None:
    write(tmp_path / ".env", "TAG=fromdotenv\n")
    other = write(tmp_path / "other.env", "TAG=fromflag\n")
    write(tmp_path / "compose.yaml", "services: {web: {image: 'nginx:${TAG}'}}\n")
    project = load(tmp_path, env_files=(str(other),)).project
    assert project.services["web"].image == "nginx:fromflag"


def test_profiles_enable_services(tmp_path: Path) -> None:
    write(
        tmp_path / "compose.yaml",
        "services:\n  a: {image: x}\n  b: {image: x, profiles: [p1]}\n"
        "  c: {image: x, profiles: [p2]}\n",
    )
    assert sorted(load(tmp_path).project.services) == ["a"]
    assert sorted(load(tmp_path, profiles=("p1",)).project.services) == ["a", "b"]
    assert sorted(load(tmp_path, environ={"COMPOSE_PROFILES": "p1,p2"}).project.services) == [
        "a",
        "b",
        "c",
    ]
    named = load(tmp_path, enabled_services=("c",)).project
    assert sorted(named.services) == ["a", "c"]


def test_every_problem_is_reported_at_once_with_locations(tmp_path: Path) -> None:
    path = write(
        tmp_path / "compose.yaml",
        "services:\n  web:\n    imgae: nginx\n  db:\n    image: postgres\n    restart: sometimes\n",
    )
    with pytest.raises(ConfigError) as caught:
        load(tmp_path)
    text = str(caught.value)
    assert len(caught.value.problems) >= 2
    assert f"{path}:3" in text and "imgae" in text and "image" in text
    assert f"{path}:6" in text and "services.db.restart" in text


def test_missing_required_variable_names_variable_and_file(tmp_path: Path) -> None:
    path = write(
        tmp_path / "compose.yaml", "services:\n  web:\n    image: ${IMAGE:?set IMAGE please}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load(tmp_path)
    text = str(caught.value)
    assert "IMAGE" in text and "set IMAGE please" in text and f"{path}:3" in text


def test_cycle_is_shown(tmp_path: Path) -> None:
    write(
        tmp_path / "compose.yaml",
        "services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [c]}\n"
        "  c: {image: x, depends_on: [a]}\n",
    )
    with pytest.raises(ConfigError, match="a → b → c → a"):
        load(tmp_path)


def test_extends_from_another_file(tmp_path: Path) -> None:
    write(
        tmp_path / "base" / "common.yaml", "services:\n  base: {image: x, environment: {A: '1'}}\n"
    )
    write(
        tmp_path / "compose.yaml",
        "services:\n  web:\n    extends: {file: base/common.yaml, service: base}\n"
        "    environment: {B: '2'}\n",
    )
    web = load(tmp_path).project.services["web"]
    assert web.image == "x" and web.environment == {"A": "1", "B": "2"}


def test_legacy_version_2_file_with_links(tmp_path: Path) -> None:
    write(
        tmp_path / "docker-compose.yml",
        "version: '2'\nservices:\n  web: {image: x, links: ['db:database']}\n  db: {image: y}\n",
    )
    project = load(tmp_path).project
    assert project.services["web"].links == ("db:database",)


def test_a_100_mb_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    import time

    path = tmp_path / "compose.yaml"
    with path.open("wb") as handle:
        handle.truncate(100 * 1024 * 1024)  # sparse: the size is real, the disk is not used
    start = time.monotonic()
    with pytest.raises(ConfigError, match="refused"):
        load(tmp_path)
    assert time.monotonic() - start < 1.0
