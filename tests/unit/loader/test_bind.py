"""bind: canonical plain data to the frozen model; and the corpus through all three stages."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.errors import ConfigError, Location
from orchestrator.loader.bind import bind
from orchestrator.loader.canonical import canonicalize
from orchestrator.loader.document import Document
from orchestrator.loader.normalize import normalize
from orchestrator.model import (
    Build,
    DependsOn,
    Deploy,
    Healthcheck,
    Logging,
    Network,
    PortConfig,
    Project,
    ResourceLimits,
    Resources,
    RestartPolicy,
    SecretObject,
    ServiceFile,
    ServiceNetwork,
    ServiceVolume,
    Ulimit,
    UpdateConfig,
    Volume,
)

RICH = """
name: ignored-the-caller-decides
x-common: {a: 1}
services:
  web:
    image: nginx:1.25
    build:
      context: ./app
      args: [VERSION=1]
      cache_from: [web:cache]
    command: nginx -g 'daemon off;'
    environment: [A=1, B]
    ports: ["127.0.0.1:8080:80", {target: 443, published: "8443", mode: host}]
    volumes:
      - ./html:/usr/share/nginx/html:ro,z
      - data:/var/lib/data:nocopy
      - {type: tmpfs, target: /run, tmpfs: {size: 1m, mode: 1777}}
    networks: {front: {aliases: [www], priority: "5"}}
    depends_on: {db: {condition: service_healthy}}
    healthcheck: {test: curl -f localhost, interval: 1m30s, timeout: 500ms, retries: "3"}
    restart: on-failure:3
    stop_grace_period: 20s
    shm_size: 64m
    mem_limit: 1g
    cpus: "0.5"
    ulimits: {nofile: 1024}
    logging: {driver: json-file, options: {max-size: 10m}}
    secrets: [token, {source: cert, mode: "0440", uid: 103}]
    devices: [{source: /dev/fuse, permissions: rwm}]
    privileged: "true"
    cgroup_parent: m-executor
    x-custom: [1, two]
    deploy:
      replicas: 2
      update_config: {parallelism: 2, delay: 10s, order: start-first}
      restart_policy: {condition: on-failure, max_attempts: 5}
      resources: {limits: {cpus: "1.5", memory: 512M}}
  db:
    image: postgres
    profiles: [backend]
  debug:
    image: busybox
    profiles: [debug]
networks:
  front:
    ipam: {driver: default, config: [{subnet: 10.5.0.0/16}], options: {foo: bar}}
volumes:
  data: {external: {name: legacy-data}}
secrets:
  token: {file: ./token.txt}
  cert: {environment: CERT}
