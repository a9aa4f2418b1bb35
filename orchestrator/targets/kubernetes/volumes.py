"""Mounts: named volumes → PVCs, binds → hostPath, tmpfs → memory emptyDir, and the
configs and secrets a service reads as files → ConfigMaps and Secrets mounted by subPath.

A config or secret is mounted by ``subPath`` so that a single file lands at the compose
target without hiding the rest of the directory it goes into (as docker does).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any

from orchestrator.model import SecretObject, Service, ServiceFile
from orchestrator.targets.kubernetes.context import (
    DEFAULT_VOLUME_SIZE,
    MANAGED_BY_LABEL,
    PART_OF_LABEL,
    RenderContext,
)
from orchestrator.targets.kubernetes.names import dns_label

Manifest = dict[str, Any]


@dataclass
class PodStorage:
    """What a service's pod template needs for its mounts."""

    volumes: list[Manifest] = field(default_factory=list)
    mounts: list[Manifest] = field(default_factory=list)
    claim_templates: list[Manifest] = field(default_factory=list)

    def volume_name(self, base: str) -> str:
        taken = {v["name"] for v in self.volumes} | {
            c["metadata"]["name"] for c in self.claim_templates
        }
        name = dns_label(base)
        index = 2
        while name in taken:
            name = dns_label(f"{base}-{index}")
            index += 1
        return name


