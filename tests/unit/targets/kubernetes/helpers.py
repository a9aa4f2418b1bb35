"""Small projects built from the model, and lookups into a rendering."""

from __future__ import annotations

from typing import Any

from orchestrator.model import Project, Service
from orchestrator.targets.kubernetes import Rendering, render_project


def render(*services: Service, **project: Any) -> Rendering:
    files = project.pop("files", {})
    return render_project(
        Project(name="demo", working_dir="/w", services={s.name: s for s in services}, **project),
        environ=project.pop("environ", {"TOKEN": "s3cret"}),
        read_file=lambda path: files[path],
    )


def find(rendering: Rendering, kind: str, name: str) -> dict[str, Any]:
    for obj in rendering.objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise AssertionError(
        f"no {kind}/{name} in {[(o['kind'], o['metadata']['name']) for o in rendering.objects]}"
    )


def kinds(rendering: Rendering) -> list[tuple[str, str]]:
    return [(o["kind"], o["metadata"]["name"]) for o in rendering.objects]


def main_container(obj: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = obj["spec"]["template"]["spec"]["containers"][0]
    return container


def warned(rendering: Rendering, path: str) -> bool:
    return any(w.path == path for w in rendering.warnings)
