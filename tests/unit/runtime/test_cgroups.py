"""Cgroup detection, path math and the files each controller writes (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import RuntimeFailure
from orchestrator.runtime.cgroups import cpu, memory, pids
from orchestrator.runtime.cgroups.base import Resources, check_name
from orchestrator.runtime.cgroups.detect import choose, parse_mountinfo
from orchestrator.runtime.cgroups.v1 import cgroup_dirs
from orchestrator.runtime.cgroups.v2 import cgroup_dir

# this machine: a v1 hierarchy per controller plus an empty cgroup2 mount
HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
# a systemd distribution with co-mounted cpu,cpuacct
COMOUNTED = """\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw shared:9 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw shared:10 - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw shared:11 - cgroup cgroup rw,pids
"""
PURE_V2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"


@pytest.mark.parametrize(
    ("text", "controllers", "version"),
    [
        (HYBRID, set(), 1),
        (HYBRID, {"memory", "cpu", "pids", "io"}, 2),
        (COMOUNTED, set(), 1),
        (PURE_V2, {"cpuset", "cpu", "io", "memory", "pids"}, 2),
    ],
)
def test_choose_version(text: str, controllers: set[str], version: int) -> None:
    assert choose(parse_mountinfo(text), controllers) == version


def test_no_usable_cgroups() -> None:
    with pytest.raises(RuntimeFailure, match="no usable cgroups"):
        choose(parse_mountinfo(PURE_V2), {"cpu"})


def test_parse_mountinfo_hybrid() -> None:
    layout = parse_mountinfo(HYBRID)
    assert layout.v2_mount == Path("/sys/fs/cgroup/unified")
    assert layout.v1_mounts["memory"] == Path("/sys/fs/cgroup/memory")
    assert "systemd" not in layout.v1_mounts


def test_v1_paths_share_comounted_hierarchy() -> None:
    dirs = cgroup_dirs(parse_mountinfo(COMOUNTED).v1_mounts, "c1")
    assert dirs["cpu"] == dirs["cpuacct"] == Path("/sys/fs/cgroup/cpu,cpuacct/pycompose/c1")
    assert dirs["memory"] == Path("/sys/fs/cgroup/memory/pycompose/c1")


def test_v2_path() -> None:
    assert cgroup_dir(Path("/sys/fs/cgroup"), "c1") == Path("/sys/fs/cgroup/pycompose/c1")


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "x" * 200])
def test_bad_names_refused(name: str) -> None:
    with pytest.raises(RuntimeFailure):
        check_name(name)


MiB = 1 << 20


@pytest.mark.parametrize(
    ("res", "has_memsw", "v1", "v2"),
    [
        (Resources(), True, [], []),
        (
            Resources(memory=64 * MiB),
            True,
            [
                ("memory.limit_in_bytes", str(64 * MiB)),
                ("memory.memsw.limit_in_bytes", str(128 * MiB)),
            ],
            [("memory.max", str(64 * MiB)), ("memory.swap.max", str(64 * MiB))],
        ),
        (
            Resources(memory=64 * MiB, memory_swap=64 * MiB),
            False,
            [("memory.limit_in_bytes", str(64 * MiB))],
            [("memory.max", str(64 * MiB)), ("memory.swap.max", "0")],
        ),
        (
            Resources(memory=MiB, memory_swap=-1, memory_reservation=MiB // 2),
            True,
            [
                ("memory.soft_limit_in_bytes", str(MiB // 2)),
                ("memory.limit_in_bytes", str(MiB)),
                ("memory.memsw.limit_in_bytes", "-1"),
            ],
            [("memory.low", str(MiB // 2)), ("memory.max", str(MiB)), ("memory.swap.max", "max")],
        ),
    ],
)
def test_memory_settings(
    res: Resources, has_memsw: bool, v1: list[tuple[str, str]], v2: list[tuple[str, str]]
) -> None:
    assert memory.v1_settings(res, has_memsw) == v1
    assert memory.v2_settings(res) == v2


@pytest.mark.parametrize(
    ("res", "v1", "v2"),
    [
        (Resources(), [], []),
        (
            Resources(cpus=0.5),
            [("cpu.cfs_period_us", "100000"), ("cpu.cfs_quota_us", "50000")],
            [("cpu.max", "50000 100000")],
        ),
        (
            Resources(cpus=2, cpu_period=50_000, cpu_shares=1024),
            [
                ("cpu.shares", "1024"),
                ("cpu.cfs_period_us", "50000"),
                ("cpu.cfs_quota_us", "100000"),
            ],
            [("cpu.weight", "39"), ("cpu.max", "100000 50000")],
        ),
        (
            Resources(cpus=0.001),
            [("cpu.cfs_period_us", "100000"), ("cpu.cfs_quota_us", "1000")],
            [("cpu.max", "1000 100000")],
        ),
    ],
)
def test_cpu_settings(res: Resources, v1: list[tuple[str, str]], v2: list[tuple[str, str]]) -> None:
    assert cpu.v1_settings(res) == v1
    assert cpu.v2_settings(res) == v2


@pytest.mark.parametrize(("shares", "weight"), [(2, 1), (1024, 39), (262144, 10000), (1, 1)])
def test_shares_to_weight(shares: int, weight: int) -> None:
    assert cpu.shares_to_weight(shares) == weight


def test_cpus_must_be_positive() -> None:
    with pytest.raises(RuntimeFailure):
        cpu.quota(0, 100_000)


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        (None, []),
        (0, [("pids.max", "max")]),
        (-1, [("pids.max", "max")]),
        (100, [("pids.max", "100")]),
    ],
)
def test_pids_settings(limit: int | None, expected: list[tuple[str, str]]) -> None:
    assert pids.settings(Resources(pids_limit=limit)) == expected


def test_stats_parsing() -> None:
    v1 = memory.v1_stats("4096\n", "8192\n", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert (v1.memory_usage, v1.memory_limit, v1.oom_kills) == (4096, 8192, 2)
    v2 = memory.v2_stats("4096\n", "max\n", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert (v2.memory_usage, v2.memory_limit, v2.oom_kills) == (4096, None, 1)
    assert cpu.v2_usage_ns("usage_usec 12\nuser_usec 10\n") == 12_000
