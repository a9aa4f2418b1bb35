"""Start latency of one container with networking: the namespace backend beside `docker run`.

What "start latency" means here, for the namespace backend: the wall time of
``NamespaceBackend.create_container`` + ``start_container`` for one container with one
attachment to an existing bridge network, in the process that calls them (as the executor
of ``up`` does), until ``start_container`` returns: its command has exec'd, inside a
sandbox whose veth, address and default route are up, with its lease, ``/etc/hosts``,
resolv.conf and hostname written, and with its names (and every peer's) served by the DNS
daemon, which has acknowledged the new records, so its first lookup is answered. Not
timed: the image copy into the store, the spawner's compilation, the network's creation
and the CLI's own start-up (Python and imports; ``bench/up_bench.py`` measures that). The
first sample includes starting the DNS daemon; the median does not feel it.

For docker: ``docker run -d --network <bridge network>`` of the same busybox image (the
CLI, as a user runs it), until it returns. ``sleep 3600`` each, median and p90 over ``-n``
starts; then one name lookup from a container checks the DNS really serves every replica.
Target (issue 6): median under 40 ms, 10x faster than docker run.

Run as root: ``.venv/bin/python bench/namespace_net_start.py [-n 30]`` (needs dockerd and
the busybox test image the test suite builds: ``pycompose-test/busybox:1``). Everything is
made under a tmp state root and run dir, and removed at the end. On a shared machine run
it several times and quote the quietest run (and the load it ran at).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator import labels as L
from orchestrator.backends.base import Attachment, ContainerSpec, NetworkSpec
from orchestrator.model import Network, Service

IMAGE = "pycompose-test/busybox:1"
PROJECT = "netbench"


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "median_ms": statistics.median(ordered) * 1000,
        "p90_ms": ordered[int(0.9 * (len(ordered) - 1))] * 1000,
    }


def spec(network: str, number: int) -> ContainerSpec:
    service = Service(name="app", image=IMAGE, command=("sleep", "3600"), stop_grace_period=0)
    return ContainerSpec(
        project=PROJECT,
        service=service,
        name=f"{PROJECT}-app-{number}",
        number=number,
        labels={L.PROJECT: PROJECT, L.SERVICE: "app", L.CONTAINER_NUMBER: str(number),
                L.ONEOFF: "False"},
        attachments=(Attachment(network, aliases=("app",)),),
    )


def bench_namespace(work: Path, n: int) -> dict[str, float]:
    os.environ["PYCOMPOSE_RUN_DIR"] = str(work / "run")  # a DNS daemon of this run only
    from orchestrator.backends.factory import _docker_export
    from orchestrator.backends.namespace import NamespaceBackend

    backend = NamespaceBackend(work / "state", image_source=_docker_export)
    backend.ensure_image(IMAGE)
    network = f"{PROJECT}_default"
    backend.create_network(NetworkSpec(Network(key="default", name=network),
                                       {L.PROJECT: PROJECT}))
    ids: list[str] = []
    times: list[float] = []
    try:
        backend.runtime  # noqa: B018  (the spawner is compiled once, not timed)
        for number in range(1, n + 1):
            started = time.perf_counter()
            container_id = backend.create_container(spec(network, number))
            backend.start_container(container_id)
            times.append(time.perf_counter() - started)
            ids.append(container_id)
        answer = backend.exec(ids[0], ["nslookup", "app"]).output.decode(errors="replace")
        served = answer.count("Address: ")
        if served != n:
            raise SystemExit(f"the DNS answered {served} addresses for `app`, not {n}:\n{answer}")
    finally:
        for container_id in ids:
            backend.remove_container(container_id, force=True)
        backend.remove_network(network)
        backend.dns.stop()  # the daemon of this tmp state root (stopped anyway: no listener)
    return summary(times)


def bench_docker(n: int) -> dict[str, float]:
    network = f"pycompose-netbench-{secrets.token_hex(4)}"
    subprocess.run(["docker", "network", "create", network], check=True, capture_output=True)
    names: list[str] = []
    times: list[float] = []
    try:
        for number in range(n):
            name = f"{network}-{number}"
            started = time.perf_counter()
            done = subprocess.run(
                ["docker", "run", "-d", "--name", name, "--network", network, IMAGE,
                 "sleep", "3600"],
                capture_output=True, text=True, check=False,
            )
            times.append(time.perf_counter() - started)
            if done.returncode != 0:
                raise SystemExit(f"docker run failed: {done.stderr}")
            names.append(name)
    finally:
        if names:
            subprocess.run(["docker", "rm", "-f", *names], capture_output=True, check=False)
        subprocess.run(["docker", "network", "rm", network], capture_output=True, check=False)
    return summary(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("-n", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pycompose-netbench-") as tmp:
        ours = bench_namespace(Path(tmp), args.n)
    docker = bench_docker(min(args.n, 20))
    ratio = docker["median_ms"] / ours["median_ms"]
    load = os.getloadavg()[0]
    print(f"start latency with a bridge network and DNS, over {args.n} starts "
          f"(create → running; load average {load:.1f} on {os.cpu_count()} cores)\n")
    print("| how | median ms | p90 ms | vs namespace |")
    print("|---|---|---|---|")
    print(f"| namespace backend (bridge + DNS) | {ours['median_ms']:.1f} | "
          f"{ours['p90_ms']:.1f} | 1.0x |")
    print(f"| docker run -d --network <bridge> | {docker['median_ms']:.1f} | "
          f"{docker['p90_ms']:.1f} | {ratio:.1f}x slower |")


if __name__ == "__main__":
    main()
