"""apply_extends(): services built from other services, in this file or others."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import ConfigError
from orchestrator.loader.document import Document, Reset
from orchestrator.loader.extends import apply_extends
from orchestrator.loader.merge import merge, strip_markers
from orchestrator.loader.paths import rebase_service_paths
from tests.unit.loader.docbuild import load_file, make_doc, service_doc, yaml_doc

CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpus"
COMPOSE_GO = "compose-spec__compose-go__loader__testdata__"


def no_files(path: str) -> Document:
    raise AssertionError(f"no other file should be read, asked for {path}")


# (id, services, expected services after extends)
SAME_FILE_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "string form",
        {"base": {"image": "a", "user": "root"}, "web": {"extends": "base", "user": "app"}},
        {"base": {"image": "a", "user": "root"}, "web": {"image": "a", "user": "app"}},
    ),
    (
        "mapping form",
        {"base": {"image": "a"}, "web": {"extends": {"service": "base"}, "ports": ["80:80"]}},
        {"base": {"image": "a"}, "web": {"image": "a", "ports": ["80:80"]}},
    ),
    (
        "merge rules apply",
        {
            "base": {
                "image": "a",
                "environment": ["A=1", "B=1"],
                "command": ["x", "y"],
                "volumes": ["common:/data:rw"],
            },
            "cli": {
                "extends": "base",
                "environment": {"B": "2"},
                "command": "z",
                "volumes": ["cli:/data:ro"],
            },
        },
        {
            "base": {
                "image": "a",
                "environment": ["A=1", "B=1"],
                "command": ["x", "y"],
                "volumes": ["common:/data:rw"],
            },
            "cli": {
                "image": "a",
                "environment": {"A": "1", "B": "2"},
                "command": "z",
                "volumes": ["cli:/data:ro"],
            },
        },
    ),
    (
        "chain a -> b -> c",
        {
            "c": {"image": "busybox", "user": "root"},
            "b": {"extends": "c", "image": "busybox:1"},
            "a": {"extends": "b", "working_dir": "/w"},
        },
        {
            "c": {"image": "busybox", "user": "root"},
            "b": {"image": "busybox:1", "user": "root"},
            "a": {"image": "busybox:1", "user": "root", "working_dir": "/w"},
        },
    ),
    (
        "two services share a base",
        {"base": {"image": "a"}, "x": {"extends": "base"}, "y": {"extends": "base", "user": "u"}},
        {"base": {"image": "a"}, "x": {"image": "a"}, "y": {"image": "a", "user": "u"}},
    ),
    (
        "references to other services are inherited",
        {
            "zot": {"image": "z"},
            "base": {
                "image": "a",
                "depends_on": ["zot"],
                "links": ["zot"],
                "volumes_from": ["zot"],
                "network_mode": "service:zot",
            },
            "web": {"extends": "base"},
        },
        {
            "zot": {"image": "z"},
            "base": {
                "image": "a",
                "depends_on": ["zot"],
                "links": ["zot"],
                "volumes_from": ["zot"],
                "network_mode": "service:zot",
            },
            "web": {
                "image": "a",
                "depends_on": ["zot"],
                "links": ["zot"],
                "volumes_from": ["zot"],
                "network_mode": "service:zot",
            },
        },
    ),
    (
        "services without extends untouched",
        {"a": {"image": "a"}, "b": None},
        {"a": {"image": "a"}, "b": None},
    ),
]


@pytest.mark.parametrize(
    ("services", "expected"), [pytest.param(s, e, id=i) for i, s, e in SAME_FILE_CASES]
)
def test_extends_in_the_same_file(services: dict[str, Any], expected: dict[str, Any]) -> None:
    result = apply_extends(make_doc({"services": services}), no_files)
    assert result.data == {"services": expected}


def test_inherited_values_keep_the_base_position() -> None:
    doc = make_doc({"services": {"base": {"image": "a"}, "web": {"extends": "base", "user": "u"}}})
    result = apply_extends(doc, no_files)
    assert (
        result.positions[("services", "web", "image")]
        == doc.positions[("services", "base", "image")]
    )
    assert (
        result.positions[("services", "web", "user")] == doc.positions[("services", "web", "user")]
    )
    assert not [p for p in result.positions if p[:3] == ("services", "web", "extends")]


# --- the corpus cases ---------------------------------------------------------------------


@pytest.mark.corpus
def test_corpus_reset_removes_the_inherited_command() -> None:
    doc = load_file(str(CORPUS / f"{COMPOSE_GO}extends__reset.yaml"))
    result = strip_markers(apply_extends(doc, no_files))
    assert result.data["services"]["base"] == {"image": "alpine:latest"}
    assert result.data["services"]["init"]["command"] == "sleep infinity"


def test_reset_is_kept_for_a_later_merge_with_an_earlier_file() -> None:
    earlier = service_doc({"image": "x", "command": "from the first file"}, "1.yaml")
    later = make_doc(
        {"services": {"init": {"command": "c"}, "web": {"extends": "init", "command": Reset()}}},
        "2.yaml",
    )
    result = merge(earlier, apply_extends(later, no_files))
    assert result.data["services"]["web"] == {"image": "x"}


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("service", "inherited"),
    [
        ("with_depends_on", {"depends_on": ["zot"]}),
        ("with_volumes_from", {"volumes_from": ["zot"]}),
        ("with_ipc", {"ipc": "service:zot"}),
        ("with_network_mode", {"network_mode": "service:zot"}),
    ],
)
def test_corpus_cross_file_base_references_are_inherited(
    tmp_path: Path, service: str, inherited: dict[str, Any]
) -> None:
    shutil.copy(CORPUS / f"{COMPOSE_GO}extends__depends_on.yaml", tmp_path / "depends_on.yaml")
    main = make_doc(
        {"services": {"bar": {"extends": {"file": "depends_on.yaml", "service": service}}}},
        str(tmp_path / "compose.yaml"),
        str(tmp_path),
    )
    result = apply_extends(main, load_file)
    assert result.data["services"]["bar"] == {"image": "foo", **inherited}


# --- across files, with paths rebased -----------------------------------------------------


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_chain_across_files_rebases_relative_paths(tmp_path: Path) -> None:
    write(
        tmp_path / "common" / "base.yaml",
        "services:\n"
        "  mid:\n"
        "    extends: {file: deep/c.yaml, service: root}\n"
        "    env_file: ./mid.env\n"
        "    volumes: ['./mid-data:/mid']\n",
    )
    write(
        tmp_path / "common" / "deep" / "c.yaml",
        "services:\n"
        "  root:\n"
        "    image: r\n"
        "    build: ./ctx\n"
        "    volumes: ['./data:/data', 'named:/named', '/abs:/abs']\n",
    )
    main = make_doc(
        {"services": {"web": {"extends": {"file": "common/base.yaml", "service": "mid"}}}},
        str(tmp_path / "compose.yaml"),
        str(tmp_path),
    )
    web = apply_extends(main, load_file).data["services"]["web"]
    assert web == {
        "image": "r",
        "build": "./common/deep/ctx",
        "volumes": [
            "./common/deep/data:/data",
            "named:/named",
            "/abs:/abs",
            "./common/mid-data:/mid",
        ],
        "env_file": "./common/mid.env",
    }


def test_base_in_another_file_may_extend_its_own_sibling(tmp_path: Path) -> None:
    write(
        tmp_path / "other.yaml",
        "services:\n  a: {image: a, user: root}\n  b: {extends: a, working_dir: /b}\n",
    )
    main = make_doc(
        {"services": {"web": {"extends": {"file": "other.yaml", "service": "b"}}}},
        str(tmp_path / "compose.yaml"),
        str(tmp_path),
    )
    web = apply_extends(main, load_file).data["services"]["web"]
    assert web == {"image": "a", "user": "root", "working_dir": "/b"}


def test_each_other_file_is_loaded_once(tmp_path: Path) -> None:
    write(tmp_path / "other.yaml", "services:\n  a: {image: a}\n  b: {image: b}\n")
    asked: list[str] = []

    def counting(path: str) -> Document:
        asked.append(path)
        return load_file(path)

    ext = {"file": "other.yaml"}
    main = make_doc(
        {
            "services": {
                "x": {"extends": {**ext, "service": "a"}},
                "y": {"extends": {**ext, "service": "b"}},
            }
        },
        str(tmp_path / "compose.yaml"),
        str(tmp_path),
    )
    apply_extends(main, counting)
    assert asked == [str(tmp_path / "other.yaml")]


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("services", "message", "path"),
    [
        pytest.param(
            {"a": {"extends": "b"}, "b": {"extends": "a"}},
            "extends cycle: a → b → a",
            "services.b.extends",
            id="two-service cycle",
        ),
        pytest.param(
            {"a": {"extends": "a"}}, "extends cycle: a → a", "services.a.extends", id="self"
        ),
        pytest.param(
            {"a": {"extends": "c"}, "b": {"extends": "a"}, "c": {"extends": "b"}},
            "extends cycle: a → c → b → a",
            "services.b.extends",
            id="three-service cycle",
        ),
        pytest.param(
            {"web": {"extends": "bsae"}, "base": {"image": "a"}},
            "service 'web' extends 'bsae', which is not defined in this file",
            "services.web.extends",
            id="unknown service",
        ),
        pytest.param(
            {"web": {"extends": {"file": "x.yaml"}}},
            "extends must be a service name",
            "services.web.extends",
            id="no service named",
        ),
        pytest.param(
            {"web": {"extends": 3}},
            "extends must be a service name",
            "services.web.extends",
            id="not a name",
        ),
    ],
)
def test_extends_errors_are_located(services: dict[str, Any], message: str, path: str) -> None:
    doc = make_doc({"services": services}, "compose.yaml")
    with pytest.raises(ConfigError) as caught:
        apply_extends(doc, no_files)
    assert len(caught.value.problems) == 1
    problem = caught.value.problems[0]
    assert problem.message.startswith(message)
    assert problem.path == path
    dotted = tuple(int(p) if p.isdigit() else p for p in path.split("."))
    assert problem.location == doc.positions[dotted]


def test_unknown_service_suggests_a_close_name() -> None:
    doc = make_doc({"services": {"web": {"extends": "bsae"}, "base": {"image": "a"}}})
    with pytest.raises(ConfigError) as caught:
        apply_extends(doc, no_files)
    assert caught.value.problems[0].hint == "did you mean `base`?"


def test_missing_file_is_located_at_extends_file(tmp_path: Path) -> None:
    doc = make_doc(
        {"services": {"web": {"extends": {"file": "nope.yaml", "service": "a"}}}},
        str(tmp_path / "compose.yaml"),
        str(tmp_path),
    )
    with pytest.raises(ConfigError) as caught:
        apply_extends(doc, no_files)
    problem = caught.value.problems[0]
    assert "nope.yaml" in problem.message
    assert problem.path == "services.web.extends.file"
    assert problem.location == doc.positions[("services", "web", "extends", "file")]


def test_unknown_service_in_another_file_names_that_file(tmp_path: Path) -> None:
    write(tmp_path / "other.yaml", "services:\n  a: {image: a}\n")
    doc = make_doc(
        {"services": {"web": {"extends": {"file": "other.yaml", "service": "z"}}}},
        str(tmp_path / "compose.yaml"),
        str(tmp_path),
    )
    with pytest.raises(ConfigError, match=r"'z', which is not defined in .*other\.yaml"):
        apply_extends(doc, load_file)


def test_cycle_across_files(tmp_path: Path) -> None:
    write(tmp_path / "other.yaml", "services:\n  b: {extends: {file: compose.yaml, service: a}}\n")
    write(tmp_path / "compose.yaml", "services:\n  a: {extends: {file: other.yaml, service: b}}\n")
    doc = load_file(str(tmp_path / "compose.yaml"))
    with pytest.raises(ConfigError, match=r"extends cycle: a → b \(.*other\.yaml\) → a"):
        apply_extends(doc, load_file)


def test_document_without_extends_is_returned_as_is() -> None:
    doc = yaml_doc("services:\n  web: {image: a}\n")
    assert apply_extends(doc, no_files) is doc


# --- rebase_service_paths -----------------------------------------------------------------

# (id, service, expected) rebased from /p/sub to /p
REBASE_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("build string", {"build": "."}, {"build": "./sub"}),
    (
        "build context",
        {"build": {"context": "app", "dockerfile": "D"}},
        {"build": {"context": "./sub/app", "dockerfile": "D"}},
    ),
    (
        "remote build context untouched",
        {"build": "https://github.com/a/b.git"},
        {"build": "https://github.com/a/b.git"},
    ),
    (
        "additional contexts",
        {
            "build": {
                "context": ".",
                "additional_contexts": {
                    "x": "../x",
                    "img": "docker-image://alpine",
                    "svc": "service:base",
                },
            }
        },
        {
            "build": {
                "context": "./sub",
                "additional_contexts": {
                    "x": "./x",
                    "img": "docker-image://alpine",
                    "svc": "service:base",
                },
            }
        },
    ),
    ("env_file string", {"env_file": ".env"}, {"env_file": "./sub/.env"}),
    (
        "env_file list",
        {"env_file": ["a.env", {"path": "./b.env", "required": False}, "/abs.env"]},
        {"env_file": ["./sub/a.env", {"path": "./sub/b.env", "required": False}, "/abs.env"]},
    ),
    ("label_file", {"label_file": ["l.txt"]}, {"label_file": ["./sub/l.txt"]}),
    (
        "short bind mounts",
        {
            "volumes": [
                "./data:/d",
                "../up:/u:ro",
                "data/x:/x",
                "~/h:/h",
                "/abs:/abs",
                "named:/n",
                "/anon",
            ]
        },
        {
            "volumes": [
                "./sub/data:/d",
                "./up:/u:ro",
                "./sub/data/x:/x",
                "~/h:/h",
                "/abs:/abs",
                "named:/n",
                "/anon",
            ]
        },
    ),
    (
        "long bind mount",
        {
            "volumes": [
                {"type": "bind", "source": "./d", "target": "/d"},
                {"type": "volume", "source": "v", "target": "/v"},
            ]
        },
        {
            "volumes": [
                {"type": "bind", "source": "./sub/d", "target": "/d"},
                {"type": "volume", "source": "v", "target": "/v"},
            ]
        },
    ),
    (
        "extends.file",
        {"extends": {"file": "base.yaml", "service": "b"}},
        {"extends": {"file": "./sub/base.yaml", "service": "b"}},
    ),
    (
        "develop watch path",
        {"develop": {"watch": [{"path": "src", "action": "sync"}]}},
        {"develop": {"watch": [{"path": "./sub/src", "action": "sync"}]}},
    ),
    ("nothing to rebase", {"image": "a", "command": "./run"}, {"image": "a", "command": "./run"}),
]


@pytest.mark.parametrize(
    ("service", "expected"), [pytest.param(s, e, id=i) for i, s, e in REBASE_CASES]
)
def test_rebase_service_paths(service: dict[str, Any], expected: dict[str, Any]) -> None:
    assert rebase_service_paths(service, "/p/sub", "/p") == expected


def test_rebase_towards_a_deeper_directory_goes_up() -> None:
    rebased = rebase_service_paths({"build": ".", "volumes": ["./d:/d"]}, "/p", "/p/sub")
    assert rebased == {"build": "..", "volumes": ["../d:/d"]}


def test_rebase_does_not_modify_its_input() -> None:
    service = {"volumes": ["./d:/d"], "build": {"context": "."}}
    rebase_service_paths(service, "/p/sub", "/p")
    assert service == {"volumes": ["./d:/d"], "build": {"context": "."}}
