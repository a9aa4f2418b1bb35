from __future__ import annotations

import pytest

from orchestrator.errors import RuntimeFailure
from orchestrator.runtime.capabilities import ALL_MASK, capability_mask, names

DOCKER_DEFAULT = 0xA80425FB  # CapBnd of a default `docker run`


@pytest.mark.parametrize(
    ("add", "drop", "privileged", "expected"),
    [
        ((), (), False, DOCKER_DEFAULT),
        (("NET_ADMIN",), (), False, DOCKER_DEFAULT | 1 << 12),
        (("cap_net_admin",), (), False, DOCKER_DEFAULT | 1 << 12),
        ((), ("CHOWN", "kill"), False, DOCKER_DEFAULT & ~1 & ~(1 << 5)),
        (("CHOWN",), ("ALL",), False, 1),
        (("ALL",), ("SYS_ADMIN",), False, ALL_MASK & ~(1 << 21)),
        ((), ("ALL",), False, 0),
        ((), ("ALL",), True, ALL_MASK),
    ],
)
def test_capability_mask(
    add: tuple[str, ...], drop: tuple[str, ...], privileged: bool, expected: int
) -> None:
    assert capability_mask(add, drop, privileged) == expected


def test_default_set_has_14_capabilities() -> None:
    assert len(names(capability_mask())) == 14
    assert "SYS_ADMIN" not in names(capability_mask())


def test_unknown_capability_is_refused() -> None:
    with pytest.raises(RuntimeFailure, match="NOT_A_CAP"):
        capability_mask(("NOT_A_CAP",))
