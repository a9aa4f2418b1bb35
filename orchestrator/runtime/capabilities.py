"""Linux capabilities by name, and the set a container gets (Docker's rules).

Pure: turns (cap_add, cap_drop, privileged) into the bitmask the spawner applies to the
bounding, permitted and effective sets (inheritable and ambient are always empty).
"""

from __future__ import annotations

from collections.abc import Iterable

from orchestrator.errors import RuntimeFailure

CAPABILITIES: dict[str, int] = {
    "CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "FSETID": 4, "KILL": 5,
    "SETGID": 6, "SETUID": 7, "SETPCAP": 8, "LINUX_IMMUTABLE": 9, "NET_BIND_SERVICE": 10,
    "NET_BROADCAST": 11, "NET_ADMIN": 12, "NET_RAW": 13, "IPC_LOCK": 14, "IPC_OWNER": 15,
    "SYS_MODULE": 16, "SYS_RAWIO": 17, "SYS_CHROOT": 18, "SYS_PTRACE": 19, "SYS_PACCT": 20,
    "SYS_ADMIN": 21, "SYS_BOOT": 22, "SYS_NICE": 23, "SYS_RESOURCE": 24, "SYS_TIME": 25,
    "SYS_TTY_CONFIG": 26, "MKNOD": 27, "LEASE": 28, "AUDIT_WRITE": 29, "AUDIT_CONTROL": 30,
    "SETFCAP": 31, "MAC_OVERRIDE": 32, "MAC_ADMIN": 33, "SYSLOG": 34, "WAKE_ALARM": 35,
    "BLOCK_SUSPEND": 36, "AUDIT_READ": 37, "PERFMON": 38, "BPF": 39, "CHECKPOINT_RESTORE": 40,
}  # fmt: skip

# Docker's default set: 14 capabilities (moby oci/caps/defaults.go)
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
)  # fmt: skip

ALL_MASK = (1 << (max(CAPABILITIES.values()) + 1)) - 1


def normalize(name: str) -> str:
    """``cap_net_admin`` / ``NET_ADMIN`` / ``CAP_NET_ADMIN`` → ``NET_ADMIN`` (``ALL`` kept)."""
    upper = name.strip().upper()
    return upper[4:] if upper.startswith("CAP_") else upper


def capability_mask(
    cap_add: Iterable[str] = (), cap_drop: Iterable[str] = (), privileged: bool = False
) -> int:
    """The capability bitmask of a container; ``ALL`` works in either list, drop wins last
    as in Docker: start from the defaults (or everything), add, then drop."""
    if privileged:
        return ALL_MASK
    adds = [normalize(c) for c in cap_add]
    drops = [normalize(c) for c in cap_drop]
    for name in (*adds, *drops):
        if name != "ALL" and name not in CAPABILITIES:
            raise RuntimeFailure(f"unknown capability {name!r}")
    mask = 0
    for name in DEFAULT_CAPABILITIES:
        mask |= 1 << CAPABILITIES[name]
    if "ALL" in adds:
        mask = ALL_MASK
    for name in adds:
        if name != "ALL":
            mask |= 1 << CAPABILITIES[name]
    if "ALL" in drops:
        # drop ALL keeps only what is added explicitly
        mask = 0
        for name in adds:
            if name != "ALL":
                mask |= 1 << CAPABILITIES[name]
    for name in drops:
        if name != "ALL":
            mask &= ~(1 << CAPABILITIES[name])
    return mask


def names(mask: int) -> list[str]:
    """The capability names in ``mask``, in kernel order (for messages and tests)."""
    return [n for n, bit in sorted(CAPABILITIES.items(), key=lambda kv: kv[1]) if mask >> bit & 1]
