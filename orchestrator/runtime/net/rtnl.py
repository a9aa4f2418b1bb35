"""A few rtnetlink requests, packed by hand: the ones every container start makes.

pyroute2 runs each request through an asyncio loop of its own and builds messages from
generic descriptions: about 0.3 ms a request, 0.3 ms more to open a socket. A container
start needs eight of them (loopback up; the veth pair; inside, its index, address, link
and default route), so the hot path packs its messages here (tens of microseconds each)
and the rest of ``links.py`` keeps pyroute2 for what is rare (bridges, dumps).

Every request asks for an acknowledgement; a kernel error is raised as ``OSError`` with
its errno (``links.py`` maps them), nothing else escapes.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterator
from ipaddress import IPv4Address

NETLINK_ROUTE = 0
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_NEWROUTE = 20, 24
IFF_UP = 0x1
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = 1, 3, 10, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1

_HEADER = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")  # ifaddrmsg: family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # rtmsg
_ATTR = struct.Struct("=HH")  # nlattr: len, type


def attr(kind: int, payload: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    size = _ATTR.size + len(payload)
    return _ATTR.pack(size, kind) + payload + b"\0" * (-size & 3)


def _name(text: str) -> bytes:
    return text.encode() + b"\0"


def _mac(text: str) -> bytes:
    return bytes(int(part, 16) for part in text.split(":"))


def ifinfo(index: int = 0, *, up: bool = False) -> bytes:
    return _IFINFO.pack(socket.AF_UNSPEC, 0, index, IFF_UP if up else 0, IFF_UP if up else 0)


def veth_message(host: str, peer: str, netns_fd: int, mac: str, master: int) -> bytes:
    """RTM_NEWLINK body: ``host`` up and enslaved to ``master``, its peer ``peer`` born in
    the namespace of ``netns_fd`` with ``mac``."""
    peer_info = ifinfo() + attr(IFLA_IFNAME, _name(peer)) + attr(
        IFLA_NET_NS_FD, struct.pack("=I", netns_fd)
    ) + attr(IFLA_ADDRESS, _mac(mac))
    linkinfo = attr(IFLA_INFO_KIND, b"veth") + attr(
        IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer_info)
    )
    return (
        ifinfo(up=True)
        + attr(IFLA_IFNAME, _name(host))
        + attr(IFLA_MASTER, struct.pack("=I", master))
        + attr(IFLA_LINKINFO, linkinfo)
    )


def address_message(index: int, address: str, prefixlen: int) -> bytes:
    packed = IPv4Address(address).packed
    return (
        _IFADDR.pack(socket.AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, index)
        + attr(IFA_LOCAL, packed)
        + attr(IFA_ADDRESS, packed)
    )


def default_route_message(gateway: str, oif: int) -> bytes:
    head = _RTMSG.pack(
        socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0
    )
    return head + attr(RTA_GATEWAY, IPv4Address(gateway).packed) + attr(
        RTA_OIF, struct.pack("=I", oif)
    )


def _messages(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(type, seq, body) of each message of one datagram."""
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, _, seq, _ = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size:
            return
        yield kind, seq, data[offset + _HEADER.size : offset + length]
        offset += (length + 3) & ~3


class Rtnl:
    """One rtnetlink socket of the calling thread's network namespace (the namespace is
    fixed when the socket is made: it may then be used from any thread)."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        try:
            self._sock.bind((0, 0))
        except OSError:
            self._sock.close()
            raise
        self._seq = 0

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    def request(self, kind: int, body: bytes, flags: int = 0) -> list[bytes]:
        """Send one request and read until its acknowledgement; the bodies of the replies
        before it (a GET's answer). OSError(errno) when the kernel refuses."""
        self._seq += 1
        seq = self._seq
        header = _HEADER.pack(_HEADER.size + len(body), kind, NLM_F_REQUEST | NLM_F_ACK | flags,
                              seq, 0)
        self._sock.send(header + body)
        replies: list[bytes] = []
        while True:
            data = self._sock.recv(65536)
            for got, got_seq, payload in _messages(data):
                if got_seq != seq:
                    continue
                if got == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", payload)[0] if len(payload) >= 4 else 0
                    if code:
                        raise OSError(code, os.strerror(code))
                    return replies
                if got == NLMSG_DONE:
                    return replies
                replies.append(payload)

    def index(self, name: str) -> int:
        """The index of interface ``name``; OSError(ENODEV) when there is none."""
        replies = self.request(RTM_GETLINK, ifinfo() + attr(IFLA_IFNAME, _name(name)))
        if not replies:
            raise OSError(errno.ENODEV, f"no interface {name}")
        return int(_IFINFO.unpack_from(replies[0])[2])

    def set_up(self, index: int) -> None:
        self.request(RTM_NEWLINK, ifinfo(index, up=True))

    def add_veth(self, host: str, peer: str, netns_fd: int, mac: str, master: int) -> None:
        self.request(RTM_NEWLINK, veth_message(host, peer, netns_fd, mac, master),
                     NLM_F_CREATE | NLM_F_EXCL)

    def delete(self, name: str) -> None:
        self.request(RTM_DELLINK, ifinfo() + attr(IFLA_IFNAME, _name(name)))

    def add_address(self, index: int, address: str, prefixlen: int) -> None:
        self.request(RTM_NEWADDR, address_message(index, address, prefixlen),
                     NLM_F_CREATE | NLM_F_EXCL)

    def replace_default_route(self, gateway: str, oif: int) -> None:
        self.request(RTM_NEWROUTE, default_route_message(gateway, oif),
                     NLM_F_CREATE | NLM_F_REPLACE)
