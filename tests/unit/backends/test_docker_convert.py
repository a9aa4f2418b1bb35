"""convert.py: ContainerSpec → engine JSON and engine JSON → our types, without a daemon."""

from __future__ import annotations

import struct
from dataclasses import replace
from typing import Any

import pytest

from orchestrator import labels as L
from orchestrator.backends.base import (
    Attachment,
    ContainerSpec,
    LogLine,
    NetworkSpec,
    VolumeSpec,
)
from orchestrator.backends.docker import convert
from orchestrator.errors import Unsupported
from orchestrator.model import (
    Deploy,
    Healthcheck,
    Logging,
    Network,
    PortConfig,
    ResourceLimits,
    ResourceReservations,
    Resources,
    Service,
    ServiceVolume,
    Ulimit,
    Volume,
)

BASE = Service(name="web", image="busybox:1")


def spec(service: Service = BASE, **fields: Any) -> ContainerSpec:
    values: dict[str, Any] = {
        "project": "proj",
        "service": service,
        "name": "proj-web-1",
        "number": 1,
        "labels": {L.PROJECT: "proj", L.SERVICE: "web"},
    }
    values.update(fields)
    return ContainerSpec(**values)


def svc(**fields: Any) -> Service:
    return replace(BASE, **fields)


@pytest.mark.parametrize(
    ("given", "key", "expected"),
    [
        (spec(), "Image", "busybox:1"),
        (spec(svc(command=("echo", "hi"))), "Cmd", ["echo", "hi"]),
        (spec(svc(command=("echo",)), command_override=("ls", "-l")), "Cmd", ["ls", "-l"]),
        (spec(svc(entrypoint=("/bin/sh", "-c"))), "Entrypoint", ["/bin/sh", "-c"]),
        (spec(svc(entrypoint=())), "Entrypoint", [""]),
        (spec(svc(environment={"A": "1", "B": None, "C": ""})), "Env", ["A=1", "C="]),
        (spec(svc(hostname="h", domainname="d.example")), "Hostname", "h"),
        (spec(svc(hostname="h", domainname="d.example")), "Domainname", "d.example"),
        (spec(svc(user="1000:1000")), "User", "1000:1000"),
        (spec(svc(working_dir="/srv")), "WorkingDir", "/srv"),
        (spec(svc(stop_signal="SIGINT")), "StopSignal", "SIGINT"),
        (spec(svc(stop_grace_period=2.6)), "StopTimeout", 3),
        (spec(svc(tty=True)), "Tty", True),
        (spec(svc(stdin_open=True)), "OpenStdin", True),
        (
            spec(svc(labels={"a": "svc", L.SERVICE: "wrong"})),
            "Labels",
            {"a": "svc", L.PROJECT: "proj", L.SERVICE: "web"},
        ),
        (
            spec(svc(ports=(PortConfig(target=80), PortConfig(target=53, protocol="udp")))),
            "ExposedPorts",
            {"80/tcp": {}, "53/udp": {}},
        ),
        (
            spec(svc(expose=("3000-3001", "9/udp"))),
            "ExposedPorts",
            {"3000/tcp": {}, "3001/tcp": {}, "9/udp": {}},
        ),
        (
            spec(attachments=(Attachment("n1", mac_address="02:42:ac:11:00:09"),)),
            "MacAddress",
            "02:42:ac:11:00:09",
        ),
    ],
)
def test_container_config_top_level(given: ContainerSpec, key: str, expected: object) -> None:
    assert convert.container_config(given)[key] == expected


@pytest.mark.parametrize(
    ("given", "absent"),
    [
        (spec(), "Cmd"),  # None: the image's default command
        (spec(), "Entrypoint"),
        (spec(), "Healthcheck"),
        (spec(), "NetworkingConfig"),
        (spec(svc(environment={"B": None})), "Env"),
    ],
)
def test_container_config_leaves_unset_keys_out(given: ContainerSpec, absent: str) -> None:
    assert absent not in convert.container_config(given)


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        (Healthcheck(disable=True), {"Test": ["NONE"]}),
        (Healthcheck(test=("NONE",)), {"Test": ["NONE"]}),
        (
            Healthcheck(
                test=("CMD-SHELL", "true"), interval=1.5, timeout=2, retries=3, start_period=0.25
            ),
            {
                "Test": ["CMD-SHELL", "true"],
                "Interval": 1_500_000_000,
                "Timeout": 2_000_000_000,
                "Retries": 3,
                "StartPeriod": 250_000_000,
            },
        ),
        (Healthcheck(interval=10), {"Interval": 10_000_000_000}),  # keeps the image's test
    ],
)
def test_healthcheck_in_nanoseconds(check: Healthcheck, expected: dict[str, Any]) -> None:
    assert convert.container_config(spec(svc(healthcheck=check)))["Healthcheck"] == expected


