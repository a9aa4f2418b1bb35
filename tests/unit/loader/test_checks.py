"""Semantic checks: references, cycles, replicas and ports, container names, warnings."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pytest
import yaml

from orchestrator.errors import Location, Problem
from orchestrator.loader.checks import MAX_CYCLES, check_project, unsupported_key_warnings
from orchestrator.loader.document import Positions
from orchestrator.model import (
    ConfigObject,
    DependsOn,
    Deploy,
    Network,
    Placement,
    PortConfig,
    Project,
    SecretObject,
    Service,
    ServiceFile,
    ServiceNetwork,
    ServiceVolume,
    UpdateConfig,
    Volume,
)

CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpus"


def svc(name: str, *deps: str, **fields: Any) -> Service:
    depends = {d: DependsOn() for d in deps}
    depends.update(fields.pop("depends_on", {}))
    return Service(name=name, image="img", depends_on=depends, **fields)


def project(*services: Service, disabled: tuple[Service, ...] = (), **top: Any) -> Project:
    return Project(
        name="p",
        working_dir="/tmp/p",
        services={s.name: s for s in services},
        disabled_services={s.name: s for s in disabled},
        **top,
    )


def summary(problems: list[Problem]) -> list[tuple[str, str]]:
    return [(p.path, p.message) for p in problems]


NETWORKS = {"front": Network("front", "p_front"), "back": Network("back", "p_back")}
VOLUMES = {"data": Volume("data", "p_data")}
SECRETS = {"token": SecretObject("token", "p_token", file="/tmp/p/token")}
CONFIGS = {"nginx": ConfigObject("nginx", "p_nginx", file="/tmp/p/nginx.conf")}


@pytest.mark.parametrize(
    ("proj", "expected"),
    [
        pytest.param(
            project(
                svc("web", "db", networks={"front": ServiceNetwork(), "default": ServiceNetwork()},
                    volumes=(ServiceVolume("volume", "/d", source="data"),
                             ServiceVolume("volume", "/anon"),
                             ServiceVolume("bind", "/h", source="/srv")),
                    secrets=(ServiceFile("token"),), configs=(ServiceFile("nginx"),)),
                svc("db"),
                networks=NETWORKS, volumes=VOLUMES, secrets=SECRETS, configs=CONFIGS,
            ),
            [],
            id="consistent",
        ),
        pytest.param(
            project(svc("web", "dbb"), svc("db")),
            [("services.web.depends_on.dbb", "service 'web' depends on undefined service 'dbb'")],
            id="depends_on-undefined",
        ),
        pytest.param(
            project(svc("web", depends_on={"ghost": DependsOn(required=False)})),
            [],
            id="depends_on-undefined-but-optional",
        ),
        pytest.param(
            project(svc("web", links=("db:database", "cach")), svc("db"), svc("cache")),
            [("services.web.links[1]", "service 'web' links to undefined service 'cach'")],
            id="links",
        ),
        pytest.param(
            project(svc("a", volumes_from=("b:ro", "container:legacy"))),
            [("services.a.volumes_from[0]",
              "service 'a' mounts volumes from undefined service 'b'")],
            id="volumes_from",
        ),
        pytest.param(
            project(svc("a", network_mode="service:vpn")),
            [("services.a.network_mode",
              "service 'a' shares the network stack of undefined service 'vpn'")],
            id="network_mode",
        ),
        pytest.param(
            project(svc("a", ipc="service:x", pid="service:y")),
            [("services.a.ipc", "service 'a' shares the IPC namespace of undefined service 'x'"),
             ("services.a.pid", "service 'a' shares the PID namespace of undefined service 'y'")],
            id="ipc-pid",
        ),
        pytest.param(
            project(svc("a", "b", links=("b",))),
            [("services.a.depends_on.b", "service 'a' depends on undefined service 'b'")],
            id="one-problem-per-missing-service",
        ),
        pytest.param(
            project(svc("web", networks={"frnt": ServiceNetwork()}), networks=NETWORKS),
            [("services.web.networks.frnt", "service 'web' joins undefined network 'frnt'")],
            id="network",
        ),
        pytest.param(
            project(svc("web", volumes=(ServiceVolume("bind", "/a", source="/x"),
                                        ServiceVolume("volume", "/b", source="dta"))),
                    volumes=VOLUMES),
            [("services.web.volumes[1]", "service 'web' mounts undefined volume 'dta'")],
            id="volume",
        ),
        pytest.param(
            project(svc("web", secrets=(ServiceFile("tokn"),), configs=(ServiceFile("x"),)),
                    secrets=SECRETS),
            [("services.web.secrets[0]", "service 'web' uses undefined secret 'tokn'"),
             ("services.web.configs[0]", "service 'web' uses undefined config 'x'")],
            id="secret-config",
        ),
    ],
)
def test_undefined_references(proj: Project, expected: list[tuple[str, str]]) -> None:
    assert summary(check_project(proj, {})) == expected


@pytest.mark.parametrize(
    ("proj", "hint"),
    [
        (project(svc("web", "dbb"), svc("db")), 'did you mean "db"?'),
        (project(svc("web", "zzz"), svc("db")), "defined services: db, web"),
        (project(svc("w", networks={"frnt": ServiceNetwork()}), networks=NETWORKS),
         'did you mean "front"?'),
        (project(svc("w", networks={"zz": ServiceNetwork()}), networks=NETWORKS),
         "declare it under the top-level `networks:` (declared: back, default, front)"),
        (project(svc("w", volumes=(ServiceVolume("volume", "/x", source="v"),))),
         "declare it under the top-level `volumes:`"),
        (project(svc("w", configs=(ServiceFile("x"),)), configs=CONFIGS),
         "declare it under the top-level `configs:` (declared: nginx)"),
        (project(svc("w", secrets=(ServiceFile("tokn"),)), secrets=SECRETS),
         'did you mean "token"?'),
    ],
)
def test_reference_hints(proj: Project, hint: str) -> None:
    (problem,) = check_project(proj, {})
    assert problem.hint == hint


DEBUG = svc("debug", profiles=("dev", "tools"))


@pytest.mark.parametrize(
    ("web", "expected"),
    [
        (svc("web", "debug"),
         [("services.web.depends_on.debug",
           "service 'web' depends on service 'debug', which is disabled: none of its "
           "profiles (dev, tools) is active",
           "activate it with --profile dev or mark the dependency `required: false`")]),
        (svc("web", depends_on={"debug": DependsOn(required=False)}), []),
        (svc("web", links=("debug",)),
         [("services.web.links[0]",
           "service 'web' links to service 'debug', which is disabled: none of its "
           "profiles (dev, tools) is active",
           "activate it with --profile dev")]),
        (svc("web", network_mode="service:debug"),
         [("services.web.network_mode",
           "service 'web' shares the network stack of service 'debug', which is disabled: "
           "none of its profiles (dev, tools) is active",
           "activate it with --profile dev")]),
    ],
)
def test_dependency_on_a_disabled_service_follows_compose(
    web: Service, expected: list[tuple[str, str, str]]
) -> None:
    problems = check_project(project(web, disabled=(DEBUG,)), {})
    assert [(p.path, p.message, p.hint) for p in problems] == expected


@pytest.mark.parametrize(
    ("services", "expected"),
    [
        ([svc("a", "b"), svc("b")], []),
        ([svc("a", "b"), svc("b", "c"), svc("c", "a")],
         [("services.a.depends_on.b", "dependency cycle: a → b → c → a")]),
        ([svc("a", "a")], [("services.a.depends_on.a", "dependency cycle: a → a")]),
        ([svc("a", "b"), svc("b", "a", "c"), svc("c", "b")],
         [("services.a.depends_on.b", "dependency cycle: a → b → a"),
          ("services.b.depends_on.c", "dependency cycle: b → c → b")]),
        ([svc("x", links=("y",)), svc("y", network_mode="service:x"), svc("z", "x")],
         [("services.x.links[0]", "dependency cycle: x → y → x")]),
        ([svc("p", "q"), svc("q", "p"), svc("r", "s"), svc("s", "r")],
         [("services.p.depends_on.q", "dependency cycle: p → q → p"),
          ("services.r.depends_on.s", "dependency cycle: r → s → r")]),
    ],
)
def test_one_problem_per_dependency_cycle(
    services: list[Service], expected: list[tuple[str, str]]
) -> None:
    assert summary(check_project(project(*services), {})) == expected


def test_cycle_search_is_bounded() -> None:
    # a complete graph on 12 services has astronomically many cycles
    names = [f"s{i:02d}" for i in range(12)]
    services = [svc(n, *(m for m in names if m != n)) for n in names]
    problems = check_project(project(*services), {})
    assert len(problems) == MAX_CYCLES
    assert all(p.message.startswith("dependency cycle: s00 → ") for p in problems)
    assert problems[-1].hint == "further cycles may exist"


@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no corpus at {CORPUS}")
def test_compose_go_cycle_fixture() -> None:
    path = CORPUS / "compose-spec__compose-go__loader__testdata__compose-depends-on-cycle.yaml"
    raw = yaml.safe_load(path.read_text())
    services = [svc(name, *body.get("depends_on", ())) for name, body in raw["services"].items()]
    problems = check_project(project(*services), {})
    assert [p.message for p in problems] == [
        "dependency cycle: service1 → service2 → service3 → service1"
    ]


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        (svc("w", scale=2, deploy=Deploy(replicas=2)), []),
        (svc("w", scale=2, deploy=Deploy(replicas=3)),
         [("services.w.scale", "scale (2) and deploy.replicas (3) disagree")]),
        (svc("w", deploy=Deploy(mode="global", replicas=2)),
         [("services.w.deploy.replicas",
           "deploy.replicas can only be used with mode replicated or replicated-job, "
           "not global")]),
        (svc("w", deploy=Deploy(mode="global-job", replicas=1)),
         [("services.w.deploy.replicas",
           "deploy.replicas can only be used with mode replicated or replicated-job, "
           "not global-job")]),
        (svc("w", deploy=Deploy(mode="replicated-job", replicas=3)), []),
        # compose does not reject update_config on a job; neither do we
        (svc("w", deploy=Deploy(mode="replicated-job", update_config=UpdateConfig(2))), []),
        (svc("w", container_name="one", scale=1), []),
        (svc("w", container_name="one", scale=3),
         [("services.w.container_name",
           "container_name 'one' cannot be used with 3 replicas (scale): "
           "container names must be unique")]),
        (svc("w", container_name="one", deploy=Deploy(replicas=2)),
         [("services.w.container_name",
           "container_name 'one' cannot be used with 2 replicas (deploy.replicas): "
           "container names must be unique")]),
    ],
)
def test_replica_rules(service: Service, expected: list[tuple[str, str]]) -> None:
    assert summary(check_project(project(service), {})) == expected


def port(published: str | None, mode: Literal["ingress", "host"] = "host") -> PortConfig:
    return PortConfig(target=80, published=published, mode=mode)


@pytest.mark.parametrize(
    ("ports", "replicas", "expected"),
    [
        ((port("8080", "ingress"),), 3, []),
        ((port("8080"),), 1, []),
        ((port(None),), 3, []),
        ((port("8000-8002"),), 3, []),
        ((port("8080", "ingress"), port("9090")), 2,
         [("services.w.ports[1]",
           "host port 9090 is published in mode host by 2 replicas; only one container "
           "can bind it")]),
        ((port("8000-8001"),), 3,
         [("services.w.ports[0]", "host port range 8000-8001 has 2 ports for 3 replicas "
           "in mode host")]),
    ],
)
def test_host_mode_ports_with_replicas(
    ports: tuple[PortConfig, ...], replicas: int, expected: list[tuple[str, str]]
) -> None:
    problems = check_project(project(svc("w", ports=ports, scale=replicas)), {})
    assert summary(problems) == expected


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ({"a": "x", "b": "y"}, []),
        ({"a": "x", "b": "x"},
         [("services.b.container_name", "container_name 'x' is also used by service 'a'")]),
        ({"a": "x", "b": "x", "c": "x"},
         [("services.b.container_name", "container_name 'x' is also used by service 'a'"),
          ("services.c.container_name", "container_name 'x' is also used by service 'a'")]),
    ],
)
def test_container_names_are_unique(names: dict[str, str], expected: list[tuple[str, str]]) -> None:
    services = [svc(n, container_name=c) for n, c in names.items()]
    assert summary(check_project(project(*services), {})) == expected


MODE_WITH_NETWORKS = "network_mode 'host' and networks cannot be used together"


@pytest.mark.parametrize(
    ("networks", "expected"),
    [
        ({"front": ServiceNetwork()}, [("services.w.networks", MODE_WITH_NETWORKS)]),
        ({"default": ServiceNetwork()}, [("services.w.networks", MODE_WITH_NETWORKS)]),
        ({}, []),
    ],
)
def test_network_mode_excludes_networks(
    networks: dict[str, ServiceNetwork], expected: list[tuple[str, str]]
) -> None:
    proj = project(svc("w", network_mode="host", networks=networks), networks=NETWORKS)
    assert summary(check_project(proj, {})) == expected


def at(line: int, column: int = 7) -> Location:
    return Location("compose.yaml", line, column)


@pytest.mark.parametrize(
    ("service", "positions", "expected"),
    [
        # long syntax: the entry's key
        (svc("web", "dbb"),
         {("services", "web", "depends_on"): at(4),
          ("services", "web", "depends_on", "dbb"): at(5)},
         at(5)),
        # short syntax list with the same entries as the model: the list item
        (svc("web", "db", "dbb"),
         {("services", "web", "depends_on"): at(4),
          ("services", "web", "depends_on", 0): at(5),
          ("services", "web", "depends_on", 1): at(6)},
         at(6)),
        # the raw list no longer matches the model one for one: the list itself
        (svc("web", "db", "dbb"),
         {("services", "web", "depends_on"): at(4),
          ("services", "web", "depends_on", 0): at(5)},
         at(4)),
        (svc("web", links=("dbb",)),
         {("services", "web"): at(2, 3), ("services", "web", "links", 0): at(8)},
         at(8)),
        (svc("web", network_mode="service:x"),
         {("services", "web", "network_mode"): at(9, 19)},
         at(9, 19)),
        (svc("web", "dbb"), {("services", "web"): at(2, 3)}, at(2, 3)),
        (svc("web", "dbb"), {}, None),
    ],
)
def test_problems_are_located_in_the_yaml(
    service: Service, positions: Positions, expected: Location | None
) -> None:
    problems = check_project(project(service, svc("db")), positions)
    assert [p.location for p in problems] == [expected]


def test_a_missing_service_named_twice_is_one_problem_where_it_was_written() -> None:
    # depends_on came from an override file whose positions were lost; the link kept its
    web = svc("web", "dbb", links=("dbb",))
    positions: Positions = {
        ("services", "web"): at(2, 3),
        ("services", "web", "links", 0): at(4),
    }
    (problem,) = check_project(project(web), positions)
    assert (problem.path, problem.location) == ("services.web.links[0]", at(4))


def test_every_problem_is_reported_at_once() -> None:
    proj = project(
        svc("a", "b", "ghost", container_name="same", scale=2),
        svc("b", "a", container_name="same"),
    )
    paths = [p.path for p in check_project(proj, {})]
    assert paths == [
        "services.a.depends_on.ghost",
        "services.a.container_name",
        "services.b.container_name",
        "services.a.depends_on.b",
    ]


@pytest.mark.parametrize(
    ("service", "unsupported", "expected_paths"),
    [
        (svc("w"), {"healthcheck", "deploy.placement", "privileged", "develop"}, []),
        (svc("w", privileged=True), {"privileged"}, ["services.w.privileged"]),
        (svc("w", deploy=Deploy()), {"deploy.placement", "deploy"}, []),
        (svc("w", deploy=Deploy(replicas=2)), {"deploy"}, ["services.w.deploy"]),
        (svc("w", deploy=Deploy(placement=Placement(constraints=("node.role==manager",)))),
         {"deploy.placement", "deploy.resources"}, ["services.w.deploy.placement"]),
        (svc("w", deploy=Deploy(update_config=UpdateConfig(parallelism=2))),
         {"deploy.update_config.parallelism", "deploy.update_config.order"},
         ["services.w.deploy.update_config.parallelism"]),
        (svc("w", extras={"develop": {"watch": []}}), {"develop", "develop.watch", "gpus"},
         ["services.w.develop", "services.w.develop.watch"]),
        (svc("w", cap_add=("NET_ADMIN",), devices=()), {"cap_add", "devices"},
         ["services.w.cap_add"]),
        (svc("w", init=False), {"init"}, ["services.w.init"]),
    ],
)
def test_unsupported_key_warnings(
    service: Service, unsupported: set[str], expected_paths: list[str]
) -> None:
    positions: Positions = {("services", "w"): at(2, 3)}
    warnings = unsupported_key_warnings(project(service), unsupported, "namespace", positions)
    assert [w.path for w in warnings] == expected_paths
    for warning in warnings:
        key = warning.path.removeprefix("services.w.")
        assert warning.message == (
            f"service 'w' sets `{key}`, which the namespace backend cannot honour; it is ignored"
        )
        assert warning.location == at(2, 3)


def test_unsupported_key_warnings_skip_disabled_services() -> None:
    proj = project(svc("a"), disabled=(svc("b", privileged=True, profiles=("x",)),))
    assert unsupported_key_warnings(proj, {"privileged"}, "namespace", {}) == []


def test_the_implicit_default_network_is_not_warned_about() -> None:
    from orchestrator.loader.checks import unsupported_key_warnings
    from orchestrator.model import Project, Service, ServiceNetwork

    implicit = Service("a", image="x", networks={"default": ServiceNetwork()})
    chosen = Service("b", image="x", networks={"back": ServiceNetwork(aliases=("db",))})
    project = Project("p", "/tmp", services={"a": implicit, "b": chosen})
    warnings = unsupported_key_warnings(project, {"networks"}, "namespace", {})
    assert [w.path for w in warnings] == ["services.b.networks"]
