"""Container start latency and idle monitor memory: pycompose's runtime beside crun.

Latency is create → process running (for pycompose: ``Runtime.create`` + ``start``, which
returns once the command has exec'd; for crun: ``crun run -d``), median and p90 over 50
starts of ``sleep 3600`` on the same busybox root filesystem. Memory is the RSS and PSS of
the idle per-container monitor (our shim; crun has none — conmon would be podman's).

Run as root: ``.venv/bin/python bench/runtime_start.py [-n 50] [--no-install]``. crun is
installed with apt when missing unless ``--no-install`` is given (the tests never need it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.runtime.config import ContainerConfig
from orchestrator.runtime.container import Runtime
from orchestrator.runtime.spawner import ensure_spawner
from tests.support.runtime import make_busybox_rootfs


def _kib(pid: int, field: str, source: str) -> int:
    for line in Path(f"/proc/{pid}/{source}").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def bench_pycompose(work: Path, lower: Path, n: int) -> dict[str, float]:
    rt = Runtime(work / "pycompose-state", spawner=ensure_spawner(work / "bin"))
    times: list[float] = []
    rss: list[int] = []
    pss: list[int] = []
    try:
        for i in range(n):
            started = time.perf_counter()
            c = rt.create(
                ContainerConfig(
                    id=f"pycompose-bench-{i}", command=("sleep", "3600"), lowerdirs=(str(lower),)
                )
            )
            c.start()
            times.append(time.perf_counter() - started)
        time.sleep(0.2)
        for cid in rt.list()[:10]:
            shim = rt.get(cid)._record.shim_pid
            assert shim is not None
            rss.append(_kib(shim, "VmRSS", "status"))
            pss.append(_kib(shim, "Pss", "smaps_rollup"))
    finally:
        for cid in rt.list():
            rt.delete(cid, force=True)
    return {
        "median_ms": statistics.median(times) * 1e3,
        "p90_ms": statistics.quantiles(times, n=10)[-1] * 1e3,
        "shim_rss_kib": statistics.median(rss),
        "shim_pss_kib": statistics.median(pss),
    }


def ensure_crun(install: bool) -> str | None:
    found = shutil.which("crun")
    if found or not install:
        return found
    subprocess.run(["apt-get", "install", "-y", "-qq", "crun"], check=False, capture_output=True)
    return shutil.which("crun")


def bench_crun(crun: str, work: Path, lower: Path, n: int) -> dict[str, float]:
    bundle = work / "crun-bundle"
    bundle.mkdir()
    subprocess.run([crun, "spec"], cwd=bundle, check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["sleep", "3600"]
    spec["root"] = {"path": str(lower), "readonly": True}
    (bundle / "config.json").write_text(json.dumps(spec))
    times: list[float] = []
    names: list[str] = []
    try:
        for i in range(n):
            name = f"pycompose-bench-crun-{i}"
            started = time.perf_counter()
            # the detached container inherits crun's stdio: a pipe would never reach EOF
            with tempfile.TemporaryFile() as errors:
                done = subprocess.run(
                    [crun, "run", "-d", "--bundle", str(bundle), name],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=errors,
                    check=False,
                )
                if done.returncode != 0:
                    errors.seek(0)
                    text = errors.read().decode(errors="replace").strip()
                    raise RuntimeError(text or f"exit {done.returncode}")
            times.append(time.perf_counter() - started)
            names.append(name)
    finally:
        for name in names:
            with contextlib.suppress(subprocess.CalledProcessError):
                subprocess.run([crun, "delete", "-f", name], check=True, capture_output=True)
    return {
        "median_ms": statistics.median(times) * 1e3,
        "p90_ms": statistics.quantiles(times, n=10)[-1] * 1e3,
    }


CGROUP2_MOUNT = "/sys/fs/cgroup/unified"
DOCKER_IMAGE = "pycompose-test/busybox:1"  # what the test suite builds from the same busybox


def bench_docker(n: int) -> dict[str, float]:
    """`docker run -d` of the same busybox (bridge network, the default), create → running."""
    times: list[float] = []
    names: list[str] = []
    try:
        for i in range(n):
            name = f"pycompose-bench-docker-{i}"
            started = time.perf_counter()
            done = subprocess.run(
                ["docker", "run", "-d", "--name", name, DOCKER_IMAGE, "sleep", "3600"],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(done.stderr.strip() or f"exit {done.returncode}")
            times.append(time.perf_counter() - started)
            names.append(name)
    finally:
        if names:
            subprocess.run(["docker", "rm", "-f", *names], capture_output=True, check=False)
    return {
        "median_ms": statistics.median(times) * 1e3,
        "p90_ms": statistics.quantiles(times, n=10)[-1] * 1e3,
    }


def bench_crun_hidden_v2(crun: str, work: Path, lower: Path, n: int) -> dict[str, float]:
    """crun 1.8 refuses this host's hybrid cgroup layout; as ../shared/PEERS.md says, it runs
    with the cgroup v2 mount hidden in a private mount namespace. The timed loop runs inside
    that namespace (one `unshare` for all starts), so crun pays nothing extra per start."""
    inner = (
        f"umount {CGROUP2_MOUNT} 2>/dev/null; exec {sys.executable} {__file__} --crun-inner"
        f" --crun {crun} --work {work} --lower {lower} -n {n}"
    )
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", inner],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "")
    result: dict[str, float] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("-n", type=int, default=50)
    parser.add_argument("--no-install", action="store_true")
    parser.add_argument("--crun-inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--crun", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--lower", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.crun_inner:
        print(json.dumps(bench_crun(args.crun, Path(args.work), Path(args.lower), args.n)))
        return
    with tempfile.TemporaryDirectory(prefix="pycompose-bench-") as tmp:
        work = Path(tmp)
        lower = make_busybox_rootfs(work / "lower")
        rows = [("pycompose runtime", bench_pycompose(work, lower, args.n))]
        crun = ensure_crun(not args.no_install)
        failures: list[str] = []
        if crun:
            try:
                rows.append(("crun run -d", bench_crun_hidden_v2(crun, work, lower, args.n)))
            except RuntimeError as exc:  # e.g. crun 1.8 refuses hybrid cgroup v1+v2 hosts
                failures.append(f"crun could not run here: {exc}")
        else:
            failures.append("crun is not installed")
        if shutil.which("docker"):
            try:
                rows.append(("docker run -d", bench_docker(min(args.n, 20))))
            except RuntimeError as exc:
                failures.append(f"docker could not run here: {exc}")
    print(f"start latency over {args.n} starts (create → running), idle monitor memory\n")
    print("| runtime | median ms | p90 ms | idle monitor RSS KiB | PSS KiB |")
    print("|---|---|---|---|---|")
    for name, r in rows:
        rss = f"{r['shim_rss_kib']:.0f}" if "shim_rss_kib" in r else "— (no monitor)"
        pss = f"{r['shim_pss_kib']:.0f}" if "shim_pss_kib" in r else "—"
        print(f"| {name} | {r['median_ms']:.1f} | {r['p90_ms']:.1f} | {rss} | {pss} |")
    for failure in failures:
        print(f"\n{failure}")


if __name__ == "__main__":
    main()
