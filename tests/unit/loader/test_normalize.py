"""normalize: absolute paths, env files, the default network, names, deploy defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import ConfigError, Location
from orchestrator.loader.canonical import canonicalize
from orchestrator.loader.document import Document
from orchestrator.loader.normalize import normalize

ENV = {"HOME": "/home/me"}


def _normalize(data: dict[str, Any], working_dir: str = "/proj",
               environment: dict[str, str] | None = None) -> dict[str, Any]:
    doc = canonicalize(Document(file="compose.yaml", data=data))
    result = normalize(doc, project_name="demo", working_dir=working_dir,
                       environment=ENV if environment is None else environment)
    return result.data


def _web(service: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    service = {"image": "nginx", **service}
    web: dict[str, Any] = _normalize({"services": {"web": service}}, **kwargs)["services"]["web"]
    return web


@pytest.mark.parametrize(
    ("build", "context"),
    [
        ("./app", "/proj/app"),
        ("app/../other", "/proj/other"),
        (".", "/proj"),
        ("/abs/ctx", "/abs/ctx"),
        ("~/src", "/home/me/src"),
        ("https://github.com/docker/app.git#main", "https://github.com/docker/app.git#main"),
        ("git@github.com:docker/app.git", "git@github.com:docker/app.git"),
        ({"dockerfile_inline": "FROM alpine"}, "/proj"),
    ],
)
def test_build_context_made_absolute(build: Any, context: str) -> None:
    assert _web({"build": build})["build"]["context"] == context


@pytest.mark.parametrize(
    ("volume", "source"),
    [
        ("./data:/data", "/proj/data"),
        (".:/code", "/proj"),
        ("~/configs:/etc/configs:ro", "/home/me/configs"),
        ("/opt/data:/data", "/opt/data"),
        ({"type": "bind", "source": "rel/dir", "target": "/x"}, "/proj/rel/dir"),
        ("named:/data", "named"),
    ],
)
def test_bind_sources_made_absolute(volume: Any, source: str) -> None:
    assert _web({"volumes": [volume]})["volumes"][0]["source"] == source


@pytest.mark.parametrize(
    ("section", "entry", "expected"),
    [
        ("secrets", {"file": "./secret.txt"}, {"file": "/proj/secret.txt", "name": "demo_thing"}),
        ("configs", {"file": "~/c.conf", "name": "mine"},
         {"file": "/home/me/c.conf", "name": "mine"}),
        ("networks", {}, {"name": "demo_thing"}),
        ("networks", {"external": True}, {"external": True, "name": "thing"}),
        ("networks", {"external": {"name": "cool"}}, {"external": True, "name": "cool"}),
        ("volumes", None, {"name": "demo_thing"}),
        ("volumes", {"name": "user_named"}, {"name": "user_named"}),
        ("secrets", {"external": True}, {"external": True, "name": "thing"}),
    ],
)
def test_resource_names_and_files(section: str, entry: Any, expected: dict[str, Any]) -> None:
    assert _normalize({section: {"thing": entry}})[section]["thing"] == expected


@pytest.mark.parametrize(
    ("services", "expected_networks", "declares_default"),
    [
        ({"a": {}}, {"a": {"default": {}}}, True),
        ({"a": {"networks": ["front"]}}, {"a": {"front": {}}}, False),
        ({"a": {"network_mode": "host"}}, {"a": None}, False),
        ({"a": {"networks": ["front"]}, "b": {}}, {"a": {"front": {}}, "b": {"default": {}}}, True),
        ({"a": {"networks": {}}}, {"a": {"default": {}}}, True),
    ],
)
def test_default_network(services: dict[str, Any], expected_networks: dict[str, Any],
                         declares_default: bool) -> None:
    data = {"services": {k: {"image": "x", **v} for k, v in services.items()},
            "networks": {"front": {}}}
    out = _normalize(data)
    assert {k: s.get("networks") for k, s in out["services"].items()} == expected_networks
    assert ("default" in out["networks"]) is declares_default
    if declares_default:
        assert out["networks"]["default"] == {"name": "demo_default"}


def test_declared_default_network_is_kept() -> None:
    out = _normalize({"services": {"a": {"image": "x"}},
                      "networks": {"default": {"driver": "overlay", "name": "shared"}}})
    assert out["networks"]["default"] == {"driver": "overlay", "name": "shared"}


def test_env_files_merge_under_environment(tmp_path: Path) -> None:
    (tmp_path / "one.env").write_text("A=from-one\nB=from-one\nC=from-one\n")
    (tmp_path / "two.env").write_text("B=from-two\n")
    web = _web(
        {"env_file": ["one.env", {"path": "./two.env", "required": True},
                      {"path": "absent.env", "required": False}],
         "environment": {"C": "from-service", "D": "own"}},
        working_dir=str(tmp_path),
    )
    assert web["environment"] == {"A": "from-one", "B": "from-two", "C": "from-service", "D": "own"}
    assert web["env_file"] == [str(tmp_path / "one.env"), str(tmp_path / "two.env")]


def test_missing_required_env_file_is_located(tmp_path: Path) -> None:
    where = Location("compose.yaml", 5, 9)
    doc = canonicalize(Document(
        file="compose.yaml",
        data={"services": {"web": {"image": "x", "env_file": ["ok.env", "missing.env"]}}},
        positions={("services", "web", "env_file", 1): where},
    ))
    (tmp_path / "ok.env").write_text("A=1\n")
    with pytest.raises(ConfigError) as caught:
        normalize(doc, project_name="demo", working_dir=str(tmp_path), environment={})
    [problem] = caught.value.problems
    assert problem.path == "services.web.env_file[1]"
    assert problem.location == where
    assert str(tmp_path / "missing.env") in problem.message


@pytest.mark.parametrize(
    ("environment", "shell", "expected"),
    [
        ({"QUX": None}, {"QUX": "from-shell"}, {"QUX": "from-shell"}),
        ({"QUX": None}, {}, {"QUX": None}),
        ({"QUX": "set"}, {"QUX": "from-shell"}, {"QUX": "set"}),
    ],
)
def test_unset_environment_values_come_from_the_shell(
    environment: dict[str, Any], shell: dict[str, str], expected: dict[str, Any]
) -> None:
    assert _web({"environment": environment}, environment=shell)["environment"] == expected


def test_deploy_defaults_only_when_deploy_present() -> None:
    assert "deploy" not in _web({})
    deploy = _web({"deploy": {"replicas": 2, "restart_policy": {"max_attempts": 3}}})["deploy"]
    update = {"parallelism": 1, "delay": 0.0, "failure_action": "pause", "monitor": 5.0,
              "max_failure_ratio": 0.0, "order": "stop-first"}
    assert deploy == {
        "replicas": 2,
        "mode": "replicated",
        "update_config": update,
        "rollback_config": update,
        "restart_policy": {"condition": "any", "delay": 5.0, "window": 0.0, "max_attempts": 3},
    }


def test_deploy_values_win_over_defaults() -> None:
    service = {"deploy": {"mode": "global", "update_config": {"order": "start-first"}}}
    deploy = _web(service)["deploy"]
    assert deploy["mode"] == "global"
    assert deploy["update_config"]["order"] == "start-first"
    assert deploy["update_config"]["parallelism"] == 1
    assert "restart_policy" not in deploy


def test_service_without_image_or_build_is_located() -> None:
    where = Location("compose.yaml", 3, 3)
    doc = Document(file="compose.yaml",
                   data={"services": {"web": {"command": "true"}, "ok": {"image": "x"}}},
                   positions={("services", "web"): where})
    with pytest.raises(ConfigError) as caught:
        normalize(canonicalize(doc), project_name="demo", working_dir="/proj", environment={})
    [problem] = caught.value.problems
    assert problem.message == "service web has neither an image nor a build section"
    assert problem.path == "services.web"
    assert problem.location == where


def test_input_document_is_not_modified() -> None:
    doc = canonicalize(Document(file="compose.yaml",
                                data={"services": {"web": {"build": "./app"}}}))
    normalize(doc, project_name="demo", working_dir="/proj", environment={})
    assert doc.data == {"services": {"web": {"build": {"context": "./app"}}}}
