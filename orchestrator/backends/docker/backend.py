"""DockerBackend: the Backend protocol over the Docker Engine API (docker SDK, API 1.41).

Uses the SDK's low-level ``APIClient`` with request bodies built by ``convert`` so every
compose key maps to the engine field we chose, not to whatever the high-level client
happens to support. All SDK calls run inside ``errors.translated``.

Interactive exec: when ``exec(..., interactive=True)`` or ``tty=True`` is asked *and* our
stdin is a terminal, we hand the terminal to ``docker exec -it`` (the docker CLI) through a
subprocess, because relaying a raw TTY over the API socket is what the CLI already does
well; without a terminal (tests, pipes) exec goes through the API and captures output.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import quote

import docker
import docker.errors
import docker.utils
import requests.exceptions
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from orchestrator import labels as L
from orchestrator.backends.base import (
    Attachment,
    Capabilities,
    ContainerEvent,
    ContainerSpec,
    ExecResult,
    LogLine,
    NetworkSpec,
    ObservedContainer,
    ObservedNetwork,
    ObservedState,
    ObservedVolume,
    VolumeSpec,
)
from orchestrator.backends.docker import convert
from orchestrator.backends.docker import files as dockerfiles
from orchestrator.backends.docker.errors import is_transient, map_error, translated
from orchestrator.backends.files import plan_files
from orchestrator.errors import NotFound, Unsupported, WaitTimeout
from orchestrator.model import Build

# keys one Docker engine on one host cannot honour; the loader warns when a file uses them
UNSUPPORTED_KEYS = frozenset(
    {
        "deploy.placement",
        "deploy.endpoint_mode",
        "deploy.resources.reservations.generic_resources",
        "credential_spec",
    }
)
_NO_PULL = ("never", "build")


class DockerBackend:
    """One Docker engine. ``endpoint`` is only used to word errors."""

    def __init__(self, api: Any, endpoint: str = "unix:///var/run/docker.sock") -> None:
        self._api = api
        self._endpoint = endpoint

    @classmethod
    def from_env(cls, *, timeout: float = 120.0) -> DockerBackend:
        """Connect as the docker CLI would (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH).

        The API version is negotiated here, so an absent engine fails now with
        EngineUnavailable rather than on the first real call.
        """
        endpoint = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        with translated(endpoint):
            client = docker.from_env(version="auto", timeout=int(timeout))
            client.api.ping()
        return cls(client.api, endpoint)

    # ------------------------------------------------------------------ helpers

    def _guard(self, what: str = "") -> AbstractContextManager[None]:
        return translated(self._endpoint, what)

    def _inspect(self, container_id: str) -> dict[str, Any]:
        with self._guard(f"container {container_id}"):
            result: dict[str, Any] = self._api.inspect_container(container_id)
        return result

    # ------------------------------------------------------------------ observe

    def capabilities(self) -> Capabilities:
        return Capabilities(name="docker", unsupported_keys=UNSUPPORTED_KEYS)

    def observe(self, project: str) -> ObservedState:
        label = {"label": f"{L.PROJECT}={project}"}
        with self._guard(f"project {project}"):
            summaries = self._api.containers(all=True, filters=label)
            networks = self._api.networks(filters=label)
            volumes = (self._api.volumes(filters=label) or {}).get("Volumes") or []
        containers: list[ObservedContainer] = []
        for summary in summaries:
            try:
                containers.append(convert.observed_container(self._inspect(summary["Id"])))
            except NotFound:
                continue  # removed between the list and the inspect
        return ObservedState(
            project=project,
            containers=tuple(sorted(containers, key=lambda c: (c.service, c.number, c.name))),
            networks=tuple(
                ObservedNetwork(name=n["Name"], id=n["Id"], labels=dict(n.get("Labels") or {}))
                for n in networks
            ),
            volumes=tuple(
                ObservedVolume(name=v["Name"], labels=dict(v.get("Labels") or {})) for v in volumes
            ),
        )

    def list_projects(self) -> list[str]:
        """Projects that have containers (running or not), as ``docker compose ls`` counts."""
        with self._guard():
            summaries = self._api.containers(all=True, filters={"label": L.PROJECT})
        return sorted({s["Labels"][L.PROJECT] for s in summaries if s.get("Labels")})

    # ------------------------------------------------------------------ images

    def ensure_image(self, image: str, pull_policy: str | None = None) -> None:
        """Pull only when the policy asks: ``always``, or missing under ``missing`` /
        ``if_not_present`` / unset / ``daily``-style policies. ``never`` and ``build`` never
        pull (building is not this backend's job)."""
        policy = (pull_policy or "missing").lower()
        present = self._image_present(image)
        if present and policy != "always":
            return
        if policy in _NO_PULL:
            raise NotFound(
                f"image {image} not found locally and could not be pulled: "
                f"pull_policy is {policy!r}"
            )
        try:
            self._pull(image)
        except Exception as exc:
            mapped = map_error(exc, self._endpoint)
            if present:
                raise mapped from exc
            raise NotFound(
                f"image {image} not found locally and could not be pulled: {mapped}"
            ) from exc

    def _image_present(self, image: str) -> bool:
        try:
            with self._guard(f"image {image}"):
                self._api.inspect_image(image)
        except NotFound:
            return False
        return True

    @retry(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(4),
        wait=wait_exponential(multiplier=0.5, max=8),
        reraise=True,
    )
    def _pull(self, image: str) -> None:
        repository, tag = docker.utils.parse_repository_tag(image)
        if tag is None and "@" not in image:
            tag = "latest"
        # stream=True surfaces errors reported mid-pull as events, not just HTTP errors
        for event in self._api.pull(repository, tag=tag, stream=True, decode=True):
            if isinstance(event, dict) and event.get("error"):
                raise docker.errors.APIError(str(event["error"]), explanation=event["error"])

    # ------------------------------------------------------------------ networks / volumes

    def build_image(
        self, build: Build, tag: str, *, no_cache: bool = False, pull: bool = False
    ) -> None:
        """Build ``tag`` (and the section's extra ``tags``) from a compose ``build``
        section through the engine's builder: context, dockerfile, dockerfile_inline,
        args, target, labels.

        ``dockerfile_inline`` is sent as an extra file of an in-memory context, so nothing
        is written into the user's directory. Errors of the build come back as
        BackendError with the builder's own message.
        """
        import io
        import tarfile

        extra_tags = list(build.tags)
        params: dict[str, Any] = {
            "tag": tag,
            "buildargs": {k: v for k, v in build.args.items() if v is not None},
            "target": build.target,
            "labels": dict(build.labels) or None,
            "rm": True,
            "forcerm": True,
            "decode": True,
            "nocache": no_cache,
            "pull": pull,
        }
        context: Any = None
        with self._guard(f"build of {tag}"):
            if build.dockerfile_inline is not None:
                buffer = io.BytesIO()
                with tarfile.open(fileobj=buffer, mode="w") as tar:
                    tar.add(build.context, arcname=".")
                    data = build.dockerfile_inline.encode()
                    info = tarfile.TarInfo(".pycompose.Dockerfile")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
                buffer.seek(0)
                context = buffer
                params.update(fileobj=context, custom_context=True,
                              dockerfile=".pycompose.Dockerfile")
            else:
                params.update(path=build.context, dockerfile=build.dockerfile)
            for event in self._api.build(**params):
                if "error" in event:
                    from orchestrator.errors import BackendError

                    detail = event.get("errorDetail", {}).get("message") or event["error"]
                    raise BackendError(f"build of {tag} failed: {detail.strip()}")
            for extra in extra_tags:
                repository, _, version = extra.rpartition(":")
                if not repository or "/" in version:
                    repository, version = extra, "latest"
                self._api.tag(tag, repository, version)

    def create_network(self, spec: NetworkSpec) -> None:
        network = spec.network
        if network.external:
            self._require_network(network.name)
            return
        with self._guard(f"network {network.name}"):
            self._api.create_network(**convert.network_create_kwargs(spec))

    def _require_network(self, name: str) -> None:
        try:
            with self._guard(f"network {name}"):
                self._api.inspect_network(name)
        except NotFound as exc:
            raise NotFound(
                f"network {name} is declared as external, but it does not exist: "
                f"create it with `docker network create {name}`"
            ) from exc

    def remove_network(self, name: str) -> None:
        with self._guard(f"network {name}"):
            self._api.remove_network(name)

    def create_volume(self, spec: VolumeSpec) -> None:
        volume = spec.volume
        if volume.external:
            try:
                with self._guard(f"volume {volume.name}"):
                    self._api.inspect_volume(volume.name)
            except NotFound as exc:
                raise NotFound(
                    f"volume {volume.name} is declared as external, but it does not exist: "
                    f"create it with `docker volume create {volume.name}`"
                ) from exc
            return
        with self._guard(f"volume {volume.name}"):
            self._api.create_volume(**convert.volume_create_kwargs(spec))

    def remove_volume(self, name: str) -> None:
        with self._guard(f"volume {name}"):
            self._api.remove_volume(name)

    # ------------------------------------------------------------------ containers

    def create_container(self, spec: ContainerSpec) -> str:
        """Create the container and connect its other networks (before any start)."""
        config = convert.container_config(spec)
        with self._guard(f"container {spec.name}"):
            created = self._api.create_container_from_config(
                config, name=spec.name, platform=spec.service.platform
            )
        container_id = str(created["Id"])
        try:
            for attachment in convert.later_attachments(spec):
                self._connect(container_id, spec, attachment)
            self._place_files(container_id, spec)
        except Exception:
            # a half-wired container would confuse the next observe; take it back
            with self._guard(f"container {spec.name}"):
                self._api.remove_container(container_id, force=True)
            raise
        return container_id

    def _place_files(self, container_id: str, spec: ContainerSpec) -> None:
        """Secrets and configs, copied in before the first start (see files.py)."""
        entries = plan_files(spec.service, spec.secrets, spec.configs, os.environ)
        if not entries:
            return
        with self._guard(f"container {spec.name}: secrets and configs"):
            self._api.put_archive(container_id, "/", dockerfiles.archive(entries))

    def _connect(self, container_id: str, spec: ContainerSpec, attachment: Attachment) -> None:
        name = spec.name
        extra: dict[str, Any] = {}
        if attachment.mac_address:
            if docker.utils.version_lt(self._api.api_version, "1.44"):
                raise Unsupported(
                    f"container {name}: a MAC address on a second network "
                    f"({attachment.network}) needs Docker engine API 1.44 or newer; this "
                    f"engine speaks {self._api.api_version}"
                )
            extra["mac_address"] = attachment.mac_address
        with self._guard(f"container {name} on network {attachment.network}"):
            self._api.connect_container_to_network(
                container_id,
                attachment.network,
                ipv4_address=attachment.ipv4_address,
                ipv6_address=attachment.ipv6_address,
                aliases=list(attachment.aliases) or None,
                # the SDK wants (container, alias) pairs here
                links=[tuple(link.split(":", 1)) for link in convert.links(spec)] or None,
                **extra,
            )

    def start_container(self, container_id: str) -> None:
        with self._guard(f"container {container_id}"):
            self._api.start(container_id)

    def stop_container(self, container_id: str, timeout: float | None = None) -> None:
        with self._guard(f"container {container_id}"):
            if timeout is None:
                self._api.stop(container_id)
            else:
                self._api.stop(container_id, timeout=max(0, math.ceil(timeout)))

    def kill_container(self, container_id: str, signal: str = "SIGKILL") -> None:
        with self._guard(f"container {container_id}"):
            self._api.kill(container_id, signal=signal)

    def remove_container(self, container_id: str, *, force: bool = False) -> None:
        with self._guard(f"container {container_id}"):
            self._api.remove_container(container_id, force=force)

    def rename_container(self, container_id: str, new_name: str) -> None:
        with self._guard(f"container {container_id}"):
            self._api.rename(container_id, new_name)

    def set_network_attachment(
        self, container_id: str, network: str, attachment: Attachment | None
    ) -> None:
        """Disconnect (when connected) then, given an attachment, connect again with it:
        the engine cannot change an endpoint's aliases in place."""
        connected = (self._inspect(container_id).get("NetworkSettings") or {}).get(
            "Networks"
        ) or {}
        where = f"container {container_id} on network {network}"
        if network in connected:
            with self._guard(where):
                self._api.disconnect_container_from_network(container_id, network)
        if attachment is None:
            return
        with self._guard(where):
            self._api.connect_container_to_network(
                container_id,
                network,
                ipv4_address=attachment.ipv4_address,
                ipv6_address=attachment.ipv6_address,
                aliases=list(attachment.aliases) or None,
            )

    def pause_container(self, container_id: str) -> None:
        with self._guard(f"container {container_id}"):
            self._api.pause(container_id)

    def unpause_container(self, container_id: str) -> None:
        with self._guard(f"container {container_id}"):
            self._api.unpause(container_id)

    def inspect_container(self, container_id: str) -> ObservedContainer:
        return convert.observed_container(self._inspect(container_id))

    def wait_container(self, container_id: str, timeout: float | None = None) -> int:
        try:
            result = self._api.wait(container_id, timeout=timeout)
        except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
            timed_out = isinstance(exc, requests.exceptions.Timeout) or (
                "timed out" in str(exc).lower()
            )
            if timeout is not None and timed_out:
                raise WaitTimeout(
                    f"container {container_id} did not exit within {timeout:g}s"
                ) from exc
            raise map_error(exc, self._endpoint, f"container {container_id}") from exc
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise map_error(exc, self._endpoint, f"container {container_id}") from exc
        return int(result.get("StatusCode", -1))

    def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        timestamps: bool = False,
    ) -> Iterator[LogLine]:
        """Lines with their stream; TTY containers have one stream, reported as stdout."""
        inspect = self._inspect(container_id)
        name = str(inspect.get("Name", container_id)).lstrip("/")
        tty = bool((inspect.get("Config") or {}).get("Tty"))
        params: dict[str, Any] = {
            "stdout": 1,
            "stderr": 1,
            "follow": int(follow),
            "timestamps": int(timestamps),
            "tail": "all" if tail is None else str(tail),
        }
        url = (
            f"{self._api.base_url}/v{self._api.api_version}"
            f"/containers/{quote(str(inspect['Id']), safe='')}/logs"
        )
        return self._log_stream(url, params, name, tty, timestamps)

    def _log_stream(
        self, url: str, params: Mapping[str, Any], name: str, tty: bool, timestamps: bool
    ) -> Iterator[LogLine]:
        with self._guard(f"container {name}"):
            response = self._api.get(url, params=params, stream=True, timeout=None)
            try:
                if not response.ok:
                    try:
                        response.raise_for_status()
                    except requests.exceptions.HTTPError as exc:
                        docker.errors.create_api_error_from_http_exception(exc)
                chunks = response.iter_content(chunk_size=None)
                frames: Iterator[tuple[convert.Stream, bytes]] = (
                    (("stdout", chunk) for chunk in chunks) if tty else convert.demux_frames(chunks)
                )
                yield from convert.log_lines(name, frames, timestamps=timestamps)
            finally:
                response.close()

    def exec(
        self,
        container_id: str,
        command: Sequence[str],
        *,
        tty: bool = False,
        interactive: bool = False,
        user: str | None = None,
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ExecResult:
        if (tty or interactive) and sys.stdin.isatty():
            return self._exec_cli(container_id, command, tty, interactive, user, workdir, env)
        with self._guard(f"container {container_id}"):
            created = self._api.exec_create(
                container_id,
                list(command),
                tty=tty,
                user=user or "",
                workdir=workdir,
                environment=[f"{k}={v}" for k, v in (env or {}).items()] or None,
            )
            output = self._api.exec_start(created["Id"], tty=tty)
            code = self._api.exec_inspect(created["Id"]).get("ExitCode")
        return ExecResult(exit_code=int(code if code is not None else -1), output=output or b"")

    def _exec_cli(
        self,
        container_id: str,
        command: Sequence[str],
        tty: bool,
        interactive: bool,
        user: str | None,
        workdir: str | None,
        env: Mapping[str, str] | None,
    ) -> ExecResult:
        cli = shutil.which("docker")
        if cli is None:
            raise Unsupported(
                "an interactive exec needs the docker CLI on PATH; run without a TTY "
                "(-T) to go through the API instead"
            )
        argv = [cli, "exec"]
        argv += ["-i"] if interactive else []
        argv += ["-t"] if tty else []
        argv += ["-u", user] if user else []
        argv += ["-w", workdir] if workdir else []
        for key, value in (env or {}).items():
            argv += ["-e", f"{key}={value}"]
        argv += [container_id, *command]
        environ = {**os.environ, "DOCKER_HOST": self._endpoint}
        try:
            completed = subprocess.run(argv, env=environ, check=False)
        except OSError as exc:
            raise map_error(exc, self._endpoint, f"container {container_id}") from exc
        return ExecResult(exit_code=completed.returncode)

    def top(self, container_id: str) -> list[list[str]]:
        with self._guard(f"container {container_id}"):
            table = self._api.top(container_id)
        rows: list[list[str]] = [list(table.get("Titles") or [])]
        rows.extend([list(p) for p in table.get("Processes") or []])
        return rows

    def container_events(self) -> Iterator[ContainerEvent]:
        """The engine's event stream, containers of compose projects only (EventSource)."""
        with self._guard("events"):
            stream = self._api.events(
                decode=True, filters={"type": "container", "label": [L.PROJECT]}
            )
        try:
            with self._guard("events"):
                for raw in stream:
                    attributes = (raw.get("Actor") or {}).get("Attributes") or {}
                    yield ContainerEvent(
                        project=str(attributes.get(L.PROJECT, "")),
                        container_id=str(raw.get("id") or (raw.get("Actor") or {}).get("ID")),
                        action=str(raw.get("Action") or raw.get("status") or ""),
                        time=float(raw.get("timeNano", 0)) / 1e9 or float(raw.get("time", 0)),
                    )
        finally:
            stream.close()

    def close(self) -> None:
        with self._guard():
            self._api.close()