@pytest.mark.parametrize(
    ("given", "key", "expected"),
    [
        (spec(), "RestartPolicy", {"Name": "no"}),
        (spec(engine_restart="always"), "RestartPolicy", {"Name": "always"}),
        (
            spec(engine_restart="on-failure", engine_restart_max_retries=4),
            "RestartPolicy",
            {"Name": "on-failure", "MaximumRetryCount": 4},
        ),
        (spec(network_mode="host"), "NetworkMode", "host"),
        (spec(network_mode="container:abc"), "NetworkMode", "container:abc"),
        (spec(attachments=(Attachment("p_a"), Attachment("p_b"))), "NetworkMode", "p_a"),
        (
            spec(svc(logging=Logging("json-file", {"max-size": "1m"}))),
            "LogConfig",
            {"Type": "json-file", "Config": {"max-size": "1m"}},
        ),
        (spec(svc(init=True)), "Init", True),
        (spec(svc(cap_add=("NET_ADMIN",), cap_drop=("ALL",))), "CapAdd", ["NET_ADMIN"]),
        (spec(svc(cap_add=("NET_ADMIN",), cap_drop=("ALL",))), "CapDrop", ["ALL"]),
        (spec(svc(privileged=True)), "Privileged", True),
        (spec(svc(read_only=True)), "ReadonlyRootfs", True),
        (spec(svc(tmpfs=("/run", "/tmp:size=64k"))), "Tmpfs", {"/run": "", "/tmp": "size=64k"}),
        (
            spec(svc(ulimits={"nofile": Ulimit(1024, 2048)})),
            "Ulimits",
            [{"Name": "nofile", "Soft": 1024, "Hard": 2048}],
        ),
        (
            spec(svc(sysctls={"net.core.somaxconn": "1024"})),
            "Sysctls",
            {"net.core.somaxconn": "1024"},
        ),
        (spec(svc(extra_hosts=("db:10.0.0.2",))), "ExtraHosts", ["db:10.0.0.2"]),
        (spec(svc(dns=("1.1.1.1",))), "Dns", ["1.1.1.1"]),
        (spec(svc(dns_search=("example.com",))), "DnsSearch", ["example.com"]),
        (spec(svc(dns_opt=("ndots:2",))), "DnsOptions", ["ndots:2"]),
        (spec(svc(pid="host")), "PidMode", "host"),
        (spec(svc(ipc="shareable")), "IpcMode", "shareable"),
        (spec(svc(shm_size=67108864)), "ShmSize", 67108864),
        (spec(svc(mem_limit=1 << 20)), "Memory", 1 << 20),
        (spec(svc(mem_reservation=1 << 19)), "MemoryReservation", 1 << 19),
        (spec(svc(cpus=1.5)), "NanoCpus", 1_500_000_000),
        (spec(svc(cpu_shares=512)), "CpuShares", 512),
        (spec(svc(pids_limit=50)), "PidsLimit", 50),
        (
            spec(
                svc(
                    mem_limit=1 << 20,
                    deploy=Deploy(
                        resources=Resources(
                            limits=ResourceLimits(cpus=0.5, memory=1 << 21, pids=7),
                            reservations=ResourceReservations(memory=1 << 18),
                        )
                    ),
                )
            ),
            "Memory",
            1 << 21,  # deploy.resources.limits wins over mem_limit
        ),
        (
            spec(svc(deploy=Deploy(resources=Resources(limits=ResourceLimits(cpus=0.5))))),
            "NanoCpus",
            500_000_000,
        ),
        (
            spec(svc(deploy=Deploy(resources=Resources(limits=ResourceLimits(pids=7))))),
            "PidsLimit",
            7,
        ),
        (
            spec(
                svc(
                    deploy=Deploy(
                        resources=Resources(
                            reservations=ResourceReservations(
                                devices=({"capabilities": ["gpu"], "count": "all"},)
                            )
                        )
                    )
                )
            ),
            "DeviceRequests",
            [{"Count": -1, "Capabilities": [["gpu"]]}],
        ),
        (
            spec(svc(devices=("/dev/fuse", "/dev/sda:/dev/xvda:r"))),
            "Devices",
            [
                {
                    "PathOnHost": "/dev/fuse",
                    "PathInContainer": "/dev/fuse",
                    "CgroupPermissions": "rwm",
                },
                {
                    "PathOnHost": "/dev/sda",
                    "PathInContainer": "/dev/xvda",
                    "CgroupPermissions": "r",
                },
            ],
        ),
        (
            spec(svc(security_opt=("no-new-privileges:true",))),
            "SecurityOpt",
            ["no-new-privileges:true"],
        ),
        (spec(svc(group_add=("audio",))), "GroupAdd", ["audio"]),
        (
            spec(svc(volumes_from=("db", "container:side:ro"))),
            "VolumesFrom",
            ["proj-db-1", "side:ro"],
        ),
    ],
)
def test_host_config(given: ContainerSpec, key: str, expected: object) -> None:
    assert convert.container_config(given)["HostConfig"][key] == expected


