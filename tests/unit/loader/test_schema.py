"""The schema stage: what passes, and how each kind of mistake is reported.

Documents are built here from YAML with a small local reader (PyYAML with YAML 1.2-style
booleans, ``!reset``/``!override`` resolved, positions taken from the node tree) so these
tests depend on nothing but the schema stage itself.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from orchestrator.errors import Location, Problem
from orchestrator.loader.document import Document, PathKey, Positions
from orchestrator.loader.schema import SCHEMA_PATH, service_keys, validate
from orchestrator.loader.suggest import closest, did_you_mean

REPO_ROOT = Path(__file__).resolve().parents[3]
CORPUS = REPO_ROOT.parent / "shared" / "corpus"
WRONG_KEY_FILE = "docker__compose__pkg__e2e__fixtures__wrong-composefile__compose.yaml"
FILE = "compose.yaml"


# -- a minimal YAML reader for these tests ----------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false, so `restart: no` stays "no"."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)

_RESET = object()


def _construct_untagged(loader: yaml.SafeLoader, node: Node) -> Any:
    if isinstance(node, MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_Loader.add_constructor("!reset", lambda loader, node: _RESET)
_Loader.add_constructor("!override", _construct_untagged)


def _drop_resets(value: Any) -> Any:
    """What the merge stage leaves of ``!reset`` in a single file: the key is gone."""
    if isinstance(value, dict):
        return {k: _drop_resets(v) for k, v in value.items() if v is not _RESET}
    if isinstance(value, list):
        return [_drop_resets(v) for v in value if v is not _RESET]
    return value


def _positions(node: Node | None, path: PathKey, out: Positions) -> Positions:
    if isinstance(node, MappingNode):
        for key, value in node.value:
            child = (*path, key.value)
            out[child] = Location(FILE, key.start_mark.line + 1, key.start_mark.column + 1)
            _positions(value, child, out)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            out[child] = Location(FILE, item.start_mark.line + 1, item.start_mark.column + 1)
            _positions(item, child, out)
    elif isinstance(node, ScalarNode) and not path:
        out[()] = Location(FILE, 1, 1)
    return out


def _doc(text: str) -> Document:
    data = _drop_resets(yaml.load(text, Loader=_Loader))
    assert isinstance(data, dict)
    positions = _positions(yaml.compose(text, Loader=_Loader), (), {})
    return Document(file=FILE, data=data, positions=positions)


def _only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, "\n".join(str(p) for p in problems)
    return problems[0]


# -- valid documents ------------------------------------------------------------------------

MINIMAL = """
services:
  web:
    image: nginx
"""

RICH = """
name: shop
x-common: &common
  restart: unless-stopped
include:
  - ./db.yaml
  - path: [./a.yaml, ./b.yaml]
    env_file: ./a.env
    project_directory: .
