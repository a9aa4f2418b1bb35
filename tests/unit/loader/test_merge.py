"""merge(): the compose-spec rules for combining -f files, one table row per rule."""

from __future__ import annotations

import copy
from functools import reduce
from typing import Any

import pytest

from orchestrator.errors import Location
from orchestrator.loader.document import Override, Reset
from orchestrator.loader.merge import merge, strip_markers
from tests.unit.loader.docbuild import make_doc, service_doc

# (id, base service, override service, expected merged service)
SERVICE_CASES: list[tuple[str, Any, Any, Any]] = [
    # scalars and mappings
    ("scalar replaced", {"image": "a"}, {"image": "b"}, {"image": "b"}),
    ("new key added", {"image": "a"}, {"user": "root"}, {"image": "a", "user": "root"}),
    (
        "mapping merged recursively",
        {"healthcheck": {"interval": "5s", "retries": 3}},
        {"healthcheck": {"retries": 5, "timeout": "1s"}},
        {"healthcheck": {"interval": "5s", "retries": 5, "timeout": "1s"}},
    ),
    ("null override keeps base", {"image": "a"}, {"image": None}, {"image": "a"}),
    ("shape mismatch: override wins", {"x-a": {"k": 1}}, {"x-a": "s"}, {"x-a": "s"}),
    ("unknown sequence appends", {"x-l": ["a"]}, {"x-l": ["a", "b"]}, {"x-l": ["a", "a", "b"]}),
    # shell commands replace
    (
        "command replaced",
        {"command": ["echo", "a"]},
        {"command": ["echo", "b"]},
        {"command": ["echo", "b"]},
    ),
    (
        "entrypoint string by list",
        {"entrypoint": "sh"},
        {"entrypoint": ["bash", "-c"]},
        {"entrypoint": ["bash", "-c"]},
    ),
    (
        "healthcheck.test replaced, rest merged",
        {"healthcheck": {"test": ["CMD", "a"], "interval": "5s"}},
        {"healthcheck": {"test": ["CMD", "b"]}},
        {"healthcheck": {"test": ["CMD", "b"], "interval": "5s"}},
    ),
    # merge by key, list or mapping
    (
        "environment list + list",
        {"environment": ["A=1", "B=2"]},
        {"environment": ["B=3", "C=4"]},
        {"environment": {"A": "1", "B": "3", "C": "4"}},
    ),
    (
        "environment list + mapping",
        {"environment": ["A=1", "B=2"]},
        {"environment": {"B": "3"}},
        {"environment": {"A": "1", "B": "3"}},
    ),
    (
        "environment mapping + list",
        {"environment": {"A": "1"}},
        {"environment": ["A=2", "B"]},
        {"environment": {"A": "2", "B": None}},
    ),
    (
        "environment value with '='",
        {"environment": ["A=x=y"]},
        {"environment": ["B=1"]},
        {"environment": {"A": "x=y", "B": "1"}},
    ),
    (
        "environment bare key replaces value",
        {"environment": {"A": "1"}},
        {"environment": ["A"]},
        {"environment": {"A": None}},
    ),
    (
        "labels list + mapping",
        {"labels": ["a=1"]},
        {"labels": {"b": "2"}},
        {"labels": {"a": "1", "b": "2"}},
    ),
    (
        "annotations by key",
        {"annotations": {"a": "1"}},
        {"annotations": ["a=2"]},
        {"annotations": {"a": "2"}},
    ),
    (
        "sysctls by key",
        {"sysctls": ["net.core.somaxconn=1024"]},
        {"sysctls": {"net.core.somaxconn": 2048, "x": 1}},
        {"sysctls": {"net.core.somaxconn": 2048, "x": 1}},
    ),
    (
        "build.args by key",
        {"build": {"context": ".", "args": ["A=1"]}},
        {"build": {"args": {"B": "2"}}},
        {"build": {"context": ".", "args": {"A": "1", "B": "2"}}},
    ),
    (
        "extra_hosts list + mapping",
        {"extra_hosts": ["a:1.1.1.1", "b=2.2.2.2"]},
        {"extra_hosts": {"a": "9.9.9.9"}},
        {"extra_hosts": {"a": "9.9.9.9", "b": "2.2.2.2"}},
    ),
    (
        "extra_hosts ipv6 and repeated host",
        {"extra_hosts": ["a:::1", "a:10.0.0.1"]},
        {"extra_hosts": ["c:3.3.3.3"]},
        {"extra_hosts": {"a": ["::1", "10.0.0.1"], "c": "3.3.3.3"}},
    ),
    (
        "ulimits number replaced by mapping",
        {"ulimits": {"nofile": 1024, "nproc": 10}},
        {"ulimits": {"nofile": {"soft": 1, "hard": 2}}},
        {"ulimits": {"nofile": {"soft": 1, "hard": 2}, "nproc": 10}},
    ),
    (
        "ulimits mappings merged",
        {"ulimits": {"nofile": {"soft": 1, "hard": 2}}},
        {"ulimits": {"nofile": {"hard": 3}}},
        {"ulimits": {"nofile": {"soft": 1, "hard": 3}}},
    ),
    # by name, deep
    (
        "networks list + mapping",
        {"networks": ["front", "back"]},
        {"networks": {"back": {"aliases": ["b"]}, "extra": None}},
        {"networks": {"front": None, "back": {"aliases": ["b"]}, "extra": None}},
    ),
    (
        "networks null override keeps base config",
        {"networks": {"front": {"aliases": ["f"]}}},
        {"networks": ["front"]},
        {"networks": {"front": {"aliases": ["f"]}}},
    ),
    (
        "depends_on list + list",
        {"depends_on": ["db"]},
        {"depends_on": ["cache"]},
        {
            "depends_on": {
                "db": {"condition": "service_started"},
                "cache": {"condition": "service_started"},
            }
        },
    ),
    (
        "depends_on list + mapping",
        {"depends_on": ["db"]},
        {"depends_on": {"db": {"condition": "service_healthy"}}},
        {"depends_on": {"db": {"condition": "service_healthy"}}},
    ),
    (
        "depends_on mapping deep merged",
        {"depends_on": {"db": {"condition": "service_healthy"}}},
        {"depends_on": {"db": {"restart": True}}},
        {"depends_on": {"db": {"condition": "service_healthy", "restart": True}}},
    ),
    # unique by target / source
    (
        "volumes same target replaced in place",
        {"volumes": ["./a:/data", "v:/other"]},
        {"volumes": ["./b:/data:ro"]},
        {"volumes": ["./b:/data:ro", "v:/other"]},
    ),
    (
        "volumes short vs long by target",
        {"volumes": ["common:/var/lib/backup:rw"]},
        {"volumes": [{"type": "volume", "source": "cli", "target": "/var/lib/backup"}]},
        {"volumes": [{"type": "volume", "source": "cli", "target": "/var/lib/backup"}]},
    ),
    (
        "volumes long vs short by target",
        {"volumes": [{"type": "bind", "source": ".", "target": "/x"}]},
        {"volumes": ["/x"]},
        {"volumes": ["/x"]},
    ),
    (
        "volumes other target appended",
        {"volumes": ["/data"]},
        {"volumes": ["v:/logs"]},
        {"volumes": ["/data", "v:/logs"]},
    ),
    (
        "devices by target",
        {"devices": ["/dev/sda:/dev/xvda:rwm", "/dev/fuse"]},
        {"devices": ["/dev/sdb:/dev/xvda", {"source": "/dev/null", "target": "/dev/fuse"}]},
        {"devices": ["/dev/sdb:/dev/xvda", {"source": "/dev/null", "target": "/dev/fuse"}]},
    ),
    (
        "secrets by source",
        {"secrets": ["a", "b"]},
        {"secrets": [{"source": "a", "target": "/run/x"}, "c"]},
        {"secrets": [{"source": "a", "target": "/run/x"}, "b", "c"]},
    ),
    (
        "configs by source",
        {"configs": [{"source": "a", "mode": 292}]},
        {"configs": ["a"]},
        {"configs": ["a"]},
    ),
    # append with de-duplication
    (
        "ports deduplicated",
        {"ports": ["80:80", "443:443"]},
        {"ports": ["80:80", "8080:80"]},
        {"ports": ["80:80", "443:443", "8080:80"]},
    ),
    (
        "ports /tcp is the default",
        {"ports": ["53:53/udp", "80:80/tcp"]},
        {"ports": ["80:80", "53:53"]},
        {"ports": ["53:53/udp", "80:80", "53:53"]},
    ),  # same port: the later spelling
    ("ports int and string", {"ports": [80]}, {"ports": ["80", 81]}, {"ports": ["80", 81]}),
    (
        "ports long syntax",
        {"ports": [{"target": 80, "published": "8080"}]},
        {"ports": [{"target": 80, "published": 8080, "protocol": "tcp"}, {"target": 81}]},
        {"ports": [{"target": 80, "published": 8080, "protocol": "tcp"}, {"target": 81}]},
    ),
    (
        "expose int and string",
        {"expose": [3000, "4000"]},
        {"expose": ["3000", 5000]},
        {"expose": ["3000", "4000", 5000]},
    ),
    (
        "cap_add deduplicated",
        {"cap_add": ["NET_ADMIN"]},
        {"cap_add": ["NET_ADMIN", "SYS_TIME"]},
        {"cap_add": ["NET_ADMIN", "SYS_TIME"]},
    ),
    ("cap_drop deduplicated", {"cap_drop": ["ALL"]}, {"cap_drop": ["ALL"]}, {"cap_drop": ["ALL"]}),
    (
        "dns scalar + list",
        {"dns": "1.1.1.1"},
        {"dns": ["8.8.8.8", "1.1.1.1"]},
        {"dns": ["1.1.1.1", "8.8.8.8"]},
    ),
    (
        "dns_search",
        {"dns_search": ["a.com"]},
        {"dns_search": "b.com"},
        {"dns_search": ["a.com", "b.com"]},
    ),
    ("tmpfs", {"tmpfs": "/run"}, {"tmpfs": ["/run", "/tmp"]}, {"tmpfs": ["/run", "/tmp"]}),
    (
        "security_opt",
        {"security_opt": ["label=role:ROLE"]},
        {"security_opt": ["label=user:USER"]},
        {"security_opt": ["label=role:ROLE", "label=user:USER"]},
    ),
    (
        "profiles",
        {"profiles": ["debug"]},
        {"profiles": ["debug", "test"]},
        {"profiles": ["debug", "test"]},
    ),
    (
        "external_links",
        {"external_links": ["a"]},
        {"external_links": ["a", "b"]},
        {"external_links": ["a", "b"]},
    ),
    (
        "env_file by path",
        {"env_file": [".env", {"path": "a.env", "required": False}]},
        {"env_file": ["a.env", "b.env"]},
        {"env_file": [".env", "a.env", "b.env"]},
    ),
    # shapes
    (
        "build string + mapping",
        {"build": "."},
        {"build": {"dockerfile": "Dev"}},
        {"build": {"context": ".", "dockerfile": "Dev"}},
    ),
    (
        "build mapping + string",
        {"build": {"context": ".", "target": "t"}},
        {"build": "./app"},
        {"build": {"context": "./app", "target": "t"}},
    ),
    (
        "logging same driver merges options",
        {"logging": {"driver": "json-file", "options": {"max-size": "1m"}}},
        {"logging": {"options": {"max-file": "3"}}},
        {"logging": {"driver": "json-file", "options": {"max-size": "1m", "max-file": "3"}}},
    ),
    (
        "logging other driver replaces",
        {"logging": {"driver": "json-file", "options": {"max-size": "1m"}}},
        {"logging": {"driver": "syslog", "options": {"tag": "x"}}},
        {"logging": {"driver": "syslog", "options": {"tag": "x"}}},
    ),
    # !reset and !override
    ("reset removes key", {"image": "a", "cap_add": ["X"]}, {"cap_add": Reset()}, {"image": "a"}),
    ("reset [] leaves empty list", {"ports": ["80:80"]}, {"ports": Reset([])}, {"ports": []}),
    (
        "reset {} leaves empty mapping",
        {"environment": ["A=1"]},
        {"environment": Reset({})},
        {"environment": {}},
    ),
    ("reset with no base disappears", {"image": "a"}, {"command": Reset(None)}, {"image": "a"}),
    (
        "reset of one environment key",
        {"environment": ["A=1", "B=2"]},
        {"environment": {"A": Reset()}},
        {"environment": {"B": "2"}},
    ),
    (
        "reset of one nested key",
        {"healthcheck": {"test": ["CMD", "x"], "interval": "5s"}},
        {"healthcheck": {"interval": Reset()}},
        {"healthcheck": {"test": ["CMD", "x"]}},
    ),
    (
        "override replaces list wholesale",
        {"ports": ["80:80", "81:81"]},
        {"ports": Override(["82:82"])},
        {"ports": ["82:82"]},
    ),
    (
        "override replaces mapping wholesale",
        {"environment": {"A": "1", "B": "2"}},
        {"environment": Override({"C": "3"})},
        {"environment": {"C": "3"}},
    ),
    (
        "override with no base is its value",
        {"image": "a"},
        {"dns": Override(["1.1.1.1"])},
        {"image": "a", "dns": ["1.1.1.1"]},
    ),
    (
        "markers nested in an added value",
        {"image": "a"},
        {"deploy": {"labels": Reset(), "mode": Override("global")}},
        {"image": "a", "deploy": {"mode": "global"}},
    ),
]


