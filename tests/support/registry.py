"""A throwaway Docker registry for tests: Debian's ``docker-registry`` (distribution 2.8)
on 127.0.0.1 and a free port, storing into a temporary directory, optionally behind
htpasswd Basic auth. Stopped, and its directory removed, when the context exits.

The htpasswd file needs bcrypt hashes; glibc's ``crypt(3)`` (libxcrypt on Debian 12) makes
them, through Python's ``crypt`` module, so no extra package is needed.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REGISTRY_BINARY = Path("/usr/bin/docker-registry")


@dataclass(frozen=True)
class LocalRegistry:
    host: str  # "127.0.0.1:<port>"
    root: Path  # the storage root directory
    username: str | None = None
    password: str | None = None

    def blob_file(self, digest: str) -> Path:
        """Where the registry keeps the bytes of blob ``digest`` (to tamper with it)."""
        hexpart = digest.split(":", 1)[1]
        return self.root / "docker/registry/v2/blobs/sha256" / hexpart[:2] / hexpart / "data"

    def docker_config(self, directory: Path, password: str | None = None) -> Path:
        """A Docker client config dir whose config.json logs in to this registry."""
        import base64

        directory.mkdir(parents=True, exist_ok=True)
        secret = self.password if password is None else password
        auth = base64.b64encode(f"{self.username}:{secret}".encode()).decode()
        (directory / "config.json").write_text(json.dumps({"auths": {self.host: {"auth": auth}}}))
        return directory


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bcrypt_hash(password: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))


def _config(root: Path, port: int, htpasswd: Path | None) -> str:
    lines = [
        "version: 0.1",
        "log:",
        "  level: error",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {root}",
        "  delete:",
        "    enabled: true",
        "http:",
        f"  addr: 127.0.0.1:{port}",
        f"  secret: {secrets.token_hex(16)}",
    ]
    if htpasswd is not None:
        lines += ["auth:", "  htpasswd:", "    realm: pycompose-test", f"    path: {htpasswd}"]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def running_registry(*, auth: bool = False) -> Iterator[LocalRegistry]:
    """Start a registry, wait until ``/v2/`` answers, yield it; stop and clean after."""
    if not REGISTRY_BINARY.exists():
        raise RuntimeError(f"{REGISTRY_BINARY} is missing (apt-get install docker-registry)")
    workdir = Path(tempfile.mkdtemp(prefix="pycompose-registry-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        storage = workdir / "storage"
        storage.mkdir()
        username = password = None
        htpasswd = None
        if auth:
            username, password = "tester", secrets.token_hex(8)
            htpasswd = workdir / "htpasswd"
            htpasswd.write_text(f"{username}:{bcrypt_hash(password)}\n")
        port = free_port()
        config = workdir / "config.yml"
        config.write_text(_config(storage, port, htpasswd))
        log = (workdir / "registry.log").open("wb")
        process = subprocess.Popen(
            [str(REGISTRY_BINARY), "serve", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={"PATH": "/usr/bin:/bin"},
        )
        log.close()
        host = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"docker-registry exited: {(workdir / 'registry.log').read_text()[-2000:]}"
                )
            try:
                urllib.request.urlopen(f"http://{host}/v2/", timeout=1).close()
                break
            except urllib.error.HTTPError:
                break  # 401: it answers
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("docker-registry did not answer within 20 s") from None
                time.sleep(0.05)
        yield LocalRegistry(host, storage, username, password)
    finally:
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(workdir, ignore_errors=True)
