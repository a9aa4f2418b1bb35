from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.errors import RuntimeFailure
from orchestrator.runtime.config import User
from orchestrator.runtime.users import (
    parse_group,
    parse_passwd,
    read_in_layer,
    resolve,
    resolve_in_layers,
)

PASSWD = parse_passwd(
    "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\nbad line\n"
)
GROUP = parse_group("root:x:0:\napp:x:1001:\nextra:x:2000:app,other\nweb:x:33:\n")


@pytest.mark.parametrize(
    ("spec", "user"),
    [
        ("", User(0, 0)),
        ("root", User(0, 0)),
        ("app", User(1000, 1001, (2000,))),
        ("1000", User(1000, 1001, (2000,))),
        ("4242", User(4242, 0)),
        ("app:web", User(1000, 33, (2000,))),
        ("4242:77", User(4242, 77)),
    ],
)
def test_resolve(spec: str, user: User) -> None:
    assert resolve(spec, PASSWD, GROUP) == user


@pytest.mark.parametrize("spec", ["nobody", "app:nogroup"])
def test_unknown_names(spec: str) -> None:
    with pytest.raises(RuntimeFailure):
        resolve(spec, PASSWD, GROUP)


def test_layers_topmost_first(tmp_path: Path) -> None:
    top, bottom = tmp_path / "top", tmp_path / "bottom"
    (top / "etc").mkdir(parents=True)
    (bottom / "etc").mkdir(parents=True)
    (top / "etc" / "passwd").write_text("app:x:1:1::/:/bin/sh\n")
    (bottom / "etc" / "passwd").write_text("app:x:2:2::/:/bin/sh\n")
    assert resolve_in_layers("app", [str(top), str(bottom)]) == User(1, 1)


def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "host-passwd"
    outside.write_text("app:x:7:7::/:/bin/sh\n")
    layer = tmp_path / "layer"
    (layer / "etc").mkdir(parents=True)
    os.symlink(outside, layer / "etc" / "passwd")
    assert read_in_layer(str(layer), "etc/passwd") is None
    os.symlink(tmp_path, layer / "up")
    assert read_in_layer(str(layer), "up/host-passwd") is None
    assert read_in_layer(str(layer), "../host-passwd") is None