@pytest.mark.parametrize(
    ("base", "override", "expected"),
    [pytest.param(b, o, e, id=i) for i, b, o, e in SERVICE_CASES],
)
def test_service_merge_rules(base: Any, override: Any, expected: Any) -> None:
    merged = merge(service_doc(base, "a.yaml"), service_doc(override, "b.yaml"))
    assert merged.data == {"services": {"web": expected}}


TOP_LEVEL_CASES: list[tuple[str, Any, Any, Any]] = [
    (
        "new service added",
        {"services": {"a": {"image": "x"}}},
        {"services": {"b": {"image": "y"}}},
        {"services": {"a": {"image": "x"}, "b": {"image": "y"}}},
    ),
    ("name replaced", {"name": "one"}, {"name": "two"}, {"name": "two"}),
    (
        "network labels by key",
        {"networks": {"n": {"labels": ["a=1"]}}},
        {"networks": {"n": {"labels": {"b": "2"}, "driver": "bridge"}}},
        {"networks": {"n": {"labels": {"a": "1", "b": "2"}, "driver": "bridge"}}},
    ),
    (
        "ipam config by subnet",
        {
            "networks": {
                "n": {"ipam": {"config": [{"subnet": "10.0.0.0/24", "gateway": "10.0.0.1"}]}}
            }
        },
        {
            "networks": {
                "n": {"ipam": {"config": [{"subnet": "10.0.0.0/24"}, {"subnet": "10.1.0.0/24"}]}}
            }
        },
        {
            "networks": {
                "n": {"ipam": {"config": [{"subnet": "10.0.0.0/24"}, {"subnet": "10.1.0.0/24"}]}}
            }
        },
    ),
    (
        "volume labels by key",
        {"volumes": {"v": {"labels": {"a": "1"}}}},
        {"volumes": {"v": {"labels": ["a=2"]}}},
        {"volumes": {"v": {"labels": {"a": "2"}}}},
    ),
    (
        "service reset entirely",
        {"services": {"a": {"image": "x"}, "b": {"image": "y"}}},
        {"services": {"b": Reset()}},
        {"services": {"a": {"image": "x"}}},
    ),
    (
        "service overridden entirely",
        {"services": {"a": {"image": "x", "ports": ["1:1"]}}},
        {"services": {"a": Override({"image": "z"})}},
        {"services": {"a": {"image": "z"}}},
    ),
]


