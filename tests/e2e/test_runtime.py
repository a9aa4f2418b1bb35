"""The built-in container runtime, for real (root, namespaces, overlayfs, cgroups).

Every container runs on a busybox root filesystem (one lowerdir) under a temporary state
root; the `runtime` fixture deletes whatever a test leaves, and `test_delete_leaves_nothing`
lists mounts, cgroups, shims and state before and after.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.errors import Conflict, NotFound, RuntimeFailure, WaitTimeout
from orchestrator.runtime.capabilities import capability_mask
from orchestrator.runtime.cgroups import Resources
from orchestrator.runtime.cgroups.detect import parse_mountinfo
from orchestrator.runtime.cgroups.v2 import V2Driver
from orchestrator.runtime.config import ContainerConfig, Mount, Namespaces, Rlimit, User
from orchestrator.runtime.container import Container, Runtime
from orchestrator.runtime.spawner import ensure_spawner
from orchestrator.runtime.users import resolve_in_layers
from tests.support.runtime import make_busybox_rootfs, snapshot

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="the namespace runtime needs root"),
]


@pytest.fixture(scope="module")
def spawner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_spawner(tmp_path_factory.mktemp("pycompose-bin"))


@pytest.fixture(scope="module")
def lower(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_busybox_rootfs(tmp_path_factory.mktemp("pycompose-lower") / "rootfs")


@pytest.fixture
def runtime(tmp_path: Path, spawner: Path) -> Iterator[Runtime]:
    rt = Runtime(tmp_path / "pycompose-state", spawner=spawner)
    yield rt
    for cid in rt.list():
        rt.delete(cid, force=True)


def make(rt: Runtime, lower: Path, name: str, *command: str, **kw: object) -> Container:
    config = ContainerConfig(
        id=f"pycompose-test-{name}-{os.getpid()}",
        command=command,
        lowerdirs=(str(lower),),
        **kw,  # type: ignore[arg-type]
    )
    return rt.create(config)


def run(
    rt: Runtime, lower: Path, name: str, script: str, **kw: object
) -> tuple[int, dict[str, str]]:
    """Run ``sh -c script`` to completion; its exit code and its ``key=value`` stdout."""
    c = make(rt, lower, name, "/bin/sh", "-c", script, **kw)
    c.start()
    code = c.wait(20)
    out: dict[str, str] = {}
    for entry in c.logs():
        if entry.stream == "stdout" and "=" in entry.text:
            key, _, value = entry.text.rstrip("\n").partition("=")
            out[key] = value
    return code, out


def test_isolation_and_filesystem(runtime: Runtime, lower: Path) -> None:
    script = (
        "echo pid=$$; echo hostname=$(hostname); echo procs=$(ls /proc | grep -c '^[0-9]');"
        "echo mounts=$(cut -d' ' -f2 /proc/mounts | tr '\\n' ,);"
        "echo fds=$(ls /proc/self/fd | tr '\\n' ,);"
        "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status | tr -d '\\t' | tr : =;"
        "echo written > /bin/pycompose-written && echo write=ok;"
        "echo masked=$(cat /proc/keys /proc/interrupts | wc -c);"
        "touch /sys/x 2>/dev/null || echo sys=ro;"
        "echo 1 > /proc/sys/kernel/shmmni 2>/dev/null || echo procsys=ro;"
        "echo devnull=$(echo x > /dev/null && echo ok);"
        "echo shm=$(grep -c ' /dev/shm ' /proc/mounts);"
        "echo ptmx=$(ls /dev/pts/ptmx); echo cwd=$(pwd); echo user=$(id -u):$(id -g)"
    )
    code, out = run(runtime, lower, "iso", script, hostname="pycompose-box")
    assert code == 0, out
    assert out["pid"] == "1"
    assert out["hostname"] == "pycompose-box"
    assert int(out["procs"]) <= 4  # sh, a subshell, ls, grep: no host processes
    mounts = set(out["mounts"].strip(",").split(","))
    assert "/" in mounts and "/proc" in mounts and "/dev/pts" in mounts
    assert not {"/work", "/sys/fs/cgroup", "/tmp", "/var/lib/docker"} & mounts
    assert all(m.split("/")[1] in ("", "proc", "dev", "sys") for m in mounts), mounts
    # stdin, stdout, stderr and ls's own directory fd: nothing inherited
    assert set(out["fds"].strip(",").split(",")) <= {"0", "1", "2", "3"}
    default = f"{capability_mask():016x}"
    assert out["CapBnd"] == out["CapEff"] == out["CapPrm"] == default == "00000000a80425fb"
    assert out["CapInh"] == out["CapAmb"] == "0" * 16
    assert out["write"] == "ok" and not (lower / "bin" / "pycompose-written").exists()
    assert (runtime.root / runtime.list()[0] / "upper" / "bin" / "pycompose-written").exists()
    assert out["masked"] == "0" and out["sys"] == "ro" and out["procsys"] == "ro"
    assert out["devnull"] == "ok" and out["shm"] == "1" and out["ptmx"] == "/dev/pts/ptmx"
    assert out["cwd"] == "/" and out["user"] == "0:0"


def test_read_only_rootfs_user_caps_and_limits(runtime: Runtime, lower: Path) -> None:
    user = resolve_in_layers("app", [str(lower)])
    assert user == User(1000, 1000, (2000,))
    script = (
        "touch /bin/x 2>/dev/null || echo rootfs=ro; echo id=$(id -u):$(id -g):$(id -G | tr ' ' ,);"
        "echo nofile=$(ulimit -n); echo shmmax=$(cat /proc/sys/kernel/shmmax);"
        "grep -E '^Cap(Eff|Bnd)' /proc/self/status | tr -d '\\t' | tr : =;"
        "echo links=$(ls /sys/class/net | tr '\\n' ,); echo lo=$(cat /sys/class/net/lo/operstate);"
        "echo tmp=$(touch /tmp/ok && echo rw); echo cwd=$(pwd); echo env=$GREETING"
    )
    code, out = run(
        runtime,
        lower,
        "ro",
        script,
        read_only=True,
        user=user,
        cap_add=("NET_ADMIN",),
        cap_drop=("MKNOD",),
        rlimits=(Rlimit("nofile", 321, 321),),
        sysctls=(("kernel.shmmax", "65536"),),
        mounts=(Mount("/tmp", kind="tmpfs", options="size=1m"),),
        working_dir="/home/app",
        env=("GREETING=hello",),
        namespaces=Namespaces(network="none"),
    )
    assert code == 0, out
    assert out["rootfs"] == "ro" and out["tmp"] == "rw"
    assert out["id"] == "1000:1000:1000,2000"
    assert out["nofile"] == "321" and out["shmmax"] == "65536"
    expected = capability_mask(("NET_ADMIN",), ("MKNOD",))
    assert int(out["CapBnd"], 16) == expected and int(out["CapEff"], 16) == 0  # non-root
    assert out["links"] == "lo," and out["lo"] in ("up", "unknown")
    assert out["cwd"] == "/home/app" and out["env"] == "hello"


def test_host_network_sees_host_links(runtime: Runtime, lower: Path) -> None:
    code, out = run(
        runtime,
        lower,
        "hostnet",
        "echo n=$(ls /sys/class/net | wc -l)",
        namespaces=Namespaces(network="host"),
    )
    assert code == 0 and int(out["n"]) == len(os.listdir("/sys/class/net"))


def test_memory_limit_kills_what_exceeds_it(runtime: Runtime, lower: Path) -> None:
    c = make(
        runtime,
        lower,
        "oom",
        "/bin/sh",
        "-c",
        "echo start; exec tail /dev/zero",
        resources=Resources(memory=32 << 20, memory_swap=32 << 20),
    )
    c.start()
    assert c.wait(30) == 137
    assert (c.stats().oom_kills or 0) >= 1
    assert [e.text for e in c.logs()] == ["start\n"]


def test_cgroup_limits_are_applied(runtime: Runtime, lower: Path) -> None:
    c = make(runtime, lower, "limits", "sleep", "30", resources=Resources(cpus=0.5, pids_limit=20))
    pid = c.start()
    paths = runtime.cgroups.paths(c.id)
    assert all(pid in [int(p) for p in (d / "cgroup.procs").read_text().split()] for d in paths)
    if runtime.cgroups.version == 1:
        cpu_dir = next(d for d in paths if (d / "cpu.cfs_quota_us").exists())
        assert (cpu_dir / "cpu.cfs_quota_us").read_text().strip() == "50000"
    pids_dir = next(d for d in paths if (d / "pids.max").exists())
    assert (pids_dir / "pids.max").read_text().strip() == "20"
    assert [p.pid for p in c.top()] == [pid]
    assert c.top()[0].command == "sleep 30"
    c.stop(grace=0)


def test_stop_waits_grace_then_kills_the_cgroup(runtime: Runtime, lower: Path) -> None:
    stubborn = make(
        runtime, lower, "stubborn", "/bin/sh", "-c", "trap '' TERM; sleep 100 & wait; sleep 100"
    )
    stubborn.start()
    started = time.monotonic()
    final = stubborn.stop(signal.SIGTERM, grace=0.5)
    elapsed = time.monotonic() - started
    assert final.status == "exited" and final.exit_code == 137
    assert 0.5 <= elapsed < 5
    assert runtime.cgroups.procs(stubborn.id) == []

    polite = make(
        runtime,
        lower,
        "polite",
        "/bin/sh",
        "-c",
        "trap 'exit 0' TERM; while :; do sleep 0.05; done",
    )
    polite.start()
    time.sleep(0.1)  # let sh install its handler
    started = time.monotonic()
    assert polite.stop(grace=10).exit_code == 0
    assert time.monotonic() - started < 3


def test_exec_runs_inside_the_namespaces(runtime: Runtime, lower: Path) -> None:
    c = make(runtime, lower, "exec", "sleep", "30", hostname="pycompose-ex", env=("A=1",))
    c.start()
    r = c.exec(
        [
            "/bin/sh",
            "-c",
            "echo $(hostname) $(cat /proc/1/cmdline | tr '\\0' ' ')$A$B; "
            "ls /proc | grep -c '^[0-9]'; echo oops >&2; exit 7",
        ],
        env=("B=2",),
    )
    assert r.exit_code == 7
    lines = r.stdout.decode().splitlines()
    assert lines[0] == "pycompose-ex sleep 30 12"
    assert int(lines[1]) <= 4  # sleep, sh, ls, grep: no host processes
    assert r.stderr == b"oops\n"
    assert c.exec(["id", "-u"], user=User(1000, 1000)).stdout == b"1000\n"
    assert c.exec(["pwd"], working_dir="/proc").stdout == b"/proc\n"
    assert c.exec(["cat"], stdin=b"piped").stdout == b"piped"
    assert c.exec(["/no/such/command"]).exit_code == 127
    with pytest.raises(WaitTimeout):
        c.exec(["sleep", "30"], timeout=0.3)
    deadline = time.monotonic() + 5  # the timed-out command died with its spawner
    while len(c.top()) > 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [p.command for p in c.top()] == ["sleep 30"]
    c.stop(grace=0)
    with pytest.raises(Conflict):
        c.exec(["true"])


def test_logs_streams_tail_follow_and_rotation(runtime: Runtime, lower: Path) -> None:
    c = make(
        runtime,
        lower,
        "logs",
        "/bin/sh",
        "-c",
        "echo out1; echo err1 >&2; sleep 0.3; i=0; while [ $i -lt 400 ]; do "
        "echo line$i; i=$((i+1)); done; echo last",
        log_max_size=4096,
        log_max_file=3,
    )
    c.start()
    followed = [(e.stream, e.text) for e in c.logs(follow=True)]
    assert c.state().status == "exited"
    assert followed[:2] == [("stdout", "out1\n"), ("stderr", "err1\n")]
    assert followed[-1] == ("stdout", "last\n")
    # a writer faster than the reader loses what rotation drops (as with docker's
    # json-file); what is read is in order with no duplicates
    numbers = [int(t[4:]) for _, t in followed if t.startswith("line")]
    assert numbers == sorted(set(numbers)) and len(followed) >= 3
    files = sorted(p.name for p in (runtime.root / c.id).glob("container.log*"))
    assert files == ["container.log", "container.log.1", "container.log.2"]
    assert all((runtime.root / c.id / f).stat().st_size <= 4096 for f in files)
    assert [e.text for e in c.logs(tail=2)] == ["line399\n", "last\n"]


def test_init_reaps_and_passes_the_exit_code(runtime: Runtime, lower: Path) -> None:
    code, out = run(
        runtime,
        lower,
        "init",
        "echo pid=$$; (sleep 0.1 &); sleep 0.3;"
        "echo zombies=$(grep -l '^State:.Z' /proc/[0-9]*/status | wc -l); exit 5",
        init=True,
    )
    assert code == 5 and out["pid"] != "1" and out["zombies"] == "0"


def test_restart_after_exit_keeps_the_writable_layer(runtime: Runtime, lower: Path) -> None:
    c = make(runtime, lower, "restart", "/bin/sh", "-c", "echo >> /count; wc -l < /count")
    c.start()
    assert c.wait(10) == 0
    c.start()
    assert c.wait(10) == 0
    assert [e.text.strip() for e in c.logs()] == ["1", "2"]


def test_failures_are_typed(runtime: Runtime, lower: Path) -> None:
    c = make(runtime, lower, "bad", "/no/such/binary")
    with pytest.raises(RuntimeFailure, match="exec /no/such/binary"):
        c.start()
    assert c.state().status in ("created", "exited")
    with pytest.raises(Conflict):
        make(runtime, lower, "bad", "true")
    with pytest.raises(NotFound):
        runtime.get("pycompose-missing")


def test_delete_leaves_nothing(runtime: Runtime, lower: Path) -> None:
    before = snapshot(runtime.root)
    running = make(runtime, lower, "del1", "sleep", "30", resources=Resources(memory=64 << 20))
    running.start()
    exited = make(runtime, lower, "del2", "true")
    exited.start()
    exited.wait(10)
    created = make(runtime, lower, "del3", "true")
    during = snapshot(runtime.root)
    assert len(during.cgroups - before.cgroups) >= 3 and len(during.shims - before.shims) >= 1
    assert len(during.state - before.state) == 3
    with pytest.raises(Conflict):
        running.delete()
    running.delete(force=True)
    exited.delete()
    created.delete()
    created.delete()  # idempotent
    # an interrupted teardown (state file left, cgroup gone) is finished by the next call
    again = make(runtime, lower, "del4", "true")
    runtime.cgroups.remove(again.id)
    (runtime.root / again.id / "upper").rmdir()
    runtime.delete(again.id)
    time.sleep(0.05)
    after = snapshot(runtime.root)
    assert after == before


def test_cgroup_v2_driver_runs_a_container(tmp_path: Path, spawner: Path, lower: Path) -> None:
    """The v2 driver for real: on this machine's cgroup2 mount (without controllers, so
    no limits), a container joins, is listed, killed as a group and removed."""
    layout = parse_mountinfo(Path("/proc/self/mountinfo").read_text())
    if layout.v2_mount is None:
        pytest.skip("no cgroup2 mount on this machine")
    driver = V2Driver(layout.v2_mount)
    rt = Runtime(tmp_path / "pycompose-state", cgroups=driver, spawner=spawner)
    try:
        c = make(rt, lower, "v2", "/bin/sh", "-c", "sleep 30 & sleep 30")
        pid = c.start()
        path = driver.paths(c.id)[0]
        assert path.parent.name == "pycompose" and pid in driver.procs(c.id)
        deadline = time.monotonic() + 5
        while len(driver.procs(c.id)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(c.top()) == 2
        assert c.exec(["cat", "/proc/self/cgroup"]).stdout.decode().endswith("0::/\n")
        driver.kill_all(c.id)
        assert c.wait(5) == 137
        c.delete()
        assert not path.exists()
    finally:
        for cid in rt.list():
            rt.delete(cid, force=True)