services:
  web:
    <<: *common
    image: nginx:1.27
    build:
      context: .
      dockerfile: Dockerfile
      args: {VERSION: "1"}
      target: prod
      cache_from: [nginx:latest]
      secrets: [token]
      x-build-note: kept
    command: ["nginx", "-g", "daemon off;"]
    entrypoint: /docker-entrypoint.sh
    environment:
      DEBUG: "false"
      WORKERS: 4
      EMPTY:
    env_file:
      - .env
      - path: ./override.env
        required: false
        format: raw
    ports:
      - 80
      - "8080:80"
      - "127.0.0.1:8443-8444:443-444/tcp"
      - target: 9000
        published: "9000-9010"
        protocol: udp
        mode: host
        host_ip: 0.0.0.0
        app_protocol: http
        name: metrics
    expose: ["3000", 3001]
    volumes:
      - ./html:/usr/share/nginx/html:ro
      - type: bind
        source: ./conf
        target: /etc/nginx/conf.d
        bind: {propagation: rprivate, create_host_path: true, selinux: z}
      - type: volume
        source: cache
        target: /cache
        volume: {nocopy: true, subpath: nginx}
      - type: tmpfs
        target: /tmp
        tmpfs: {size: 64m, mode: 1777}
    networks:
      front:
        aliases: [www]
        ipv4_address: 172.28.0.10
      back:
    depends_on:
      db:
        condition: service_healthy
        required: false
        restart: true
      cache:
        condition: service_started
    healthcheck:
      test: ["CMD", "curl", "-f", "http://localhost"]
      interval: 30s
      timeout: 10s
      retries: 3
      start_period: 1m
      start_interval: 5s
    deploy:
      mode: replicated
      replicas: 3
      endpoint_mode: vip
      labels: [tier=front]
      update_config:
        parallelism: 1
        delay: 10s
        order: start-first
        failure_action: rollback
        monitor: 30s
        max_failure_ratio: 0.1
      rollback_config: {parallelism: 0, order: stop-first, failure_action: pause}
      restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3, window: 2m}
      resources:
        limits: {cpus: "0.5", memory: 512M, pids: 100}
        reservations:
          cpus: 0.25
          memory: 128m
          devices:
            - capabilities: [gpu]
              driver: nvidia
              count: all
          generic_resources:
            - discrete_resource_spec: {kind: SSD, value: 1}
      placement:
        constraints: [node.role == manager]
        preferences: [{spread: node.labels.zone}]
        max_replicas_per_node: 2
      x-deploy-note: kept
    labels: {com.example.tier: front}
    annotations: [com.example.a=b]
    logging: {driver: json-file, options: {max-size: 10m, max-file: 3}}
    ulimits:
      nproc: 65535
      nofile: {soft: 20000, hard: 40000}
    sysctls: [net.core.somaxconn=1024]
    extra_hosts: {somehost: 162.242.195.82, other: ["10.0.0.1", "::1"]}
    dns: 8.8.8.8
    dns_search: [example.com]
    dns_opt: [use-vc]
    tmpfs: /run
    cap_add: [NET_ADMIN]
    cap_drop: [ALL]
    security_opt: [no-new-privileges:true]
    user: "1000:1000"
    working_dir: /app
    hostname: web
    domainname: example.com
    stop_signal: SIGQUIT
    stop_grace_period: 1m30s
    init: true
    read_only: "true"
    privileged: false
    stdin_open: true
    tty: true
    shm_size: 1gb
    mem_limit: 1g
    mem_reservation: 512m
    memswap_limit: -1
    mem_swappiness: 60
    cpus: "1.5"
    cpu_shares: 512
    cpu_quota: 50000
    cpu_period: 100000
    cpu_rt_runtime: 400ms
    cpu_rt_period: 1400us
    cpuset: "0-1"
    pids_limit: 200
    oom_kill_disable: false
    oom_score_adj: -500
    pid: host
    ipc: shareable
    platform: linux/amd64
    pull_policy: every_12h
    profiles: [web]
    secrets:
      - token
      - source: cert
        target: /run/secrets/cert.pem
        uid: "101"
        gid: "101"
        mode: 0440
    configs: [nginx_conf]
    devices: ["/dev/fuse:/dev/fuse", {source: /dev/ttyUSB0, permissions: rwm}]
    group_add: [audio, 1001]
    gpus: all
    label_file: ./labels
    post_start: [{command: ./warm.sh, user: root}]
    pre_stop: [{command: ["./drain.sh"], environment: {GRACE: "5"}}]
    use_api_socket: false
    develop:
      watch:
        - {path: ./src, action: sync, target: /app/src, ignore: [node_modules/]}
        - {path: package.json, action: rebuild}
    x-web-note: kept
  db:
    image: postgres:16
    restart: "no"
    networks: [back]
    volumes: [data:/var/lib/postgresql/data]
    blkio_config:
      weight: 300
      device_read_bps: [{path: /dev/sda, rate: 12mb}]
    credential_spec: {file: spec.json}
    extends: {service: base, file: common.yaml}
    scale: 1
    container_name: shop-db
  cache:
    image: redis
    network_mode: "service:db"
    extends: base
    depends_on: [db]
networks:
  front:
    driver: bridge
    driver_opts: {com.docker.network.bridge.name: br-front, mtu: 1450}
    ipam:
      driver: default
      config:
        - subnet: 172.28.0.0/16
          ip_range: 172.28.5.0/24
          gateway: 172.28.5.254
          aux_addresses: {host1: 172.28.1.5}
      options: {foo: bar}
    enable_ipv6: true
    attachable: true
    internal: false
    labels: [tier=front]
  back:
  outside:
    external: true
    name: corp-net
volumes:
  data:
  cache:
    driver: local
    driver_opts: {type: tmpfs, device: tmpfs}
    labels: {backup: "yes"}
  legacy:
    external: {name: old-volume}
secrets:
  token: {file: ./token.txt}
  cert: {environment: CERT_PEM}
  corp: {external: true, name: corp-secret}
configs:
  nginx_conf: {content: "server {}", template_driver: golang}
x-trailing: [anything, goes]
"""

LEGACY_V2 = """
version: "2"
services:
  web:
    build: .
    links: ["db:database"]
    volumes_from: [data]
    volume_driver: local
    external_links: [redis_1]
    mem_limit: 1000000000
    cpu_shares: 73
    depends_on: [db]
  data:
    image: busybox
    volumes: [/data]
  db:
    image: postgres
    restart: always