@pytest.mark.parametrize(
    ("ports", "publish", "expected"),
    [
        ((PortConfig(target=80, published="8080"),), (), {}),  # ingress: not bound here
        (
            (PortConfig(target=80, published="8080", mode="host"),),
            (0,),
            {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
        ),
        (
            (PortConfig(target=80, host_ip="127.0.0.1", mode="host"),),
            (0,),
            {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]},  # random host port
        ),
        (
            (PortConfig(target=53, published="5300-5310", protocol="udp", mode="host"),),
            (0,),
            {"53/udp": [{"HostIp": "", "HostPort": "5300-5310"}]},
        ),
        (
            (
                PortConfig(target=80, published="81", mode="host"),
                PortConfig(target=80, published="82", mode="host"),
            ),
            (0, 1),
            {"80/tcp": [{"HostIp": "", "HostPort": "81"}, {"HostIp": "", "HostPort": "82"}]},
        ),
    ],
)
def test_port_bindings_only_for_published_indexes(
    ports: tuple[PortConfig, ...], publish: tuple[int, ...], expected: dict[str, Any]
) -> None:
    host = convert.container_config(spec(svc(ports=ports), publish_ports=publish))["HostConfig"]
    assert host.get("PortBindings", {}) == expected


@pytest.mark.parametrize(
    ("volume", "binds", "mounts"),
    [
        (
            ServiceVolume(
                type="bind", source="/srv/data", target="/data", bind_create_host_path=True
            ),
            ["/srv/data:/data:rw"],
            [],
        ),
        (
            ServiceVolume(
                type="bind",
                source="/srv",
                target="/s",
                read_only=True,
                bind_propagation="rslave",
                bind_create_host_path=True,
            ),
            ["/srv:/s:ro,rslave"],
            [],
        ),
        (
            ServiceVolume(type="bind", source="/srv", target="/s", bind_create_host_path=False),
            [],
            [{"Type": "bind", "Target": "/s", "ReadOnly": False, "Source": "/srv"}],
        ),
        (
            ServiceVolume(type="volume", source="data", target="/d", volume_nocopy=True),
            [],
            [
                {
                    "Type": "volume",
                    "Target": "/d",
                    "ReadOnly": False,
                    "Source": "proj_data",
                    "VolumeOptions": {"NoCopy": True},
                }
            ],
        ),
        (
            ServiceVolume(type="volume", target="/anon"),
            [],
            [
                {
                    "Type": "volume",
                    "Target": "/anon",
                    "ReadOnly": False,
                    "VolumeOptions": {"Labels": {L.PROJECT: "proj"}},
                }
            ],
        ),
        (
            ServiceVolume(type="tmpfs", target="/t", tmpfs_size=65536, tmpfs_mode=0o1777),
            [],
            [
                {
                    "Type": "tmpfs",
                    "Target": "/t",
                    "ReadOnly": False,
                    "TmpfsOptions": {"SizeBytes": 65536, "Mode": 0o1777},
                }
            ],
        ),
    ],
)
def test_volumes(volume: ServiceVolume, binds: list[str], mounts: list[dict[str, Any]]) -> None:
    host = convert.container_config(
        spec(svc(volumes=(volume,)), volume_names={"data": "proj_data"})
    )["HostConfig"]
    assert (host.get("Binds", []), host.get("Mounts", [])) == (binds, mounts)


