"""convert: the compose model → swarm ServiceSpecs, one mapping per row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.api import load
from orchestrator.errors import ConfigError
from orchestrator.loader.discover import LoadOptions
from orchestrator.model import Project
from orchestrator.targets.swarm.convert import (
    IMAGE_LABEL,
    NAMESPACE_LABEL,
    SPEC_HASH_LABEL,
    StackDefinition,
    convert_project,
)


def _project(tmp_path: Path, text: str) -> Project:
    (tmp_path / "compose.yaml").write_text(text)
    (tmp_path / "token.txt").write_text("s3cret")
    options = LoadOptions(files=(str(tmp_path / "compose.yaml"),), project_name="app")
    return load(options).project


def _stack(tmp_path: Path, text: str) -> StackDefinition:
    return convert_project(_project(tmp_path, text))


def _web(tmp_path: Path, body: str) -> dict[str, Any]:
    text = "services:\n  web:\n    image: img:1\n" + "".join(
        f"    {line}\n" for line in body.strip("\n").splitlines()
    )
    return _stack(tmp_path, text).services["web"].spec


def _dig(spec: dict[str, Any], path: str) -> Any:
    """``a.b.0.c``; after ``Labels`` the rest is one key (label keys contain dots)."""
    value: Any = spec
    parts = path.split(".")
    while parts:
        part = parts.pop(0)
        value = value[int(part)] if isinstance(value, list) else value[part]
        if part == "Labels" and parts:
            return value[".".join(parts)]
    return value


# (compose body of service `web`, dotted path into the ServiceSpec, expected value)
CASES: list[tuple[str, str, Any]] = [
    # command is the service's args; entrypoint its command (swarm's Command replaces it)
    ('command: ["echo", "hi"]', "TaskTemplate.ContainerSpec.Args", ["echo", "hi"]),
    ("command: echo hi there", "TaskTemplate.ContainerSpec.Args", ["echo", "hi", "there"]),
    ('entrypoint: ["/bin/sh", "-c"]', "TaskTemplate.ContainerSpec.Command", ["/bin/sh", "-c"]),
    ("environment: {B: '2', A: '1'}", "TaskTemplate.ContainerSpec.Env", ["A=1", "B=2"]),
    (
        "labels: {tier: front}",
        "TaskTemplate.ContainerSpec.Labels",
        {"tier": "front", NAMESPACE_LABEL: "app"},
    ),
    ("working_dir: /srv", "TaskTemplate.ContainerSpec.Dir", "/srv"),
    ("user: '1000'", "TaskTemplate.ContainerSpec.User", "1000"),
    ("hostname: h1", "TaskTemplate.ContainerSpec.Hostname", "h1"),
    ("stop_grace_period: 3s", "TaskTemplate.ContainerSpec.StopGracePeriod", 3_000_000_000),
    ("stop_signal: SIGINT", "TaskTemplate.ContainerSpec.StopSignal", "SIGINT"),
    ("init: true", "TaskTemplate.ContainerSpec.Init", True),
    ("read_only: true", "TaskTemplate.ContainerSpec.ReadOnly", True),
    ("tty: true", "TaskTemplate.ContainerSpec.TTY", True),
    ("cap_add: [NET_ADMIN]", "TaskTemplate.ContainerSpec.CapabilityAdd", ["NET_ADMIN"]),
    ("extra_hosts: ['db:10.0.0.5']", "TaskTemplate.ContainerSpec.Hosts", ["10.0.0.5 db"]),
    ("dns: [1.1.1.1]", "TaskTemplate.ContainerSpec.DNSConfig.Nameservers", ["1.1.1.1"]),
    (
        "ulimits: {nofile: {soft: 10, hard: 20}}",
        "TaskTemplate.ContainerSpec.Ulimits",
        [{"Name": "nofile", "Soft": 10, "Hard": 20}],
    ),
    (
        'healthcheck: {test: [CMD, "true"], interval: 2s, timeout: 1s, retries: 4, '
        "start_period: 5s}",
        "TaskTemplate.ContainerSpec.Healthcheck",
        {
            "Test": ["CMD", "true"],
            "Interval": 2_000_000_000,
            "Timeout": 1_000_000_000,
            "Retries": 4,
            "StartPeriod": 5_000_000_000,
        },
    ),
    ("healthcheck: {disable: true}", "TaskTemplate.ContainerSpec.Healthcheck", {"Test": ["NONE"]}),
    (
        "volumes: ['/srv/data:/data:ro']",
        "TaskTemplate.ContainerSpec.Mounts.0",
        {"Type": "bind", "Source": "/srv/data", "Target": "/data", "ReadOnly": True},
    ),
    ("tmpfs: [/run]", "TaskTemplate.ContainerSpec.Mounts.0", {"Type": "tmpfs", "Target": "/run"}),
    # mode
    ("deploy: {replicas: 3}", "Mode", {"Replicated": {"Replicas": 3}}),
    ("scale: 2", "Mode", {"Replicated": {"Replicas": 2}}),
    ("deploy: {mode: global}", "Mode", {"Global": {}}),
    ("deploy: {mode: global-job}", "Mode", {"GlobalJob": {}}),
    (
        "deploy: {mode: replicated-job, replicas: 4}",
        "Mode",
        {"ReplicatedJob": {"MaxConcurrent": 4, "TotalCompletions": 4}},
    ),
    # update_config and rollback_config, in full
    (
        "deploy: {update_config: {parallelism: 2, delay: 10s, failure_action: rollback, "
        "monitor: 3s, max_failure_ratio: 0.25, order: start-first}}",
        "UpdateConfig",
        {
            "Parallelism": 2,
            "Delay": 10_000_000_000,
            "FailureAction": "rollback",
            "Monitor": 3_000_000_000,
            "MaxFailureRatio": 0.25,
            "Order": "start-first",
        },
    ),
    (
        "deploy: {rollback_config: {parallelism: 0, delay: 1s, failure_action: continue, "
        "monitor: 1s, max_failure_ratio: 0.5, order: stop-first}}",
        "RollbackConfig",
        {
            "Parallelism": 0,
            "Delay": 1_000_000_000,
            "FailureAction": "continue",
            "Monitor": 1_000_000_000,
            "MaxFailureRatio": 0.5,
            "Order": "stop-first",
        },
    ),
    (
        "deploy: {}",
        "UpdateConfig",  # swarm's defaults written out
        {
            "Parallelism": 1,
            "Delay": 0,
            "FailureAction": "pause",
            "Monitor": 5_000_000_000,
            "MaxFailureRatio": 0.0,
            "Order": "stop-first",
        },
    ),
    # restart
    (
        "deploy: {restart_policy: {condition: on-failure, delay: 2s, max_attempts: 3, "
        "window: 60s}}",
        "TaskTemplate.RestartPolicy",
        {
            "Condition": "on-failure",
            "Delay": 2_000_000_000,
            "MaxAttempts": 3,
            "Window": 60_000_000_000,
        },
    ),
    ("restart: 'no'", "TaskTemplate.RestartPolicy", {"Condition": "none"}),
    ("restart: always", "TaskTemplate.RestartPolicy", {"Condition": "any"}),
    (
        "restart: on-failure:5",
        "TaskTemplate.RestartPolicy",
        {"Condition": "on-failure", "MaxAttempts": 5},
    ),
    # placement
    (
        "deploy: {placement: {constraints: [node.hostname==n2, node.labels.disk==ssd], "
        "preferences: [{spread: node.labels.zone}], max_replicas_per_node: 2}}",
        "TaskTemplate.Placement",
        {
            "Constraints": ["node.hostname==n2", "node.labels.disk==ssd"],
            "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}],
            "MaxReplicas": 2,
        },
    ),
    # resources
    (
        "deploy: {resources: {limits: {cpus: '0.5', memory: 64M, pids: 100}, "
        "reservations: {cpus: '0.25', memory: 32M}}}",
        "TaskTemplate.Resources",
        {
            "Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 64 * 1024 * 1024, "Pids": 100},
            "Reservations": {"NanoCPUs": 250_000_000, "MemoryBytes": 32 * 1024 * 1024},
        },
    ),
    ("mem_limit: 16m", "TaskTemplate.Resources", {"Limits": {"MemoryBytes": 16 * 1024 * 1024}}),
    # endpoint mode and ports
    ("deploy: {endpoint_mode: dnsrr}", "EndpointSpec", {"Mode": "dnsrr"}),
    (
        "ports: ['8080:80']",
        "EndpointSpec",
        {
            "Mode": "vip",
            "Ports": [
                {
                    "Protocol": "tcp",
                    "TargetPort": 80,
                    "PublishedPort": 8080,
                    "PublishMode": "ingress",
                }
            ],
        },
    ),
    (
        "ports: [{target: 53, published: 5353, protocol: udp, mode: host}]\n"
        "deploy: {endpoint_mode: dnsrr}",
        "EndpointSpec",
        {
            "Mode": "dnsrr",
            "Ports": [
                {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 5353, "PublishMode": "host"}
            ],
        },
    ),
    # labels: deploy.labels on the service, the stack namespace everywhere
    ("deploy: {labels: {owner: ops}}", "Labels.owner", "ops"),
    ("deploy: {labels: {owner: ops}}", f"Labels.{NAMESPACE_LABEL}", "app"),
    ("deploy: {}", f"Labels.{IMAGE_LABEL}", "img:1"),
    (
        "logging: {driver: json-file, options: {max-size: 1m}}",
        "TaskTemplate.LogDriver",
        {"Name": "json-file", "Options": {"max-size": "1m"}},
    ),
]


@pytest.mark.parametrize(("body", "path", "expected"), CASES, ids=[c[0][:50] for c in CASES])
def test_service_mapping(tmp_path: Path, body: str, path: str, expected: Any) -> None:
    assert _dig(_web(tmp_path, body), path) == expected


def test_unset_command_and_entrypoint_keep_the_image_defaults(tmp_path: Path) -> None:
    container = _web(tmp_path, "environment: {}")["TaskTemplate"]["ContainerSpec"]
    assert "Args" not in container
    assert "Command" not in container


def test_names_networks_and_aliases_follow_docker_stack(tmp_path: Path) -> None:
    stack = _stack(
        tmp_path,
        """
