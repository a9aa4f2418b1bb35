"""The DNS daemon: ``python -m orchestrator.runtime.dns.daemon --state-dir D [--port N]``.

One long-lived process serves every listener of a state directory. It outlives the command
that started it and is driven only through files and signals, so any later command finds it:

- ``records.json``  written by ``DnsService``: ``{"generation": n, "records": {...}}``,
                    replaced atomically
- ``dns.pid``       written by the daemon when it starts
- ``status.json``   written by the daemon: the generation it serves, each listener's bind
                    error (or null), the host resolvers it forwards to
- ``dns.log``       its log (stdout and stderr land there too)

SIGHUP: re-read the records (a missing file means stop). SIGTERM/SIGINT: close and exit.
The host's resolvers are read from ``/etc/resolv.conf`` once, at start: the file a
container sees is written from the same source, and a restart picks up a change.

The file formats are in ``state.py``, shared with the service (which must not import this
module: ``python -m`` would then find it imported twice).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path
from typing import Any

from orchestrator.runtime.daemons import configure_logging
from orchestrator.runtime.dns.records import Records, parse_server
from orchestrator.runtime.dns.server import DnsServer
from orchestrator.runtime.dns.state import (
    StateFiles,
    read_json,
    records_from_file,
    write_json_atomic,
)

log = logging.getLogger("orchestrator.runtime.dns.daemon")

RESOLV_CONF = "/etc/resolv.conf"
FALLBACK_RESOLVER = "127.0.0.1"


def parse_resolv_conf(text: str) -> tuple[str, ...]:
    """The ``nameserver`` addresses of a resolv.conf; ``127.0.0.1`` when there is none,
    as the C library does."""
    servers: list[str] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            try:
                parse_server(fields[1])
            except ValueError:
                continue  # not an address: the C library ignores such lines too
            servers.append(fields[1])
    return tuple(servers) or (FALLBACK_RESOLVER,)


def host_resolvers(path: str = RESOLV_CONF) -> tuple[str, ...]:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return (FALLBACK_RESOLVER,)
    return parse_resolv_conf(text)


class DnsDaemon:
    """The process's main object: reads the files, drives the server, writes the status."""

    def __init__(self, state_dir: Path, *, port: int = 53,
                 resolv_conf: str = RESOLV_CONF) -> None:
        self.files = StateFiles(state_dir)
        self.resolvers = host_resolvers(resolv_conf)
        self.server = DnsServer(self.resolvers, port=port)
        self._generation = 0
        self._error = ""
        self._reload: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None

    def request_reload(self) -> None:
        if self._reload is not None:
            self._reload.set()

    def request_stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    async def run(self, *, install_signals: bool = False) -> int:
        """Serve until ``request_stop`` (SIGTERM) or the records file is removed."""
        self._reload = asyncio.Event()
        self._stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        handlers = {signal.SIGHUP: self.request_reload, signal.SIGTERM: self.request_stop,
                    signal.SIGINT: self.request_stop} if install_signals else {}
        for signum, handler in handlers.items():
            loop.add_signal_handler(signum, handler)
        write_json_atomic(self.files.pid, os.getpid())
        log.info("forwarding to the host's resolvers %s", ", ".join(self.resolvers))
        try:
            if not await self._load():
                return 2
            while not self._stop.is_set():
                waiters = {asyncio.ensure_future(self._reload.wait()),
                           asyncio.ensure_future(self._stop.wait())}
                _, pending = await asyncio.wait(waiters, return_when="FIRST_COMPLETED")
                for waiter in pending:
                    waiter.cancel()
                if self._reload.is_set() and not self._stop.is_set():
                    self._reload.clear()
                    if not await self._load():
                        break
            return 0
        finally:
            for signum in handlers:
                loop.remove_signal_handler(signum)
            await self.server.close()
            self._remove_own_files()
            log.info("stopped")

    async def _load(self) -> bool:
        """Apply the records file; False when there is nothing left to serve."""
        data = read_json(self.files.records)
        if data is None and not self.files.records.exists():
            log.info("records file removed; stopping")
            return False
        try:
            generation, records = records_from_file(data)
        except ValueError as exc:
            # keep serving what we have; the service rewrites the file whole
            self._error = f"invalid records file {self.files.records}: {exc}"
            log.error("%s", self._error)
            self._write_status({})
            return self._generation > 0
        self._error = ""
        errors = await self.server.apply(records)
        self._generation = generation
        self._write_status({a: e.to_json() for a, e in errors.items()}, records)
        log.info("serving generation %d: %d listeners, %d zones, %d clients", generation,
                 len(records.listeners), len(records.zones), len(records.clients))
        return True

    def _write_status(self, errors: dict[str, Any], records: Records | None = None) -> None:
        listeners = self.server.addresses if records is None else records.listeners
        status = {
            "pid": os.getpid(),
            "generation": self._generation,
            "listeners": {a: errors.get(a) for a in listeners},
            "resolvers": list(self.resolvers),
            "error": self._error,
        }
        try:
            write_json_atomic(self.files.status, status)
        except OSError as exc:
            log.error("cannot write %s: %s", self.files.status, exc)

    def _remove_own_files(self) -> None:
        """Leave the pid and status files only if a newer daemon has not taken them over."""
        if read_json(self.files.pid) == os.getpid():
            for path in (self.files.status, self.files.pid):
                with contextlib.suppress(OSError):
                    path.unlink()


# ---------------------------------------------------------------- command line


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m orchestrator.runtime.dns.daemon",
        description="Serve container DNS names (started by DnsService, not by hand).",
    )
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--port", type=int, default=53)
    parser.add_argument("--resolv-conf", default=RESOLV_CONF,
                        help="where the host's resolvers are read from (once, at start)")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"invalid port {args.port}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point of the daemon process; its exit status."""
    args = _parse(argv)
    state_dir = Path(args.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    files = StateFiles(state_dir)
    configure_logging(files.log)
    log.info("starting (pid %d, port %d)", os.getpid(), args.port)
    daemon = DnsDaemon(state_dir, port=args.port, resolv_conf=args.resolv_conf)
    try:
        return asyncio.run(daemon.run(install_signals=True))
    except Exception:
        log.exception("the DNS daemon crashed")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
