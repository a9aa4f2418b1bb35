"""Every real-world file of ../shared/corpus loads, and `config` output loads back the same.

The corpus holds verbatim public compose files; files they reference (env files, secrets)
are not copied, so each test lays the file out in a tmp directory with empty stubs and the
variables it needs (see the corpus SOURCES.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.api import config_document
from orchestrator.errors import ConfigError
from orchestrator.loader.discover import LoadOptions
from orchestrator.loader.pipeline import load_project
from orchestrator.loader.yaml_source import dump, parse

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
NEGATIVE = {
    "compose-spec__compose-go__loader__testdata__compose-depends-on-cycle.yaml": "cycle",
    "docker__compose__pkg__e2e__fixtures__wrong-composefile__compose.yaml": "unknown key",
}
# "use it for parse/normalise tests only" (SOURCES.md): it names undefined services on purpose
PARSE_ONLY = {"compose-spec__compose-go__loader__full-example.yaml"}
INCLUDED = "compose-spec__compose-go__loader__testdata__subdir__compose-test-extends-imported.yaml"
INCLUDER = "compose-spec__compose-go__loader__testdata__compose-include.yaml"
# Variables that files use without defaults where an empty value would be invalid.
ENV: dict[str, dict[str, str]] = {
    "jitsi__docker-jitsi-meet__docker-compose.yaml": {
        "HTTP_PORT": "8000",
        "HTTPS_PORT": "8443",
        "CONFIG": "/srv/jitsi",
        "JVB_PORT": "10000",
    },
    "docker__awesome-compose__plex__compose.yaml": {"PLEX_MEDIA_PATH": "/srv/media"},
}

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no corpus at {CORPUS}")


def corpus_files() -> list[str]:
    if not CORPUS.is_dir():
        return []
    return sorted(p.name for p in CORPUS.glob("*.yaml") if p.name != INCLUDED)


def _stub_referenced_files(root: Path, text: str) -> None:
    """Create empty files for the env_file / secret / config paths a file names."""
    data = parse(text, "stub.yaml", str(root)).data
    wanted: list[str] = []
    for service in (data.get("services") or {}).values():
        env_file = (service or {}).get("env_file")
        entries = env_file if isinstance(env_file, list) else [env_file] if env_file else []
        for entry in entries:
            wanted.append(entry["path"] if isinstance(entry, dict) else entry)
    for section in ("secrets", "configs"):
        for item in (data.get(section) or {}).values():
            if isinstance(item, dict) and isinstance(item.get("file"), str):
                wanted.append(item["file"])
    for rel in wanted:
        if rel.startswith(("/", "~")):
            continue
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()


def lay_out(tmp_path: Path, name: str) -> Path:
    text = (CORPUS / name).read_text()
    root = tmp_path / "project"
    root.mkdir()
    target = root / "compose.yaml"
    target.write_text(text)
    _stub_referenced_files(root, text)
    if name == INCLUDER:
        included = (CORPUS / INCLUDED).read_text()
        (root / "subdir").mkdir()
        (root / "subdir" / "compose-test-extends-imported.yaml").write_text(included)
        _stub_referenced_files(root / "subdir", included)
    return target


def load(path: Path, env: dict[str, str], **kw: object):  # type: ignore[no-untyped-def]
    return load_project(
        LoadOptions(files=(str(path),), environ={"HOME": "/root", **env}, **kw)  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("name", corpus_files())
def test_corpus_file_loads_and_config_round_trips(tmp_path: Path, name: str) -> None:
    path = lay_out(tmp_path, name)
    env = ENV.get(name, {})
    if name in NEGATIVE:
        with pytest.raises(ConfigError) as caught:
            load(path, env)
        problem = caught.value.problems[0]
        assert problem.location is not None and problem.location.line is not None
        assert NEGATIVE[name] in str(caught.value).lower() or "→" in str(caught.value)
        return
    checks = name not in PARSE_ONLY
    first = load(path, env, semantic_checks=checks).project
    out = tmp_path / "config-output.yaml"
    out.write_text(dump(config_document(first)))
    second = load(out, env, project_directory=first.working_dir, semantic_checks=checks).project
    assert second.services == first.services
    assert second.networks == first.networks
    assert second.volumes == first.volumes
    assert second.secrets == first.secrets
    assert second.configs == first.configs
    assert second.name == first.name


def test_include_pair_brings_the_included_services(tmp_path: Path) -> None:
    path = lay_out(tmp_path, INCLUDER)
    project = load(path, {}).project
    assert sorted(project.services) == ["bar", "imported"]
    imported = project.services["imported"]
    assert imported.container_name == "imported"
    # env_file is relative to the included file, not to the file that includes it
    assert imported.env_file == (str(path.parent / "subdir" / "extra.env"),)
    assert project.services["bar"].environment == {"FOO": "BAR"}


def test_negative_cases_are_named_in_sources() -> None:
    sources = (CORPUS / "SOURCES.md").read_text()
    for name in NEGATIVE:
        short = name.split("__")[-1].replace(".yaml", "")
        assert short in sources
