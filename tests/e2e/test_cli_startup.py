"""What a CLI run imports: heavy libraries only when the command at hand needs them.

Start-up is most of a warm `build`, `ps` or `config` (issue 7's bench), so these pin the
cuts: a file that passed the schema before is not validated again (no jsonschema), the
namespace backend runs without the docker SDK, `ps` never loads the ingress machinery.
Each run is a fresh interpreter that prints ``sys.modules`` when the command is done.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

MARK = "\x00MODULES "
WRAPPER = f"""
import sys
from orchestrator.cli.main import cli
try:
    cli.main(args=sys.argv[1:], prog_name="pycompose")
finally:
    sys.stdout.write({MARK!r} + " ".join(sorted(sys.modules)))
"""
COMPOSE = "services:\n  web:\n    image: pycompose-test/busybox:1\n    command: [sleep, '60']\n"


class Run:
    def __init__(self, done: subprocess.CompletedProcess[str]) -> None:
        self.code = done.returncode
        self.stdout, _, modules = done.stdout.partition(MARK)
        self.stderr = done.stderr
        self.modules = set(modules.split())

    def imported(self, package: str) -> bool:
        return any(m == package or m.startswith(package + ".") for m in self.modules)


def pycompose(project: Path, *args: str) -> Run:
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(project),
        "PYCOMPOSE_ROOT": str(project / "root"),
        "PYCOMPOSE_RUN_DIR": str(project / "run"),
        "PYCOMPOSE_STATE_DIR": str(project / "state"),
    }
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    return Run(done)


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    return tmp_path


def test_a_file_validated_once_is_not_validated_again(project: Path) -> None:
    cold = pycompose(project, "config")
    warm = pycompose(project, "config")
    assert (cold.code, warm.code) == (0, 0), cold.stderr + warm.stderr
    assert cold.imported("jsonschema")
    assert not warm.imported("jsonschema")
    assert warm.stdout == cold.stdout
    assert len(list((project / ".cache" / "pycompose" / "schema-ok").iterdir())) == 1


def test_an_edited_file_is_validated_again(project: Path) -> None:
    pycompose(project, "config", "-q")
    (project / "compose.yaml").write_text(COMPOSE + "    labels: {a: b}\n")
    assert pycompose(project, "config", "-q").imported("jsonschema")


def test_an_invalid_file_is_reported_the_same_way_every_time(project: Path) -> None:
    (project / "compose.yaml").write_text(COMPOSE + "    replica: 2\n")
    runs = [pycompose(project, "config", "-q") for _ in range(2)]
    assert [r.code for r in runs] == [3, 3]
    assert runs[0].stderr == runs[1].stderr
    assert 'unknown key "replica"' in runs[0].stderr
    assert all(r.imported("jsonschema") for r in runs)


def test_namespace_ps_loads_no_docker_sdk_and_no_schema_validator(project: Path) -> None:
    pycompose(project, "config", "-q")  # warms the schema cache
    ps = pycompose(project, "--backend", "namespace", "ps")
    assert ps.code == 0, ps.stderr
    assert ps.stdout.split()[:2] == ["NAME", "IMAGE"]
    for package in ("docker", "requests", "urllib3", "jsonschema", "rich"):
        assert not ps.imported(package), package


def test_a_command_that_needs_no_ports_loads_no_ingress_controller(project: Path) -> None:
    quiet = pycompose(project, "--backend", "namespace", "ps", "-q")
    table = pycompose(project, "--backend", "namespace", "ps")
    assert (quiet.code, table.code) == (0, 0), quiet.stderr + table.stderr
    assert "orchestrator.ingress.controller" not in quiet.modules
    assert "orchestrator.ingress.controller" in table.modules  # the PORTS column


def test_config_opens_no_backend(project: Path) -> None:
    run = pycompose(project, "config", "-q")
    assert run.code == 0, run.stderr
    assert not run.imported("orchestrator.backends.namespace")
    assert not run.imported("orchestrator.backends.docker")
    assert not run.imported("docker")


# -- issue 7, second pass: the warm `build`, the lifecycle commands, `ps` ------------------

BUILD_COMPOSE = "services:\n  app:\n    build: .\n"
BUILD_DOCKERFILE = 'FROM scratch\nCOPY message.txt /message.txt\nLABEL purpose="start-up test"\n'
# what a warm build needs none of: the graph, planning, running containers, networking,
# DNS, the ingress, the registry client, YAML (the parse cache answers), the schema checker
NOT_FOR_A_WARM_BUILD = (
    "yaml", "jsonschema", "networkx", "docker", "asyncio", "ctypes",
    "orchestrator.graph", "orchestrator.plan", "orchestrator.executor",
    "orchestrator.supervisor", "orchestrator.ingress", "orchestrator.runtime.registry",
    "orchestrator.runtime.container", "orchestrator.runtime.net", "orchestrator.runtime.dns",
    "orchestrator.backends.namespace.networking", "orchestrator.backends.namespace.convert",
    "orchestrator.backends.namespace.files", "orchestrator.loader.yaml_source",
)


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="the namespace store unpacks layers as root")
def test_a_warm_namespace_build_imports_only_the_builder(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(BUILD_COMPOSE)
    (tmp_path / "Dockerfile").write_text(BUILD_DOCKERFILE)
    (tmp_path / "message.txt").write_text("hello\n")
    args = ("--backend", "namespace", "-p", "startup", "build")
    cold, warm = pycompose(tmp_path, *args), pycompose(tmp_path, *args)
    assert (cold.code, warm.code) == (0, 0), cold.stderr + warm.stderr
    assert cold.stdout == warm.stdout == "Built startup-app\n"
    assert cold.imported("yaml")  # the first read parses; the second reads the record
    assert [p for p in NOT_FOR_A_WARM_BUILD if warm.imported(p)] == []


def test_ps_reads_the_ingress_files_without_asyncio(project: Path) -> None:
    (project / "compose.yaml").write_text(COMPOSE + "    ports: ['8080:80']\n")
    run = pycompose(project, "--backend", "namespace", "ps")
    assert run.code == 0, run.stderr
    assert "orchestrator.ingress.controller" in run.modules
    assert not run.imported("asyncio")
    assert not run.imported("orchestrator.backends.namespace.networking")
