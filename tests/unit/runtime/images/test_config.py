"""Image config parsing: what a runtime honours, typed; malformed configs refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrator.runtime.images.config import Healthcheck, parse_image_config
from orchestrator.runtime.images.errors import ImageError

DIFF = "sha256:" + "a" * 64


def doc(config: dict[str, Any] | None = None, **top: Any) -> bytes:
    body: dict[str, Any] = {"rootfs": {"type": "layers", "diff_ids": [DIFF]}, **top}
    if config is not None:
        body["config"] = config
    return json.dumps(body).encode()


def test_full_config() -> None:
    parsed = parse_image_config(
        doc(
            {
                "Entrypoint": ["/entry"],
                "Cmd": ["run", "--fast"],
                "Env": ["PATH=/bin", "EMPTY", "A=b=c"],
                "WorkingDir": "/app",
                "User": "1000:1000",
                "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
                "Volumes": {"/data": {}},
                "StopSignal": "SIGQUIT",
                "Healthcheck": {
                    "Test": ["CMD", "true"],
                    "Interval": 5_000_000_000,
                    "Retries": 3,
                },
                "Labels": {"a": "b"},
            },
            architecture="arm64",
            os="linux",
            created="2024-01-01T00:00:00Z",
        )
    )
    assert parsed.entrypoint == ("/entry",) and parsed.cmd == ("run", "--fast")
    assert parsed.env_map == {"PATH": "/bin", "EMPTY": "", "A": "b=c"}
    assert (parsed.working_dir, parsed.user, parsed.stop_signal) == ("/app", "1000:1000", "SIGQUIT")
    assert parsed.exposed_ports == ("53/udp", "8080/tcp") and parsed.volumes == ("/data",)
    assert parsed.healthcheck == Healthcheck(("CMD", "true"), interval_ns=5_000_000_000, retries=3)
    assert dict(parsed.labels) == {"a": "b"}
    assert parsed.diff_ids == (DIFF,) and parsed.architecture == "arm64"


@pytest.mark.parametrize(
    ("config", "field", "expected"),
    [
        (None, "cmd", None),
        ({}, "entrypoint", None),
        ({"Cmd": None, "Env": None}, "env", ()),
        ({"Cmd": "echo hi"}, "cmd", ("echo hi",)),
        ({"Healthcheck": {"Test": []}}, "healthcheck", None),
        ({"Healthcheck": {"Test": ["NONE"]}}, "healthcheck", Healthcheck(("NONE",))),
        ({"StopSignal": ""}, "stop_signal", None),
    ],
)
def test_defaults(config: dict[str, Any] | None, field: str, expected: object) -> None:
    assert getattr(parse_image_config(doc(config)), field) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "not JSON"),
        (b"[]", "JSON object"),
        (json.dumps({"config": {}}).encode(), "rootfs"),
        (doc({"Cmd": [1, 2]}), "Cmd must be a list of strings"),
        (doc({"Env": 5}), "Env"),
        (doc({"ExposedPorts": ["80"]}), "ExposedPorts must be an object"),
        (doc({"Labels": {"a": 1}}), "Labels"),
        (doc({"Healthcheck": {"Test": ["CMD"], "Retries": -1}}), "Retries"),
        (json.dumps({"rootfs": {"type": "layers", "diff_ids": ["../x"]}}).encode(), "digest"),
    ],
)
def test_malformed_configs_refused(raw: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        parse_image_config(raw)
