"""canonicalize: every short syntax to the spec's long syntax, problems located."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.errors import ConfigError, Location
from orchestrator.loader.canonical import canonicalize
from orchestrator.loader.document import Document, PathKey


def _service(service: dict[str, Any]) -> dict[str, Any]:
    doc = Document(file="compose.yaml", data={"services": {"web": service}})
    result: dict[str, Any] = canonicalize(doc).data["services"]["web"]
    return result


def _port(target: int, published: str | None = None, host_ip: str | None = None,
          protocol: str = "tcp") -> dict[str, Any]:
    out: dict[str, Any] = {"target": target}
    if published is not None:
        out["published"] = published
    if host_ip is not None:
        out["host_ip"] = host_ip
    out.update(protocol=protocol, mode="ingress")
    return out


@pytest.mark.parametrize(
    ("short", "expected"),
    [
        (3000, [_port(3000)]),
        ("3000", [_port(3000)]),
        ("8000:8000", [_port(8000, "8000")]),
        ("49100:22/udp", [_port(22, "49100", protocol="udp")]),
        ("127.0.0.1:8001:8001", [_port(8001, "8001", "127.0.0.1")]),
        ("127.0.0.1::80", [_port(80, None, "127.0.0.1")]),
        ("[::1]:8080:80", [_port(80, "8080", "::1")]),
        ("::1:8080:80", [_port(80, "8080", "::1")]),
        ("3001-3003", [_port(3001), _port(3002), _port(3003)]),
        ("9090-9091:8080-8081", [_port(8080, "9090"), _port(8081, "9091")]),
        ("8000-8010:80", [_port(80, "8000-8010")]),
        ("127.0.0.1:5000-5001:6000-6001/sctp",
         [_port(6000, "5000", "127.0.0.1", "sctp"), _port(6001, "5001", "127.0.0.1", "sctp")]),
        ({"target": "80", "published": 8080}, [_port(80, "8080")]),
        ({"target": 80, "published": "", "mode": "host"},
         [{"target": 80, "protocol": "tcp", "mode": "host"}]),
    ],
)
def test_ports_short_to_long(short: Any, expected: list[dict[str, Any]]) -> None:
    assert _service({"ports": [short]})["ports"] == expected


@pytest.mark.parametrize(
    ("short", "message"),
    [
        ("70000:80", "between 1 and 65535"),
        ("80:70000", "between 1 and 65535"),
        ("8000-8001:80-82", "the published range has 2 ports but the container range has 3"),
        ("web", "expected a container port number"),
        ("80/carrier-pigeon", "expected protocol tcp, udp or sctp"),
        ("[::1:80:80", "expected '[ipv6]:published:target'"),
        ("90-80", "must go upwards"),
        ({"target": 0}, "between 1 and 65535"),
    ],
)
def test_port_errors_are_located(short: Any, message: str) -> None:
    where = Location("compose.yaml", 7, 9)
    doc = Document(
        file="compose.yaml",
        data={"services": {"web": {"ports": ["80", short]}}},
        positions={("services", "web", "ports", 1): where, ("services", "web"): Location("x", 1)},
    )
    with pytest.raises(ConfigError) as caught:
        canonicalize(doc)
    [problem] = caught.value.problems
    assert message in problem.message
    assert problem.path.startswith("services.web.ports[1]")
    assert problem.location == where


def test_every_problem_is_collected() -> None:
    doc = Document(
        file="compose.yaml",
        data={"services": {
            "a": {"ports": ["99999"], "restart": "sometimes"},
            "b": {"command": "echo 'unclosed", "volumes": ["data:/x:bogus"]},
        }},
    )
    with pytest.raises(ConfigError) as caught:
        canonicalize(doc)
    assert sorted(p.path for p in caught.value.problems) == [
        "services.a.ports[0]", "services.a.restart", "services.b.command", "services.b.volumes[0]",
    ]


def test_expanded_ports_keep_their_positions() -> None:
    first, second = Location("f", 3, 7), Location("f", 4, 7)
    doc = Document(
        file="f",
        data={"services": {"web": {"ports": ["1-2", "3"]}}},
        positions={("services", "web", "ports", 0): first, ("services", "web", "ports", 1): second},
    )
    positions = canonicalize(doc).positions
    assert [positions[("services", "web", "ports", i)] for i in range(3)] == [first, first, second]


BIND = {"create_host_path": True}


@pytest.mark.parametrize(
    ("short", "expected"),
    [
        ("/var/lib/anon", {"type": "volume", "target": "/var/lib/anon"}),
        (":/anon", {"type": "volume", "target": "/anon"}),
        ("data:/var/lib/data", {"type": "volume", "source": "data", "target": "/var/lib/data"}),
        ("./static:/www", {"type": "bind", "source": "./static", "target": "/www", "bind": BIND}),
        (".:/code", {"type": "bind", "source": ".", "target": "/code", "bind": BIND}),
        ("/opt:/opt:ro", {"type": "bind", "source": "/opt", "target": "/opt", "bind": BIND,
                          "read_only": True}),
        ("~/c:/etc/c:rw", {"type": "bind", "source": "~/c", "target": "/etc/c", "bind": BIND,
                           "read_only": False}),
        ("/a:/b:ro,Z", {"type": "bind", "source": "/a", "target": "/b", "read_only": True,
                        "bind": {"create_host_path": True, "selinux": "Z"}}),
        ("/a:/b:rshared", {"type": "bind", "source": "/a", "target": "/b",
                           "bind": {"create_host_path": True, "propagation": "rshared"}}),
        ("/a:/b:cached", {"type": "bind", "source": "/a", "target": "/b", "bind": BIND,
                          "consistency": "cached"}),
        ("data:/d:nocopy", {"type": "volume", "source": "data", "target": "/d",
                            "volume": {"nocopy": True}}),
        ({"type": "tmpfs", "target": "/t", "tmpfs": {"size": "1m"}},
         {"type": "tmpfs", "target": "/t", "tmpfs": {"size": "1m"}}),
    ],
)
def test_volumes_short_to_long(short: Any, expected: dict[str, Any]) -> None:
    assert _service({"volumes": [short]})["volumes"] == [expected]


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("environment", ["A=1", "B", "C=x=y", "D="], {"A": "1", "B": None, "C": "x=y", "D": ""}),
        ("environment", {"A": 1, "B": True, "C": None, "D": 0.5},
         {"A": "1", "B": "true", "C": None, "D": "0.5"}),
        ("labels", ["a=1", "b"], {"a": "1", "b": ""}),
        ("labels", {"a": 42, "b": None}, {"a": "42", "b": ""}),
        ("annotations", ["com.example.foo=bar"], {"com.example.foo": "bar"}),
        ("sysctls", ["net.core.somaxconn=1024"], {"net.core.somaxconn": "1024"}),
        ("sysctls", {"net.ipv4.tcp_syncookies": 0}, {"net.ipv4.tcp_syncookies": "0"}),
        ("extra_hosts", {"somehost": "162.242.195.82", "v6": "::1"},
         ["somehost:162.242.195.82", "v6:::1"]),
        ("extra_hosts", ["a=1.2.3.4", "b:5.6.7.8", "c=[::1]", "d=2001:db8::2"],
         ["a:1.2.3.4", "b:5.6.7.8", "c:::1", "d:2001:db8::2"]),
        ("extra_hosts", {"multi": ["1.1.1.1", "::2"]}, ["multi:1.1.1.1", "multi:::2"]),
        ("networks", ["front", "back"], {"front": {}, "back": {}}),
        ("networks", {"front": None, "back": {"aliases": ["b"]}},
         {"front": {}, "back": {"aliases": ["b"]}}),
        ("depends_on", ["db"],
         {"db": {"condition": "service_started", "required": True, "restart": False}}),
        ("depends_on", {"db": {"condition": "service_healthy"}},
         {"db": {"condition": "service_healthy", "required": True, "restart": False}}),
        ("healthcheck", {"test": "curl -f http://x || exit 1", "interval": "10s"},
         {"test": ["CMD-SHELL", "curl -f http://x || exit 1"], "interval": "10s"}),
        ("healthcheck", {"test": ["CMD", "true"]}, {"test": ["CMD", "true"]}),
        ("healthcheck", {"disable": True}, {"disable": True, "test": ["NONE"]}),
        ("command", "bundle exec thin -p 3000", ["bundle", "exec", "thin", "-p", "3000"]),
        ("command", "sh -c 'echo \"a b\"'", ["sh", "-c", 'echo "a b"']),
        ("command", ["echo", 1], ["echo", "1"]),
        ("entrypoint", "/entry.sh --flag", ["/entry.sh", "--flag"]),
        ("dns", "8.8.8.8", ["8.8.8.8"]),
        ("dns_search", "example.com", ["example.com"]),
        ("tmpfs", "/run", ["/run"]),
        ("expose", ["3000", 8000], ["3000", "8000"]),
        ("env_file", ".env", [{"path": ".env", "required": True}]),
        ("env_file", ["a.env", {"path": "b.env", "required": False}],
         [{"path": "a.env", "required": True}, {"path": "b.env", "required": False}]),
        ("ulimits", {"nproc": 65535, "nofile": {"soft": 1, "hard": 2}},
         {"nproc": {"soft": 65535, "hard": 65535}, "nofile": {"soft": 1, "hard": 2}}),
        ("build", "./app", {"context": "./app"}),
        ("build", {"context": ".", "args": ["A=1", "B"], "labels": ["x=y"]},
         {"context": ".", "args": {"A": "1", "B": None}, "labels": {"x": "y"}}),
        ("secrets", ["s1", {"source": "s2", "target": "/x"}],
         [{"source": "s1"}, {"source": "s2", "target": "/x"}]),
        ("configs", ["c1"], [{"source": "c1"}]),
        ("restart", "on-failure:3", "on-failure:3"),
        ("restart", False, "no"),
        ("mem_limit", "512m", "512m"),
    ],
)
def test_service_keys_short_to_long(key: str, value: Any, expected: Any) -> None:
    assert _service({key: value})[key] == expected


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("restart", "on-failure:x", "expected no, always, on-failure"),
        ("restart", "always:3", "expected no, always, on-failure"),
        ("command", "echo 'open", "cannot split the command"),
        ("volumes", ["a:b:c:d"], "expected 'source:target[:mode]'"),
        ("volumes", ["/a:/b:sideways"], "unknown volume mode 'sideways'"),
        ("extra_hosts", ["justahost"], "expected 'host:ip' or 'host=ip'"),
        ("deploy", {"update_config": {"delay": "soon"}}, "expected a duration"),
        ("deploy", {"resources": {"limits": {"memory": "lots"}}}, "expected a size"),
        ("deploy", {"replicas": "many"}, "expected a number"),
    ],
)
def test_service_key_errors(key: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _service({key: value})
    [problem] = caught.value.problems
    assert message in problem.message
    assert problem.path.startswith(f"services.web.{key}")


def test_deploy_durations_sizes_and_numbers_are_parsed() -> None:
    deploy = _service({"deploy": {
        "replicas": "6",
        "labels": ["FOO=BAR"],
        "update_config": {"parallelism": "3", "delay": "10s", "monitor": "1m30s",
                          "max_failure_ratio": "0.3"},
        "rollback_config": {"delay": "500ms"},
        "restart_policy": {"delay": "5s", "window": "2m", "max_attempts": "3"},
        "resources": {"limits": {"cpus": "0.5", "memory": "50M", "pids": "10"},
                      "reservations": {"cpus": 0.25, "memory": "1g"}},
    }})["deploy"]
    assert deploy == {
        "replicas": 6,
        "labels": {"FOO": "BAR"},
        "update_config": {"parallelism": 3, "delay": 10.0, "monitor": 90.0,
                          "max_failure_ratio": 0.3},
        "rollback_config": {"delay": 0.5},
        "restart_policy": {"delay": 5.0, "window": 120.0, "max_attempts": 3},
        "resources": {"limits": {"cpus": 0.5, "memory": 50 * 1024**2, "pids": 10},
                      "reservations": {"cpus": 0.25, "memory": 1024**3}},
    }


def test_legacy_v2_keys_stay_service_keys() -> None:
    service = _service({"mem_limit": "1g", "cpu_shares": 512, "memswap_limit": "2g"})
    assert service == {"mem_limit": "1g", "cpu_shares": 512, "memswap_limit": "2g"}


@pytest.mark.parametrize(
    ("section", "entry", "expected"),
    [
        ("networks", None, {}),
        ("networks", {"external": {"name": "cool"}}, {"external": True, "name": "cool"}),
        ("volumes", {"external": True}, {"external": True}),
        ("volumes", {"labels": ["a=b"], "driver_opts": {"baz": 1}},
         {"labels": {"a": "b"}, "driver_opts": {"baz": "1"}}),
        ("secrets", {"external": {"name": "s"}}, {"external": True, "name": "s"}),
        ("configs", {"file": "./c", "x-foo": 1}, {"file": "./c", "x-foo": 1}),
    ],
)
def test_top_level_resources(section: str, entry: Any, expected: dict[str, Any]) -> None:
    doc = Document(file="compose.yaml", data={section: {"thing": entry}})
    assert canonicalize(doc).data[section]["thing"] == expected


def test_conflicting_legacy_external_name() -> None:
    path: PathKey = ("networks", "n", "external", "name")
    doc = Document(
        file="compose.yaml",
        data={"networks": {"n": {"name": "a", "external": {"name": "b"}}}},
        positions={path: Location("compose.yaml", 4, 13)},
    )
    with pytest.raises(ConfigError) as caught:
        canonicalize(doc)
    [problem] = caught.value.problems
    assert problem.path == "networks.n.external.name"
    assert problem.location == Location("compose.yaml", 4, 13)


def test_input_document_is_not_modified() -> None:
    data = {"services": {"web": {"ports": ["80"], "environment": ["A=1"]}}}
    doc = Document(file="compose.yaml", data=data)
    canonicalize(doc)
    assert data == {"services": {"web": {"ports": ["80"], "environment": ["A=1"]}}}
