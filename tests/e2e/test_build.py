"""Dockerfile builds for real: our builder on the namespace backend against the docker engine.

One multi-stage Dockerfile (ARG, COPY --from, USER, HEALTHCHECK, WORKDIR, ENV, STOPSIGNAL)
FROM the busybox test image is built by ``pycompose build`` on both backends from the same
compose file; containers of both must answer the same command the same way, and ours must
become healthy. A rebuild with nothing changed must come entirely from the cache in well
under a second; ``image save`` must give an archive the engine loads and runs; context
escapes must be refused. State lives under tmp; images made in the engine are removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [
    pytest.mark.root,
    pytest.mark.docker,
    pytest.mark.skipif(os.geteuid() != 0, reason="the namespace builder needs root"),
]

PYCOMPOSE = str(Path(sys.executable).parent / "pycompose")

DOCKERFILE = """\
# syntax=docker/dockerfile:1
ARG BASE=pycompose-test/busybox:1
FROM ${BASE} AS build
ARG GREETING=hello
WORKDIR /src
COPY message.txt ./
RUN echo "$GREETING, $(cat message.txt)" > /src/out.txt && rm /bin/vi

FROM ${BASE} AS final
ARG GREETING
ENV GREETING=${GREETING} \\
    APP_HOME=/app
RUN mkdir -p /etc && echo "root:x:0:0:root:/root:/bin/sh" > /etc/passwd \\
 && echo "app:x:1000:1000:app:/app:/bin/sh" >> /etc/passwd \\
 && echo "root:x:0:" > /etc/group && echo "app:x:1000:" >> /etc/group
COPY --from=build --chown=app:app /src/out.txt $APP_HOME/out.txt
USER app
WORKDIR $APP_HOME
HEALTHCHECK --interval=1s --timeout=2s --retries=3 CMD test -f /app/out.txt
STOPSIGNAL SIGKILL
CMD ["sleep", "3600"]

FROM scratch AS never-built
COPY not-in-the-context /
"""

COMPOSE = """\
services:
  app:
    build:
      context: .
      args:
        GREETING: bonjour
      target: final
      tags: ["EXTRA"]
      labels:
        com.example.built-by: pycompose
