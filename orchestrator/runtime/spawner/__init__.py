"""The C spawner: built from source with ``cc`` on first use, cached by source hash.

Why at first use rather than at install time: the binary must match this machine's kernel
headers and libc, the source is tiny (a static build takes well under a second), and a
cache keyed by the hash of the source and the flags means an edited spawner is rebuilt
automatically while an unchanged one is never rebuilt. The build writes to a temporary
name and renames it into place, so concurrent first uses race harmlessly.

Cache directory: ``$PYCOMPOSE_ROOT/bin`` (default ``/var/lib/pycompose/bin``), or the one
given by the caller.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from orchestrator.errors import RuntimeFailure

SOURCE = Path(__file__).with_name("spawner.c")
_FLAGS: tuple[str, ...] = ("-O2", "-Wall", "-Wextra", "-std=gnu11")
DEFAULT_ROOT = Path("/var/lib/pycompose")


def default_cache_dir() -> Path:
    """``$PYCOMPOSE_ROOT/bin``: next to the rest of the runtime's state."""
    return Path(os.environ.get("PYCOMPOSE_ROOT") or DEFAULT_ROOT) / "bin"


def binary_name(source: bytes, flags: tuple[str, ...]) -> str:
    """The cached binary's file name: it changes whenever the source or the flags do."""
    digest = hashlib.sha256(source + b"\0" + " ".join(flags).encode()).hexdigest()
    return f"pycompose-spawner-{digest[:16]}"


def ensure_spawner(cache_dir: Path | None = None) -> Path:
    """The path of a built spawner, compiling it into ``cache_dir`` when missing."""
    cache = cache_dir or default_cache_dir()
    source = SOURCE.read_bytes()
    target = cache / binary_name(source, _FLAGS)
    if os.access(target, os.X_OK):
        return target
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeFailure("no C compiler (cc) for the spawner: apt-get install gcc libc6-dev")
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".pycompose-spawner-", dir=cache)
    os.close(fd)
    try:
        errors = ""
        # static first (faster exec, no loader); dynamic when libc.a is missing
        for extra in (("-static",), ()):
            done = subprocess.run(
                [compiler, *_FLAGS, *extra, "-o", tmp, str(SOURCE)],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode == 0:
                os.chmod(tmp, 0o755)
                os.replace(tmp, target)
                return target
            errors = done.stderr
        raise RuntimeFailure(f"building the spawner failed:\n{errors.strip()}")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
