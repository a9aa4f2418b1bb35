"""``pycompose convert kubernetes``: stream, directory and JSON output, warnings on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from orchestrator.cli.main import cli

COMPOSE = """\
name: shop
services:
  db:
    image: postgres:16
    volumes: [pgdata:/var/lib/postgresql/data]
    ports: ["5432"]
  web:
    image: nginx:1.27
    container_name: the-web
    ports: ["8080:80"]
    depends_on: [db]
volumes:
  pgdata: {}
"""


def _run(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    runner = CliRunner()
    result = runner.invoke(
        cli, ["-f", str(tmp_path / "compose.yaml"), "convert", "kubernetes", *args]
    )
    return result.exit_code, result.stdout, result.stderr


def test_stream_to_stdout_validates_and_warns_naming_the_key(tmp_path: Path) -> None:
    code, out, err = _run(tmp_path, "--validate")
    assert code == 0, err
    docs = list(yaml.safe_load_all(out))
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
        ("Service", "db"),
        ("Service", "web"),
        ("Service", "web-published"),
        ("StatefulSet", "db"),
        ("Deployment", "web"),
    ]
    assert "services.web.container_name" in err


def test_directory_gets_one_file_per_object(tmp_path: Path) -> None:
    target = tmp_path / "out"
    code, _, err = _run(tmp_path, "-o", str(target))
    assert code == 0, err
    assert sorted(p.name for p in target.iterdir()) == [
        "db-service.yaml",
        "db-statefulset.yaml",
        "web-deployment.yaml",
        "web-published-service.yaml",
        "web-service.yaml",
    ]
    assert yaml.safe_load((target / "web-deployment.yaml").read_text())["kind"] == "Deployment"


def test_json_is_a_v1_list(tmp_path: Path) -> None:
    code, out, err = _run(tmp_path, "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["kind"] == "List" and len(data["items"]) == 5
