"""apply_include(): other projects' resources joining this one, never overriding it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import ConfigError, Location
from orchestrator.loader.document import Document
from orchestrator.loader.include import IncludeSpec, apply_include
from orchestrator.loader.paths import absolutize_paths
from tests.unit.loader.docbuild import load_file, make_doc

CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpus"
COMPOSE_GO = "compose-spec__compose-go__loader__testdata__"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def project_loader(seen: list[IncludeSpec] | None = None) -> Callable[[IncludeSpec], Document]:
    """A minimal pipeline: parse the first file, apply its own includes, nothing else."""

    def load(spec: IncludeSpec) -> Document:
        if seen is not None:
            seen.append(spec)
        doc = load_file(spec.paths[0])
        return apply_include(doc, load)

    return load


def main_doc(tmp_path: Path, data: dict[str, Any]) -> Document:
    return make_doc(data, str(tmp_path / "compose.yaml"), str(tmp_path))


@pytest.mark.corpus
def test_corpus_include_with_paths_relative_to_the_included_file(tmp_path: Path) -> None:
    shutil.copy(CORPUS / f"{COMPOSE_GO}compose-include.yaml", tmp_path / "compose.yaml")
    (tmp_path / "subdir").mkdir()
    shutil.copy(
        CORPUS / f"{COMPOSE_GO}subdir__compose-test-extends-imported.yaml",
        tmp_path / "subdir" / "compose-test-extends-imported.yaml",
    )
    doc = load_file(str(tmp_path / "compose.yaml"))
    result = apply_include(doc, project_loader())
    assert "include" not in result.data
    assert result.data["services"]["bar"] == {"image": "bar", "environment": ["FOO=BAR"]}
    assert result.data["services"]["imported"] == {
        "image": "nginx",
        "container_name": "${SOURCE:-imported}",  # interpolation is the pipeline's business
        "env_file": [str(tmp_path / "subdir" / "extra.env")],
        "volumes": ["/opt/data:/var/lib/mysql"],
    }
    imported_at = result.positions[("services", "imported", "image")]
    assert imported_at.file.endswith("compose-test-extends-imported.yaml")


# (id, include entry, expected spec) with the including file in /p
SPEC_CASES: list[tuple[str, Any, IncludeSpec]] = [
    ("short string", "sub/c.yaml", IncludeSpec(("/p/sub/c.yaml",), "/p/sub", ())),
    ("path only", {"path": "../c.yaml"}, IncludeSpec(("/c.yaml",), "/", ())),
    (
        "several paths: directory of the first",
        {"path": ["a/c.yaml", "b/o.yaml"]},
        IncludeSpec(("/p/a/c.yaml", "/p/b/o.yaml"), "/p/a", ()),
    ),
    (
        "project directory and env files",
        {"path": "/x/c.yaml", "project_directory": "proj", "env_file": ["a.env", "/b.env"]},
        IncludeSpec(("/x/c.yaml",), "/p/proj", ("/p/a.env", "/b.env")),
    ),
    (
        "one env file",
        {"path": "c.yaml", "env_file": ".env.x"},
        IncludeSpec(("/p/c.yaml",), "/p", ("/p/.env.x",)),
    ),
]


@pytest.mark.parametrize(
    ("entry", "expected"), [pytest.param(e, s, id=i) for i, e, s in SPEC_CASES]
)
def test_include_entries_become_specs(
    monkeypatch: pytest.MonkeyPatch, entry: Any, expected: IncludeSpec
) -> None:
    seen: list[IncludeSpec] = []

    def load(spec: IncludeSpec) -> Document:
        seen.append(spec)
        return make_doc({})

    monkeypatch.setattr(os.path, "isfile", lambda _path: True)  # the files need not exist
    apply_include(make_doc({"include": [entry]}, "/p/compose.yaml", "/p"), load)
    assert seen == [expected]


def test_included_resources_are_added(tmp_path: Path) -> None:
    write(
        tmp_path / "lib" / "compose.yaml",
        "services:\n"
        "  db:\n"
        "    build: ./db\n"
        "    volumes: ['./init:/init', 'data:/var/lib/db']\n"
        "networks: {backend: {}}\n"
        "volumes: {data: {}}\n"
        "secrets: {pw: {file: ./pw.txt}}\n"
        "configs: {conf: {file: /etc/conf}}\n",
    )
    doc = main_doc(
        tmp_path,
        {"include": ["lib/compose.yaml"], "services": {"web": {"build": "."}}, "name": "app"},
    )
    result = apply_include(doc, project_loader())
    lib = tmp_path / "lib"
    assert result.data == {
        "name": "app",
        "services": {
            "web": {"build": "."},
            "db": {
                "build": str(lib / "db"),
                "volumes": [f"{lib / 'init'}:/init", "data:/var/lib/db"],
            },
        },
        "networks": {"backend": {}},
        "volumes": {"data": {}},
        "secrets": {"pw": {"file": str(lib / "pw.txt")}},
        "configs": {"conf": {"file": "/etc/conf"}},
    }
    assert not [p for p in result.positions if p and p[0] == "include"]


def test_relative_paths_follow_an_explicit_project_directory(tmp_path: Path) -> None:
    write(tmp_path / "lib" / "compose.yaml", "services:\n  db: {build: ., env_file: db.env}\n")
    doc = main_doc(
        tmp_path, {"include": [{"path": "lib/compose.yaml", "project_directory": "elsewhere"}]}
    )
    db = apply_include(doc, project_loader()).data["services"]["db"]
    assert db == {
        "build": str(tmp_path / "elsewhere"),
        "env_file": str(tmp_path / "elsewhere/db.env"),
    }


@pytest.mark.parametrize(
    ("main", "included", "message", "path"),
    [
        pytest.param(
            {"services": {"web": {"image": "a"}}},
            "services:\n  web: {image: b}\n",
            "service 'web' is defined in {main} and in {lib} (included)",
            "services.web",
            id="service",
        ),
        pytest.param(
            {"networks": {"back": {"driver": "bridge"}}},
            "networks:\n  back: {driver: overlay}\n",
            "network 'back' is defined in {main} and in {lib} (included)",
            "networks.back",
            id="network",
        ),
        pytest.param(
            {"volumes": {"data": None}},
            "volumes:\n  data: {driver: x}\n",
            "volume 'data' is defined in {main} and in {lib} (included)",
            "volumes.data",
            id="volume",
        ),
    ],
)
def test_name_defined_in_both_is_an_error(
    tmp_path: Path, main: dict[str, Any], included: str, message: str, path: str
) -> None:
    lib = write(tmp_path / "lib" / "compose.yaml", included)
    doc = main_doc(tmp_path, {"include": ["lib/compose.yaml"], **main})
    with pytest.raises(ConfigError) as caught:
        apply_include(doc, project_loader())
    [problem] = caught.value.problems
    assert problem.message == message.format(main=doc.file, lib=lib)
    assert problem.path == path
    assert problem.location == doc.positions[tuple(path.split("."))]


def test_name_defined_by_two_includes_is_an_error(tmp_path: Path) -> None:
    a = write(tmp_path / "a" / "compose.yaml", "services:\n  db: {image: a}\n")
    b = write(tmp_path / "b" / "compose.yaml", "services:\n  db: {image: b}\n")
    doc = main_doc(tmp_path, {"include": ["a/compose.yaml", "b/compose.yaml"]})
    with pytest.raises(ConfigError) as caught:
        apply_include(doc, project_loader())
    [problem] = caught.value.problems
    assert problem.message == f"service 'db' is defined in {a} and in {b} (included)"
    assert problem.location == doc.positions[("include", 1)]


def test_identical_definitions_from_two_includes_are_one(tmp_path: Path) -> None:
    write(tmp_path / "a" / "compose.yaml", "networks:\n  shared: {name: shared}\n")
    write(tmp_path / "b" / "compose.yaml", "networks:\n  shared: {name: shared}\n")
    doc = main_doc(tmp_path, {"include": ["a/compose.yaml", "b/compose.yaml"]})
    assert apply_include(doc, project_loader()).data == {"networks": {"shared": {"name": "shared"}}}


def test_every_clash_is_reported(tmp_path: Path) -> None:
    write(tmp_path / "lib.yaml", "services:\n  a: {image: x}\n  b: {image: y}\n")
    doc = main_doc(
        tmp_path, {"include": ["lib.yaml"], "services": {"a": {"image": 1}, "b": {"image": 2}}}
    )
    with pytest.raises(ConfigError) as caught:
        apply_include(doc, project_loader())
    assert [p.path for p in caught.value.problems] == ["services.a", "services.b"]


def test_include_cycle_is_an_error(tmp_path: Path) -> None:
    a = write(tmp_path / "a" / "compose.yaml", "include: [../b/compose.yaml]\n")
    b = write(tmp_path / "b" / "compose.yaml", "include: [../a/compose.yaml]\n")
    doc = load_file(str(a))
    with pytest.raises(ConfigError) as caught:
        apply_include(doc, project_loader())
    [problem] = caught.value.problems
    assert problem.message == f"include cycle: {a} → {b} → {a}"
    assert problem.location == Location(str(b), 3, 1)  # b's include[0]


def test_a_file_included_twice_side_by_side_is_not_a_cycle(tmp_path: Path) -> None:
    write(tmp_path / "common.yaml", "networks:\n  n: {}\n")
    write(tmp_path / "a.yaml", "include: [common.yaml]\nservices:\n  a: {image: a}\n")
    write(tmp_path / "b.yaml", "include: [common.yaml]\nservices:\n  b: {image: b}\n")
    doc = main_doc(tmp_path, {"include": ["a.yaml", "b.yaml"]})
    result = apply_include(doc, project_loader())
    assert result.data == {
        "services": {"a": {"image": "a"}, "b": {"image": "b"}},
        "networks": {"n": {}},
    }


@pytest.mark.parametrize(
    ("include", "message", "path"),
    [
        pytest.param(["missing.yaml"], "included file", "include[0]", id="missing file"),
        pytest.param(
            [{"project_directory": "."}], "an include entry is a path", "include[0]", id="no path"
        ),
        pytest.param([3], "an include entry is a path", "include[0]", id="not a path"),
        pytest.param(
            [{"path": "x.yaml", "env_file": [1]}],
            "an include entry is a path",
            "include[0]",
            id="bad env_file",
        ),
        pytest.param("lib.yaml", "include must be a list", "include", id="not a list"),
    ],
)
def test_bad_include_entries_are_located(
    tmp_path: Path, include: Any, message: str, path: str
) -> None:
    doc = main_doc(tmp_path, {"include": include})
    with pytest.raises(ConfigError) as caught:
        apply_include(doc, project_loader())
    [problem] = caught.value.problems
    assert problem.message.startswith(message)
    assert problem.path == path
    key = ("include", 0) if path == "include[0]" else ("include",)
    assert problem.location == doc.positions[key]


def test_errors_inside_the_included_project_pass_through(tmp_path: Path) -> None:
    write(tmp_path / "lib.yaml", "services: {}\n")

    def failing(spec: IncludeSpec) -> Document:
        raise ConfigError("lib.yaml:1:1: services.x: something is wrong there")

    doc = main_doc(tmp_path, {"include": ["lib.yaml"]})
    with pytest.raises(ConfigError, match="something is wrong there"):
        apply_include(doc, failing)


def test_document_without_include_is_unchanged(tmp_path: Path) -> None:
    doc = main_doc(tmp_path, {"services": {"a": {"image": "a"}}})
    result = apply_include(doc, project_loader())
    assert (result.data, result.positions) == (doc.data, doc.positions)


# --- absolutize_paths -----------------------------------------------------------------------

# (id, document data, expected) with paths made absolute against /p
ABSOLUTIZE_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "service paths",
        {
            "services": {
                "s": {
                    "build": {"context": "."},
                    "env_file": ["./a.env"],
                    "volumes": ["./d:/d", "v:/v", {"type": "bind", "source": "x", "target": "/x"}],
                    "extends": {"file": "base.yaml", "service": "b"},
                }
            }
        },
        {
            "services": {
                "s": {
                    "build": {"context": "/p"},
                    "env_file": ["/p/a.env"],
                    "volumes": [
                        "/p/d:/d",
                        "v:/v",
                        {"type": "bind", "source": "/p/x", "target": "/x"},
                    ],
                    "extends": {"file": "/p/base.yaml", "service": "b"},
                }
            }
        },
    ),
    (
        "secrets and configs files",
        {
            "secrets": {"a": {"file": "./s"}, "b": {"external": True}},
            "configs": {"c": {"file": "../c"}},
        },
        {
            "secrets": {"a": {"file": "/p/s"}, "b": {"external": True}},
            "configs": {"c": {"file": "/c"}},
        },
    ),
    (
        "bind-like local volume device",
        {
            "volumes": {
                "v": {"driver_opts": {"o": "bind", "type": "none", "device": "./data"}},
                "w": {"driver_opts": {"device": "./not-a-bind"}},
            }
        },
        {
            "volumes": {
                "v": {"driver_opts": {"o": "bind", "type": "none", "device": "/p/data"}},
                "w": {"driver_opts": {"device": "./not-a-bind"}},
            }
        },
    ),
    (
        "absolute, home and remote untouched",
        {"services": {"s": {"build": "git@github.com:a/b.git", "volumes": ["~/x:/x", "/y:/y"]}}},
        {"services": {"s": {"build": "git@github.com:a/b.git", "volumes": ["~/x:/x", "/y:/y"]}}},
    ),
]


@pytest.mark.parametrize(
    ("data", "expected"), [pytest.param(d, e, id=i) for i, d, e in ABSOLUTIZE_CASES]
)
def test_absolutize_paths(data: dict[str, Any], expected: dict[str, Any]) -> None:
    assert absolutize_paths(data, "/p") == expected