services:
  web:
    image: img:1
    networks: {front: {aliases: [www]}}
  db:
    image: img:1
networks:
  front: {attachable: true, labels: {team: a}}
""",
    )
    web = stack.services["web"].spec
    assert web["Name"] == "app_web"
    assert web["TaskTemplate"]["Networks"] == [{"Target": "app_front", "Aliases": ["web", "www"]}]
    assert stack.services["db"].spec["TaskTemplate"]["Networks"] == [
        {"Target": "app_default", "Aliases": ["db"]}
    ]
    by_key = {n.key: n.create for n in stack.networks}
    assert by_key["front"] == {
        "Name": "app_front",
        "Driver": "overlay",
        "Options": {},
        "Attachable": True,
        "Internal": False,
        "EnableIPv6": False,
        "Labels": {"team": "a", NAMESPACE_LABEL: "app"},
    }
    assert by_key["default"]["Driver"] == "overlay"


def test_secrets_and_configs_with_uid_gid_mode(tmp_path: Path) -> None:
    stack = _stack(
        tmp_path,
        """
services:
  web:
    image: img:1
    secrets: [token, {source: token, target: api.key, uid: '100', gid: '101', mode: 0o400}]
    configs: [{source: conf, target: /etc/app.conf, mode: 0o440}, conf]
