"""Netlink: bridges, veth pairs, addresses, routes and network namespaces, via pyroute2.

Everything here talks to the kernel directly (pyroute2's netlink sockets, ``setns`` and
``mount`` through libc, ``/proc/sys`` files); nothing shells out to ``ip``. pyroute2 is
imported by name at run time because it ships no type information: its objects are
``Any`` here and nowhere else.

Work inside a namespace runs in a short-lived thread that joined it (``setns`` and
``unshare(CLONE_NEWNET)`` act on the calling thread only), which costs a fraction of the
fork pyroute2's own ``netns=`` option would.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import functools
import importlib
import os
import socket
import threading
from collections.abc import Callable, Iterator
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any, TypeVar

from orchestrator.errors import RuntimeFailure
from orchestrator.runtime.net.rtnl import Rtnl

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MNT_DETACH = 2
LOOPBACK_INDEX = 1  # the kernel registers lo first in every namespace: no lookup needed


@functools.cache
def _pyroute2() -> Any:
    """pyroute2, imported on first use: its import costs 0.1-0.3 s, which every CLI command
    that loads the namespace backend would pay even when it touches no network."""
    return importlib.import_module("pyroute2")


def _netlink_error() -> type[Exception]:
    return importlib.import_module("pyroute2.netlink.exceptions").NetlinkError  # type: ignore[no-any-return]
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


@contextlib.contextmanager
def _netlink(what: str) -> Iterator[Any]:
    """An IPRoute of the calling thread's namespace; netlink errors become RuntimeFailure."""
    try:
        with _pyroute2().IPRoute() as ipr:
            yield ipr
    except _netlink_error() as exc:
        raise RuntimeFailure(f"{what}: {exc}") from exc


def _code(exc: BaseException) -> int | None:
    cause = exc.__cause__
    return getattr(cause, "code", None) if cause is not None else None


def _in_thread(fn: Callable[[], T]) -> T:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed back to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=run, name="pycompose-netns")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


def in_netns(path: str | Path, fn: Callable[[], T]) -> T:
    """Run ``fn`` in a thread that joined the namespace bound at ``path``."""

    def joined() -> T:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise RuntimeFailure(f"cannot open network namespace {path}: {exc}") from exc
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise RuntimeFailure(f"setns {path}: {os.strerror(err)}")
        finally:
            os.close(fd)
        return fn()

    return _in_thread(joined)


def is_netns(path: str | Path) -> bool:
    """``path`` is a bind mount of a network namespace (nsfs files share one device)."""
    try:
        return os.stat(path).st_dev == os.stat("/proc/self/ns/net").st_dev
    except OSError:
        return False


def create_netns(path: Path) -> None:
    """A new network namespace kept alive by a bind mount on ``path``, loopback up.
    An existing one is left as it is."""
    if is_netns(path):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o444, exist_ok=True)

    def make() -> None:
        if _libc.unshare(CLONE_NEWNET) != 0:
            raise RuntimeFailure(f"unshare(CLONE_NEWNET): {os.strerror(ctypes.get_errno())}")
        source = b"/proc/thread-self/ns/net"
        if _libc.mount(source, os.fsencode(path), b"none", MS_BIND, None) != 0:
            raise RuntimeFailure(f"bind mount on {path}: {os.strerror(ctypes.get_errno())}")
        try:
            with Rtnl() as nl:
                nl.set_up(LOOPBACK_INDEX)
        except OSError as exc:
            raise _rtnl_failure("bring up lo", exc) from exc

    try:
        _in_thread(make)
    except BaseException:
        remove_netns(path)
        raise


def remove_netns(path: Path) -> None:
    """Unmount and unlink; a missing namespace is fine."""
    while is_netns(path):
        if _libc.umount2(os.fsencode(path), MNT_DETACH) != 0:
            err = ctypes.get_errno()
            if err == errno.EINVAL:  # not a mount point any more
                break
            raise RuntimeFailure(f"umount {path}: {os.strerror(err)}")
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def write_sysctl(key: str, value: str) -> None:
    """``net.ipv4.ip_forward`` style key, written through /proc/sys (only when it differs)."""
    target = Path("/proc/sys") / key.replace(".", "/")
    try:
        if target.read_text().strip() != value:
            target.write_text(value)
    except OSError as exc:
        raise RuntimeFailure(f"cannot set {key}={value}: {exc}") from exc


def link_exists(name: str) -> bool:
    with _netlink(f"look up {name}") as ipr:
        return bool(ipr.link_lookup(ifname=name))


