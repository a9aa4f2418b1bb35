"""The container API: create, start, state, kill, stop, wait, exec, top, logs, delete.

A :class:`Runtime` owns a root directory (given by the caller) with one directory per
container: ``state.json`` (schema-versioned, atomic), the spawner's config, the overlay's
``upper``/``work`` dirs, the ``rootfs`` mount point (the overlay is mounted inside the
container's own mount namespace, so no host mount exists to leak), the JSON-lines log
and the ``exit`` record the shim writes.

Everything privileged and order-sensitive happens in the C spawner (see spawner.c);
Python only prepares files and cgroups, starts the spawner and reads results back, so
no Python runs inside a container and the threaded caller is never forked into one.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from orchestrator.errors import Conflict, NotFound, RuntimeFailure, WaitTimeout
from orchestrator.runtime import atomic, spawnconf
from orchestrator.runtime import logs as logfiles
from orchestrator.runtime import state as disk
from orchestrator.runtime.cgroups import CgroupDriver, Stats, detect
from orchestrator.runtime.config import ContainerConfig, User
from orchestrator.runtime.spawner import ensure_spawner

SHIM_NAME = "pycompose-shim"
_MNT_DETACH = 2


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


@dataclass(frozen=True)
class HealthStatus:
    """What the shim's healthcheck runner last wrote: ``starting`` until a probe passes
    (or enough fail), then ``healthy`` or ``unhealthy``."""

    status: str
    failing_streak: int
    last_exit_code: int | None
    updated_at: float


def parse_health(text: str) -> HealthStatus | None:
    """``"<status> <streak> <last code> <unix ns>"``; None when absent or torn."""
    parts = text.split()
    if len(parts) != 4 or parts[0] not in ("starting", "healthy", "unhealthy"):
        return None
    try:
        streak, code, stamp = int(parts[1]), int(parts[2]), int(parts[3])
    except ValueError:
        return None
    return HealthStatus(parts[0], streak, None if code < 0 else code, stamp / 1e9)


@dataclass(frozen=True)
class ProcessInfo:
    """One process of a container, as seen from the host."""

    pid: int
    ppid: int
    uid: int
    state: str
    command: str


def _shim_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return False
    return comm == SHIM_NAME and disk.is_alive(pid, None)


class Runtime:
    """Containers under ``root``; the cgroup driver and spawner are detected/built when
    not given."""

    def __init__(
        self,
        root: Path,
        cgroups: CgroupDriver | None = None,
        spawner: Path | None = None,
    ) -> None:
        self.root = root
        self.cgroups = cgroups or detect()
        self.spawner = spawner or ensure_spawner()

    def _bundle(self, container_id: str) -> spawnconf.Bundle:
        if "/" in container_id or container_id in ("", ".", ".."):
            raise NotFound(f"no container {container_id!r}")
        return spawnconf.Bundle(self.root / container_id)

    def create(self, config: ContainerConfig) -> Container:
        """Prepare everything up to the exec: dirs, cgroup with limits, spawner config."""
        bundle = self._bundle(config.id)
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            bundle.directory.mkdir(mode=0o711)
        except FileExistsError as exc:
            raise Conflict(f"container {config.id} already exists") from exc
        try:
            for d in (bundle.upper, bundle.work, bundle.rootfs):
                d.mkdir(mode=0o755)
            self.cgroups.create(config.id, config.resources)
            conf = spawnconf.run_config(config, bundle, self.cgroups.paths(config.id))
            atomic.write_atomic(bundle.spawn_config, conf)
            if config.healthcheck is not None:
                # the shim runs it with the container's pid given on its command line
                probe = spawnconf.exec_config(
                    config, 0, self.cgroups.paths(config.id), config.healthcheck.command
                )
                atomic.write_atomic(bundle.health_config, probe)
            record = disk.Record(
                id=config.id,
                created_at=time.time(),
                config=config.to_json(),
                cgroup_version=self.cgroups.version,
            )
            disk.save(bundle.state_file, record)
        except BaseException:
            self.delete(config.id, force=True)
            raise
        return Container(self, config, record)

    def get(self, container_id: str) -> Container:
        bundle = self._bundle(container_id)
        try:
            record = disk.load(bundle.state_file)
        except FileNotFoundError as exc:
            raise NotFound(f"no container {container_id}") from exc
        return Container(self, ContainerConfig.from_json(record.config), record)

    def list(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "state.json").exists())

    def delete(self, container_id: str, force: bool = False) -> None:
        """Tear down whatever is left of a container, in an order that a later call can
        finish if this one is interrupted: processes and cgroup, shim, mounts, files, and
        the state file last. Deleting a missing container does nothing."""
        bundle = self._bundle(container_id)
        record: disk.Record | None = None
        with contextlib.suppress(FileNotFoundError, RuntimeFailure):
            record = disk.load(bundle.state_file)
        if record is not None and not force:
            current = Container(self, ContainerConfig.from_json(record.config), record)
            if current.state().status == "running":
                raise Conflict(f"container {container_id} is running: stop it or force")
        self.cgroups.remove(container_id)
        shim = record.shim_pid if record else None
        deadline = time.monotonic() + 5
        while _shim_alive(shim) and time.monotonic() < deadline:
            time.sleep(0.005)
        if shim and _shim_alive(shim):
            with contextlib.suppress(ProcessLookupError):
                os.kill(shim, signal.SIGKILL)
        _unmount_under(bundle.directory)
        if not bundle.directory.exists():
            return
        for child in bundle.directory.iterdir():
            if child.name == bundle.state_file.name:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink(missing_ok=True)
        bundle.state_file.unlink(missing_ok=True)
        with contextlib.suppress(FileNotFoundError):
            bundle.directory.rmdir()


def _unmount_under(directory: Path) -> None:
    """Detach any mount at or below ``directory`` (none exist in normal operation: this
    finishes after a crash of a version or a caller that mounted on the host)."""
    prefix = str(directory)
    targets: list[str] = []
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 4:
            point = fields[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                targets.append(point)
    libc = ctypes.CDLL(None, use_errno=True)
    for point in sorted(targets, key=len, reverse=True):
        if libc.umount2(point.encode(), _MNT_DETACH) != 0:
            err = ctypes.get_errno()
            if err not in (22, 2):  # EINVAL (not a mount any more), ENOENT
                raise RuntimeFailure(f"cannot unmount {point}: {os.strerror(err)}")


class Container:
    """One container of a :class:`Runtime`."""

    def __init__(self, runtime: Runtime, config: ContainerConfig, record: disk.Record) -> None:
        self.runtime = runtime
        self.config = config
        self._record = record
        self.bundle = runtime._bundle(config.id)

    @property
    def id(self) -> str:
        return self.config.id

    # ---- state ----

    def _reload(self) -> disk.Record:
        try:
            self._record = disk.load(self.bundle.state_file)
        except FileNotFoundError as exc:
            raise NotFound(f"container {self.id} was deleted") from exc
        return self._record

    def _exit_record(self) -> disk.ExitRecord | None:
        try:
            return disk.parse_exit(self.bundle.exit_file.read_text())
        except FileNotFoundError:
            return None

    def state(self) -> disk.ContainerState:
        record = self._reload()
        alive = False
        if record.pid is not None:
            # the first process may be a zombie until the shim reaps it and writes exit
            alive = disk.is_alive(record.pid, record.pid_start_ticks) or _shim_alive(
                record.shim_pid
            )
        return disk.derive(record, self._exit_record(), alive)

    def health(self) -> HealthStatus | None:
        """The healthcheck's last status (None without a healthcheck or before a start)."""
        if self.config.healthcheck is None:
            return None
        try:
            return parse_health(self.bundle.health_file.read_text())
        except FileNotFoundError:
            return None

    def stats(self) -> Stats:
        return self.runtime.cgroups.stats(self.id)

    # ---- lifecycle ----

    def start(self) -> int:
        """Run the command; returns its host pid once it has exec'd. An exited container
        starts again with the same writable layer (what a restart policy needs)."""
        current = self.state()
        if current.status == "running":
            raise Conflict(f"container {self.id} is already running")
        self.bundle.exit_file.unlink(missing_ok=True)
        self.bundle.health_file.unlink(missing_ok=True)
        done = subprocess.run(
            [str(self.runtime.spawner), "run", str(self.bundle.spawn_config)],
            capture_output=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            message = done.stderr.decode(errors="replace").strip()
            raise RuntimeFailure(f"cannot start container {self.id}: {message}")
        try:
            pid_text, shim_text = done.stdout.split()
            pid, shim = int(pid_text), int(shim_text)
        except ValueError as exc:
            raise RuntimeFailure(f"spawner answered {done.stdout!r}") from exc
        record = replace(
            self._record,
            pid=pid,
            shim_pid=shim,
            pid_start_ticks=disk.start_ticks(pid),
            started_at=time.time(),
        )
        disk.save(self.bundle.state_file, record)
        self._record = record
        return pid

    def _running_pid(self) -> int:
        current = self.state()
        if current.status != "running" or current.pid is None:
            raise Conflict(f"container {self.id} is not running")
        return current.pid

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the first process (PID 1 inside: it ignores signals it has no
        handler for, as in Docker)."""
        pid = self._running_pid()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)

    def wait(self, timeout: float | None = None) -> int:
        """Block until the container has exited; its exit code (128+n when killed by n)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.002
        while True:
            current = self.state()
            if current.status != "running":
                return current.exit_code if current.exit_code is not None else -1
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(f"container {self.id} still running after {timeout}s")
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def stop(self, sig: int | None = None, grace: float | None = None) -> disk.ContainerState:
        """``sig`` (the config's stop signal), ``grace`` seconds, then SIGKILL to every
        process of the cgroup."""
        sig = self.config.stop_signal if sig is None else sig
        grace = self.config.stop_grace if grace is None else grace
        if self.state().status != "running":
            return self.state()
        with contextlib.suppress(Conflict):
            self.kill(sig)
        try:
            self.wait(grace)
        except WaitTimeout:
            self.runtime.cgroups.kill_all(self.id)
            self.wait(10)
        return self.state()

    def delete(self, force: bool = False) -> None:
        self.runtime.delete(self.id, force=force)

    # ---- inside a running container ----

    def exec(
        self,
        command: tuple[str, ...] | list[str],
        env: tuple[str, ...] = (),
        user: User | None = None,
        working_dir: str | None = None,
        timeout: float | None = None,
        stdin: bytes | None = None,
    ) -> ExecResult:
        """Run ``command`` in the container's namespaces and cgroup, with its identity,
        capabilities and env (``env`` entries override); returns code and output. On
        timeout the command is killed (it dies with the spawner) and WaitTimeout raised."""
        pid = self._running_pid()
        conf = spawnconf.exec_config(
            self.config,
            pid,
            self.runtime.cgroups.paths(self.id),
            tuple(command),
            env=env,
            user=user,
            working_dir=working_dir,
        )
        path = self.bundle.directory / f"exec-{secrets.token_hex(6)}.conf"
        atomic.write_atomic(path, conf)
        try:
            proc = subprocess.Popen(
                [str(self.runtime.spawner), "exec", str(path)],
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            try:
                out, err = proc.communicate(stdin, timeout=timeout)
            except subprocess.TimeoutExpired as exc:
                proc.kill()
                proc.communicate()
                raise WaitTimeout(f"exec in {self.id} still running after {timeout}s") from exc
        finally:
            path.unlink(missing_ok=True)
        return ExecResult(proc.returncode, out, err)

    def top(self) -> list[ProcessInfo]:
        """The container's processes (host pids), read from its cgroup."""
        out: list[ProcessInfo] = []
        for pid in self.runtime.cgroups.procs(self.id):
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                uid = Path(f"/proc/{pid}").stat().st_uid
            except OSError:
                continue  # exited meanwhile
            name = stat[stat.find("(") + 1 : stat.rfind(")")]
            fields = stat.rpartition(")")[2].split()
            command = cmdline.replace(b"\0", b" ").decode(errors="replace").strip() or f"[{name}]"
            out.append(ProcessInfo(pid, int(fields[1]), uid, fields[0], command))
        return out

    def logs(self, follow: bool = False, tail: int | None = None) -> Iterator[LogEntry]:
        """Records oldest first (the last ``tail``); with ``follow``, then new ones until
        the container has exited and its log is drained."""
        yield from logfiles.tail(self.bundle.log, tail)
        if follow:
            yield from logfiles.follow(
                self.bundle.log,
                done=lambda: self.state().status != "running",
                start_at_end=True,
            )


LogEntry = logfiles.LogEntry
