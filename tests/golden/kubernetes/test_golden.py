"""Golden Kubernetes renderings of the samples and of ../shared/corpus, all strictly valid.

``PYCOMPOSE_UPDATE_GOLDEN=1`` rewrites the golden files instead of comparing. Each golden
file is the YAML stream followed by the warnings as comments; the temporary directory a
corpus file is laid out in is written as ``/project``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.loader.discover import LoadOptions
from orchestrator.loader.pipeline import load_project
from orchestrator.targets.kubernetes import (
    KUBERNETES_VERSION,
    Rendering,
    problems,
    render_project,
    to_stream,
)
from tests.corpus.test_corpus import CORPUS, ENV, NEGATIVE, PARSE_ONLY, corpus_files, lay_out, load

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
UPDATE = os.environ.get("PYCOMPOSE_UPDATE_GOLDEN") == "1"


def golden_text(rendering: Rendering, root: str) -> str:
    warnings = "".join(f"# warning: {w}\n" for w in rendering.warnings)
    return (to_stream(rendering.objects) + warnings).replace(root, "/project")


def check(rendering: Rendering, golden: Path, root: str) -> None:
    assert problems(rendering.objects, KUBERNETES_VERSION) == []
    text = golden_text(rendering, root)
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.is_file(), f"{golden} is missing: run with PYCOMPOSE_UPDATE_GOLDEN=1"
    assert text == golden.read_text(encoding="utf-8")


@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no corpus at {CORPUS}")
@pytest.mark.parametrize("name", [n for n in corpus_files() if n not in NEGATIVE])
def test_corpus_file_renders_as_golden(tmp_path: Path, name: str) -> None:
    path = lay_out(tmp_path, name)
    result = load(path, ENV.get(name, {}), semantic_checks=name not in PARSE_ONLY)
    rendering = render_project(result.project, environ=result.environment)
    check(rendering, HERE / "corpus" / name, str(path.parent))


# every sample stack (base/ only builds the shared base image)
SAMPLES = sorted(
    p.parent.name for p in (REPO / "samples").glob("*/compose.yaml") if p.parent.name != "base"
)


@pytest.mark.parametrize("sample", SAMPLES)
def test_sample_renders_as_golden(sample: str) -> None:
    compose = REPO / "samples" / sample / "compose.yaml"
    result = load_project(LoadOptions(files=(str(compose),), environ={"HOME": "/root"}))
    rendering = render_project(result.project, environ=result.environment)
    check(rendering, HERE / "samples" / f"{sample}.yaml", str(compose.parent))