secrets:
  token: {file: ./token.txt}
configs:
  conf: {content: "a=1"}
""",
    )
    container = stack.services["web"].spec["TaskTemplate"]["ContainerSpec"]
    assert container["Secrets"] == [
        {
            "File": {"Name": "token", "UID": "0", "GID": "0", "Mode": 0o444},
            "SecretID": "",
            "SecretName": "app_token",
        },
        {
            "File": {"Name": "api.key", "UID": "100", "GID": "101", "Mode": 0o400},
            "SecretID": "",
            "SecretName": "app_token",
        },
    ]
    assert container["Configs"] == [
        {
            "File": {"Name": "/etc/app.conf", "UID": "0", "GID": "0", "Mode": 0o440},
            "ConfigID": "",
            "ConfigName": "app_conf",
        },
        {
            "File": {"Name": "/conf", "UID": "0", "GID": "0", "Mode": 0o444},
            "ConfigID": "",
            "ConfigName": "app_conf",
        },
    ]
    assert [(s.name, s.file, s.labels) for s in stack.secrets] == [
        ("app_token", str(tmp_path / "token.txt"), {NAMESPACE_LABEL: "app"})
    ]
    assert [(c.name, c.content) for c in stack.configs] == [("app_conf", "a=1")]


def test_named_volume_mount_carries_the_stack_label(tmp_path: Path) -> None:
    stack = _stack(
        tmp_path,
        """