"""


def _load(text: str, profiles: tuple[str, ...] = (), working_dir: str = "/proj") -> Project:
    doc = Document(file="compose.yaml", data=yaml.safe_load(text))
    doc = normalize(canonicalize(doc), project_name="demo", working_dir=working_dir,
                    environment={"HOME": "/home/me"})
    return bind(doc, project_name="demo", working_dir=working_dir,
                config_files=["/proj/compose.yaml"], active_profiles=profiles)


def test_bind_rich_file() -> None:
    project = _load(RICH, profiles=("backend",))
    assert (project.name, project.working_dir, project.config_files, project.profiles) == (
        "demo", "/proj", ("/proj/compose.yaml",), ("backend",))
    assert project.extensions == {"x-common": {"a": 1}}
    web = project.service("web")
    assert web.build == Build(context="/proj/app", args={"VERSION": "1"},
                              extras={"cache_from": ["web:cache"]})
    assert web.command == ("nginx", "-g", "daemon off;")
    assert web.environment == {"A": "1", "B": None}
    assert web.ports == (
        PortConfig(target=80, published="8080", host_ip="127.0.0.1"),
        PortConfig(target=443, published="8443", mode="host"),
    )
    assert web.volumes == (
        ServiceVolume(type="bind", source="/proj/html", target="/usr/share/nginx/html",
                      read_only=True, bind_selinux="z", bind_create_host_path=True),
        ServiceVolume(type="volume", source="data", target="/var/lib/data", volume_nocopy=True),
        ServiceVolume(type="tmpfs", target="/run", tmpfs_size=1024**2, tmpfs_mode=1777),
    )
    assert web.networks == {"front": ServiceNetwork(aliases=("www",), priority=5)}
    assert web.depends_on == {"db": DependsOn(condition="service_healthy")}
    assert web.healthcheck == Healthcheck(test=("CMD-SHELL", "curl -f localhost"),
                                          interval=90.0, timeout=0.5, retries=3)
    assert (web.restart, web.restart_max_retries) == ("on-failure", 3)
    assert (web.stop_grace_period, web.shm_size, web.mem_limit, web.cpus) == (
        20.0, 64 * 1024**2, 1024**3, 0.5)
    assert web.ulimits == {"nofile": Ulimit(1024, 1024)}
    assert web.logging == Logging("json-file", {"max-size": "10m"})
    assert web.secrets == (ServiceFile("token"),
                           ServiceFile("cert", uid="103", mode=0o440))
    assert web.devices == ("/dev/fuse:/dev/fuse:rwm",)
    assert web.privileged is True
    assert web.extras == {"cgroup_parent": "m-executor", "x-custom": [1, "two"]}
    assert web.deploy == Deploy(
        replicas=2,
        update_config=UpdateConfig(parallelism=2, delay=10.0, order="start-first"),
        restart_policy=RestartPolicy(condition="on-failure", max_attempts=5),
        resources=Resources(limits=ResourceLimits(cpus=1.5, memory=512 * 1024**2)),
    )
    assert web.replicas == 2
    assert project.networks["front"] == Network(
        key="front", name="demo_front", ipam_driver="default",
        ipam_config=({"subnet": "10.5.0.0/16"},), extras={"ipam": {"options": {"foo": "bar"}}})
    assert project.networks["default"] == Network(key="default", name="demo_default")
    assert project.volumes == {"data": Volume(key="data", name="legacy-data", external=True)}
    assert project.secrets == {
        "token": SecretObject(key="token", name="demo_token", file="/proj/token.txt"),
        "cert": SecretObject(key="cert", name="demo_cert", environment="CERT"),
    }


@pytest.mark.parametrize(
    ("active", "enabled", "disabled"),
    [
        ((), ["web"], ["db", "debug"]),
        (("backend",), ["web", "db"], ["debug"]),
        (("backend", "debug"), ["web", "db", "debug"], []),
        (("*",), ["web", "db", "debug"], []),
        (("other",), ["web"], ["db", "debug"]),
    ],
)
def test_profiles(active: tuple[str, ...], enabled: list[str], disabled: list[str]) -> None:
    project = _load(RICH, profiles=active)
    assert sorted(project.services) == sorted(enabled)
    assert sorted(project.disabled_services) == sorted(disabled)


@pytest.mark.parametrize(
    ("service", "path", "message"),
    [
        ({"privileged": "maybe"}, "services.web.privileged", "expected true or false"),
        ({"cpus": "lots"}, "services.web.cpus", "expected a number"),
        ({"scale": 1.5}, "services.web.scale", "expected a whole number"),
        ({"healthcheck": {"interval": "soon"}}, "services.web.healthcheck.interval",
         "expected a duration"),
        ({"mem_limit": "big"}, "services.web.mem_limit", "expected a size"),
        ({"deploy": {"mode": "sometimes"}}, "services.web.deploy.mode", "expected one of"),
        ({"ports": [{"target": 80, "mode": "everywhere"}]}, "services.web.ports[0].mode",
         "expected one of ingress, host"),
        ({"secrets": [{"source": "s", "mode": "rwx"}]}, "services.web.secrets[0].mode",
         "expected an octal file mode"),
        ({"volumes": [{"type": "bind", "source": "/a"}]}, "services.web.volumes[0]",
         "`target` is required"),
        ({"cap_add": "ALL"}, "services.web.cap_add", "expected a list"),
    ],
)
def test_bind_errors_are_located(service: dict[str, Any], path: str, message: str) -> None:
    where = Location("compose.yaml", 2, 3)
    doc = canonicalize(Document(
        file="compose.yaml",
        data={"services": {"web": {"image": "x", **service}}},
        positions={("services", "web"): where},
    ))
    with pytest.raises(ConfigError) as caught:
        bind(doc, project_name="p", working_dir="/p", config_files=[], active_profiles=[])
    [problem] = caught.value.problems
    assert problem.path == path
    assert message in problem.message
    assert problem.location == where


def test_all_bind_problems_are_collected() -> None:
    doc = Document(file="compose.yaml", data={"services": {
        "a": {"image": "x", "tty": "perhaps", "pids_limit": "few"},
        "b": {"image": "y", "restart": "on-failure:x"},
    }})
    with pytest.raises(ConfigError) as caught:
        bind(doc, project_name="p", working_dir="/p", config_files=[], active_profiles=[])
    assert sorted(p.path for p in caught.value.problems) == [
        "services.a.pids_limit", "services.a.tty", "services.b.restart"]


# --- the conformance corpus --------------------------------------------------------------

CORPUS = Path(__file__).resolve().parents[3].parent / "shared" / "corpus"
NEGATIVE = ("wrong-composefile", "depends-on-cycle")
# values for the variables the corpus files use without a default (ports must be numbers)
VARIABLES = {"HTTP_PORT": "8000", "HTTPS_PORT": "8443", "CONFIG": "./config"}
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


class _Loader(yaml.SafeLoader):
    """safe_load plus compose's `!reset` / `!override` tags (reset drops the value)."""


