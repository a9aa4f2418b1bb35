"""The JSON-lines log: the shim's writer (through the spawner's ``logcopy`` mode, the
same code the shim runs) with rotation, and the readers."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

from orchestrator.runtime.logs import files_oldest_first, follow, parse_line, read_all, tail


def logcopy(spawner: Path, path: Path, data: bytes, max_size: int, max_file: int) -> None:
    subprocess.run(
        [str(spawner), "logcopy", str(path), str(max_size), str(max_file)], input=data, check=True
    )


def test_records_are_docker_json_file(spawner: Path, tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    logcopy(spawner, log, b'a "quoted"\tline\nsecond\\\nno newline', 0, 1)
    lines = log.read_text().splitlines()
    first = json.loads(lines[0])
    assert first["log"] == 'a "quoted"\tline\n' and first["stream"] == "stdout"
    assert first["time"].endswith("Z") and len(first["time"]) == 30
    assert [e.text for e in read_all(log)] == ['a "quoted"\tline\n', "second\\\n", "no newline"]


def test_rotation_keeps_max_file_files_of_max_size(spawner: Path, tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    data = b"".join(b"line %04d\n" % i for i in range(1000))
    logcopy(spawner, log, data, 4096, 3)
    files = files_oldest_first(log)
    assert [f.name for f in files] == ["c.log.2", "c.log.1", "c.log"]
    assert all(f.stat().st_size <= 4096 for f in files)
    texts = [e.text for e in read_all(log)]
    assert texts[-1] == "line 0999\n"
    # oldest first and contiguous: whatever was rotated out is gone from the front only
    first = int(texts[0].split()[1])
    assert texts == [f"line {i:04d}\n" for i in range(first, 1000)]
    assert [e.text for e in tail(log, 2)] == ["line 0998\n", "line 0999\n"]


def test_max_file_one_truncates(spawner: Path, tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    logcopy(spawner, log, b"".join(b"x%03d\n" % i for i in range(500)), 1024, 1)
    assert files_oldest_first(log) == [log]
    assert log.stat().st_size <= 1024
    assert [e.text for e in tail(log, 1)] == ["x499\n"]


def test_long_lines_are_split(spawner: Path, tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    logcopy(spawner, log, b"y" * 40000 + b"\n", 0, 1)
    parts = [e.text for e in read_all(log)]
    assert len(parts) == 3 and "".join(parts) == "y" * 40000 + "\n"


def test_follow_survives_rotation(spawner: Path, tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    proc = subprocess.Popen([str(spawner), "logcopy", str(log), "2048", "5"], stdin=subprocess.PIPE)
    assert proc.stdin is not None
    stdin = proc.stdin
    seen: list[str] = []

    def reader() -> None:
        seen.extend(e.text for e in follow(log, done=lambda: proc.poll() is not None, poll=0.01))

    thread = threading.Thread(target=reader)
    thread.start()
    for i in range(300):
        stdin.write(b"n%03d\n" % i)
        stdin.flush()
        if i % 50 == 0:
            time.sleep(0.05)
    stdin.close()
    proc.wait()
    thread.join(10)
    assert seen == [f"n{i:03d}\n" for i in range(300)]
    assert len(files_oldest_first(log)) == 5


def test_bad_lines_are_skipped() -> None:
    assert parse_line(b"not json") is None
    assert parse_line(b'{"log": "x"}') is None
    entry = parse_line(b'{"log":"x\\n","stream":"stderr","time":"t"}')
    assert entry is not None and entry.stream == "stderr"
