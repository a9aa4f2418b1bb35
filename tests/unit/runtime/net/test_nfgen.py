"""Reading the nftables ruleset generation: the reply parser on crafted messages, and
(as root) the real counter moving with a transaction of our own."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess

import pytest

from orchestrator.runtime.net import nfgen

NEWGEN = (nfgen.NFNL_SUBSYS_NFTABLES << 8) | nfgen.NFT_MSG_NEWGEN


def reply(seq: int, generation: int, kind: int = NEWGEN) -> bytes:
    body = struct.pack("=BBH", 0, 0, 0) + struct.pack("=HH", 8, nfgen.NFTA_GEN_ID)
    body += struct.pack("!I", generation) + struct.pack("=HH", 8, 2) + struct.pack("!I", 77)
    return struct.pack("=IHHII", 16 + len(body), kind, 0, seq, 0) + body


def test_the_generation_of_a_matching_reply() -> None:
    assert nfgen.parse_generation(reply(5, 123456), 5) == 123456


def test_another_sequence_an_error_or_a_short_reply_give_none() -> None:
    assert nfgen.parse_generation(reply(6, 1), 5) is None
    assert nfgen.parse_generation(reply(5, 1, kind=2), 5) is None
    assert nfgen.parse_generation(b"\0" * 8, 5) is None


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None, reason="root and nft")
def test_a_transaction_moves_the_generation() -> None:
    before = nfgen.generation()
    assert isinstance(before, int)
    table = f"pycompose_gen_test_{os.getpid()}"
    subprocess.run(["nft", "add", "table", "ip", table], check=True)
    try:
        after = nfgen.generation()
    finally:
        subprocess.run(["nft", "delete", "table", "ip", table], check=True)
    assert after is not None and after != before
