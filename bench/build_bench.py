"""Warm-cache rebuild of one multi-stage Dockerfile: pycompose's builder vs `docker build`.

Both build the same context (FROM the busybox test image: ARG, COPY --from, RUN, USER,
HEALTHCHECK...) once to warm their caches, then rebuild it unchanged N times. Measured:
`pycompose --backend namespace build` (the whole CLI: load the compose file, build, tag),
our builder called as a library (no process start), the engine's build API called in
process through the docker SDK (its counterpart: no CLI start-up either), and `docker
build -q` (the classic builder through the docker CLI). Target: no slower than docker.
The CLI runs as installed: byte-compiled (PYTHONDONTWRITEBYTECODE is dropped, so the
cold run writes the caches) and with the loader's caches (schema and parse, a private
XDG_CACHE_HOME); one row shows them turned off (PYCOMPOSE_SCHEMA_CACHE=0 switches off
both). Rounds are interleaved (one sample of each per round), so load from elsewhere
hits every row alike.

Run as root: `.venv/bin/python bench/build_bench.py [--runs N]`; prints a markdown table.
State lives in a temporary PYCOMPOSE_ROOT; the docker image it tags is removed after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PYCOMPOSE = str(Path(sys.executable).parent / "pycompose")
BASE = "pycompose-test/busybox:1"
DOCKERFILE = """\
ARG BASE=pycompose-test/busybox:1
FROM ${BASE} AS build
ARG GREETING=hello
WORKDIR /src
COPY message.txt ./
RUN echo "$GREETING, $(cat message.txt)" > /src/out.txt
FROM ${BASE}
ENV APP_HOME=/app
RUN mkdir -p /etc && echo "app:x:1000:1000::/app:/bin/sh" > /etc/passwd
COPY --from=build /src/out.txt $APP_HOME/out.txt
USER app
WORKDIR /app
HEALTHCHECK --interval=5s CMD test -f /app/out.txt
CMD ["cat", "/app/out.txt"]
"""
COMPOSE = "services:\n  app:\n    build: .\n"


def timed(actions: dict[str, Callable[[], object]], runs: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(runs):
        for name, action in actions.items():
            start = time.perf_counter()
            action()
            samples[name].append(time.perf_counter() - start)
    return samples


def run(cmd: list[str], env: dict[str, str], cwd: Path) -> None:
    subprocess.run(cmd, check=True, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def engine_build(client: object, context: Path) -> None:
    """The engine's own rebuild without the docker CLI's start-up: the same request `docker
    build` sends (the context as a tar), answered from its cache; the counterpart of our
    library row."""
    stream = client.api.build(  # type: ignore[attr-defined]
        path=str(context), tag="pycompose-bench/build:1", quiet=True, rm=True, decode=True
    )
    for chunk in stream:
        if "error" in chunk:
            raise RuntimeError(chunk["error"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: RUN steps need namespaces and overlayfs")
    import docker

    from tests.support.images import ensure_busybox_image

    client = docker.from_env()
    ensure_busybox_image(client)
    with tempfile.TemporaryDirectory(prefix="pycompose-build-bench-") as tmp:
        work = Path(tmp)
        context = work / "ctx"
        context.mkdir()
        (context / "Dockerfile").write_text(DOCKERFILE)
        (context / "message.txt").write_text("world\n")
        (context / "compose.yaml").write_text(COMPOSE)
        env = {
            **os.environ,
            "PYCOMPOSE_ROOT": str(work / "root"),
            "HOME": str(work),
            "XDG_CACHE_HOME": str(work / "cache"),
        }
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        uncached = {**env, "PYCOMPOSE_SCHEMA_CACHE": "0"}
        ours = [PYCOMPOSE, "--backend", "namespace", "-p", "buildbench", "--progress", "quiet",
                "build"]
        theirs = ["docker", "build", "-q", "-t", "pycompose-bench/build:1", str(context)]
        try:
            run(ours, env, context)  # cold: copies the base image, runs both RUN steps
            run(theirs, env, context)
            from orchestrator.runtime.build import Builder, BuildOptions
            from orchestrator.runtime.images import Store

            store = Store.at_state_root(work / "root")
            options = BuildOptions(context=context, tags=("buildbench-app",))
            results = timed(
                {
                    "pycompose build (CLI, namespace)": lambda: run(ours, env, context),
                    "pycompose build (CLI, namespace, no loader caches)": lambda: run(
                        ours, uncached, context
                    ),
                    "pycompose Builder.build (library)": lambda: Builder(store).build(options),
                    "docker engine build API (SDK, in process)": lambda: engine_build(
                        client, context
                    ),
                    "docker build -q (CLI, engine)": lambda: run(theirs, env, context),
                },
                args.runs,
            )
        finally:
            subprocess.run(["docker", "rmi", "-f", "pycompose-bench/build:1"],
                           capture_output=True, check=False)
    reference = statistics.median(results["docker build -q (CLI, engine)"])
    print(f"Warm-cache rebuild, median of {args.runs} runs\n")
    print("| builder | median (s) | min (s) | vs docker build |")
    print("|---|---:|---:|---:|")
    for name, samples in results.items():
        median = statistics.median(samples)
        print(f"| {name} | {median:.3f} | {min(samples):.3f} | {median / reference:.2f}x |")


if __name__ == "__main__":
    main()
