"""Secrets and configs on the Docker backend: copied into the container before it starts,
with the `uid`, `gid` and `mode` the file asks for (docker compose's bind mount of the
user's file cannot change them), from `file`, `environment` and `content` sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_ci_mode import run

pytestmark = pytest.mark.docker

STACK = """\
services:
  app:
    image: {image}
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    secrets:
      - source: token
        uid: "1000"
        gid: "1001"
        mode: 0o400
      - source: fromenv
        target: /etc/env-secret
    configs:
      - source: app
        target: /etc/app/app.conf
        mode: 0o640
secrets:
  token:
    file: ./token.txt
  fromenv:
    environment: PYCOMPOSE_TEST_SECRET
configs:
  app:
    content: "key=value"
"""


def test_secrets_and_configs_land_with_their_owner_and_mode(
    tmp_path: Path, project_name: str, busybox_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "compose.yaml").write_text(STACK.format(image=busybox_image))
    (tmp_path / "token.txt").write_text("s3cret\n")
    (tmp_path / "token.txt").chmod(0o644)
    monkeypatch.setenv("PYCOMPOSE_TEST_SECRET", "from-the-environment")
    try:
        up = run(tmp_path, project_name, "up", "-d", "--wait")
        assert up.returncode == 0, up.stderr
        script = (
            "for f in /run/secrets/token /etc/env-secret /etc/app/app.conf; do "
            "stat -c '%n %u %g %a' $f; cat $f; echo; done"
        )
        shown = run(tmp_path, project_name, "exec", "-T", "app", "sh", "-c", script)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.split("\n") == [
            "/run/secrets/token 1000 1001 400",
            "s3cret",
            "",
            "/etc/env-secret 0 0 444",
            "from-the-environment",
            "/etc/app/app.conf 0 0 640",
            "key=value",
            "",
        ]
        # the user's own file is untouched
        assert (tmp_path / "token.txt").stat().st_mode & 0o777 == 0o644
    finally:
        run(tmp_path, project_name, "down", "-t", "1")