@pytest.mark.parametrize("kind", ["npipe", "cluster", "image"])
def test_unsupported_volume_types_say_so(kind: Any) -> None:
    with pytest.raises(Unsupported, match=kind):
        convert.container_config(spec(svc(volumes=(ServiceVolume(type=kind, target="/x"),))))


def test_service_without_image_is_unsupported() -> None:
    with pytest.raises(Unsupported, match="no image"):
        convert.container_config(spec(svc(image=None)))


@pytest.mark.parametrize(
    ("given", "at_create", "later"),
    [
        (spec(), None, ()),
        (
            spec(attachments=(Attachment("p_a", aliases=("web",), ipv4_address="10.1.0.5"),)),
            {"p_a": {"Aliases": ["web"], "IPAMConfig": {"IPv4Address": "10.1.0.5"}}},
            (),
        ),
        (
            spec(attachments=(Attachment("p_a"), Attachment("p_b", aliases=("x",)))),
            {"p_a": {}},
            ("p_b",),
        ),
        (spec(network_mode="host", attachments=(Attachment("p_a"),)), None, ()),
        (
            spec(
                svc(links=("db", "cache:kv"), external_links=("legacy:old",)),
                attachments=(Attachment("p_a"),),
            ),
            {"p_a": {"Links": ["proj-db-1:db", "proj-cache-1:kv", "legacy:old"]}},
            (),
        ),
    ],
)
def test_first_network_at_create_others_later(
    given: ContainerSpec, at_create: dict[str, Any] | None, later: tuple[str, ...]
) -> None:
    config = convert.container_config(given)
    found = config.get("NetworkingConfig", {}).get("EndpointsConfig")
    assert found == at_create
    assert tuple(a.network for a in convert.later_attachments(given)) == later


@pytest.mark.parametrize(
    ("network", "expected"),
    [
        (
            Network(key="n", name="p_n"),
            {"driver": "bridge", "ipam": None, "internal": False, "options": None},
        ),
        (
            Network(
                key="n",
                name="p_n",
                driver="bridge",
                driver_opts={"com.docker.network.bridge.name": "br-x"},
                internal=True,
                attachable=True,
                enable_ipv6=True,
                ipam_config=(
                    {
                        "subnet": "10.9.0.0/24",
                        "gateway": "10.9.0.1",
                        "ip_range": "10.9.0.128/25",
                        "aux_addresses": {"h": "10.9.0.2"},
                    },
                ),
            ),
            {
                "options": {"com.docker.network.bridge.name": "br-x"},
                "internal": True,
                "attachable": True,
                "enable_ipv6": True,
                "ipam": {
                    "Driver": "default",
                    "Config": [
                        {
                            "Subnet": "10.9.0.0/24",
                            "Gateway": "10.9.0.1",
                            "IPRange": "10.9.0.128/25",
                            "AuxiliaryAddresses": {"h": "10.9.0.2"},
                        }
                    ],
                    "Options": {},
                },
            },
        ),
    ],
)
def test_network_create(network: Network, expected: dict[str, Any]) -> None:
    kwargs = convert.network_create_kwargs(NetworkSpec(network, {L.PROJECT: "p"}))
    assert {k: kwargs[k] for k in expected} == expected
    assert kwargs["labels"] == {L.PROJECT: "p"}
    assert kwargs["name"] == "p_n"