@pytest.mark.parametrize(
    ("base", "override", "expected"),
    [pytest.param(b, o, e, id=i) for i, b, o, e in TOP_LEVEL_CASES],
)
def test_top_level_merge_rules(base: Any, override: Any, expected: Any) -> None:
    assert merge(make_doc(base), make_doc(override, "b.yaml")).data == expected


def test_three_files_merge_in_order() -> None:
    docs = [
        service_doc({"image": "a", "ports": ["1:1"], "environment": ["A=1"]}, "1.yaml"),
        service_doc({"ports": Reset([]), "environment": {"B": "2"}}, "2.yaml"),
        service_doc({"image": "c", "ports": ["3:3"], "environment": ["A=3"]}, "3.yaml"),
    ]
    merged = reduce(merge, docs)
    assert merged.data == {
        "services": {"web": {"image": "c", "ports": ["3:3"], "environment": {"A": "3", "B": "2"}}}
    }
    assert merged.file == "1.yaml"


def test_merge_does_not_modify_its_inputs() -> None:
    base = service_doc({"environment": ["A=1"], "volumes": ["./a:/d"], "build": "."})
    over = service_doc({"environment": {"B": "2"}, "volumes": ["./b:/d"], "build": {"target": "t"}})
    before = (copy.deepcopy(base.data), copy.deepcopy(over.data))
    merge(base, over)
    assert (base.data, over.data) == before