def quantity(size: int) -> str:
    """Bytes as a Kubernetes quantity, in the largest binary unit that divides it."""
    for suffix, unit in (("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if size and size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)


def data_key(name: str) -> str:
    """A ConfigMap/Secret key (``[-._a-zA-Z0-9]+``)."""
    return re.sub(r"[^-._a-zA-Z0-9]+", "-", name) or "data"


def claim_spec(access: str) -> Manifest:
    return {"accessModes": [access], "resources": {"requests": {"storage": DEFAULT_VOLUME_SIZE}}}


def pod_storage(ctx: RenderContext, service: Service) -> PodStorage:
    storage = PodStorage()
    owned = ctx.owned_volumes(service) if ctx.kind(service) == "StatefulSet" else []
    base = f"services.{service.name}"
    for index, mount in enumerate(service.volumes):
        path = f"{base}.volumes[{index}]"
        if mount.type == "volume" and mount.source in owned:
            name = storage.volume_name(mount.source)
            storage.claim_templates.append(
                {"metadata": {"name": name}, "spec": claim_spec("ReadWriteOnce")}
            )
        elif mount.type == "volume" and mount.source:
            volume = ctx.project.volumes.get(mount.source)
            claim = dns_label(volume.name if volume and volume.external else mount.source)
            name = storage.volume_name(f"vol-{mount.source}")
            source: Manifest = {"claimName": claim}
            if mount.read_only:
                source["readOnly"] = True
            storage.volumes.append({"name": name, "persistentVolumeClaim": source})
        elif mount.type == "volume":
            name = storage.volume_name("anon")
            storage.volumes.append({"name": name, "emptyDir": {}})
        elif mount.type == "bind" and mount.source:
            name = storage.volume_name("host")
            storage.volumes.append({"name": name, "hostPath": {"path": mount.source}})
            ctx.warn(
                path,
                f"bind mount of {mount.source} rendered as a hostPath volume: the path must "
                "exist on the node the pod runs on",
                "put the files in a ConfigMap or the image",
            )
        elif mount.type == "tmpfs":
            name = storage.volume_name("tmpfs")
            storage.volumes.append({"name": name, "emptyDir": _memory(mount.tmpfs_size)})
            if mount.tmpfs_mode is not None:
                ctx.warn(f"{path}.tmpfs.mode", "a memory emptyDir has no mode in Kubernetes")
        else:
            ctx.warn(path, f"a {mount.type!r} mount has no Kubernetes equivalent; left out")
            continue
        entry: Manifest = {"name": name, "mountPath": mount.target}
        if mount.read_only:
            entry["readOnly"] = True
        if mount.volume_subpath:
            entry["subPath"] = mount.volume_subpath
        if mount.bind_propagation:
            ctx.warn(f"{path}.bind.propagation", "mount propagation is not rendered")
        storage.mounts.append(entry)
    for index, spec in enumerate(service.tmpfs):
        target, _, options = spec.partition(":")
        size = re.search(r"size=(\d+)", options)
        name = storage.volume_name("tmpfs")
        storage.volumes.append(
            {"name": name, "emptyDir": _memory(int(size.group(1)) if size else None)}
        )
        storage.mounts.append({"name": name, "mountPath": target})
        if options and not size:
            ctx.warn(f"{base}.tmpfs[{index}]", f"tmpfs options {options!r} are not rendered")
    if service.shm_size is not None:
        name = storage.volume_name("dshm")
        storage.volumes.append({"name": name, "emptyDir": _memory(service.shm_size)})
        storage.mounts.append({"name": name, "mountPath": "/dev/shm"})
    _files(ctx, service, storage, "configs")
    _files(ctx, service, storage, "secrets")
    return storage


def _memory(size: int | None) -> Manifest:
    out: Manifest = {"medium": "Memory"}
    if size:
        out["sizeLimit"] = quantity(size)
    return out


def _files(ctx: RenderContext, service: Service, storage: PodStorage, section: str) -> None:
    refs: tuple[ServiceFile, ...] = getattr(service, section)
    top: dict[str, SecretObject] = getattr(ctx.project, section)
    for index, ref in enumerate(refs):
        path = f"services.{service.name}.{section}[{index}]"
        obj = top.get(ref.source)
        if obj is None:
            ctx.warn(path, f"{section[:-1]} {ref.source!r} is not defined; left out")
            continue
        target = ref.target or ref.source
        if not target.startswith("/"):
            target = f"/run/secrets/{target}" if section == "secrets" else f"/{target}"
        key = data_key(ref.source)
        name = storage.volume_name(f"{section[:-1]}-{ref.source}")
        source: Manifest = {"items": [{"key": key, "path": key}]}
        if section == "secrets":
            source["secretName"] = object_name(obj)
            volume: Manifest = {"name": name, "secret": source}
        else:
            source["name"] = object_name(obj)
            volume = {"name": name, "configMap": source}
        if ref.mode is not None:
            if 0 <= ref.mode <= 0o777:
                source["defaultMode"] = ref.mode
            else:
                ctx.warn(f"{path}.mode", f"mode {ref.mode} is not a file mode (0 to 0o777)")
        if ref.uid is not None or ref.gid is not None:
            ctx.warn(
                f"{path}.uid",
                "a mounted file's owner cannot be set per file in Kubernetes",
                "set securityContext.fsGroup if the group matters",
            )
        storage.volumes.append(volume)
        storage.mounts.append({"name": name, "mountPath": target, "subPath": key, "readOnly": True})


def object_name(obj: SecretObject) -> str:
    """The ConfigMap/Secret name: the external name for external ones, else the key."""
    return dns_label(obj.name if obj.external else obj.key)


def _meta(ctx: RenderContext, name: str) -> Manifest:
    return {
        "name": name,
        "labels": {
            PART_OF_LABEL: dns_label(ctx.project.name),
            MANAGED_BY_LABEL: "pycompose",
        },
    }


def _content(ctx: RenderContext, obj: SecretObject, path: str) -> bytes:
    if obj.content is not None:
        return obj.content.encode()
    if obj.environment is not None:
        value = ctx.environ.get(obj.environment)
        if value is None:
            ctx.warn(f"{path}.environment", f"${obj.environment} is not set; rendered empty")
        return (value or "").encode()
    if obj.file is not None:
        try:
            return ctx.read_file(obj.file)
        except OSError as exc:
            ctx.warn(f"{path}.file", f"cannot read {obj.file} ({exc.strerror}); rendered empty")
    return b""


def config_maps(ctx: RenderContext) -> list[Manifest]:
    out: list[Manifest] = []
    for key, obj in ctx.project.configs.items():
        if obj.external:
            continue
        data = _content(ctx, obj, f"configs.{key}")
        manifest: Manifest = {"apiVersion": "v1", "kind": "ConfigMap"}
        manifest["metadata"] = _meta(ctx, object_name(obj))
        try:
            manifest["data"] = {data_key(key): data.decode("utf-8")}
        except UnicodeDecodeError:
            manifest["binaryData"] = {data_key(key): base64.b64encode(data).decode()}
        out.append(manifest)
    return out


def secrets(ctx: RenderContext) -> list[Manifest]:
    out: list[Manifest] = []
    for key, obj in ctx.project.secrets.items():
        if obj.external:
            continue
        data = _content(ctx, obj, f"secrets.{key}")
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": _meta(ctx, object_name(obj)),
                "type": "Opaque",
                "data": {data_key(key): base64.b64encode(data).decode()},
            }
        )
    return out


def claims(ctx: RenderContext) -> list[Manifest]:
    """A PVC per named volume, except those a StatefulSet claims by template."""
    owned = {
        key
        for service in ctx.project.services.values()
        if ctx.kind(service) == "StatefulSet"
        for key in ctx.owned_volumes(service)
    }
    out: list[Manifest] = []
    for key, volume in ctx.project.volumes.items():
        if volume.external or key in owned:
            continue
        users = ctx.volume_users(key)
        shared = len(users) > 1 or any(ctx.project.services[u].replicas > 1 for u in users)
        if shared:
            ctx.warn(
                f"volumes.{key}",
                "mounted by several pods: the claim asks for ReadWriteMany, which needs a "
                "storage class that supports it",
            )
        if volume.driver or volume.driver_opts:
            ctx.warn(
                f"volumes.{key}.driver",
                "volume drivers are not rendered; the cluster's default storage class is used",
            )
        out.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": _meta(ctx, dns_label(key)),
                "spec": claim_spec("ReadWriteMany" if shared else "ReadWriteOnce"),
            }
        )
    return out