def test_volume_create_merges_labels() -> None:
    volume = Volume(key="v", name="p_v", driver_opts={"type": "tmpfs"}, labels={"a": "1"})
    assert convert.volume_create_kwargs(VolumeSpec(volume, {L.PROJECT: "p"})) == {
        "name": "p_v",
        "driver": "local",
        "driver_opts": {"type": "tmpfs"},
        "labels": {"a": "1", L.PROJECT: "p"},
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0001-01-01T00:00:00Z", None),
        ("", None),
        (None, None),
        ("1970-01-01T00:00:10Z", 10.0),
        ("1970-01-01T00:00:10.5Z", 10.5),
        ("1970-01-01T00:00:01.123456789Z", 1.123456789),
        ("1970-01-01T01:00:00+01:00", 0.0),
        ("garbage", None),
    ],
)
def test_parse_engine_time(text: str | None, expected: float | None) -> None:
    found = convert.parse_engine_time(text)
    assert found == (pytest.approx(expected) if expected is not None else None)


INSPECT: dict[str, Any] = {
    "Id": "abc123",
    "Name": "/proj-web-2",
    "Created": "1970-01-01T00:00:05Z",
    "RestartCount": 3,
    "Config": {
        "Image": "busybox:1",
        "Labels": {
            L.PROJECT: "proj",
            L.SERVICE: "web",
            L.CONTAINER_NUMBER: "2",
            L.ONEOFF: "False",
        },
    },
    "State": {
        "Status": "exited",
        "ExitCode": 7,
        "StartedAt": "1970-01-01T00:00:06Z",
        "FinishedAt": "1970-01-01T00:00:08.25Z",
        "Health": {"Status": "unhealthy"},
    },
    "NetworkSettings": {
        "Networks": {"proj_default": {"IPAddress": "172.18.0.3"}, "none": {"IPAddress": ""}},
        "Ports": {
            "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}],
            "81/tcp": None,
        },
    },
}


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("id", "abc123"),
        ("name", "proj-web-2"),
        ("project", "proj"),
        ("service", "web"),
        ("number", 2),
        ("status", "exited"),
        ("image", "busybox:1"),
        ("health", "unhealthy"),
        ("exit_code", 7),
        ("created", 5.0),
        ("started_at", 6.0),
        ("finished_at", 8.25),
        ("restart_count", 3),
        ("oneoff", False),
        ("addresses", {"proj_default": "172.18.0.3"}),
        ("published", {"80/tcp": (("0.0.0.0", "8080"),)}),
    ],
)
def test_observed_container(field: str, expected: object) -> None:
    assert getattr(convert.observed_container(INSPECT), field) == expected


@pytest.mark.parametrize(
    ("state", "field", "expected"),
    [
        ({"Status": "running", "ExitCode": 0}, "exit_code", None),  # no exit code while running
        ({"Status": "running"}, "health", "none"),
        ({"Status": "weird"}, "status", "dead"),
        ({"Status": "created", "FinishedAt": "0001-01-01T00:00:00Z"}, "finished_at", None),
    ],
)
def test_observed_container_states(state: dict[str, Any], field: str, expected: object) -> None:
    doc = {**INSPECT, "State": state}
    assert getattr(convert.observed_container(doc), field) == expected


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ([frame(1, b"a\n") + frame(2, b"b\n")], [("stdout", "a"), ("stderr", "b")]),
        # a frame split across chunks, a header split across chunks
        ([frame(1, b"hello\n")[:5], frame(1, b"hello\n")[5:]], [("stdout", "hello")]),
        ([frame(2, b"x\ny\n")[:3], frame(2, b"x\ny\n")[3:]], [("stderr", "x"), ("stderr", "y")]),
        # a line split over frames, and a last line without a newline
        ([frame(1, b"par"), frame(1, b"tial\nend")], [("stdout", "partial"), ("stdout", "end")]),
    ],
)
def test_demux_and_lines(chunks: list[bytes], expected: list[tuple[str, str]]) -> None:
    lines = list(convert.log_lines("c", convert.demux_frames(chunks)))
    assert [(line.stream, line.text) for line in lines] == expected


def test_log_timestamps_are_parsed_and_stripped() -> None:
    frames: list[tuple[convert.Stream, bytes]] = [
        ("stdout", b"1970-01-01T00:00:02.5Z hello world\n")
    ]
    assert list(convert.log_lines("c", frames, timestamps=True)) == [
        LogLine(container="c", stream="stdout", text="hello world", timestamp=2.5)
    ]