_Loader.add_constructor("!reset", lambda loader, node: None)


def _override(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_Loader.add_constructor("!override", _override)


def _interpolate(value: Any) -> Any:
    """A stand-in for the interpolation stage, good enough for the corpus."""
    if isinstance(value, dict):
        return {k: _interpolate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v) for v in value]
    if isinstance(value, str):
        return _VARIABLE.sub(lambda m: VARIABLES.get(m.group(1), m.group(3) or ""), value)
    return value


def _resolve_extends(services: dict[str, Any]) -> None:
    """Same-file ``extends`` only, shallowly: a stand-in for the extends stage."""
    for name, service in services.items():
        base = (service or {}).pop("extends", None)
        if base is not None:
            parent = services[base if isinstance(base, str) else base["service"]]
            merged = {**parent, **service}
            services[name] = {k: v for k, v in merged.items() if v is not None}


def _corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.glob("*.yaml") if not any(n in p.name for n in NEGATIVE))


@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus not found at {CORPUS}")
@pytest.mark.parametrize("path", _corpus_files(), ids=lambda p: p.stem)
def test_corpus_loads(path: Path, tmp_path: Path) -> None:
    data = _interpolate(yaml.load(path.read_text(), Loader=_Loader))
    data.pop("include", None)
    _resolve_extends(data.get("services") or {})
    for service in (data.get("services") or {}).values():
        env_files = service.get("env_file") or []
        for entry in env_files if isinstance(env_files, list) else [env_files]:
            file = tmp_path / (entry["path"] if isinstance(entry, dict) else entry)
            file.parent.mkdir(parents=True, exist_ok=True)
            file.touch()
    doc = normalize(canonicalize(Document(file=str(path), data=data)), project_name="corpus",
                    working_dir=str(tmp_path), environment={"HOME": "/home/me"})
    project = bind(doc, project_name="corpus", working_dir=str(tmp_path),
                   config_files=[str(path)], active_profiles=["*"])
    assert set(project.services) == set(data.get("services") or {})
    for service in project.services.values():
        assert service.image or service.build
        assert service.network_mode or service.networks
        for volume in service.volumes:
            assert volume.type != "bind" or (volume.source or "").startswith("/")
    for network in project.networks.values():
        assert network.name
