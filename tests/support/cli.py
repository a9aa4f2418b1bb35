"""A project directory and the `pycompose` CLI pointed at it on the namespace backend, with
every piece of state (state root, supervisor, run dir) under tmp, as the e2e tests drive it.
Each test module subclasses it for what only it needs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PYCOMPOSE = str(Path(sys.executable).parent / "pycompose")


class NamespaceStack:
    """``root`` defaults to ``<directory>/state``; ``env`` adds variables for the CLI."""

    def __init__(
        self,
        directory: Path,
        name: str,
        image: str,
        *,
        root: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.dir, self.name, self.image = directory, name, image
        self.root = root if root is not None else directory / "state"
        self.run_dir = directory / "run"
        self.env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(directory),
            "PYCOMPOSE_ROOT": str(self.root),
            "PYCOMPOSE_STATE_DIR": str(directory / "supervisor"),
            "PYCOMPOSE_RUN_DIR": str(self.run_dir),
            **(env or {}),
        }

    def write(self, text: str) -> None:
        (self.dir / "compose.yaml").write_text(text.replace("IMAGE", self.image))

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> Any:
        result = subprocess.run(
            [PYCOMPOSE, "--backend", "namespace", "-p", self.name, "--progress", "plain", *args],
            cwd=self.dir,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env,
        )
        if check:
            assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def sh(self, service: str, script: str, *, index: int = 1, check: bool = False) -> Any:
        return self.run(
            "exec", "-T", "--index", str(index), service, "sh", "-c", script, check=check
        )

    def ps(self) -> dict[str, dict[str, Any]]:
        rows = json.loads(self.run("ps", "-a", "--format", "json").stdout)
        return {row["service"]: row for row in rows}

    def logs(self, service: str) -> list[str]:
        return list(self.run("logs", "--no-log-prefix", service).stdout.splitlines())

    def stop_supervisor(self) -> None:
        subprocess.run(
            [PYCOMPOSE, "supervisor", "stop"], env=self.env, capture_output=True, timeout=30,
            check=False,
        )  # fmt: skip
