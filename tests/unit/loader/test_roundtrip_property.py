"""Property tests over the whole loader.

- load → config → load is a fixed point, for generated compose files that mix short and
  long syntax;
- random mutations of valid files never produce anything but a typed error (no traceback).
"""

from __future__ import annotations

import contextlib
import copy
import json
import random
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.api import config_document
from orchestrator.errors import PycomposeError
from orchestrator.loader.discover import LoadOptions
from orchestrator.loader.pipeline import load_project
from orchestrator.loader.yaml_source import dump

names = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True)
words = st.text(
    alphabet=st.characters(whitelist_categories=("Ll", "Lu", "Nd"), whitelist_characters=" -_.:$"),
    max_size=12,
)
durations = st.sampled_from(["1s", "1m30s", "500ms", "2h", "10s", 5])
ports = st.one_of(
    st.integers(1, 65535).map(str),
    st.tuples(st.integers(1, 65535), st.integers(1, 65535)).map(lambda t: f"{t[0]}:{t[1]}"),
    st.tuples(st.integers(1, 65535), st.integers(1, 65535)).map(
        lambda t: f"127.0.0.1:{t[0]}:{t[1]}/udp"
    ),
    st.builds(
        lambda t, p: {"target": t, "published": str(p), "protocol": "tcp"},
        st.integers(1, 65535),
        st.integers(1, 65535),
    ),
)


@st.composite
def compose_files(draw: st.DrawFn) -> dict[str, Any]:
    service_names = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    volume_names = draw(st.lists(names, max_size=2, unique=True))
    services: dict[str, Any] = {}
    for index, name in enumerate(service_names):
        service: dict[str, Any] = {
            "image": draw(names) + ":" + draw(st.sampled_from(["1", "latest"]))
        }
        earlier = service_names[:index]
        if earlier and draw(st.booleans()):
            dep = draw(st.sampled_from(earlier))
            service["depends_on"] = draw(
                st.sampled_from([[dep], {dep: {"condition": "service_healthy"}}])
            )
        if draw(st.booleans()):
            service["environment"] = draw(
                st.one_of(
                    st.dictionaries(names.map(str.upper), words, max_size=3),
                    st.dictionaries(names.map(str.upper), words, max_size=3).map(
                    lambda env: [f"{k}={v}" for k, v in env.items()]
                ),
                )
            )
        if draw(st.booleans()):
            service["ports"] = draw(st.lists(ports, max_size=3, unique_by=str))
        if draw(st.booleans()):
            service["command"] = draw(
                st.one_of(
                    st.lists(words, max_size=3),
                    st.sampled_from(["sleep 10", "sh -c 'echo hi'", "echo a b"]),
                )
            )
        if volume_names and draw(st.booleans()):
            service["volumes"] = [
                f"{draw(st.sampled_from(volume_names))}:/data{draw(st.sampled_from(['', ':ro']))}"
            ]
        if draw(st.booleans()):
            service["healthcheck"] = {
                "test": draw(st.sampled_from(["true", ["CMD", "true"]])),
                "interval": draw(durations),
            }
        if draw(st.booleans()):
            service["deploy"] = {
                "replicas": draw(st.integers(1, 3)),
                "update_config": {
                    "parallelism": draw(st.integers(0, 3)),
                    "delay": draw(durations),
                    "order": draw(st.sampled_from(["stop-first", "start-first"])),
                },
                "resources": {"limits": {"memory": draw(st.sampled_from(["64m", "1g", 1048576]))}},
            }
        if draw(st.booleans()):
            service["labels"] = draw(st.dictionaries(names, words, max_size=2))
        if draw(st.booleans()):
            service["restart"] = draw(
                st.sampled_from(["no", "always", "on-failure:3", "unless-stopped"])
            )
        services[name] = service
    doc: dict[str, Any] = {"services": services}
    if volume_names:
        doc["volumes"] = {v: None for v in volume_names}
    if draw(st.booleans()):
        doc["networks"] = {"default": {"driver": "bridge"}}
    return doc


def _load(path: Path, workdir: str) -> Any:
    return load_project(
        LoadOptions(files=(str(path),), project_name="prop", project_directory=workdir, environ={})
    ).project


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(compose_files())
def test_load_config_load_is_a_fixed_point(doc: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "compose.yaml"
        # `$` in generated words must not be read as interpolation: write them escaped
        source.write_text(dump(json.loads(json.dumps(doc).replace("$", "$$"))))
        first = _load(source, tmp)
        out = Path(tmp) / "out.yaml"
        out.write_text(dump(config_document(first)))
        second = _load(out, tmp)
        assert replace(second, config_files=first.config_files) == first
        again = Path(tmp) / "again.yaml"
        again.write_text(dump(config_document(second)))
        assert again.read_text() == out.read_text()


VALID = {
    "services": {
        "web": {
            "image": "nginx",
            "ports": ["8080:80", {"target": 443, "published": "8443"}],
            "depends_on": {"db": {"condition": "service_healthy"}},
            "environment": ["A=1", "B"],
            "volumes": ["data:/data", "./site:/usr/share/nginx/html:ro"],
            "deploy": {"replicas": 2, "update_config": {"parallelism": 1, "delay": "1s"}},
            "healthcheck": {"test": "curl -f localhost", "interval": "5s"},
        },
        "db": {"image": "postgres", "networks": ["back"], "restart": "always"},
    },
    "volumes": {"data": {}},
    "networks": {"back": {"internal": True}},
}


def _mutate(doc: Any, rng: random.Random) -> Any:
    """One random structural change somewhere in the tree."""
    junk = rng.choice(
        [
            None,
            0,
            -1,
            3.5,
            True,
            "",
            "x" * 3,
            "${",
            "$$",
            "a:b:c:d",
            [],
            {},
            [1, [2]],
            {"k": None},
            "99999999:1",
            "1e3",
            "!!",
            "\t",
            "名前",
        ]
    )
    paths: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in list(node):
                paths.append((node, key))
                walk(node[key])
        elif isinstance(node, list):
            for i in range(len(node)):
                paths.append((node, i))
                walk(node[i])

    walk(doc)
    parent, key = rng.choice(paths)
    action = rng.randrange(4)
    if action == 0:
        parent[key] = junk
    elif action == 1 and isinstance(parent, dict):
        del parent[key]
    elif action == 2 and isinstance(parent, dict):
        parent[key + "x" if isinstance(key, str) else key] = junk
    else:
        parent[key] = [parent[key]] if not isinstance(parent[key], list) else {"k": parent[key]}
    return doc


def test_random_mutations_never_raise_anything_but_typed_errors(tmp_path: Path) -> None:
    rng = random.Random(20261127)
    text_cases = 0
    for case in range(300):
        doc = copy.deepcopy(VALID)
        for _ in range(rng.randint(1, 3)):
            doc = _mutate(doc, rng)
        text = dump(doc)
        if case % 5 == 0:  # byte-level damage too: truncation, stray characters
            cut = rng.randrange(len(text))
            text = text[:cut] + rng.choice(["", ":", "- ", "{", "&a", "*a", "\t", "'"]) + text[cut:]
            text_cases += 1
        path = tmp_path / "compose.yaml"
        path.write_text(text)
        with contextlib.suppress(PycomposeError):
            load_project(LoadOptions(files=(str(path),), project_name="fuzz", environ={}))
    assert text_cases == 60
