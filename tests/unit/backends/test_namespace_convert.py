"""ContainerSpec + image config → the runtime's ContainerConfig (pure, table-style)."""

from __future__ import annotations

import signal
from dataclasses import replace
from typing import Any

import pytest

from orchestrator.backends.base import ContainerSpec
from orchestrator.backends.namespace import convert
from orchestrator.errors import ConfigError, Unsupported
from orchestrator.model import Healthcheck, Logging, Service, ServiceVolume, Ulimit
from orchestrator.model.deploy import Deploy, ResourceLimits, Resources
from orchestrator.runtime.config import Healthcheck as RuntimeHealthcheck
from orchestrator.runtime.config import Mount, User
from orchestrator.runtime.images import Healthcheck as ImageHealthcheck
from orchestrator.runtime.images import ImageConfig

IMAGE = ImageConfig(
    entrypoint=("/entry",),
    cmd=("serve", "--port", "80"),
    env=("PATH=/bin", "MODE=image", "KEEP=1"),
    working_dir="/srv",
    user="app",
    stop_signal="SIGQUIT",
    healthcheck=ImageHealthcheck(("CMD-SHELL", "check"), interval_ns=5_000_000_000, retries=7),
)


def spec(override: tuple[str, ...] | None = None, **service: Any) -> ContainerSpec:
    return ContainerSpec(
        project="p",
        service=Service(name="web", image="img", **service),
        name="p-web-1",
        number=1,
        labels={},
        volume_names={"data": "p_data"},
        command_override=override,
    )


def config(s: ContainerSpec, image: ImageConfig = IMAGE) -> Any:
    users = {"app": User(1000, 1000, (2000,)), "0": User(), "7:8": User(7, 8)}
    return convert.container_config(
        s,
        convert.Inputs(
            container_id="c" * 64,
            image=image,
            lowerdirs=("/layers/top", "/layers/bottom"),
            volume_paths={"p_data": "/state/volumes/p_data/_data"},
            resolve_user=users.__getitem__,
        ),
    )


@pytest.mark.parametrize(
    ("service", "override", "expected"),
    [
        ({}, None, ("/entry", "serve", "--port", "80")),
        ({"command": ("run",)}, None, ("/entry", "run")),
        ({"entrypoint": ("/other",)}, None, ("/other",)),  # image Cmd dropped
        ({"entrypoint": ("/other",), "command": ("x",)}, None, ("/other", "x")),
        ({"entrypoint": ()}, None, ()),
        ({"command": ("run",)}, ("one-off",), ("/entry", "one-off")),
    ],
)
def test_command_follows_docker_rules(
    service: dict[str, Any], override: tuple[str, ...] | None, expected: tuple[str, ...]
) -> None:
    s = spec(override, **service)
    if not expected:
        with pytest.raises(Unsupported, match="no command"):
            convert.command(s, IMAGE)
    else:
        assert convert.command(s, IMAGE) == expected


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, ("PATH=/bin", "MODE=image", "KEEP=1")),
        ({"MODE": "svc", "NEW": "x"}, ("PATH=/bin", "MODE=svc", "KEEP=1", "NEW=x")),
        ({"KEEP": None}, ("PATH=/bin", "MODE=image")),
    ],
)
def test_environment_service_over_image(
    environment: dict[str, str | None], expected: tuple[str, ...]
) -> None:
    assert convert.environment(Service(name="a", environment=environment), IMAGE) == expected


@pytest.mark.parametrize(
    ("name", "number"),
    [(None, 15), ("SIGKILL", 9), ("usr1", int(signal.SIGUSR1)), ("TERM", 15), ("3", 3)],
)
def test_stop_signal(name: str | None, number: int) -> None:
    assert convert.stop_signal(name) == number


def test_unknown_stop_signal_is_refused() -> None:
    with pytest.raises(Unsupported):
        convert.stop_signal("SIGNOPE")


@pytest.mark.parametrize(
    ("mine", "image", "expected"),
    [
        (None, None, None),
        (None, IMAGE.healthcheck, RuntimeHealthcheck(("/bin/sh", "-c", "check"), 5.0, 30.0, 7)),
        (
            Healthcheck(test=("CMD", "true"), interval=0.5, timeout=2, retries=1, start_period=3),
            IMAGE.healthcheck,
            RuntimeHealthcheck(("true",), 0.5, 2.0, 1, 3.0),
        ),
        (Healthcheck(interval=1), IMAGE.healthcheck,
         RuntimeHealthcheck(("/bin/sh", "-c", "check"), 1.0, 30.0, 7)),
        (Healthcheck(test=("CMD-SHELL", "a && b")), None,
         RuntimeHealthcheck(("/bin/sh", "-c", "a && b"), 30.0, 30.0, 3)),
        (Healthcheck(disable=True), IMAGE.healthcheck, None),
        (Healthcheck(test=("NONE",)), IMAGE.healthcheck, None),
        (None, ImageHealthcheck(("NONE",)), None),
    ],
)
def test_healthcheck_merges_service_over_image(
    mine: Healthcheck | None, image: ImageHealthcheck | None, expected: RuntimeHealthcheck | None
) -> None:
    service = Service(name="a", healthcheck=mine)
    got = convert.healthcheck(service, replace(IMAGE, healthcheck=image))
    assert got == expected