services:
  web: {image: "img:1", volumes: ["data:/var/data"]}
volumes:
  data: {driver: local, driver_opts: {type: tmpfs}}
""",
    )
    assert stack.services["web"].spec["TaskTemplate"]["ContainerSpec"]["Mounts"] == [
        {
            "Type": "volume",
            "Source": "app_data",
            "Target": "/var/data",
            "VolumeOptions": {
                "Labels": {NAMESPACE_LABEL: "app"},
                "DriverConfig": {"Name": "local", "Options": {"type": "tmpfs"}},
            },
        }
    ]


def test_build_without_image_is_refused_with_a_push_hint(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        _stack(tmp_path, "services:\n  web:\n    build: .\n")
    (problem,) = caught.value.problems
    assert problem.path == "services.web.build"
    assert "cannot build" in problem.message
    assert "push" in problem.hint


def test_build_with_image_warns_that_the_image_must_be_pushed(tmp_path: Path) -> None:
    stack = _stack(tmp_path, "services:\n  web:\n    image: reg/web:1\n    build: .\n")
    assert [(w.path, w.hint) for w in stack.warnings] == [
        ("services.web.build", "push reg/web:1 first")
    ]


def test_ingress_port_with_dnsrr_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        _web(tmp_path, "ports: ['80:80']\ndeploy: {endpoint_mode: dnsrr}")
    assert [p.path for p in caught.value.problems] == ["services.web.ports[0]"]


def test_every_ignored_key_is_named_in_a_warning(tmp_path: Path) -> None:
    stack = _stack(
        tmp_path,
        """
services:
  web:
    image: img:1
    container_name: w
    privileged: true
    network_mode: host
    devices: [/dev/null]
    cpu_shares: 10
    shm_size: 64m
    pull_policy: always
    ports: [{target: 80, published: 80, host_ip: 127.0.0.1}]
    deploy: {mode: replicated-job, update_config: {parallelism: 3}}
""",
    )
    paths = sorted(w.path for w in stack.warnings)
    assert paths == sorted(
        f"services.web.{key}"
        for key in (
            "container_name",
            "privileged",
            "network_mode",
            "devices",
            "cpu_shares",
            "shm_size",
            "pull_policy",
            "ports[0].host_ip",
            "deploy.update_config",
        )
    )
    assert all(w.message.startswith("ignored by swarm") for w in stack.warnings)
    assert "UpdateConfig" not in stack.services["web"].spec  # jobs are not rolled


def test_spec_hash_changes_with_the_spec_only(tmp_path: Path) -> None:
    one = _web(tmp_path, "command: [a]")
    same = _web(tmp_path, "command: [a]")
    other = _web(tmp_path, "command: [b]")
    assert one["Labels"][SPEC_HASH_LABEL] == same["Labels"][SPEC_HASH_LABEL]
    assert one["Labels"][SPEC_HASH_LABEL] != other["Labels"][SPEC_HASH_LABEL]


def test_definition_records_dependencies_and_health(tmp_path: Path) -> None:
    stack = _stack(
        tmp_path,
        """
services:
  web: {image: "img:1", depends_on: {db: {condition: service_healthy}}}
  db: {image: "img:1", healthcheck: {test: [CMD, "true"]}}
""",
    )
    assert stack.services["web"].depends_on == ("db",)
    assert (stack.services["db"].has_healthcheck, stack.services["web"].has_healthcheck) == (
        True,
        False,
    )


def test_engine_timestamps_keep_nanosecond_fractions() -> None:
    from orchestrator.targets.swarm.engine import parse_time

    assert parse_time("1970-01-01T00:00:10.250000000Z") == pytest.approx(10.25)
    assert parse_time("0001-01-01T00:00:00Z") == 0.0
    assert parse_time(None) == 0.0
