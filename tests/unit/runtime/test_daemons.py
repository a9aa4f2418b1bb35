"""The shared lifecycle of our detached daemons: start, alive, terminate (SIGTERM, then
SIGKILL), reap, and the /proc and log helpers the pid-file checks rest on."""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from orchestrator.runtime import daemons
from orchestrator.runtime.daemons import Children


@pytest.fixture
def children() -> Iterator[Children]:
    """A Children whose leftovers are killed and reaped whatever the test did."""
    kids = Children(stop_timeout=0.3, poll=0.01)
    started: list[int] = []
    original = kids.start

    def start(command: Sequence[str], log: Path, *, stdout_to_log: bool) -> int:
        pid = original(command, log, stdout_to_log=stdout_to_log)
        started.append(pid)
        return pid

    kids.start = start  # type: ignore[method-assign]
    yield kids
    for pid in started:
        if kids.alive(pid):
            os.kill(pid, signal.SIGKILL)
        kids.reap(pid)


def _wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_start_detaches_and_logs_stdout(children: Children, tmp_path: Path) -> None:
    log = tmp_path / "d.log"
    pid = children.start(["sh", "-c", "echo out; echo err >&2; exec sleep 30"], log,
                         stdout_to_log=True)
    _wait_for(lambda: "out" in log.read_text() and "err" in log.read_text())
    assert children.alive(pid)
    assert os.getsid(pid) == pid  # its own session: the CLI's terminal passes it by
    assert os.readlink(f"/proc/{pid}/cwd") == "/"


def test_stdout_not_logged_when_not_asked(children: Children, tmp_path: Path) -> None:
    log = tmp_path / "d.log"
    pid = children.start(["sh", "-c", "echo out; echo err >&2; exec sleep 30"], log,
                         stdout_to_log=False)
    _wait_for(lambda: "err" in log.read_text())
    assert "out" not in log.read_text()
    children.terminate(pid)


def test_start_puts_this_package_on_pythonpath(children: Children, tmp_path: Path) -> None:
    log = tmp_path / "d.log"
    pid = children.start(["sh", "-c", 'echo "$PYTHONPATH"'], log, stdout_to_log=True)
    _wait_for(lambda: not children.alive(pid))
    root = str(Path(daemons.__file__).resolve().parents[2])
    assert log.read_text().split(os.pathsep)[0].strip() == root


def test_start_failure_is_oserror(children: Children, tmp_path: Path) -> None:
    with pytest.raises(OSError):
        children.start([str(tmp_path / "missing")], tmp_path / "d.log", stdout_to_log=True)


def test_terminate_stops_a_cooperative_child_and_reaps_it(
    children: Children, tmp_path: Path
) -> None:
    pid = children.start(["sleep", "30"], tmp_path / "d.log", stdout_to_log=False)
    assert children.alive(pid)
    began = time.monotonic()
    children.terminate(pid)
    assert time.monotonic() - began < 0.3  # SIGTERM was enough: no wait for the timeout
    assert not children.alive(pid)
    assert daemons.process_state(pid) is None  # reaped: not even a zombie is left


def test_terminate_kills_a_child_that_ignores_sigterm(
    children: Children, tmp_path: Path
) -> None:
    log = tmp_path / "d.log"
    pid = children.start(["sh", "-c", "trap '' TERM; echo ready; exec sleep 30"], log,
                         stdout_to_log=True)
    _wait_for(lambda: "ready" in log.read_text())
    began = time.monotonic()
    children.terminate(pid)
    # it outlived SIGTERM for the whole stop timeout, then SIGKILL ended it
    assert time.monotonic() - began >= children.stop_timeout
    assert not children.alive(pid)
    assert daemons.process_state(pid) is None


def test_a_zombie_of_another_parent_counts_as_dead(children: Children) -> None:
    """A pid found in a file that is not our child: /proc decides, and a zombie is dead."""
    other = subprocess.Popen(["sleep", "30"])
    try:
        assert children.alive(other.pid)
        children.terminate(other.pid)  # returns once it is a zombie, not after 2.3 s
        assert daemons.process_state(other.pid) == "Z"
        assert not children.alive(other.pid)
    finally:
        other.kill()
        other.wait()


def test_alive_and_running_forget_a_child_that_exited(
    children: Children, tmp_path: Path
) -> None:
    pid = children.start(["true"], tmp_path / "d.log", stdout_to_log=False)
    _wait_for(lambda: not children.alive(pid))
    assert daemons.process_state(pid) is None  # poll() reaped it
    assert children.running(pid, "true") is None


def test_running_checks_the_pid_and_the_cmdline(children: Children, tmp_path: Path) -> None:
    pid = children.start(["sleep", "30"], tmp_path / "d.log", stdout_to_log=False)
    assert children.running(pid, "sleep", "30") == pid
    assert children.running(pid, "sleep", "31") is None  # a reused pid: not ours
    for value in (None, True, 0, -1, "12", str(pid), float(pid)):
        assert children.running(value, "sleep") is None
    children.terminate(pid)
    assert children.running(pid, "sleep") is None


def test_process_state_and_cmdline_of_a_dead_pid() -> None:
    process = subprocess.Popen(["true"])
    process.wait()  # reaped: the pid names no process now
    assert daemons.process_state(process.pid) is None
    assert daemons.cmdline(process.pid) == []
    assert not daemons.runs_with(process.pid)


def test_process_state_of_a_live_process() -> None:
    assert daemons.process_state(os.getpid()) in ("R", "S")
    assert daemons.runs_with(os.getpid())


def test_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "d.log"
    assert daemons.log_tail(log) == ""  # no file
    log.write_text("\n  \n")
    assert daemons.log_tail(log) == ""  # only blank lines
    log.write_text("".join(f"line {i}\n\n" for i in range(1, 9)))
    assert daemons.log_tail(log) == ":\nline 4\nline 5\nline 6\nline 7\nline 8"
    assert daemons.log_tail(log, lines=2) == ":\nline 7\nline 8"


def test_unlink_quietly(tmp_path: Path) -> None:
    present = tmp_path / "a"
    present.write_text("x")
    daemons.unlink_quietly(present, tmp_path / "missing")
    assert not present.exists()


def test_configure_logging_sends_everything_to_the_file(tmp_path: Path) -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    log = tmp_path / "d.log"
    try:
        daemons.configure_logging(log)
        logging.getLogger("orchestrator.test").info("hello %d", 42)
        assert len(root.handlers) == 1
        assert root.level == logging.INFO
        root.handlers[0].flush()
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    assert log.read_text().rstrip().endswith("INFO orchestrator.test: hello 42")


class _Refused(Exception):
    pass


def test_directory_lock_is_exclusive_and_made_if_missing(tmp_path: Path) -> None:
    state = tmp_path / "a" / "b"
    with daemons.directory_lock(state, _Refused):
        assert state.is_dir()
        fd = os.open(state, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    fd = os.open(state, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released on leaving the block
    finally:
        os.close(fd)


def test_directory_lock_maps_an_unusable_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")

    def refuse(exc: OSError) -> Exception:
        return _Refused(f"cannot use {blocker}: {exc.strerror}")

    with (
        pytest.raises(_Refused, match=r"cannot use .*file: ") as caught,
        daemons.directory_lock(blocker, refuse),
    ):
        pass
    assert isinstance(caught.value.__cause__, OSError)
