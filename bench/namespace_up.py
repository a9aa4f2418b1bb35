"""A 50-container `up -d` on the namespace backend beside the docker backend, and the
memory of each container's idle shim (the namespace backend's per-container monitor).

Both backends run the same generated file (50 busybox services running ``sleep 3600``)
through the real CLI (`pycompose --backend namespace|docker up -d`, then `down -t 0`),
median of ``--runs`` runs each. The namespace backend uses a fresh state root under tmp;
its first `up` (not timed) copies the image from the local Docker engine into it.
Target: 50 containers up in under 2 s on the namespace backend.

Run as root: ``.venv/bin/python bench/namespace_up.py [--services 50] [--runs 3]`` (needs
dockerd and the busybox test image the test suite builds: ``pycompose-test/busybox:1``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen import many_services

PYCOMPOSE = str(Path(sys.executable).parent / "pycompose")
IMAGE = "pycompose-test/busybox:1"


def cli(backend: str, workdir: Path, env: dict[str, str], *args: str) -> float:
    """Seconds one CLI command took (it must succeed)."""
    started = time.perf_counter()
    done = subprocess.run(
        [PYCOMPOSE, "--backend", backend, "-p", "nsbench", "--progress", "quiet", *args],
        cwd=workdir, env=env, capture_output=True, text=True, check=False,
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{backend} {' '.join(args)} failed:\n{done.stderr}")
    return took


def _kib(pid: int, field: str, source: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/{source}").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def shim_memory(root: Path) -> dict[str, float]:
    """Median RSS and PSS (KiB) of the shims of containers under ``root``."""
    rss: list[int] = []
    pss: list[int] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            comm = (proc / "comm").read_text().strip()
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if comm == "pycompose-shim" and str(root) in cmdline:
            pid = int(proc.name)
            rss.append(_kib(pid, "VmRSS", "status"))
            pss.append(_kib(pid, "Pss", "smaps_rollup"))
    if not rss:
        return {"shims": 0}
    return {
        "shims": len(rss),
        "rss_kib_median": statistics.median(rss),
        "pss_kib_median": statistics.median(pss),
    }


def bench(backend: str, workdir: Path, env: dict[str, str], runs: int) -> dict[str, Any]:
    ups: list[float] = []
    downs: list[float] = []
    memory: dict[str, float] = {}
    for _ in range(runs):
        ups.append(cli(backend, workdir, env, "up", "-d"))
        if backend == "namespace":
            memory = shim_memory(Path(env["PYCOMPOSE_ROOT"]))
        downs.append(cli(backend, workdir, env, "down", "-t", "0"))
    return {
        "up_median_s": round(statistics.median(ups), 3),
        "up_min_s": round(min(ups), 3),
        "down_median_s": round(statistics.median(downs), 3),
        **memory,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("the namespace backend needs root")
    work = Path(tempfile.mkdtemp(prefix="pycompose-nsbench-"))
    try:
        (work / "compose.yaml").write_text(
            json.dumps(many_services(args.services, IMAGE, rich=False))
        )
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYCOMPOSE_ROOT": str(work / "root"),
            "PYCOMPOSE_SUPERVISOR": "0",
        }
        # not timed: copy the image into the fresh store, build the spawner
        cli("namespace", work, env, "up", "-d", "svc0")
        cli("namespace", work, env, "down", "-t", "0")
        results = {
            "namespace": bench("namespace", work, env, args.runs),
            "docker": bench("docker", work, env, args.runs),
        }
        print(json.dumps({"services": args.services, "runs": args.runs, **results}, indent=2))
    finally:
        for backend in ("namespace", "docker"):
            subprocess.run(
                [PYCOMPOSE, "--backend", backend, "-p", "nsbench", "down", "-t", "0"],
                cwd=work, env={**os.environ, "PYCOMPOSE_ROOT": str(work / "root")},
                capture_output=True, check=False,
            )
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