networks:
  outside:
    external:
      name: actual-name-of-network
volumes:
  shared:
    external:
      name: actual-name-of-volume
"""

LEGACY_V3 = """
version: 3.8
services:
  app:
    image: app
    deploy:
      replicas: "${REPLICAS:-2}"
      resources: {limits: {cpus: "${CPUS}", memory: 50M}}
    ports: ["${PORT:-80}:80"]
    cpus: "${CPUS:-0.5}"
    scale: "${SCALE}"
"""


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("{}", id="empty"),
        pytest.param(MINIMAL, id="minimal"),
        pytest.param(RICH, id="rich"),
        pytest.param(LEGACY_V2, id="legacy-v2"),
        pytest.param(LEGACY_V3, id="legacy-v3-uninterpolated"),
        pytest.param("services: {web: {image: a, networks: {default: null}}}", id="network-null"),
        pytest.param("services: {web: {image: a, deploy: null, develop: null}}", id="nulls"),
        pytest.param("services: {web: {image: a, command: null}}", id="command-null"),
        pytest.param("services: {web: {image: a, restart: no}}", id="yaml-1.2-no-is-a-string"),
        pytest.param(
            "services: {web: {image: a, restart: '${RESTART:-on-failure:3}'}}",
            id="restart-not-yet-interpolated",
        ),
        pytest.param("x-anything: {a: [1, 2]}\nservices: {}", id="top-level-extension"),
    ],
)
def test_valid_documents_pass(text: str) -> None:
    assert validate(_doc(text)) == []


# -- one mistake each: path, line, message and hint ---------------------------------------


@pytest.mark.parametrize(
    ("text", "path", "line", "message", "hint"),
    [
        pytest.param(
            "services:\n  web:\n    imgae: nginx\n",
            "services.web",
            3,
            'unknown key "imgae"',
            'did you mean "image"?',
            id="unknown-service-key",
        ),
        pytest.param(
            "service:\n  web: {image: a}\n",
            "",
            1,
            'unknown key "service"',
            'did you mean "services"?',
            id="unknown-top-level-key",
        ),
        pytest.param(
            "services:\n  web:\n    image: a\n    replicas: 2\n",
            "services.web",
            4,
            'unknown key "replicas"',
            'did you mean "deploy.replicas"?',
            id="misplaced-key",
        ),
        pytest.param(
            "services:\n  web:\n    image: a\n    ports:\n      - [8080, 80]\n",
            "services.web.ports[0]",
            5,
            'expected a port like "8080:80" or a mapping, got a list',
            "",
            id="wrong-type-port",
        ),
        pytest.param(
            "services:\n  web:\n    ports:\n      - target: 80\n        publised: 8080\n",
            "services.web.ports[0]",
            5,
            'unknown key "publised"',
            'did you mean "published"?',
            id="unknown-key-in-long-port",
        ),
        pytest.param(
            "services:\n  web:\n    image: [nginx]\n",
            "services.web.image",
            3,
            'expected an image reference such as "nginx:1.27", got a list',
            "",
            id="wrong-type-image",
        ),
        pytest.param(
            "services:\n  web:\n    image:\n",
            "services.web.image",
            3,
            'expected an image reference such as "nginx:1.27", got nothing (null)',
            "",
            id="null-image",
        ),
        pytest.param(
            "services:\n  web:\n    environment: 5\n",
            "services.web.environment",
            3,
            'expected a mapping or a list of "KEY=value" strings, got a number (5)',
            "",
            id="wrong-type-environment",
        ),
        pytest.param(
            "services:\n  web:\n    deploy:\n      update_config:\n        order: fast\n",
            "services.web.deploy.update_config.order",
            5,
            'expected one of "stop-first", "start-first", got "fast"',
            "",
            id="enum",
        ),
        pytest.param(
            "services:\n  web:\n    deploy:\n      update_config:\n        order: start_first\n",
            "services.web.deploy.update_config.order",
            5,
            'expected one of "stop-first", "start-first", got "start_first"',
            'did you mean "start-first"?',
            id="enum-with-suggestion",
        ),
        pytest.param(
            "services:\n  web:\n    depends_on:\n      db:\n        required: true\n",
            "services.web.depends_on.db",
            4,
            'missing required key "condition"',
            "",
            id="required",
        ),
        pytest.param(
            "services:\n  my web:\n    image: a\n",
            "services",
            2,
            "invalid name \"my web\": expected a name made of letters, digits, '.', '_' and '-'",
            "",
            id="bad-service-name",
        ),
        pytest.param(
            "services:\n  web:\n    pull_policy: sometimes\n",
            "services.web.pull_policy",
            3,
            "expected one of always, never, missing, if_not_present, build, refresh, daily, "
            'weekly or every_<duration> (e.g. every_12h), got "sometimes"',
            "",
            id="pattern",
        ),
        pytest.param(
            "services:\n  web:\n    restart: unles-stopped\n",
            "services.web.restart",
            3,
            'expected a restart policy: "no", "always", "on-failure[:N]" or "unless-stopped", '
            'got "unles-stopped"',
            'did you mean "unless-stopped"?',
            id="pattern-with-suggestion",
        ),
        pytest.param(
            "services:\n  web:\n    deploy:\n      replicas: -1\n",
            "services.web.deploy.replicas",
            4,
            "expected a number of at least 0, got -1",
            "",
            id="minimum",
        ),
        pytest.param(
            "services:\n  web:\n    cpu_percent: 150\n",
            "services.web.cpu_percent",
            3,
            "expected a number of at most 100, got 150",
            "",
            id="maximum",
        ),
        pytest.param(
            "services:\n  web:\n    ports: ['80:80', '80:80']\n",
            "services.web.ports",
            3,
            '"80:80" appears more than once in the list',
            "",
            id="unique-items",
        ),
        pytest.param(
            "services: [web]\n",
            "services",
            1,
            "expected a mapping of service names to services, got a list",
            "",
            id="services-not-a-mapping",
        ),
        pytest.param(
            "services:\n  web:\n    gpus: some\n",
            "services.web.gpus",
            3,
            'expected one of "all", got "some"',
            "",
            id="any-of-picks-the-fitting-branch",
        ),
        pytest.param(
            "services:\n  web:\n    ulimits:\n      NOFILE: 1024\n",
            "services.web.ulimits",
            4,
            'invalid name "NOFILE": expected a limit name in lower case such as "nofile"',
            "",
            id="bad-ulimit-name",
        ),
        pytest.param(
            "networks:\n  outside:\n    external:\n      nmae: corp\n",
            "networks.outside.external",
            4,
            'unknown key "nmae"',
            'did you mean "name"?',
            id="unknown-key-in-legacy-external",
        ),
        pytest.param(
            "volumes:\n  data:\n    driver: local\n    drivers_opts: {}\n",
            "volumes.data",
            4,
            'unknown key "drivers_opts"',
            'did you mean "driver_opts"?',
            id="unknown-volume-key",
        ),
        pytest.param(
            "services:\n  web:\n    healthcheck:\n      interval: [10s]\n",
            "services.web.healthcheck.interval",
            4,
            'expected a duration like "10s" or "1m30s", got a list',
            "",
            id="duration-type",
        ),
    ],
)
def test_each_kind_of_error_is_reported_in_plain_words(
    text: str, path: str, line: int, message: str, hint: str
) -> None:
    problem = _only(validate(_doc(text)))
    assert (problem.path, problem.message, problem.hint) == (path, message, hint)
    assert problem.location is not None
    assert (problem.location.file, problem.location.line) == (FILE, line)


def test_every_problem_in_a_file_comes_back_in_file_order() -> None:
    text = (
        "services:\n"  # 1
        "  web:\n"  # 2
        "    imgae: nginx\n"  # 3
        "    ports: [[80]]\n"  # 4
        "  db:\n"  # 5
        "    image: postgres\n"  # 6
        "    deploy: {update_config: {order: fast}}\n"  # 7
        "    depends_on: {web: {}}\n"  # 8
        "networks:\n"  # 9
        "  front: {drivr: bridge}\n"  # 10
        "bogus: 1\n"  # 11
    )
    found = [(p.location.line if p.location else None, p.path) for p in validate(_doc(text))]
    assert found == [
        (3, "services.web"),
        (4, "services.web.ports[0]"),
        (7, "services.db.deploy.update_config.order"),
        (8, "services.db.depends_on.web"),
        (10, "networks.front"),
        (11, ""),
    ]


def test_unknown_keys_beside_each_other_are_each_reported() -> None:
    problems = validate(_doc("services:\n  web:\n    imgae: a\n    portz: []\n"))
    assert [(p.message, p.hint) for p in problems] == [
        ('unknown key "imgae"', 'did you mean "image"?'),
        ('unknown key "portz"', 'did you mean "ports"?'),
    ]


def test_location_falls_back_to_the_file_when_positions_are_unknown() -> None:
    doc = Document(file="merged.yaml", data={"services": {"web": {"imgae": "a"}}})
    assert _only(validate(doc)).location == Location("merged.yaml")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"services": {"web": {"image": "a", "environment": {80: "x"}}}}, id="env"),
        pytest.param({"services": {1: {"image": "a"}}}, id="service-name"),
    ],
)
def test_non_string_keys_do_not_break_validation(data: dict[str, Any]) -> None:
    assert validate(Document(file=FILE, data=data)) == []


# -- the corpus of real files -----------------------------------------------------------------

_CORPUS_FILES = sorted(CORPUS.glob("*.yaml")) if CORPUS.is_dir() else []
_needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no corpus at {CORPUS}")


@pytest.mark.corpus
@_needs_corpus
@pytest.mark.parametrize(
    "path",
    [p for p in _CORPUS_FILES if p.name != WRONG_KEY_FILE],
    ids=lambda p: p.name,
)
def test_corpus_file_passes_the_schema(path: Path) -> None:
    problems = validate(_doc(path.read_text(encoding="utf-8")))
    assert problems == [], "\n".join(str(p) for p in problems)


@pytest.mark.corpus
@_needs_corpus
def test_corpus_wrong_composefile_is_rejected_for_its_unknown_key() -> None:
    problem = _only(validate(_doc((CORPUS / WRONG_KEY_FILE).read_text(encoding="utf-8"))))
    assert (problem.path, problem.message) == ("services.simple", 'unknown key "wrongField"')


# -- speed, service keys, the schema file, suggestions ------------------------------------------


def _big_document(services: int) -> Document:
    def service(i: int) -> dict[str, Any]:
        return {
            "image": f"registry.example.com/app{i}:1.0",
            "command": ["serve", "--port", str(8000 + i)],
            "environment": {"INDEX": str(i), "DEBUG": "false"},
            "ports": [f"{10000 + i}:80", {"target": 81, "published": str(20000 + i)}],
            "volumes": ["./data:/data:ro", {"type": "volume", "source": "v", "target": "/v"}],
            "depends_on": {"db": {"condition": "service_healthy"}},
            "networks": ["front", "back"],
            "healthcheck": {"test": ["CMD", "true"], "interval": "10s", "retries": 3},
            "deploy": {
                "replicas": 2,
                "update_config": {"parallelism": 1, "order": "start-first"},
                "resources": {"limits": {"cpus": "0.5", "memory": "256m"}},
            },
            "labels": [f"index={i}"],
        }

    data = {"services": {f"svc{i}": service(i) for i in range(services)}}
    return Document(file=FILE, data=data)


def test_a_thousand_services_validate_quickly() -> None:
    doc = _big_document(1000)
    validate(_doc(MINIMAL))  # compile the validator outside the measurement
    started = time.perf_counter()
    problems = validate(doc)
    elapsed = time.perf_counter() - started
    assert problems == []
    assert elapsed < 2.0, f"validating 1,000 services took {elapsed:.2f}s"


@pytest.mark.parametrize(
    ("key", "allowed"),
    [
        ("image", True),
        ("deploy", True),
        ("volumes_from", True),
        ("links", True),
        ("x-custom", False),
        ("replicas", False),
        ("imgae", False),
    ],
)
def test_service_keys(key: str, allowed: bool) -> None:
    assert (key in service_keys()) is allowed


def test_every_key_of_the_rich_example_is_a_service_key() -> None:
    services = _doc(RICH).data["services"]
    used = {key for service in services.values() for key in service if not key.startswith("x-")}
    assert used <= service_keys()


def test_schema_is_shipped_inside_the_package() -> None:
    assert SCHEMA_PATH.is_file()
    assert SCHEMA_PATH.parent.parent.name == "orchestrator"


@pytest.mark.parametrize(
    ("word", "candidates", "expected"),
    [
        ("imgae", ["image", "ports"], "image"),
        ("Image", ["image", "ports"], "image"),
        ("portz", ["ports", "pid"], "ports"),
        ("image", ["image"], None),
        ("zzzzzz", ["image", "ports"], None),
        ("image", [], None),
    ],
)
def test_closest(word: str, candidates: list[str], expected: str | None) -> None:
    assert closest(word, candidates) == expected


@pytest.mark.parametrize(
    ("word", "expected"),
    [("servces", 'did you mean "services"?'), ("zzzzzz", "")],
)
def test_did_you_mean(word: str, expected: str) -> None:
    assert did_you_mean(word, ["services", "networks"]) == expected


def test_bundled_schema_is_valid_against_its_metaschema() -> None:
    """The loader no longer checks this at run time (it is slow); this test does."""
    import json

    from jsonschema import Draft202012Validator

    from orchestrator.loader.schema import SCHEMA_PATH

    Draft202012Validator.check_schema(json.loads(SCHEMA_PATH.read_text()))
