from __future__ import annotations

import pytest

from orchestrator.errors import RuntimeFailure
from orchestrator.runtime.cgroups import Resources
from orchestrator.runtime.config import ContainerConfig, Mount, Namespaces, Rlimit, User


def test_round_trip_through_json() -> None:
    config = ContainerConfig(
        id="web-1",
        command=("httpd", "-f"),
        lowerdirs=("/layers/a", "/layers/b"),
        env=("A=1",),
        user=User(1, 2, (3,)),
        namespaces=Namespaces(network="none"),
        resources=Resources(memory=1 << 20, cpus=0.5, pids_limit=10),
        rlimits=(Rlimit("nofile", 10, 20),),
        sysctls=(("net.ipv4.ip_forward", "1"),),
        mounts=(Mount("/m", "/src", read_only=True),),
        init=True,
    )
    assert ContainerConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": "../x"}, "id must match"),
        ({"command": ()}, "no command"),
        ({"lowerdirs": ()}, "no lower directory"),
        ({"lowerdirs": ("rel",)}, "absolute"),
        ({"lowerdirs": ("/a:b",)}, "absolute"),
        ({"env": ("NOEQUALS",)}, "KEY=value"),
        ({"working_dir": "rel"}, "working_dir"),
        ({"namespaces": Namespaces(network="bridge")}, "network mode"),
        ({"namespaces": Namespaces(pid="none")}, "pid namespace"),
        ({"mounts": (Mount("/t", "relative"),)}, "absolute path"),
        ({"log_max_file": 0}, "max-file"),
    ],
)
def test_invalid_configs(changes: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"id": "c", "command": ("true",), "lowerdirs": ("/l",)}
    base.update(changes)
    with pytest.raises(RuntimeFailure, match=message):
        ContainerConfig(**base)  # type: ignore[arg-type]
