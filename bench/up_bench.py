"""`up -d` from nothing, a no-op `up -d`, and `down`: pycompose beside docker-compose 1.29.

Both drive the same dockerd with the same generated files (bench/gen.py), in the same run,
one after the other, each with its own project name. Reported as times and ratios
(docker-compose time / pycompose time: above 1 means pycompose is faster).

Run: `bash bench/install_peers.sh && .venv/bin/python bench/up_bench.py` (needs dockerd and
the busybox test image, which the test suite builds: `pycompose-test/busybox:1`).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen import chain, many_services

PYCOMPOSE = str(Path(sys.executable).parent / "pycompose")
DOCKER_COMPOSE = os.environ.get("DOCKER_COMPOSE", "/opt/peers/dc129/bin/docker-compose")
IMAGE = "pycompose-test/busybox:1"


def scaled(services: int, replicas: int) -> dict[str, Any]:
    # `scale:` rather than deploy.replicas: docker-compose 1.29 honours it without flags
    return {
        "services": {
            f"svc{i}": {"image": IMAGE, "command": ["sleep", "3600"], "scale": replicas}
            for i in range(services)
        }
    }


STACKS: dict[str, Callable[[], dict[str, Any]]] = {
    "10 services": lambda: many_services(10, IMAGE, rich=False),
    "50 services": lambda: many_services(50, IMAGE, rich=False),
    "10-deep depends_on chain": lambda: chain(10, IMAGE),
    "5 services x 4 replicas": lambda: scaled(5, 4),
}


def tool_command(tool: str, path: Path, project: str, *args: str) -> list[str]:
    if tool == "pycompose":
        return [
            PYCOMPOSE,
            "--backend",
            "docker",
            "--progress",
            "quiet",
            "-f",
            str(path),
            "-p",
            project,
            *args,
        ]
    return [DOCKER_COMPOSE, "--no-ansi", "-f", str(path), "-p", project, *args]


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(tool: str, path: Path, project: str, runs: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {"up": [], "noop": [], "down": []}
    for _ in range(runs):
        samples["up"].append(timed(tool_command(tool, path, project, "up", "-d")))
        samples["noop"].append(timed(tool_command(tool, path, project, "up", "-d")))
        samples["down"].append(timed(tool_command(tool, path, project, "down", "-t", "1")))
    return {k: statistics.median(v) for k, v in samples.items()}


def engine_floor(count: int = 50, parallel: int = 16) -> float:
    """The daemon's own floor: ``count`` `docker run -d` on one bridge network, ``parallel``
    at a time, with no compose tool in between."""
    network = "pycompose-bench-floor"
    subprocess.run(["docker", "network", "create", network], check=True, capture_output=True)
    names = [f"pycompose-bench-floor-{i}" for i in range(count)]
    try:
        start = time.perf_counter()
        subprocess.run(
            [
                "xargs",
                "-P",
                str(parallel),
                "-I{}",
                "docker",
                "run",
                "-d",
                "--network",
                network,
                "--name",
                "{}",
                IMAGE,
                "sleep",
                "3600",
            ],
            input="\n".join(names),
            text=True,
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - start
    finally:
        subprocess.run(["docker", "rm", "-f", *names], capture_output=True)
        subprocess.run(["docker", "network", "rm", network], capture_output=True)


def main() -> None:
    runs = int(os.environ.get("BENCH_RUNS", "2"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, make in STACKS.items():
            path = Path(tmp) / f"{label.split()[0]}-{len(rows)}.yaml"
            path.write_text(json.dumps(make(), indent=1))
            results = {
                tool: measure(tool, path, f"bench{len(rows)}{tool[:2]}", runs)
                for tool in ("docker-compose", "pycompose")
            }
            rows.append((label, results))
            print(f"done: {label}", file=sys.stderr)
    floor = engine_floor()
    print(f"| stack (median of {runs}) | step | docker-compose 1.29 | pycompose | ratio |")
    print("|---|---|---|---|---|")
    for label, results in rows:
        for step, name in (
            ("up", "`up -d` from nothing"),
            ("noop", "no-op `up -d`"),
            ("down", "`down`"),
        ):
            dc, pc = results["docker-compose"][step], results["pycompose"][step]
            print(f"| {label} | {name} | {dc:.2f} s | {pc:.2f} s | {dc / pc:.1f}x |")
    print(f"\nEngine floor: 50 `docker run -d` (16 at a time, one bridge network): {floor:.2f} s")


if __name__ == "__main__":
    main()