@pytest.mark.parametrize(
    ("service", "memory", "cpus", "pids"),
    [
        ({}, None, None, None),
        ({"mem_limit": 64 << 20, "cpus": 0.5, "pids_limit": 20}, 64 << 20, 0.5, 20),
        (
            {"deploy": Deploy(resources=Resources(ResourceLimits(cpus=1.5, memory=1 << 30,
                                                                 pids=9)))},
            1 << 30, 1.5, 9,
        ),
        (
            {"mem_limit": 1 << 20,
             "deploy": Deploy(resources=Resources(ResourceLimits(memory=1 << 30)))},
            1 << 20, None, None,
        ),
    ],
)
def test_resources(service: dict[str, Any], memory: int | None, cpus: float | None,
                   pids: int | None) -> None:
    got = convert.resources(Service(name="a", **service))
    assert (got.memory, got.cpus, got.pids_limit) == (memory, cpus, pids)


@pytest.mark.parametrize(
    ("mode", "network"),
    [(None, "private"), ("bridge", "private"), ("host", "host"), ("none", "none")],
)
def test_network_modes(mode: str | None, network: str) -> None:
    assert convert.namespaces(replace(spec(), network_mode=mode)).network == network


def test_shared_network_mode_is_refused() -> None:
    with pytest.raises(Unsupported, match="container:abc"):
        convert.namespaces(replace(spec(), network_mode="container:abc"))


def test_mounts_bind_volume_and_tmpfs() -> None:
    s = spec(
        volumes=(
            ServiceVolume(type="bind", source="/host/conf", target="/conf", read_only=True),
            ServiceVolume(type="volume", source="data", target="/data"),
            ServiceVolume(type="volume", target="/anon"),
            ServiceVolume(type="tmpfs", target="/scratch", tmpfs_size=1 << 20),
        ),
        tmpfs=("/run:rw,noexec,size=64k", "/tmp"),
    )
    assert convert.mounts(s, {"p_data": "/v/p_data/_data"}, anonymous={"/anon": "/c/a0"}) == (
        Mount("/conf", "/host/conf", "bind", True),
        Mount("/data", "/v/p_data/_data", "bind", False, copy_up=True),
        Mount("/anon", "/c/a0", "bind", False, copy_up=True),
        Mount("/scratch", kind="tmpfs", options="size=1048576,mode=1777"),
        Mount("/run", kind="tmpfs", options="size=64k"),
        Mount("/tmp", kind="tmpfs", options="mode=1777"),
    )


def test_missing_volume_is_refused() -> None:
    s = spec(volumes=(ServiceVolume(type="volume", source="data", target="/data"),))
    with pytest.raises(Unsupported, match="p_data"):
        convert.mounts(s, {})


@pytest.mark.parametrize(
    ("logging", "expected"),
    [
        (None, (0, 1)),
        (Logging(driver="json-file", options={"max-size": "1k", "max-file": "3"}), (1024, 3)),
        (Logging(options={"max-size": "2m"}), (2 << 20, 1)),
    ],
)
def test_logging_options(logging: Logging | None, expected: tuple[int, int]) -> None:
    assert convert.logging(Service(name="a", logging=logging)) == expected


@pytest.mark.parametrize(
    ("logging", "error"),
    [
        (Logging(driver="syslog"), Unsupported),
        (Logging(options={"max-size": "lots"}), ConfigError),
    ],
)
def test_bad_logging_is_refused(logging: Logging, error: type[Exception]) -> None:
    with pytest.raises(error):
        convert.logging(Service(name="a", logging=logging))


def test_full_config_from_image_defaults() -> None:
    got = config(spec())
    assert (got.id, got.lowerdirs, got.working_dir, got.user) == (
        "c" * 64, ("/layers/top", "/layers/bottom"), "/srv", User(1000, 1000, (2000,))
    )
    assert (got.stop_signal, got.stop_grace, got.hostname, got.init) == (
        int(signal.SIGQUIT), 10.0, "", False
    )


def test_full_config_service_keys_win() -> None:
    got = config(
        spec(
            user="7:8",
            working_dir="/w",
            hostname="h",
            read_only=True,
            init=True,
            stop_signal="SIGINT",
            stop_grace_period=2.5,
            cap_add=("NET_ADMIN",),
            cap_drop=("CHOWN",),
            privileged=True,
            sysctls={"net.core.somaxconn": "1024"},
            ulimits={"nofile": Ulimit(100, 200), "core": Ulimit(0, 0)},
        )
    )
    assert (got.user, got.working_dir, got.hostname, got.read_only, got.init) == (
        User(7, 8), "/w", "h", True, True
    )
    assert (got.stop_signal, got.stop_grace) == (int(signal.SIGINT), 2.5)
    assert (got.cap_add, got.cap_drop, got.privileged) == (("NET_ADMIN",), ("CHOWN",), True)
    assert got.sysctls == (("net.core.somaxconn", "1024"),)
    assert [(r.name, r.soft, r.hard) for r in got.rlimits] == [("core", 0, 0),
                                                               ("nofile", 100, 200)]


def test_no_user_anywhere_is_root() -> None:
    assert config(spec(), replace(IMAGE, user="")).user == User()
