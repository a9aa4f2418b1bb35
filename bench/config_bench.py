"""Times `pycompose config -q` on a generated 1,000-service file and `pycompose --version`.

Targets (2-core machine): config of 1,000 services under 1 s; --version under 150 ms.
Run: `make bench` (or `.venv/bin/python bench/config_bench.py`); prints a markdown table.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen import many_services

PYCOMPOSE = str(Path(sys.executable).parent / "pycompose")


def timed(cmd: list[str], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "compose.yaml"
        # JSON is YAML: the generated file is written as JSON to avoid needing PyYAML here
        path.write_text(json.dumps(many_services(1000), indent=1))
        config = timed([PYCOMPOSE, "-f", str(path), "-p", "bench", "config", "-q"], 7)
        version = timed([PYCOMPOSE, "--version"], 15)
    print("| measurement | median | min | target |")
    print("|---|---|---|---|")
    print(
        f"| `config -q`, 1,000 services | {statistics.median(config):.3f} s |"
        f" {min(config):.3f} s | < 1 s |"
    )
    print(
        f"| `--version` | {statistics.median(version) * 1000:.0f} ms |"
        f" {min(version) * 1000:.0f} ms | < 150 ms |"
    )


if __name__ == "__main__":
    main()