"""

PROBE = "id -u; id -g; pwd; cat out.txt; echo $GREETING; stat -c '%u:%g %a' out.txt; ls /bin/vi"


class Project:
    def __init__(self, directory: Path, name: str, backend: str, root: Path) -> None:
        self.dir, self.name, self.backend = directory, name, backend
        self.env = {
            **os.environ,
            "HOME": str(directory),
            "PYCOMPOSE_ROOT": str(root),
            "PYCOMPOSE_STATE_DIR": str(directory / "supervisor"),
        }

    def run(self, *args: str, check: bool = True, timeout: float = 180) -> Any:
        result = subprocess.run(
            [PYCOMPOSE, "--backend", self.backend, "-p", self.name, "--progress", "plain", *args],
            cwd=self.dir, capture_output=True, text=True, timeout=timeout, env=self.env,
        )
        if check:
            assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr
        return result


def write_project(directory: Path, extra_tag: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Dockerfile").write_text(DOCKERFILE)
    (directory / "message.txt").write_text("world\n")
    (directory / "compose.yaml").write_text(COMPOSE.replace("EXTRA", extra_tag))
    (directory / ".dockerignore").write_text("*.secret\n")
    (directory / "ignored.secret").write_text("never in the image\n")


@pytest.fixture(scope="module")
def state_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pycompose-build-e2e")


@pytest.fixture
def engine_images(docker_client: Any) -> Iterator[list[str]]:
    """Image names a test makes in the engine; removed afterwards."""
    made: list[str] = []
    yield made
    import docker.errors

    for name in made:
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(name, force=True)


def test_same_dockerfile_same_behaviour_on_both_backends(
    tmp_path: Path, project_name: str, state_root: Path, busybox_image: str,
    docker_client: Any, engine_images: list[str],
) -> None:
    ours = Project(tmp_path / "ns", project_name, "namespace", state_root)
    theirs = Project(tmp_path / "docker", project_name + "d", "docker", state_root)
    write_project(ours.dir, f"{project_name}-extra:1")
    write_project(theirs.dir, f"{project_name}d-extra:1")
    engine_images.extend([f"{theirs.name}-app", f"{theirs.name}-extra:1"])
    try:
        ours.run("build")
        theirs.run("build")
        outputs = {}
        for project in (ours, theirs):
            project.run("up", "-d", "--wait", "--wait-timeout", "60")
            rows = json.loads(project.run("ps", "--format", "json").stdout)
            assert [(r["service"], r["state"], r["health"]) for r in rows] == [
                ("app", "running", "healthy")
            ], project.backend
            result = project.run("exec", "app", "sh", "-c", PROBE, check=False)
            outputs[project.backend] = (result.returncode, result.stdout)
        assert outputs["namespace"] == outputs["docker"]
        code, text = outputs["namespace"]
        assert code == 0
        assert text.splitlines() == [  # /bin/vi was deleted in the build stage only
            "1000", "1000", "/app", "bonjour, world", "bonjour", "1000:1000 644", "/bin/vi",
        ]
        # the extra tag and the build labels reached the image in our store
        from orchestrator.runtime.images import Store

        store = Store.at_state_root(state_root)
        image = store.resolve(f"{project_name}-extra:1")
        assert image.ref.id == store.resolve(f"{project_name}-app").ref.id
        assert image.config.labels["com.example.built-by"] == "pycompose"
        assert image.config.stop_signal == "SIGKILL"
        assert image.config.user == "app" and image.config.working_dir == "/app"
    finally:
        ours.run("down", "-t", "0", check=False)
        theirs.run("down", "-t", "0", check=False)


def test_rebuild_without_change_is_all_cached_and_fast(
    tmp_path: Path, project_name: str, state_root: Path, busybox_image: str,
) -> None:
    from orchestrator.runtime.build import Builder, BuildOptions
    from orchestrator.runtime.images import Store

    project = Project(tmp_path / "p", project_name, "namespace", state_root)
    write_project(project.dir, f"{project_name}-x:1")
    project.run("build")
    options = BuildOptions(
        context=project.dir, build_args={"GREETING": "bonjour"}, target="final",
        tags=(f"{project_name}-app", f"{project_name}-x:1"),
        labels={"com.example.built-by": "pycompose"},
    )
    store = Store.at_state_root(state_root)
    first_id = store.resolve(f"{project_name}-app").ref.id
    started = time.monotonic()
    result = Builder(store).build(options)
    elapsed = time.monotonic() - started
    assert [s.cached for s in result.steps] == [True] * len(result.steps)
    assert len(result.steps) == 15  # both stages, every instruction; never-built is skipped
    assert elapsed < 1.0
    assert result.image_id == first_id  # same layers, same config: the same image
    # a change in the copied content invalidates that step and those after it, only
    (project.dir / "message.txt").write_text("again\n")
    changed = Builder(store).build(options)
    cached = {s.line: s.cached for s in changed.steps}
    assert cached[4] and cached[5] and not cached[6] and not cached[7]
    assert cached[10] and cached[11] and cached[13]  # the final stage up to its COPY --from
    assert not cached[16]  # the COPY --from of the rebuilt stage


def test_image_save_loads_into_docker_and_runs(
    tmp_path: Path, project_name: str, state_root: Path, busybox_image: str,
    engine_images: list[str],
) -> None:
    project = Project(tmp_path / "p", project_name, "namespace", state_root)
    write_project(project.dir, f"{project_name}-saved:2")
    project.run("build")
    archive = tmp_path / "image.tar"
    project.run("image", "save", "-o", str(archive), f"{project_name}-saved:2")
    engine_images.append(f"{project_name}-saved:2")
    loaded = subprocess.run(["docker", "load", "-i", str(archive)], capture_output=True,
                            text=True, timeout=120, check=True)
    assert f"Loaded image: {project_name}-saved:2" in loaded.stdout
    ran = subprocess.run(
        ["docker", "run", "--rm", f"{project_name}-saved:2", "sh", "-c", "id -un; cat out.txt"],
        capture_output=True, text=True, timeout=120, check=True,
    )
    assert ran.stdout == "app\nbonjour, world\n"


@pytest.mark.parametrize(
    ("dockerfile", "message"),
    [
        ("FROM scratch\nCOPY ../outside.txt /x\n",
         "source '../outside.txt' is outside the build context at Dockerfile:2"),
        ("FROM scratch\n\nADD leak /x\n", "pointing outside the build context"),
        ("FROM scratch\nCOPY sub/up/outside.txt /x\n", "pointing outside the build context"),
    ],
)
def test_context_escapes_are_refused(
    tmp_path: Path, project_name: str, state_root: Path, dockerfile: str, message: str
) -> None:
    (tmp_path / "outside.txt").write_text("host secret\n")
    project = Project(tmp_path / "ctx", project_name, "namespace", state_root)
    (project.dir / "sub").mkdir(parents=True)
    os.symlink(tmp_path / "outside.txt", project.dir / "leak")
    os.symlink("../..", project.dir / "sub" / "up")
    (project.dir / "Dockerfile").write_text(dockerfile)
    (project.dir / "compose.yaml").write_text("services:\n  app:\n    build: .\n")
    result = project.run("build", check=False)
    assert result.returncode != 0
    assert message in result.stderr
    if "leak" in dockerfile:
        assert "at Dockerfile:3" in result.stderr
    from orchestrator.runtime.images import ImageNotFound, Store

    with pytest.raises(ImageNotFound):
        Store.at_state_root(state_root).resolve(f"{project_name}-app")
