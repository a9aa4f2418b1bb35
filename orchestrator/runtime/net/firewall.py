"""Packet filtering and NAT of one network, in rules of our own only.

The rules of a network are a pure function of :class:`Rules` (its bridge, subnet,
``internal`` flag and the ports published on it), rendered whole and swapped in one
transaction on every change: no rule handles to track, nothing half-applied.

- nftables (preferred): one table ``ip pycompose_<bridge>`` with chains ``forward``
  (filter), ``prerouting`` / ``output`` (DNAT of published ports) and ``postrouting``
  (masquerade), replaced atomically by one ``nft -f -`` script.
- iptables (when ``nft`` is missing): chains ``PCF-<bridge>`` (filter), ``PCD-<bridge>``
  (DNAT) and ``PCN-<bridge>`` (nat postrouting) loaded with ``iptables-restore --noflush``,
  plus jumps to them from the built-in chains, each commented ``pycompose``.

Docker: when the ``DOCKER-USER`` chain exists the engine has set the FORWARD policy to
DROP, and in nftables a drop in any base chain is final, so our own accept is not enough.
Rules for our bridge go into ``DOCKER-USER`` (commented ``pycompose``): with nftables they
accept (our table still drops what must not pass); with iptables they jump to our chain,
which gives every packet of the bridge a verdict. They are re-ensured by :meth:`ensure`
on every attach, which looks at the chain (a process) only when the nftables ruleset
generation has moved since it last found them in place (``DockerUserCache``).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from orchestrator.errors import RuntimeFailure
from orchestrator.runtime.net import nfgen

COMMENT = "pycompose"
BRIDGE_PREFIX = "pc-"
DOCKER_USER = "DOCKER-USER"


@dataclass(frozen=True)
class Forward:
    """One published port: traffic to ``host_ip:host_port`` (any local address when
    ``host_ip`` is empty) goes to ``dest:dest_port``."""

    protocol: str
    host_port: int
    dest: str
    dest_port: int
    host_ip: str = ""


@dataclass(frozen=True)
class Rules:
    """Everything the firewall of one network depends on."""

    bridge: str
    subnet: str
    internal: bool = False
    forwards: tuple[Forward, ...] = ()


def table_name(bridge: str) -> str:
    return f"pycompose_{bridge}"


def _q(name: str) -> str:
    return f'"{name}"'


def render_nft(rules: Rules) -> str:
    """The nft script that replaces the network's table (creating it when missing)."""
    t = table_name(rules.bridge)
    b = _q(rules.bridge)
    others = _q(BRIDGE_PREFIX + "*")
    forward = [f"iifname {b} oifname {b} accept"]
    if rules.internal:
        forward += [f"iifname {b} drop", f"oifname {b} drop"]
    else:
        forward += [
            f"iifname {b} ct status dnat accept",
            f"oifname {b} ct status dnat accept",
            f"iifname {b} oifname {others} drop",
            f"iifname {others} oifname {b} drop",
            f"oifname {b} ct state established,related accept",
            f"oifname {b} drop",
            f"iifname {b} accept",
        ]
    post = [f"oifname {b} ip saddr 127.0.0.0/8 masquerade"]
    if not rules.internal:
        post += [
            f"ip saddr {rules.subnet} oifname != {b} masquerade",
            f"oifname {b} ip saddr {rules.subnet} ct status dnat masquerade",
        ]
    dnat = [] if rules.internal else [_nft_dnat(f) for f in rules.forwards]
    lines = [
        f"table ip {t} {{}}",
        f"delete table ip {t}",
        f"table ip {t} {{",
        "  chain forward {",
        "    type filter hook forward priority filter; policy accept;",
        *(f"    {r}" for r in forward),
        "  }",
        "  chain prerouting {",
        "    type nat hook prerouting priority dstnat; policy accept;",
        *(f"    {r}" for r in dnat),
        "  }",
        "  chain output {",
        "    type nat hook output priority -100; policy accept;",
        *(f"    {r}" for r in dnat),
        "  }",
        "  chain postrouting {",
        "    type nat hook postrouting priority srcnat; policy accept;",
        *(f"    {r}" for r in post),
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def _nft_dnat(f: Forward) -> str:
    match = f"ip daddr {f.host_ip}" if f.host_ip else "fib daddr type local"
    return f"{match} {f.protocol} dport {f.host_port} dnat to {f.dest}:{f.dest_port}"


def chain_names(bridge: str) -> tuple[str, str, str]:
    """(filter, dnat, postrouting) chains of the iptables fallback."""
    return f"PCF-{bridge}", f"PCD-{bridge}", f"PCN-{bridge}"


def render_iptables(rules: Rules) -> str:
    """``iptables-restore --noflush`` input that (re)defines the network's own chains;
    declaring a chain there empties it, so the swap is whole."""
    fil, dnat, post = chain_names(rules.bridge)
    b = rules.bridge
    filter_rules = [f"-i {b} -o {b} -j ACCEPT"]
    if rules.internal:
        filter_rules += [f"-i {b} -j DROP", f"-o {b} -j DROP"]
    else:
        filter_rules += [
            f"-i {b} -m conntrack --ctstate DNAT -j ACCEPT",
            f"-o {b} -m conntrack --ctstate DNAT -j ACCEPT",
            f"-i {b} -o {BRIDGE_PREFIX}+ -j DROP",
            f"-i {BRIDGE_PREFIX}+ -o {b} -j DROP",
            f"-o {b} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            f"-o {b} -j DROP",
            f"-i {b} -j ACCEPT",
        ]
    post_rules = [f"-o {b} -s 127.0.0.0/8 -j MASQUERADE"]
    if not rules.internal:
        post_rules += [
            f"-s {rules.subnet} ! -o {b} -j MASQUERADE",
            f"-o {b} -s {rules.subnet} -m conntrack --ctstate DNAT -j MASQUERADE",
        ]
    dnat_rules = [] if rules.internal else [_ipt_dnat(f) for f in rules.forwards]
    lines = [
        "*filter",
        f":{fil} - [0:0]",
        *(f"-A {fil} {r}" for r in filter_rules),
        "COMMIT",
        "*nat",
        f":{dnat} - [0:0]",
        *(f"-A {dnat} {r}" for r in dnat_rules),
        f":{post} - [0:0]",
        *(f"-A {post} {r}" for r in post_rules),
        "COMMIT",
    ]
    return "\n".join(lines) + "\n"


def _ipt_dnat(f: Forward) -> str:
    match = f"-d {f.host_ip}" if f.host_ip else "-m addrtype --dst-type LOCAL"
    return (
        f"-p {f.protocol} {match} -m {f.protocol} --dport {f.host_port} "
        f"-j DNAT --to-destination {f.dest}:{f.dest_port}"
    )


def _run(argv: Sequence[str], stdin: str | None = None, *, check: bool = True) -> bool:
    try:
        proc = subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeFailure(f"{argv[0]} failed: {exc}") from exc
    if check and proc.returncode != 0:
        raise RuntimeFailure(f"{' '.join(argv)} failed: {proc.stderr.strip() or proc.stdout}")
    return proc.returncode == 0


def _iptables(*args: str, check: bool = True) -> bool:
    return _run(["iptables", "-w", *args], check=check)


def _has_chain(table: str, chain: str) -> bool:
    if shutil.which("iptables") is None:
        return False
    return _iptables("-t", table, "-n", "-L", chain, check=False)


def _ensure_rule(table: str, chain: str, spec: Sequence[str]) -> None:
    """Insert ``spec`` (with our comment) at the top of ``chain`` unless it is there."""
    full = [*spec, "-m", "comment", "--comment", COMMENT]
    if not _iptables("-t", table, "-C", chain, *full, check=False):
        _iptables("-t", table, "-I", chain, "1", *full)


def _delete_rule(table: str, chain: str, spec: Sequence[str]) -> None:
    """Remove every copy of ``spec`` (with our comment); none is fine."""
    full = [*spec, "-m", "comment", "--comment", COMMENT]
    for _ in range(100):
        if not _iptables("-t", table, "-D", chain, *full, check=False):
            return


def _docker_user_specs(bridge: str, target: str) -> list[list[str]]:
    return [["-i", bridge, "-j", target], ["-o", bridge, "-j", target]]


def _docker_user_rules() -> list[str] | None:
    """``iptables -S DOCKER-USER`` lines; None when the chain (or iptables) is missing.
    One call: this runs on every attach."""
    if shutil.which("iptables") is None:
        return None
    try:
        proc = subprocess.run(
            ["iptables", "-w", "-t", "filter", "-S", DOCKER_USER],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeFailure(f"iptables failed: {exc}") from exc
    return proc.stdout.splitlines() if proc.returncode == 0 else None


def _listed(spec: Sequence[str]) -> str:
    """How ``iptables -S`` prints one of our DOCKER-USER rules."""
    iface, bridge, _, target = spec
    return f"-A {DOCKER_USER} {iface} {bridge} -m comment --comment {COMMENT} -j {target}"


class DockerUserCache:
    """Which bridges the last DOCKER-USER check found complete, at which nftables ruleset
    generation. Any rule change anywhere moves the generation, so while it stands still
    nothing can have taken our rules away (nor made the chain appear): the check, a
    process of its own, is skipped. Without a generation to read (legacy iptables, no
    nftables) every check is made."""

    def __init__(self) -> None:
        self.generation: int | None = None
        self.bridges: set[str] = set()
        self.usable = nfgen.iptables_is_nft()

    def current(self) -> int | None:
        return nfgen.generation() if self.usable else None

    def holds(self, bridge: str, generation: int | None) -> bool:
        return generation is not None and generation == self.generation and (
            bridge in self.bridges
        )

    def found(self, bridge: str, generation: int | None) -> None:
        """``bridge``'s rules were all in place at ``generation`` (read before looking)."""
        if generation is None:
            return
        if generation != self.generation:
            self.generation, self.bridges = generation, set()
        self.bridges.add(bridge)

    def forget(self, bridge: str) -> None:
        self.bridges.discard(bridge)


def ensure_docker_user(bridge: str, target: str, cache: DockerUserCache | None = None) -> None:
    """Our two rules for ``bridge`` at the top of DOCKER-USER, when that chain exists."""
    generation = cache.current() if cache is not None else None
    if cache is not None and cache.holds(bridge, generation):
        return
    present = _docker_user_rules()
    missing = [] if present is None else [
        spec for spec in _docker_user_specs(bridge, target) if _listed(spec) not in present
    ]
    for spec in missing:
        _ensure_rule("filter", DOCKER_USER, spec)
    if cache is not None and not missing:
        # after an insert the generation moved under us: the next call looks again
        cache.found(bridge, generation)


def remove_docker_user(bridge: str, target: str, cache: DockerUserCache | None = None) -> None:
    if cache is not None:
        cache.forget(bridge)
    present = _docker_user_rules()
    if present is None:
        return
    for spec in _docker_user_specs(bridge, target):
        if _listed(spec) in present:
            _delete_rule("filter", DOCKER_USER, spec)


class Firewall(Protocol):
    kind: str

    def apply(self, rules: Rules) -> None:
        """Install or replace the whole rule set of one network."""

    def ensure(self, bridge: str) -> None:
        """Re-add the hooks outside our own tables (DOCKER-USER) that others may have lost."""

    def remove(self, bridge: str) -> None:
        """Remove every rule of the network; an absent one is fine."""


class NftFirewall:
    """One nftables table per network, plus DOCKER-USER accepts through iptables."""

    kind = "nft"

    def __init__(self) -> None:
        self._checked = DockerUserCache()

    def apply(self, rules: Rules) -> None:
        _run(["nft", "-f", "-"], render_nft(rules))
        self.ensure(rules.bridge)

    def ensure(self, bridge: str) -> None:
        ensure_docker_user(bridge, "ACCEPT", self._checked)

    def remove(self, bridge: str) -> None:
        t = table_name(bridge)
        _run(["nft", "-f", "-"], f"table ip {t} {{}}\ndelete table ip {t}\n")
        remove_docker_user(bridge, "ACCEPT", self._checked)


class IptablesFirewall:
    """Chains of our own per network, jumped to from the built-in chains."""

    kind = "iptables"

    def __init__(self) -> None:
        self._checked = DockerUserCache()

    def _hooks(self, bridge: str) -> list[tuple[str, str, list[str]]]:
        fil, dnat, post = chain_names(bridge)
        return [
            ("filter", "FORWARD", ["-i", bridge, "-j", fil]),
            ("filter", "FORWARD", ["-o", bridge, "-j", fil]),
            ("nat", "PREROUTING", ["-j", dnat]),
            ("nat", "OUTPUT", ["-j", dnat]),
            ("nat", "POSTROUTING", ["-j", post]),
        ]

    def apply(self, rules: Rules) -> None:
        _run(["iptables-restore", "-w", "--noflush"], render_iptables(rules))
        for table, chain, spec in self._hooks(rules.bridge):
            _ensure_rule(table, chain, spec)
        self.ensure(rules.bridge)

    def ensure(self, bridge: str) -> None:
        ensure_docker_user(bridge, chain_names(bridge)[0], self._checked)

    def remove(self, bridge: str) -> None:
        if shutil.which("iptables") is None:
            return
        remove_docker_user(bridge, chain_names(bridge)[0], self._checked)
        for table, chain, spec in self._hooks(bridge):
            _delete_rule(table, chain, spec)
        fil, dnat, post = chain_names(bridge)
        for table, name in (("filter", fil), ("nat", dnat), ("nat", post)):
            if _has_chain(table, name):
                _iptables("-t", table, "-F", name)
                _iptables("-t", table, "-X", name)


FirewallKind = Literal["auto", "nft", "iptables"]


def select(kind: FirewallKind = "auto") -> Firewall:
    """nftables when ``nft`` is installed, iptables otherwise (or the one asked for)."""
    if kind == "nft" or (kind == "auto" and shutil.which("nft") is not None):
        return NftFirewall()
    if shutil.which("iptables") is None:
        raise RuntimeFailure("neither nft nor iptables is installed: no firewall for networks")
    return IptablesFirewall()


def nft_tables() -> list[str]:
    """Names of the ``ip`` tables of ours that nftables holds (for checks and cleanup)."""
    if shutil.which("nft") is None:
        return []
    try:
        proc = subprocess.run(
            ["nft", "list", "tables", "ip"], capture_output=True, text=True, check=False
        )
    except OSError as exc:
        raise RuntimeFailure(f"nft failed: {exc}") from exc
    names = [line.split()[-1] for line in proc.stdout.splitlines() if line.strip()]
    return [n for n in names if n.startswith("pycompose_")]
