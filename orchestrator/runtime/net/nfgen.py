"""The nftables ruleset generation, read over netlink: a cheap "has any rule changed?".

The kernel bumps one generation counter on every committed nftables transaction, whoever
makes it (``nft``, iptables-nft, docker, firewalld). Reading it is one netlink round trip
(``NFT_MSG_GETGEN``, a few microseconds) where listing a chain costs a process: so a check
of rules outside our own tables (DOCKER-USER) can be skipped while the generation has
not moved since the check last found everything in place.

Nothing here shells out, and no library is needed: the request is 20 bytes.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_NEWGEN = 15
NFT_MSG_GETGEN = 16
NFTA_GEN_ID = 1
NLM_F_REQUEST = 1
NLMSG_ERROR = 2
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_NFGEN = struct.Struct("=BBH")  # nfgenmsg: family, version, res_id (big endian)
_ATTR = struct.Struct("=HH")  # nlattr: len, type


def _request(seq: int) -> bytes:
    kind = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN
    body = _NFGEN.pack(socket.AF_UNSPEC, 0, 0)
    return _HEADER.pack(_HEADER.size + len(body), kind, NLM_F_REQUEST, seq, 0) + body


def parse_generation(reply: bytes, seq: int) -> int | None:
    """The ``NFTA_GEN_ID`` of a ``NFT_MSG_NEWGEN`` reply to request ``seq``; None for an
    error, another message or anything malformed."""
    if len(reply) < _HEADER.size + _NFGEN.size:
        return None
    length, kind, _, got_seq, _ = _HEADER.unpack_from(reply)
    if got_seq != seq or kind != (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN:
        return None
    offset = _HEADER.size + _NFGEN.size
    end = min(length, len(reply))
    while offset + _ATTR.size <= end:
        size, attr = _ATTR.unpack_from(reply, offset)
        if size < _ATTR.size:
            return None
        if attr & 0x3FFF == NFTA_GEN_ID and size >= _ATTR.size + 4:
            return int(struct.unpack_from("!I", reply, offset + _ATTR.size)[0])
        offset += (size + 3) & ~3
    return None


def generation() -> int | None:
    """The current ruleset generation; None when nftables cannot be asked (no module,
    no permission): the caller then checks the slow way every time."""
    seq = int.from_bytes(os.urandom(4), "little") or 1
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER) as sock:
            sock.settimeout(1.0)
            sock.bind((0, 0))
            sock.send(_request(seq))
            return parse_generation(sock.recv(8192), seq)
    except OSError:
        return None


def iptables_is_nft() -> bool:
    """Whether ``iptables`` is the nftables flavour (Debian's alternatives link points at
    ``xtables-nft-multi``): only then do its changes move the nftables generation. The
    legacy flavour keeps its rules elsewhere, so nothing can be cached over it."""
    found = shutil.which("iptables")
    if found is None:
        return False
    return "legacy" not in os.path.basename(os.path.realpath(found))