def ensure_bridge(name: str, gateway: str, prefixlen: int) -> None:
    """The bridge, with the gateway address, up; created when missing (idempotent)."""
    with _netlink(f"create bridge {name}") as ipr:
        found = ipr.link_lookup(ifname=name)
        if not found:
            try:
                # a MAC of its own: without one the bridge takes its lowest port's, which
                # changes as veths come and go and leaves containers' ARP entries for the
                # gateway stale for seconds (DNS and NAT time out meanwhile)
                mac = "02:" + ":".join(f"{b:02x}" for b in os.urandom(5))
                ipr.link("add", ifname=name, kind="bridge", address=mac)
            except _netlink_error() as exc:
                if getattr(exc, "code", None) != errno.EEXIST:
                    raise
            found = ipr.link_lookup(ifname=name)
        index = found[0]
        have = {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=index, family=socket.AF_INET)}
        if gateway not in have:
            ipr.addr("add", index=index, address=gateway, prefixlen=prefixlen)
        ipr.link("set", index=index, state="up")
    # 127.0.0.1 → container DNAT: the kernel drops loopback sources leaving an interface
    # unless route_localnet allows them on it
    write_sysctl(f"net.ipv4.conf.{name}.route_localnet", "1")


def delete_link(name: str) -> None:
    """Remove an interface (a veth takes its peer along); a missing one is fine."""
    with _netlink(f"delete {name}") as ipr:
        found = ipr.link_lookup(ifname=name)
        if found:
            try:
                ipr.link("del", index=found[0])
            except _netlink_error() as exc:
                if getattr(exc, "code", None) != errno.ENODEV:
                    raise


def _rtnl_failure(what: str, exc: OSError) -> RuntimeFailure:
    failure = RuntimeFailure(f"{what}: {exc.strerror or exc}")
    failure.__cause__ = exc
    return failure


def add_endpoint(
    host_name: str,
    bridge: str,
    netns: str,
    ifname: str,
    mac: str,
    address: str,
    prefixlen: int,
    gateway: str | None,
) -> None:
    """A veth pair: ``host_name`` enslaved to ``bridge`` and up, its peer born inside the
    namespace as ``ifname`` with ``mac`` (so no name clash on the host side), and there
    the address, the link up and a default route via ``gateway`` when one is given.

    The hot path of every container start, so its requests are ``rtnl``'s (hand-packed);
    the host side is two of them: the bridge's index, then one RTM_NEWLINK that makes the
    pair, sets the master and brings it up (a leftover of a crash is only removed when the
    name turns out to be taken)."""
    try:
        with Rtnl() as nl:
            try:
                master = nl.index(bridge)
            except OSError as exc:
                if exc.errno == errno.ENODEV:
                    raise RuntimeFailure(f"bridge {bridge} is missing") from exc
                raise
            fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                try:
                    nl.add_veth(host_name, ifname, fd, mac, master)
                except FileExistsError:
                    nl.delete(host_name)  # a leftover of a crash: start clean
                    nl.add_veth(host_name, ifname, fd, mac, master)
            finally:
                os.close(fd)
    except OSError as exc:
        raise _rtnl_failure(f"create veth {host_name}", exc) from exc

    def work() -> None:
        try:
            with Rtnl() as nl:
                index = nl.index(ifname)
                nl.add_address(index, address, prefixlen)
                nl.set_up(index)
                if gateway is not None:
                    nl.replace_default_route(gateway, index)
        except OSError as exc:
            raise _rtnl_failure(f"configure {ifname} in {netns}", exc) from exc

    in_netns(netns, work)


def set_default_route(netns: str, ifname: str, gateway: str) -> None:
    """Point the namespace's default route at ``gateway`` through ``ifname``."""

    def work() -> None:
        with _netlink(f"default route in {netns}") as ipr:
            index = ipr.link_lookup(ifname=ifname)[0]
            ipr.route("replace", dst="0.0.0.0/0", gateway=gateway, oif=index)

    in_netns(netns, work)


def netns_links(netns: str) -> list[str]:
    """Interface names inside the namespace."""

    def work() -> list[str]:
        with _netlink(f"list links of {netns}") as ipr:
            return [str(link.get_attr("IFLA_IFNAME")) for link in ipr.get_links()]

    return in_netns(netns, work)


def host_routes() -> list[IPv4Network]:
    """Destinations of the host's IPv4 routes in the main table (the default one excluded):
    an automatic subnet must overlap none of them."""
    result: list[IPv4Network] = []
    with _netlink("list routes") as ipr:
        for route in ipr.get_routes(family=socket.AF_INET, table=254):
            dst = route.get_attr("RTA_DST")
            length = int(route["dst_len"])
            if dst and length > 0:
                result.append(IPv4Network(f"{dst}/{length}", strict=False))
    return result


def host_addresses() -> list[str]:
    """Every IPv4 address of the host's interfaces."""
    with _netlink("list addresses") as ipr:
        return [str(a.get_attr("IFA_ADDRESS")) for a in ipr.get_addr(family=socket.AF_INET)]


def links_with_prefix(prefix: str) -> list[str]:
    """Host interface names starting with ``prefix`` (what tests and cleanup look for)."""
    with _netlink("list links") as ipr:
        names = [str(link.get_attr("IFLA_IFNAME")) for link in ipr.get_links()]
    return [n for n in names if n.startswith(prefix)]
