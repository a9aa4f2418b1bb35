"""Pull of a 3-layer image from a local registry: pycompose's own puller (``pycompose
image pull`` into a fresh namespace image store) beside ``docker pull`` on dockerd.

The registry is Debian's ``docker-registry`` on 127.0.0.1 (a loopback registry needs no
``--insecure-registry`` for dockerd), started and removed by this script. The image has
three fresh layers (random data, partly compressible, ``--layer-mb`` each), so neither
side has any of them before a run: each round starts from an empty store for us and after
``docker rmi`` for the engine. Both are timed end to end through their CLIs, download and
unpacking included. Target: no slower than docker.

The machine is shared and noisy, so each side gets ``--warmup`` untimed rounds, then
``--runs`` timed rounds, interleaved and alternating which puller goes first; the table
gives the median and the spread (quartiles, min, max). A third row times our library's
``pull()`` in this process, to show what the CLI's start-up (interpreter, imports) costs.

Run as root: ``.venv/bin/python bench/pull_bench.py [--runs 21] [--layer-mb 8]``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator.runtime.images import Store  # noqa: E402
from orchestrator.runtime.registry import RegistryClient, pull  # noqa: E402
from orchestrator.runtime.registry.manifest import OCI_MANIFEST, host_platform  # noqa: E402
from tests.support.registry import running_registry  # noqa: E402

PYCOMPOSE = str(Path(sys.executable).parent / "pycompose")


def make_layer(index: int, megabytes: int) -> tuple[bytes, str]:
    """A gzipped tar with one file of half random, half repetitive bytes."""
    chunk = os.urandom(512 * 1024) + bytes(range(256)) * 2048
    data = (chunk * (megabytes + 1))[: megabytes << 20]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo(f"data/layer{index}.bin")
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    plain = raw.getvalue()
    return gzip.compress(plain, compresslevel=6, mtime=0), "sha256:" + hashlib.sha256(
        plain
    ).hexdigest()


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def publish(host: str, layers: list[tuple[bytes, str]], workdir: Path) -> str:
    """Push the image (docker-compatible OCI manifest); its reference."""
    config = json.dumps(
        {
            "architecture": host_platform().architecture,
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [d for _, d in layers]},
        }
    ).encode()
    blobs = [(config, "application/vnd.oci.image.config.v1+json")] + [
        (data, "application/vnd.oci.image.layer.v1.tar+gzip") for data, _ in layers
    ]
    descriptors = []
    with RegistryClient(host) as client:
        for blob, media in blobs:
            path = workdir / digest(blob).split(":")[1]
            path.write_bytes(blob)
            client.upload_blob("bench/three", digest(blob), path)
            descriptors.append({"mediaType": media, "digest": digest(blob), "size": len(blob)})
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": descriptors[0],
                "layers": descriptors[1:],
            }
        ).encode()
        client.put_manifest("bench/three", "1", manifest, OCI_MANIFEST)
    return f"{host}/bench/three:1"


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr}")
    return elapsed


def spread(samples: list[float]) -> str:
    """``median | q1-q3 | min-max`` in seconds, for a table row."""
    q1, median, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return f"{median:.3f} | {q1:.3f}-{q3:.3f} | {min(samples):.3f}-{max(samples):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--layer-mb", type=int, default=8)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (unpacking layers needs it)")
    if args.runs < 2:
        raise SystemExit("--runs must be at least 2 (for a spread)")
    workdir = Path(tempfile.mkdtemp(prefix="pycompose-pull-bench-"))
    ours: list[float] = []
    engine: list[float] = []
    library: list[float] = []
    try:
        layers = [make_layer(i, args.layer_mb) for i in range(3)]
        compressed = sum(len(d) for d, _ in layers)
        with running_registry() as registry:
            ref = publish(registry.host, layers, workdir)
            subprocess.run(["docker", "rmi", "-f", ref], capture_output=True, check=False)

            def run_ours(round_: int) -> float:
                root = workdir / f"store{round_}"
                env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYCOMPOSE_ROOT": str(root)}
                try:
                    return timed([PYCOMPOSE, "--progress", "quiet", "image", "pull", ref], env=env)
                finally:
                    shutil.rmtree(root, ignore_errors=True)

            def run_engine() -> float:
                try:
                    return timed(["docker", "pull", "-q", ref])
                finally:
                    subprocess.run(["docker", "rmi", "-f", ref], capture_output=True, check=False)

            def run_library(round_: int) -> float:
                root = workdir / f"lib{round_}"
                try:
                    started = time.perf_counter()
                    pull(Store(root), ref)
                    return time.perf_counter() - started
                finally:
                    shutil.rmtree(root, ignore_errors=True)

            for round_ in range(args.warmup + args.runs):
                first_ours = round_ % 2 == 0
                a = run_ours(round_) if first_ours else run_engine()
                b = run_engine() if first_ours else run_ours(round_)
                c = run_library(round_)
                if round_ >= args.warmup:
                    ours.append(a if first_ours else b)
                    engine.append(b if first_ours else a)
                    library.append(c)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    mine, theirs = statistics.median(ours), statistics.median(engine)
    print(
        f"pull of a 3-layer image ({compressed / 1e6:.1f} MB compressed, "
        f"{3 * args.layer_mb} MiB unpacked) from a local registry, {args.runs} runs "
        f"(after {args.warmup} warm-up), interleaved:"
    )
    print("| puller | median s | q1-q3 s | min-max s |\n|---|---|---|---|")
    print(f"| pycompose image pull | {spread(ours)} |")
    print(f"| docker pull | {spread(engine)} |")
    print(f"| (pycompose pull() in process, no CLI start-up) | {spread(library)} |")
    print(f"ratio docker / pycompose (medians): {theirs / mine:.2f}x")
    wins = sum(1 for a, b in zip(ours, engine, strict=True) if a <= b)
    print(f"rounds where pycompose was no slower: {wins} of {args.runs}")


if __name__ == "__main__":
    main()