def test_markers_in_the_base_file_are_resolved_too() -> None:
    base = service_doc({"image": Override("a"), "cap_add": Reset(), "dns": Reset([])})
    merged = merge(base, service_doc({"user": "u"}, "b.yaml"))
    assert merged.data == {"services": {"web": {"image": "a", "dns": [], "user": "u"}}}


# --- positions --------------------------------------------------------------------------


def _file_at(doc_positions: dict[Any, Location], *path: Any) -> str:
    return doc_positions[tuple(path)].file


@pytest.mark.parametrize(
    ("path", "expected_file"),
    [
        (("services", "web", "image"), "b.yaml"),  # replaced by the override
        (("services", "web", "user"), "a.yaml"),  # untouched base value
        (("services", "web", "environment", "A"), "a.yaml"),  # re-keyed list item
        (("services", "web", "environment", "B"), "b.yaml"),
        (("services", "web", "volumes", 0), "b.yaml"),  # replaced in place by target
        (("services", "web", "volumes", 1), "a.yaml"),
        (("services", "web", "ports", 1), "b.yaml"),  # appended after the base's
    ],
)
def test_positions_follow_values(path: tuple[Any, ...], expected_file: str) -> None:
    base = service_doc(
        {
            "image": "a",
            "user": "u",
            "environment": ["A=1", "B=1"],
            "volumes": [{"type": "bind", "source": ".", "target": "/d"}, "v:/v"],
            "ports": ["1:1"],
        },
        "a.yaml",
    )
    over = service_doc(
        {"image": "b", "environment": {"B": "2"}, "volumes": ["./x:/d"], "ports": ["2:2"]},
        "b.yaml",
    )
    assert _file_at(merge(base, over).positions, *path) == expected_file


