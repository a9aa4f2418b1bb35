"""The builder without RUN (no container): config instructions, COPY/ADD layers, ARG scoping,
--target, the cache, located errors. Needs root (layers are unpacked with their owners)."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from orchestrator.runtime.build import Builder, BuildOptions, ContextEscape, DockerfileError
from orchestrator.runtime.images import Store

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="layers are unpacked as root")

DOCKERFILE = """\
ARG VERSION=1.0
FROM scratch AS files
ARG VERSION
COPY --chmod=600 app.conf /etc/app/
ADD bundle.tar.gz /opt/
FROM files AS final
ARG PORT=8080 VERSION
ENV VERSION=$VERSION PORT=${PORT}
LABEL org.example.version="$VERSION" other=x
EXPOSE $PORT 53/udp 9000-9001
VOLUME ["/data"]
CMD ["run"]
ENTRYPOINT ["/bin/app"]
HEALTHCHECK --interval=2s --retries=4 CMD ["/bin/app", "check"]
STOPSIGNAL SIGQUIT
SHELL ["/bin/bash", "-c"]
USER 10:20
WORKDIR /srv
WORKDIR sub
FROM scratch AS later
COPY does-not-exist /
"""


@pytest.fixture
def context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "app.conf").write_text("conf\n")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = b"#!/bin/sh\n"
        info = tarfile.TarInfo("bin/tool")
        info.size, info.mode, info.uid, info.gid = len(data), 0o755, 7, 8
        tar.addfile(info, io.BytesIO(data))
    (ctx / "bundle.tar.gz").write_bytes(buffer.getvalue())
    return ctx


def test_config_layers_and_cache(tmp_path: Path, context: Path) -> None:
    store = Store(tmp_path / "store")
    options = BuildOptions(context=context, target="final", tags=("app:1", "app:latest"),
                           build_args={"PORT": "9090", "UNUSED": "x"},
                           labels={"com.example.compose": "yes"})
    result = Builder(store).build(options)
    assert [r.name for r in result.refs] == ["app:1", "app:latest"]
    assert result.warnings == ("build args not consumed by any ARG: UNUSED",)
    assert not any(s.cached for s in result.steps[1:] if s.stage == "files")
    raw = json.loads(store.blob_path(result.image_id).read_bytes())
    config = raw["config"]
    # docker's default PATH is given at FROM (scratch too), before the stage's own ENV
    assert config["Env"] == [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "VERSION=1.0",
        "PORT=9090",
    ]
    assert config["Labels"] == {"org.example.version": "1.0", "other": "x",
                                "com.example.compose": "yes"}
    assert sorted(config["ExposedPorts"]) == ["53/udp", "9000/tcp", "9001/tcp", "9090/tcp"]
    assert config["Volumes"] == {"/data": {}}
    assert config["Entrypoint"] == ["/bin/app"]
    assert config["Cmd"] == ["run"]  # set in this stage: the ENTRYPOINT after it keeps it
    assert config["Healthcheck"] == {"Test": ["CMD", "/bin/app", "check"],
                                     "Interval": 2 * 10**9, "Retries": 4}
    assert config["StopSignal"] == "SIGQUIT"
    assert config["Shell"] == ["/bin/bash", "-c"]
    assert config["User"] == "10:20" and config["WorkingDir"] == "/srv/sub"
    assert len(raw["rootfs"]["diff_ids"]) == 2
    assert [h.get("empty_layer", False) for h in raw["history"]][:3] == [True, False, False]
    image = store.resolve("app:1")
    conf = image.layers[0] / "etc" / "app" / "app.conf"
    assert conf.read_text() == "conf\n" and (conf.stat().st_mode & 0o777) == 0o600
    tool = (image.layers[1] / "opt" / "bin" / "tool").stat()
    assert (tool.st_uid, tool.st_gid, tool.st_mode & 0o777) == (7, 8, 0o755)
    # unchanged: every step from the cache, the same image
    again = Builder(store).build(options)
    assert all(s.cached for s in again.steps) and again.image_id == result.image_id
    # another value of a build arg changes the steps from its ARG on, not those before
    other = Builder(store).build(BuildOptions(context=context, target="final",
                                              build_args={"VERSION": "2.0"}))
    by_line = {s.line: s.cached for s in other.steps}
    assert not by_line[3] and not by_line[4] and other.image_id != result.image_id


def test_entrypoint_resets_an_inherited_cmd(tmp_path: Path, context: Path) -> None:
    (context / "Dockerfile").write_text(
        "FROM scratch AS a\nCMD [\"x\"]\nFROM a\nENTRYPOINT [\"/e\"]\n"
    )
    store = Store(tmp_path / "store")
    result = Builder(store).build(BuildOptions(context=context, tags=("e:1",)))
    config = json.loads(store.blob_path(result.image_id).read_bytes())["config"]
    assert config["Entrypoint"] == ["/e"] and "Cmd" not in config


def test_env_path_extends_the_default_path_of_a_scratch_image(
    tmp_path: Path, context: Path
) -> None:
    (context / "Dockerfile").write_text("FROM scratch\nENV PATH=/opt/bin:$PATH\n")
    store = Store(tmp_path / "store")
    result = Builder(store).build(BuildOptions(context=context, tags=("p:1",)))
    config = json.loads(store.blob_path(result.image_id).read_bytes())["config"]
    default = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert config["Env"] == [f"PATH=/opt/bin:{default}"]


@pytest.mark.parametrize(
    ("dockerfile", "error", "message"),
    [
        ("FROM scratch\nCOPY ../x /\n", ContextEscape,
         "source '../x' is outside the build context at Dockerfile:2"),
        ("FROM scratch\nONBUILD RUN x\n", DockerfileError,
         "unsupported instruction ONBUILD at Dockerfile:2"),
        ("FROM scratch\nCOPY a b /dst\n", DockerfileError,
         "needs a destination directory ending with / at Dockerfile:2"),
        ("FROM nothing-like-this:1\n", DockerfileError, "base image 'nothing-like-this:1'"),
        ("FROM scratch\nEXPOSE 99999\n", DockerfileError,
         "EXPOSE '99999' is not a port at Dockerfile:2"),
        ("FROM scratch\nADD https://example.com/x /\n", DockerfileError, "URL is not supported"),
        ("FROM --platform=linux/s390x-nope scratch\n", DockerfileError, "is not this host's"),
    ],
)
def test_errors_are_located(tmp_path: Path, context: Path, dockerfile: str,
                            error: type[Exception], message: str) -> None:
    with pytest.raises(error) as caught:
        Builder(Store(tmp_path / "store")).build(
            BuildOptions(context=context, dockerfile_text=dockerfile)
        )
    assert message in str(caught.value)


def test_unknown_target(tmp_path: Path, context: Path) -> None:
    with pytest.raises(DockerfileError, match="target stage 'nope' is not in the Dockerfile"):
        Builder(Store(tmp_path / "store")).build(BuildOptions(context=context, target="nope"))
