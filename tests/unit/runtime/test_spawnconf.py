"""ContainerConfig → the spawner's NUL-separated config, and the policies it carries."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import RuntimeFailure
from orchestrator.runtime.config import ContainerConfig, Mount, Namespaces, Rlimit, User
from orchestrator.runtime.spawnconf import (
    DEFAULT_PATH,
    MASKED_PATHS,
    Bundle,
    check_sysctl,
    environment,
    exec_config,
    run_config,
)

BUNDLE = Bundle(Path("/state/c1"))


def records(data: bytes) -> list[str]:
    assert data.endswith(b"\0")
    return data[:-1].decode().split("\0")


def pairs(data: bytes, key: str) -> list[str]:
    toks = records(data)
    return [toks[i + 1] for i, t in enumerate(toks[:-1]) if t == key]


def cfg(**kw: object) -> ContainerConfig:
    base: dict[str, object] = {
        "id": "c1",
        "command": ("sh", "-c", "echo hi"),
        "lowerdirs": ("/l1", "/l0"),
    }
    base.update(kw)
    return ContainerConfig(**base)  # type: ignore[arg-type]


def test_run_config_carries_the_essentials() -> None:
    data = run_config(cfg(), BUNDLE, (Path("/sys/fs/cgroup/memory/pycompose/c1"),))
    assert pairs(data, "lower") == ["/l1", "/l0"]  # topmost first, as overlayfs wants
    assert pairs(data, "upper") == ["/state/c1/upper"]
    assert pairs(data, "arg") == ["sh", "-c", "echo hi"]
    assert pairs(data, "caps") == ["a80425fb"]
    assert pairs(data, "cgroup") == ["/sys/fs/cgroup/memory/pycompose/c1"]
    assert pairs(data, "hostname") == ["c1"]
    assert pairs(data, "mask") == list(MASKED_PATHS)
    assert "/proc/sys" in pairs(data, "ropath")


def test_privileged_masks_nothing() -> None:
    data = run_config(cfg(privileged=True), BUNDLE, ())
    assert pairs(data, "mask") == [] and pairs(data, "ropath") == []
    assert int(pairs(data, "caps")[0], 16) == (1 << 41) - 1


def test_mounts_rlimits_user_and_namespaces() -> None:
    data = run_config(
        cfg(
            mounts=(Mount("/data", "/srv/data", read_only=True), Mount("/tmp", kind="tmpfs")),
            rlimits=(Rlimit("nofile", 1024, 2048),),
            user=User(1000, 1000, (2000,)),
            namespaces=Namespaces(network="host", pid="/proc/7/ns/pid"),
        ),
        BUNDLE,
        (),
    )
    toks = records(data)
    assert "\0".join(["bind", "/srv/data", "/data", "ro"]) in "\0".join(toks)
    assert "\0".join(["tmpfs", "/tmp", "mode=1777"]) in "\0".join(toks)
    assert "\0".join(["rlimit", "7", "1024", "2048"]) in "\0".join(toks)
    assert pairs(data, "uid") == ["1000"] and pairs(data, "group") == ["2000"]
    assert "\0".join(["ns", "net", "host"]) in "\0".join(toks)
    assert "\0".join(["ns", "pid", "/proc/7/ns/pid"]) in "\0".join(toks)


def test_unknown_ulimit_refused() -> None:
    with pytest.raises(RuntimeFailure, match="ulimit"):
        run_config(cfg(rlimits=(Rlimit("bogus", 1, 1),)), BUNDLE, ())


@pytest.mark.parametrize(
    ("key", "network", "ipc", "path"),
    [
        ("net.ipv4.ip_forward", "private", "private", "net/ipv4/ip_forward"),
        ("kernel.shmmax", "private", "private", "kernel/shmmax"),
        ("fs.mqueue.msg_max", "host", "private", "fs/mqueue/msg_max"),
    ],
)
def test_namespaced_sysctls(key: str, network: str, ipc: str, path: str) -> None:
    assert check_sysctl(key, network, ipc) == path


@pytest.mark.parametrize(
    ("key", "network", "ipc"),
    [
        ("net.ipv4.ip_forward", "host", "private"),
        ("kernel.shmmax", "private", "host"),
        ("vm.swappiness", "private", "private"),
        ("kernel.hostname", "private", "private"),
        ("net/../../etc", "private", "private"),
    ],
)
def test_host_sysctls_refused(key: str, network: str, ipc: str) -> None:
    with pytest.raises(RuntimeFailure):
        check_sysctl(key, network, ipc)


def test_environment_defaults_and_overrides() -> None:
    env = environment(cfg(env=("A=1",), hostname="web"))
    assert env[0] == f"PATH={DEFAULT_PATH}" and "A=1" in env and "HOSTNAME=web" in env
    assert "HOME=/root" in env
    assert environment(cfg(env=("PATH=/x", "HOME=/h"))).count("PATH=/x") == 1
    assert "HOME=/" in environment(cfg(user=User(5, 5)))


def test_exec_config_overrides_env_and_user() -> None:
    data = exec_config(cfg(env=("A=1", "B=2")), 42, (), ("ls",), env=("B=3",), user=User(7, 8))
    assert pairs(data, "target") == ["42"]
    env = pairs(data, "env")
    assert "A=1" in env and "B=3" in env and "B=2" not in env
    assert pairs(data, "uid") == ["7"] and pairs(data, "gid") == ["8"]
    with pytest.raises(RuntimeFailure):
        exec_config(cfg(), 42, (), ())
