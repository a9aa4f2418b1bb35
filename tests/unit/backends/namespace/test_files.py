"""Secrets, configs, anonymous volumes, bind sources and volume drivers of the namespace
backend: the pure rules, plus the few host writes they lead to (in tmp, as root)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from orchestrator.backends.base import ContainerSpec
from orchestrator.backends.namespace import convert
from orchestrator.backends.namespace import files as nsfiles
from orchestrator.errors import ConfigError, NotFound, Unsupported
from orchestrator.model import (
    ConfigObject,
    SecretObject,
    Service,
    ServiceFile,
    ServiceVolume,
    Volume,
)
from orchestrator.runtime.config import ContainerConfig, Mount
from orchestrator.runtime.spawnconf import Bundle, run_config


def spec(**service: object) -> ContainerSpec:
    return ContainerSpec(
        project="p",
        service=Service(name="web", image="img", **service),  # type: ignore[arg-type]
        name="p-web-1",
        number=1,
        labels={},
        volume_names={"data": "p_data"},
    )


# ---------------------------------------------------------------- secrets and configs


@pytest.mark.parametrize(
    ("kind", "ref", "expected"),
    [
        ("secret", ServiceFile("token"), "/run/secrets/token"),
        ("secret", ServiceFile("token", target="api"), "/run/secrets/api"),
        ("secret", ServiceFile("token", target="/etc/token"), "/etc/token"),
        ("config", ServiceFile("app"), "/app"),
        ("config", ServiceFile("app", target="/etc/app.conf"), "/etc/app.conf"),
        ("config", ServiceFile("app", target="etc/../app.conf"), "/app.conf"),
    ],
)
def test_file_targets(kind: nsfiles.FileKind, ref: ServiceFile, expected: str) -> None:
    assert nsfiles.file_target(kind, ref) == expected


def test_plan_files_resolves_every_source_with_owner_and_mode(tmp_path: Path) -> None:
    secret_file = tmp_path / "token.txt"
    secret_file.write_bytes(b"s3cret\n")
    service = Service(
        name="web",
        secrets=(
            ServiceFile("token", uid="1000", gid="1001", mode=0o400),
            ServiceFile("fromenv", target="/etc/env-secret"),
        ),
        configs=(ServiceFile("app", target="/etc/app.conf", mode=0o640),),
    )
    entries = nsfiles.plan_files(
        service,
        {
            "token": SecretObject("token", "p_token", file=str(secret_file)),
            "fromenv": SecretObject("fromenv", "p_fromenv", environment="API_KEY"),
        },
        {"app": ConfigObject("app", "p_app", content="key=value")},
        {"API_KEY": "k-123"},
    )
    assert entries == (
        nsfiles.FileEntry("secret", "token", 0, "/run/secrets/token", 1000, 1001, 0o400,
                          b"s3cret\n"),
        nsfiles.FileEntry("secret", "fromenv", 1, "/etc/env-secret", 0, 0, 0o444, b"k-123"),
        nsfiles.FileEntry("config", "app", 0, "/etc/app.conf", 0, 0, 0o640, b"key=value"),
    )


def test_unset_environment_names_the_variable() -> None:
    service = Service(name="web", secrets=(ServiceFile("s"),))
    with pytest.raises(ConfigError, match="API_KEY"):
        nsfiles.plan_files(service, {"s": SecretObject("s", "p_s", environment="API_KEY")}, {}, {})


def test_external_secret_is_unsupported() -> None:
    service = Service(name="web", secrets=(ServiceFile("s"),))
    with pytest.raises(Unsupported, match="external"):
        nsfiles.plan_files(service, {"s": SecretObject("s", "p_s", external=True)}, {}, {})


def test_missing_secret_file_is_not_found(tmp_path: Path) -> None:
    service = Service(name="web", secrets=(ServiceFile("s"),))
    with pytest.raises(NotFound, match="cannot read"):
        nsfiles.plan_files(
            service, {"s": SecretObject("s", "p_s", file=str(tmp_path / "nope"))}, {}, {}
        )


def test_names_as_ids_are_refused_with_the_path() -> None:
    service = Service(name="web", configs=(ServiceFile("c", uid="www-data"),))
    with pytest.raises(ConfigError) as info:
        nsfiles.plan_files(service, {}, {"c": ConfigObject("c", "p_c", content="x")}, {})
    assert info.value.problems[0].path == "services.web.configs[0].uid"


def test_a_directory_secret_is_bound_as_it_is_but_takes_no_mode(tmp_path: Path) -> None:
    declared = {"d": SecretObject("d", "p_d", file=str(tmp_path))}
    plain = nsfiles.plan_files(Service(name="web", secrets=(ServiceFile("d"),)), declared, {}, {})
    assert plain[0].host_path == str(tmp_path)
    assert nsfiles.file_mounts(Path("/b"), plain) == (
        Mount("/run/secrets/d", str(tmp_path), "bind", read_only=True),
    )
    with pytest.raises(Unsupported, match="directory"):
        nsfiles.plan_files(
            Service(name="web", secrets=(ServiceFile("d", mode=0o400),)), declared, {}, {}
        )


def test_file_mounts_are_read_only_copies_in_the_container_directory() -> None:
    entry = nsfiles.FileEntry("config", "app", 2, "/etc/app.conf", 0, 0, 0o444, b"x")
    assert nsfiles.file_mounts(Path("/state/containers/c1"), [entry]) == (
        Mount("/etc/app.conf", "/state/containers/c1/mounts/configs/2", "bind", read_only=True),
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_write_files_sets_owner_and_mode(tmp_path: Path) -> None:
    entries = (
        nsfiles.FileEntry("secret", "t", 0, "/run/secrets/t", 1000, 1001, 0o400, b"abc"),
        nsfiles.FileEntry("config", "c", 0, "/c", 0, 0, 0o4755, b"#!/bin/sh\n"),
    )
    nsfiles.write_files(tmp_path, entries)
    first = os.stat(nsfiles.file_source(tmp_path, entries[0]))
    assert (stat.S_IMODE(first.st_mode), first.st_uid, first.st_gid) == (0o400, 1000, 1001)
    assert nsfiles.file_source(tmp_path, entries[0]).read_bytes() == b"abc"
    second = os.stat(nsfiles.file_source(tmp_path, entries[1]))
    assert stat.S_IMODE(second.st_mode) == 0o4755  # chmod after chown keeps setuid
    assert stat.S_IMODE(os.stat(tmp_path / "mounts" / "secrets").st_mode) == 0o700


# ---------------------------------------------------------------- volumes


def test_anonymous_targets_are_the_services_then_the_images_uncovered() -> None:
    service = Service(
        name="web",
        volumes=(
            ServiceVolume(type="volume", target="/cache/"),
            ServiceVolume(type="volume", source="data", target="/var/lib/data"),
        ),
    )
    assert nsfiles.anonymous_targets(service, ("/var/lib/data", "logs", "/cache", "/x")) == (
        "/cache",
        "/logs",
        "/x",
    )


@pytest.mark.parametrize(
    ("volume", "expected"),
    [
        (Volume("v", "p_v"), None),
        (Volume("v", "p_v", driver="local"), None),
        (Volume("v", "p_v", driver_opts={"type": "none", "o": "bind", "device": "/srv/v"}),
         "/srv/v"),
        (Volume("v", "p_v", driver_opts={"type": "none", "o": "rbind,ro", "device": "/d"}), "/d"),
    ],
)
def test_bind_device(volume: Volume, expected: str | None) -> None:
    assert nsfiles.bind_device(volume) == expected


@pytest.mark.parametrize(
    "volume",
    [
        Volume("v", "p_v", driver="rexray"),
        Volume("v", "p_v", driver_opts={"type": "nfs", "o": "addr=10.0.0.1", "device": ":/x"}),
        Volume("v", "p_v", driver_opts={"type": "tmpfs", "device": "tmpfs"}),
        Volume("v", "p_v", driver_opts={"type": "none", "device": "/srv"}),
    ],
)
def test_other_drivers_are_unsupported(volume: Volume) -> None:
    with pytest.raises(Unsupported, match="p_v"):
        nsfiles.bind_device(volume)


def test_relative_device_is_a_config_error() -> None:
    volume = Volume("v", "p_v", driver_opts={"type": "none", "o": "bind", "device": "srv"})
    with pytest.raises(ConfigError):
        nsfiles.bind_device(volume)


def test_link_bind_volume_points_the_data_directory_at_the_device(tmp_path: Path) -> None:
    data = tmp_path / "p_v" / "_data"
    data.mkdir(parents=True)
    device = tmp_path / "device"
    device.mkdir()
    nsfiles.link_bind_volume(data, str(device))
    nsfiles.link_bind_volume(data, str(device))  # again: nothing changes
    assert os.readlink(data) == str(device)
    with pytest.raises(NotFound):
        nsfiles.link_bind_volume(data, str(tmp_path / "missing"))


def test_missing_bind_source_is_created_only_when_asked(tmp_path: Path) -> None:
    wanted = tmp_path / "made" / "here"
    nsfiles.ensure_bind_sources(
        Service(name="web", volumes=(
            ServiceVolume(type="bind", source=str(wanted), target="/x",
                          bind_create_host_path=True),
        ))
    )
    assert wanted.is_dir()
    refused = tmp_path / "not-made"
    with pytest.raises(ConfigError) as info:
        nsfiles.ensure_bind_sources(
            Service(name="web", volumes=(
                ServiceVolume(type="bind", source=str(refused), target="/y"),
            ))
        )
    assert info.value.problems[0].path == "services.web.volumes[0].source"
    assert not refused.exists()


@pytest.mark.parametrize(
    "volume",
    [
        ServiceVolume(type="bind", source="/a", target="/b", bind_propagation="rshared"),
        ServiceVolume(type="volume", source="data", target="/b", volume_subpath="sub"),
    ],
)
def test_mount_options_we_cannot_honour_are_refused(volume: ServiceVolume) -> None:
    with pytest.raises(Unsupported):
        convert.mounts(spec(volumes=(volume,)), {"p_data": "/v"})


# ---------------------------------------------------------------- convert.mounts


def test_mounts_copy_up_nocopy_image_volumes_and_files_parents_first() -> None:
    s = spec(
        volumes=(
            ServiceVolume(type="volume", source="data", target="/data"),
            ServiceVolume(type="volume", source="data", target="/raw", volume_nocopy=True),
            ServiceVolume(type="volume", target="/anon"),
            ServiceVolume(type="bind", source="/host", target="/srv/www/html"),
        ),
    )
    secret = Mount("/data/secret", "/c/mounts/secrets/0", "bind", read_only=True)
    out = convert.mounts(
        s,
        {"p_data": "/v/p_data/_data"},
        anonymous={"/anon": "/c/mounts/volumes/0", "/image/vol": "/c/mounts/volumes/1",
                   "/data": "/unused"},
        image_volumes=("/image/vol", "/data"),
        files=(secret,),
    )
    assert out == (
        Mount("/data", "/v/p_data/_data", "bind", copy_up=True),
        Mount("/raw", "/v/p_data/_data", "bind"),
        Mount("/anon", "/c/mounts/volumes/0", "bind", copy_up=True),
        Mount("/image/vol", "/c/mounts/volumes/1", "bind", copy_up=True),
        Mount("/data/secret", "/c/mounts/secrets/0", "bind", read_only=True),
        Mount("/srv/www/html", "/host", "bind"),
    )


def test_an_anonymous_volume_without_a_directory_is_refused() -> None:
    with pytest.raises(Unsupported, match="/anon"):
        convert.mounts(spec(volumes=(ServiceVolume(type="volume", target="/anon"),)), {})


def test_copy_up_reaches_the_spawner_after_its_bind() -> None:
    config = ContainerConfig(
        id="c1",
        command=("sh",),
        lowerdirs=("/l",),
        mounts=(Mount("/a", "/v/a", copy_up=True), Mount("/b", "/v/b", read_only=True)),
    )
    tokens = run_config(config, Bundle(Path("/state/c1")), ()).decode().split("\0")
    at = tokens.index("bind")
    assert tokens[at : at + 10] == [
        "bind", "/v/a", "/a", "rw", "copyup", "/state/c1/copied-up-0",
        "bind", "/v/b", "/b", "ro",
    ]


def test_copy_up_needs_a_bind() -> None:
    with pytest.raises(Exception, match="copy-up"):
        ContainerConfig(id="c1", command=("sh",), lowerdirs=("/l",),
                        mounts=(Mount("/t", kind="tmpfs", copy_up=True),))
