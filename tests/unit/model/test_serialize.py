"""serialize: the model back to long-syntax data, a fixed point of the loader stages."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.loader.bind import bind
from orchestrator.loader.canonical import canonicalize
from orchestrator.loader.document import Document
from orchestrator.loader.normalize import normalize
from orchestrator.model import (
    Build,
    ConfigObject,
    DependsOn,
    Deploy,
    Healthcheck,
    Logging,
    Network,
    Placement,
    PortConfig,
    Project,
    ResourceLimits,
    ResourceReservations,
    Resources,
    RestartPolicy,
    SecretObject,
    Service,
    ServiceFile,
    ServiceNetwork,
    ServiceVolume,
    Ulimit,
    UpdateConfig,
    Volume,
)
from orchestrator.model.serialize import project_to_dict, service_to_dict


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        (Service(name="web", image="nginx"), {"image": "nginx"}),
        (Service(name="web", image="x", command=()), {"image": "x", "command": []}),
        (Service(name="web", image="x", restart="on-failure", restart_max_retries=3),
         {"image": "x", "restart": "on-failure:3"}),
        (Service(name="web", image="x", restart="always"), {"image": "x", "restart": "always"}),
        (Service(name="web", image="x", stop_grace_period=90.0, shm_size=1024),
         {"image": "x", "stop_grace_period": "1m30s", "shm_size": 1024}),
        (Service(name="web", image="x", healthcheck=Healthcheck(test=("NONE",), timeout=0.5)),
         {"image": "x", "healthcheck": {"test": ["NONE"], "timeout": "500ms"}}),
        (Service(name="web", image="x", deploy=Deploy()), {"image": "x", "deploy": {}}),
        (Service(name="web", image="x", deploy=Deploy(
            update_config=UpdateConfig(delay=10.0), restart_policy=RestartPolicy(window=120.0))),
         {"image": "x", "deploy": {"update_config": {"delay": "10s"},
                                   "restart_policy": {"window": "2m"}}}),
        (Service(name="web", image="x", ports=(PortConfig(target=80, published="8080"),)),
         {"image": "x", "ports": [{"target": 80, "published": "8080"}]}),
        (Service(name="web", image="x", volumes=(ServiceVolume(
            type="bind", source="/a", target="/b", bind_propagation="rshared",
            bind_create_host_path=True, volume_nocopy=True, tmpfs_size=10),)),
         {"image": "x", "volumes": [{"type": "bind", "target": "/b", "source": "/a",
                                     "bind": {"propagation": "rshared", "create_host_path": True},
                                     "volume": {"nocopy": True}, "tmpfs": {"size": 10}}]}),
        (Service(name="web", image="x", networks={"front": ServiceNetwork()},
                 depends_on={"db": DependsOn()}),
         {"image": "x", "networks": {"front": {}},
          "depends_on": {"db": {"condition": "service_started"}}}),
        (Service(name="web", image="x", extras={"x-foo": 1, "cgroup_parent": "c"}),
         {"image": "x", "x-foo": 1, "cgroup_parent": "c"}),
        (Service(name="web", build=Build(context="/ctx", extras={"ssh": ["default"]})),
         {"build": {"context": "/ctx", "ssh": ["default"]}}),
    ],
)
def test_service_to_dict(service: Service, expected: dict[str, Any]) -> None:
    assert service_to_dict(service) == expected


def test_project_to_dict_order_and_content() -> None:
    project = Project(
        name="demo", working_dir="/p",
        services={"web": Service(name="web", image="x")},
        disabled_services={"debug": Service(name="debug", image="y")},
        networks={"n": Network(key="n", name="demo_n", ipam_driver="default",
                               ipam_config=({"subnet": "10.0.0.0/8"},),
                               extras={"ipam": {"options": {"a": "b"}}, "x-n": 1})},
        configs={"c": ConfigObject(key="c", name="demo_c", file="/p/c")},
        extensions={"x-top": {"a": 1}},
    )
    out = project_to_dict(project)
    assert list(out) == ["name", "services", "networks", "configs", "x-top"]
    assert out["services"] == {"web": {"image": "x"}}
    assert out["networks"] == {"n": {"name": "demo_n", "x-n": 1, "ipam": {
        "options": {"a": "b"}, "driver": "default", "config": [{"subnet": "10.0.0.0/8"}]}}}
    assert out["configs"] == {"c": {"name": "demo_c", "file": "/p/c"}}


# --- the fixed point ---------------------------------------------------------------------

idents = st.from_regex(r"[a-z][a-z0-9_-]{0,7}", fullmatch=True)
words = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12)
abs_paths = st.lists(idents, min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts))
durations = st.integers(0, 10**7).map(lambda ms: ms / 1000)  # up to ~2.8h, ms resolution
sizes = st.integers(0, 2**40)
small = st.integers(0, 1000)
ports = st.integers(1, 65535)
strings = st.dictionaries(idents, words, max_size=3)
extensions = st.dictionaries(idents.map(lambda k: f"x-{k}"),
                             st.one_of(words, small, st.lists(words, max_size=2)), max_size=2)


def opt(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def tup(strategy: st.SearchStrategy[Any], size: int = 3) -> st.SearchStrategy[Any]:
    return st.lists(strategy, max_size=size).map(tuple)


port_configs = st.builds(
    PortConfig,
    target=ports,
    published=opt(ports.map(str) | st.tuples(ports, ports).map(
        lambda t: f"{min(t)}-{max(t)}")),
    host_ip=opt(st.sampled_from(["127.0.0.1", "::1", "0.0.0.0"])),
    protocol=st.sampled_from(["tcp", "udp", "sctp"]),
    mode=st.sampled_from(["ingress", "host"]),
    name=opt(idents),
    app_protocol=opt(st.sampled_from(["http", "grpc"])),
)
service_volumes = st.one_of(
    st.builds(ServiceVolume, type=st.just("bind"), target=abs_paths, source=abs_paths,
              read_only=st.booleans(), consistency=opt(st.sampled_from(["cached"])),
              bind_propagation=opt(st.sampled_from(["rshared", "private"])),
              bind_create_host_path=st.booleans(), bind_selinux=opt(st.sampled_from("zZ"))),
    st.builds(ServiceVolume, type=st.just("volume"), target=abs_paths, source=opt(idents),
              read_only=st.booleans(), volume_nocopy=st.booleans(), volume_subpath=opt(idents)),
    st.builds(ServiceVolume, type=st.just("tmpfs"), target=abs_paths,
              tmpfs_size=opt(sizes), tmpfs_mode=opt(st.integers(0, 0o7777))),
)
healthchecks = st.one_of(
    st.builds(Healthcheck, test=st.sampled_from([(), ("CMD", "true"), ("CMD-SHELL", "x || y")]),
              interval=opt(durations), timeout=opt(durations), retries=opt(small),
              start_period=opt(durations), start_interval=opt(durations)),
    st.just(Healthcheck(test=("NONE",), disable=True)),
)
update_configs = st.builds(
    UpdateConfig, parallelism=small, delay=durations,
    failure_action=st.sampled_from(["pause", "continue", "rollback"]), monitor=durations,
    max_failure_ratio=st.floats(0, 1), order=st.sampled_from(["stop-first", "start-first"]))
deploys = st.builds(
    Deploy,
    mode=st.sampled_from(["replicated", "global", "replicated-job", "global-job"]),
    replicas=opt(small),
    endpoint_mode=opt(st.sampled_from(["vip", "dnsrr"])),
    labels=strings,
    update_config=update_configs,
    rollback_config=update_configs,
    restart_policy=opt(st.builds(
        RestartPolicy, condition=st.sampled_from(["none", "on-failure", "any"]),
        delay=durations, max_attempts=opt(small), window=durations)),
    resources=st.builds(
        Resources,
        limits=st.builds(ResourceLimits, cpus=opt(st.floats(0, 64)), memory=opt(sizes),
                         pids=opt(small)),
        reservations=st.builds(
            ResourceReservations, cpus=opt(st.floats(0, 64)), memory=opt(sizes),
            devices=tup(st.just({"capabilities": ["gpu"], "count": 1}), 1),
            generic_resources=tup(st.just({"discrete_resource_spec": {"kind": "ssd", "value": 1}}),
                                  1)),
    ),
    placement=st.builds(Placement, constraints=tup(idents.map(lambda s: f"node.labels.{s}==1")),
                        preferences=tup(idents.map(lambda s: {"spread": s}), 1),
                        max_replicas_per_node=opt(small)),
)
service_files = st.builds(ServiceFile, source=idents, target=opt(abs_paths),
                          uid=opt(st.integers(0, 999).map(str)),
                          gid=opt(st.integers(0, 999).map(str)), mode=opt(st.integers(0, 0o777)))
builds = st.builds(
    Build,
    context=abs_paths | st.just("https://github.com/docker/app.git#main"),
    dockerfile=opt(idents), dockerfile_inline=opt(st.just("FROM alpine\n")),
    args=st.dictionaries(idents, opt(words), max_size=3), target=opt(idents),
    tags=tup(idents), labels=strings,
    extras=st.just({}) | st.just({"ssh": ["default"], "network": "host"}),
)


@st.composite
def services(draw: st.DrawFn, name: str, networks: list[str], profiles: list[str]) -> Service:
    restart = draw(opt(st.sampled_from(["no", "always", "on-failure", "unless-stopped"])))
    use_networks: bool = draw(st.booleans())
    if networks and use_networks:
        attached = draw(st.dictionaries(st.sampled_from(networks), st.builds(
            ServiceNetwork, aliases=tup(idents), ipv4_address=opt(st.just("10.0.0.2")),
            ipv6_address=opt(st.just("fe80::2")), link_local_ips=tup(st.just("169.254.0.2"), 1),
            mac_address=opt(st.just("02:42:ac:11:00:02")), priority=small,
            driver_opts=strings), min_size=1))
        network_mode = draw(opt(st.just("bridge")))
    else:
        attached, network_mode = {}, draw(st.sampled_from(["host", "none", "service:db"]))
    return Service(
        name=name,
        image=draw(idents),
        build=draw(opt(builds)),
        command=draw(opt(tup(words))),
        entrypoint=draw(opt(tup(words))),
        environment=draw(st.dictionaries(idents.map(str.upper), opt(words), max_size=3)),
        ports=draw(tup(port_configs)),
        expose=draw(tup(ports.map(str))),
        volumes=draw(tup(service_volumes)),
        volumes_from=draw(tup(idents, 1)),
        networks=attached,
        network_mode=network_mode,
        depends_on=draw(st.dictionaries(idents, st.builds(
            DependsOn, condition=st.sampled_from(
                ["service_started", "service_healthy", "service_completed_successfully"]),
            required=st.booleans(), restart=st.booleans()), max_size=2)),
        links=draw(tup(idents, 1)),
        hostname=draw(opt(idents)),
        user=draw(opt(st.just("1000:1000"))),
        working_dir=draw(opt(abs_paths)),
        labels=draw(strings),
        annotations=draw(strings),
        logging=draw(opt(st.builds(Logging, driver=opt(idents), options=strings))),
        init=draw(opt(st.booleans())),
        stop_signal=draw(opt(st.just("SIGUSR1"))),
        stop_grace_period=draw(opt(durations)),
        cap_add=draw(tup(st.sampled_from(["NET_ADMIN", "SYS_PTRACE"]))),
        privileged=draw(st.booleans()),
        read_only=draw(st.booleans()),
        tmpfs=draw(tup(abs_paths, 2)),
        ulimits=draw(st.dictionaries(idents, st.builds(Ulimit, soft=small, hard=small),
                                     max_size=2)),
        sysctls=draw(strings),
        extra_hosts=draw(tup(st.tuples(idents, st.sampled_from(["1.2.3.4", "::1"])).map(
            ":".join))),
        dns=draw(tup(st.just("8.8.8.8"), 1)),
        dns_search=draw(tup(idents, 1)),
        dns_opt=draw(tup(st.just("ndots:2"), 1)),
        pid=draw(opt(st.just("host"))),
        shm_size=draw(opt(sizes)),
        healthcheck=draw(opt(healthchecks)),
        mem_limit=draw(opt(sizes)),
        mem_reservation=draw(opt(sizes)),
        cpus=draw(opt(st.floats(0, 64))),
        cpu_shares=draw(opt(small)),
        pids_limit=draw(opt(small)),
        restart=restart,
        restart_max_retries=draw(opt(small)) if restart == "on-failure" else None,
        deploy=draw(opt(deploys)),
        scale=draw(opt(small)),
        container_name=draw(opt(idents)),
        profiles=tuple(draw(st.lists(st.sampled_from(profiles), unique=True))) if profiles else (),
        secrets=draw(tup(service_files, 2)),
        configs=draw(tup(service_files, 2)),
        stdin_open=draw(st.booleans()),
        tty=draw(st.booleans()),
        platform=draw(opt(st.just("linux/amd64"))),
        pull_policy=draw(opt(st.sampled_from(["always", "missing"]))),
        devices=draw(tup(st.just("/dev/fuse:/dev/fuse:rwm"), 1)),
        security_opt=draw(tup(st.just("no-new-privileges:true"), 1)),
        group_add=draw(tup(st.just("audio"), 1)),
        extras=draw(extensions | st.just({"cgroup_parent": "m", "uts": "host"})),
    )


def _keyed(key: str, cls: type[Any], **fields: Any) -> st.SearchStrategy[Any]:
    return st.builds(cls, key=st.just(key), name=idents, labels=strings, extras=extensions,
                     external=st.booleans(), **fields)


@st.composite
def projects(draw: st.DrawFn) -> Project:
    name = draw(idents)
    network_keys = draw(st.lists(idents, max_size=3, unique=True))
    profiles = draw(st.lists(idents, max_size=2, unique=True))
    service_names = draw(st.lists(idents, min_size=1, max_size=3, unique=True))
    networks = {key: draw(_keyed(
        key, Network, driver=opt(idents), driver_opts=strings, internal=st.booleans(),
        attachable=st.booleans(), enable_ipv6=st.booleans(), ipam_driver=opt(idents),
        ipam_config=tup(st.just({"subnet": "10.1.0.0/16", "gateway": "10.1.0.1"}), 1),
    )) for key in network_keys}
    volumes = {key: draw(_keyed(key, Volume, driver=opt(idents), driver_opts=strings))
               for key in draw(st.lists(idents, max_size=2, unique=True))}
    secrets = {key: draw(_keyed(key, SecretObject, file=opt(abs_paths),
                                environment=opt(idents), content=opt(words)))
               for key in draw(st.lists(idents, max_size=2, unique=True))}
    configs = {key: draw(_keyed(key, ConfigObject, file=opt(abs_paths)))
               for key in draw(st.lists(idents, max_size=2, unique=True))}
    return Project(
        name=name,
        working_dir="/work/" + name,
        config_files=("/work/compose.yaml",),
        services={s: draw(services(s, network_keys, profiles)) for s in service_names},
        networks=networks,
        volumes=volumes,
        secrets=secrets,
        configs=configs,
        profiles=tuple(profiles),
        extensions=draw(extensions),
    )


def _reload(project: Project) -> Project:
    data = copy.deepcopy(project_to_dict(project))
    doc = canonicalize(Document(file="compose.yaml", data=data))
    doc = normalize(doc, project_name=project.name, working_dir=project.working_dir,
                    environment={})
    return bind(doc, project_name=project.name, working_dir=project.working_dir,
                config_files=project.config_files, active_profiles=project.profiles)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(projects())
def test_project_round_trip_is_a_fixed_point(project: Project) -> None:
    assert _reload(project) == project


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(services("web", ["front"], []))
def test_service_round_trip_is_a_fixed_point(service: Service) -> None:
    networks = {"front": Network(key="front", name="p_front")}
    project = Project(name="p", working_dir="/p", services={"web": service}, networks=networks)
    assert _reload(project).service("web") == service
