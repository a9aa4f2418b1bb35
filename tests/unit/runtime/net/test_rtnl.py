"""The hand-packed rtnetlink messages of the start path: byte layouts as the kernel reads
them (checked by parsing them back), and the reply loop against a scripted socket."""

from __future__ import annotations

import errno
import socket
import struct
from typing import Any

import pytest

from orchestrator.runtime.net import rtnl


def attrs(data: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    offset = 0
    while offset + 4 <= len(data):
        size, kind = struct.unpack_from("=HH", data, offset)
        out[kind] = data[offset + 4 : offset + size]
        offset += (size + 3) & ~3
    return out


def test_attributes_are_padded_to_four_bytes() -> None:
    packed = rtnl.attr(3, b"eth0\0")
    assert len(packed) == 12 and packed[:4] == struct.pack("=HH", 9, 3)
    assert packed[9:] == b"\0\0\0"


def test_veth_message_enslaves_brings_up_and_places_the_peer() -> None:
    body = rtnl.veth_message("pcvabc", "eth1", 7, "02:5c:0a:00:00:05", master=42)
    family, _, index, flags, change = struct.unpack_from("=BxHiII", body)
    assert (family, index, flags & rtnl.IFF_UP, change & rtnl.IFF_UP) == (0, 0, 1, 1)
    top = attrs(body[16:])
    assert top[rtnl.IFLA_IFNAME] == b"pcvabc\0"
    assert struct.unpack("=I", top[rtnl.IFLA_MASTER]) == (42,)
    info = attrs(top[rtnl.IFLA_LINKINFO])
    assert info[rtnl.IFLA_INFO_KIND] == b"veth"
    peer = attrs(info[rtnl.IFLA_INFO_DATA])[rtnl.VETH_INFO_PEER]
    peer_attrs = attrs(peer[16:])
    assert peer_attrs[rtnl.IFLA_IFNAME] == b"eth1\0"
    assert struct.unpack("=I", peer_attrs[rtnl.IFLA_NET_NS_FD]) == (7,)
    assert peer_attrs[rtnl.IFLA_ADDRESS] == bytes([2, 0x5C, 10, 0, 0, 5])


def test_address_and_default_route_messages() -> None:
    body = rtnl.address_message(3, "10.89.0.7", 24)
    assert struct.unpack_from("=BBBBI", body) == (socket.AF_INET, 24, 0, 0, 3)
    found = attrs(body[8:])
    assert found[rtnl.IFA_LOCAL] == found[rtnl.IFA_ADDRESS] == bytes([10, 89, 0, 7])
    route = rtnl.default_route_message("10.89.0.1", 3)
    family, dst_len, _, _, table, _, _, kind, _ = struct.unpack_from("=BBBBBBBBI", route)
    assert (family, dst_len, table, kind) == (socket.AF_INET, 0, 254, rtnl.RTN_UNICAST)
    found = attrs(route[12:])
    assert found[rtnl.RTA_GATEWAY] == bytes([10, 89, 0, 1])
    assert struct.unpack("=I", found[rtnl.RTA_OIF]) == (3,)


class ScriptedSocket:
    """Answers each send with the datagrams a test gives, numbered like the request."""

    def __init__(self, answers: list[list[tuple[int, bytes]]]) -> None:
        self.answers = answers
        self.sent: list[bytes] = []
        self.pending: list[bytes] = []

    def send(self, data: bytes) -> int:
        self.sent.append(data)
        seq = struct.unpack_from("=IHHII", data)[3]
        for kind, body in self.answers.pop(0):
            header = struct.pack("=IHHII", 16 + len(body), kind, 0, seq, 0)
            self.pending.append(header + body)
        return len(data)

    def recv(self, size: int) -> bytes:
        return self.pending.pop(0)

    def close(self) -> None:
        pass


def scripted(monkeypatch: pytest.MonkeyPatch, answers: list[list[tuple[int, bytes]]]) -> Any:
    fake = ScriptedSocket(answers)
    nl = rtnl.Rtnl.__new__(rtnl.Rtnl)
    nl._sock = fake  # type: ignore[assignment]
    nl._seq = 0
    return nl, fake


def ack(code: int = 0) -> tuple[int, bytes]:
    return rtnl.NLMSG_ERROR, struct.pack("=i", -code) + b"\0" * 16


def test_index_reads_the_reply_before_the_ack(monkeypatch: pytest.MonkeyPatch) -> None:
    reply = struct.pack("=BxHiII", 0, 1, 9, 0, 0)
    nl, fake = scripted(monkeypatch, [[(rtnl.RTM_NEWLINK, reply), ack()]])
    assert nl.index("eth0") == 9
    header = struct.unpack_from("=IHHII", fake.sent[0])
    assert header[1] == rtnl.RTM_GETLINK and header[2] & rtnl.NLM_F_ACK


def test_a_kernel_error_is_an_oserror_with_its_errno(monkeypatch: pytest.MonkeyPatch) -> None:
    nl, _ = scripted(monkeypatch, [[ack(errno.EEXIST)], [ack(errno.ENODEV)]])
    with pytest.raises(FileExistsError):
        nl.add_veth("pcv1", "eth0", 5, "02:00:00:00:00:01", 3)
    with pytest.raises(OSError) as caught:
        nl.index("missing")
    assert caught.value.errno == errno.ENODEV