def test_replaced_long_volume_leaves_no_stale_child_positions() -> None:
    base = service_doc({"volumes": [{"type": "bind", "source": ".", "target": "/d"}]}, "a.yaml")
    over = service_doc({"volumes": ["./x:/d"]}, "b.yaml")
    positions = merge(base, over).positions
    assert not [p for p in positions if p[:4] == ("services", "web", "volumes", 0) and len(p) > 4]


def test_reset_key_has_no_position_left() -> None:
    merged = merge(service_doc({"cap_add": ["X"]}), service_doc({"cap_add": Reset()}, "b.yaml"))
    assert not [p for p in merged.positions if "cap_add" in p]


# --- strip_markers ------------------------------------------------------------------------

STRIP_CASES: list[tuple[str, Any, Any]] = [
    ("reset removes", {"image": "a", "command": Reset()}, {"image": "a"}),
    ("reset [] stays empty", {"ports": Reset([])}, {"ports": []}),
    ("reset {} stays empty", {"environment": Reset({})}, {"environment": {}}),
    ("reset with a value still removes", {"dns": Reset(["1.1.1.1"])}, {}),
    ("override unwrapped", {"ports": Override(["1:1"])}, {"ports": ["1:1"]}),
    ("nested", {"deploy": {"labels": Override({"a": Reset()})}}, {"deploy": {"labels": {}}}),
    ("reset list items dropped", {"dns": ["1", Reset("2"), "3"]}, {"dns": ["1", "3"]}),
    ("no markers: unchanged", {"image": "a", "ports": ["1:1"]}, {"image": "a", "ports": ["1:1"]}),
]


@pytest.mark.parametrize(
    ("service", "expected"), [pytest.param(s, e, id=i) for i, s, e in STRIP_CASES]
)
def test_strip_markers(service: Any, expected: Any) -> None:
    assert strip_markers(service_doc(service)).data == {"services": {"web": expected}}


def test_strip_markers_renumbers_positions_after_dropped_items() -> None:
    doc = service_doc({"dns": ["1", Reset("2"), "3"]})
    stripped = strip_markers(doc)
    assert (
        stripped.positions[("services", "web", "dns", 1)]
        == doc.positions[("services", "web", "dns", 2)]
    )
    assert ("services", "web", "dns", 2) not in stripped.positions


def test_strip_markers_keeps_file_and_directory() -> None:
    doc = make_doc({"services": {}}, "x.yaml", "/p")
    stripped = strip_markers(doc)
    assert (stripped.file, stripped.directory) == ("x.yaml", "/p")
