"""Executing a Dockerfile: stages, steps, the layer cache, and the image written to the store.

Each step has a cache key: the key of the step before it (so a stage's whole history, the
base image id first), the instruction with its variables expanded, and for COPY/ADD a hash
of the content copied. A record under ``<store>/build-cache/<key>.json`` says which layer
(if any) the step made; the layers themselves live under ``<store>/build/``
(``blobs/<hex>`` the tar, ``layers/<hex>`` it unpacked, for use as a lowerdir). A rebuild
with nothing changed only hashes the context and re-reads records: no container runs.

RUN runs in a container of our runtime whose lowerdirs are the stage's layers; the diff of
its upper directory is the new layer. It shares the host's network namespace (like
``docker build --network host``), so package managers reach their mirrors without any
bridge networking, and sees the host's ``/etc/resolv.conf`` and ``/etc/hosts`` read-only.

The image is written as an OCI layout and imported through ``Store.load_archive``, under
every requested tag, with a config docker understands (history, diff ids, Env, Cmd...).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import secrets
import shutil
import stat
import tarfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import NotFound, RuntimeFailure
from orchestrator.lazy import lazy_module
from orchestrator.runtime import atomic
from orchestrator.runtime.build.context import BuildContext, Source, hash_sources
from orchestrator.runtime.build.dockerfile import (
    Dockerfile,
    DockerfileError,
    Instruction,
    key_values,
    parse,
    parse_duration,
)
from orchestrator.runtime.build.oci import OCI_LAYER, LayerDescriptor, canonical, write_oci_archive
from orchestrator.runtime.build.substitute import process_word, process_words
from orchestrator.runtime.images import ImageRef, Store, extract_layer, normalize_name
from orchestrator.runtime.images.archive import host_architecture

# Only a step that misses the cache writes a layer or looks into a stage's tree: a warm
# build (every step cached) never imports these (ctypes for the mounts, layer writing).
if TYPE_CHECKING:
    from orchestrator.runtime.build import layers as tarlayers
    from orchestrator.runtime.build import view
else:
    tarlayers = lazy_module("orchestrator.runtime.build.layers")
    view = lazy_module("orchestrator.runtime.build.view")

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL = ("/bin/sh", "-c")
_ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


class BuildFailed(RuntimeFailure):
    """A step of the build failed (a RUN exited non-zero); the message has its output."""

    def __init__(self, message: str, *, line: int | None = None, output: str = "") -> None:
        super().__init__(message)
        self.line = line
        self.output = output


@dataclass(frozen=True)
class BuildOptions:
    """One build. ``dockerfile`` is relative to ``context`` (default ``Dockerfile``);
    ``dockerfile_text`` replaces the file when given."""

    context: Path
    dockerfile: str | None = None
    dockerfile_text: str | None = None
    build_args: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    tags: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    no_cache: bool = False
    pull: bool = False


@dataclass(frozen=True)
class StepReport:
    stage: str
    number: int  # 1-based over the whole build
    line: int
    instruction: str
    cached: bool
    seconds: float
    output: str = ""


@dataclass(frozen=True)
class BuildResult:
    refs: tuple[ImageRef, ...]
    image_id: str
    steps: tuple[StepReport, ...]
    warnings: tuple[str, ...] = ()


@dataclass
class _Stage:
    name: str
    index: int
    key: str
    layer_dirs: list[Path]
    descriptors: list[LayerDescriptor]
    diff_ids: list[str]
    config: dict[str, Any]
    history: list[dict[str, Any]]
    args: dict[str, str] = field(default_factory=dict)
    created: str = ""
    cmd_set: bool = False  # a CMD of this stage (not inherited) was seen

    @property
    def env(self) -> dict[str, str]:
        result: dict[str, str] = {}
        for item in self.config.get("Env") or []:
            key, _, value = item.partition("=")
            result[key] = value
        return result

    def substitution_env(self) -> dict[str, str]:
        """What ``$X`` means in this stage: ARG values, overridden by ENV (docker's rule)."""
        return {**self.args, **self.env}

    def set_env(self, key: str, value: str) -> None:
        env = [e for e in self.config.get("Env") or [] if e.partition("=")[0] != key]
        env.append(f"{key}={value}")
        self.config["Env"] = env

    @property
    def workdir(self) -> str:
        return str(self.config.get("WorkingDir") or "/")

    @property
    def shell(self) -> tuple[str, ...]:
        return tuple(self.config.get("Shell") or DEFAULT_SHELL)


Fetch = Callable[[str, bool], None]
RuntimeFactory = Callable[[Path], Any]  # root -> orchestrator.runtime.container.Runtime


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _key(*parts: Any) -> str:
    return hashlib.sha256(canonical(list(parts))).hexdigest()


class Builder:
    """Builds Dockerfiles into ``store``.

    ``fetch(name, pull)`` is called before a base image is looked up (the caller may copy
    or pull it into the store; ``pull`` is ``--pull``). ``runtime_factory(root)`` makes the
    container runtime for RUN steps, only when one has to run. ``on_step`` sees each step
    as it finishes.
    """

    def __init__(
        self,
        store: Store,
        *,
        runtime_factory: RuntimeFactory | None = None,
        fetch: Fetch | None = None,
        on_step: Callable[[StepReport], None] | None = None,
    ) -> None:
        self.store = store
        self.work = store.root / "build"
        self.records = store.root / "build-cache"
        self._blobs = self.work / "blobs"
        self._layers = self.work / "layers"
        self._tmp = self.work / "tmp"
        self._runtime_factory = runtime_factory
        self._runtime: Any = None
        self._fetch = fetch
        self._on_step = on_step

    # ------------------------------------------------------------------ entry point

    def build(self, options: BuildOptions) -> BuildResult:
        for path in (self._blobs, self._layers, self._tmp, self.records):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        dockerfile, file_name = self._read_dockerfile(options)
        context = BuildContext(options.context, hidden=(file_name,))
        run = _Run(self, dockerfile, context, options)
        final = run.execute()
        refs = self._commit(final, options)
        return BuildResult(refs, refs[0].id if refs else "", tuple(run.reports),
                           tuple(run.warnings))

    def _read_dockerfile(self, options: BuildOptions) -> tuple[Dockerfile, str]:
        if options.dockerfile_text is not None:
            return parse(options.dockerfile_text, file="Dockerfile"), ""
        name = options.dockerfile or "Dockerfile"
        path = Path(name) if os.path.isabs(name) else Path(options.context) / name
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise NotFound(f"no Dockerfile at {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise DockerfileError(f"cannot read {path}: {exc}", file=name) from exc
        rel = os.path.relpath(path, os.path.realpath(options.context))
        return parse(text, file=os.path.basename(name)), rel.replace(os.sep, "/")

    # ------------------------------------------------------------------ cache

    def lookup(self, key: str) -> dict[str, Any] | None:
        try:
            record: dict[str, Any] = json.loads((self.records / f"{key}.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        diff_id = record.get("diff_id")
        if diff_id and not (self._blobs / diff_id.split(":", 1)[1]).exists():
            return None
        return record

    def remember(self, key: str, record: dict[str, Any]) -> None:
        atomic.write_json(self.records / f"{key}.json", record, durable=False)

    def layer_blob(self, diff_id: str) -> Path:
        return self._blobs / diff_id.split(":", 1)[1]

    def unpacked(self, diff_id: str) -> Path:
        """The layer unpacked as a lowerdir (unpacked now when missing)."""
        dest = self._layers / diff_id.split(":", 1)[1]
        if not dest.is_dir():
            with open(self.layer_blob(diff_id), "rb") as source:
                extract_layer(source, dest, limits=self.store.limits,
                              expected_diff_id=diff_id, tmp_root=self._tmp)
        return dest

    def write_layer(self, entries: list[tarlayers.Entry]) -> tarlayers.LayerFile:
        return tarlayers.write_layer(entries, self._blobs, self._tmp)

    def runtime(self) -> Any:
        if self._runtime is None:
            if self._runtime_factory is None:
                from orchestrator.runtime.container import Runtime

                self._runtime = Runtime(self.work / "containers")
            else:
                self._runtime = self._runtime_factory(self.work / "containers")
        return self._runtime

    def fetch(self, name: str, pull: bool) -> None:
        if self._fetch is not None:
            self._fetch(name, pull)

    @property
    def scratch(self) -> Path:
        return self._tmp

    # ------------------------------------------------------------------ result

    def _commit(self, stage: _Stage, options: BuildOptions) -> tuple[ImageRef, ...]:
        config = dict(stage.config)
        if options.labels:
            config["Labels"] = {**(config.get("Labels") or {}), **options.labels}
        doc = {
            "architecture": host_architecture(),
            "os": "linux",
            "created": stage.created or _now(),
            "config": {k: v for k, v in config.items() if v not in (None, {}, [])},
            "rootfs": {"type": "layers", "diff_ids": list(stage.diff_ids)},
            "history": stage.history,
        }
        raw = canonical(doc)
        names = [normalize_name(t) for t in options.tags]
        archive = self._tmp / f"image-{secrets.token_hex(6)}.tar"
        try:
            write_oci_archive(archive, raw, stage.descriptors, names,
                              have_blob=lambda d: self.store.blob_path(d).exists())
            return self.store.load_archive(archive)
        finally:
            archive.unlink(missing_ok=True)


class _Run:
    """The state of one build: stages done so far, reports, warnings."""

    def __init__(self, builder: Builder, dockerfile: Dockerfile, context: BuildContext,
                 options: BuildOptions) -> None:
        self.b = builder
        self.df = dockerfile
        self.context = context
        self.options = options
        self.stages: list[_Stage] = []
        self.reports: list[StepReport] = []
        self.warnings: list[str] = []
        self.used_args: set[str] = set()
        self.cleanup: list[Path] = []  # scratch trees whose files the next layer reads
        arch = host_architecture()
        self.predefined = {
            "TARGETPLATFORM": f"linux/{arch}", "TARGETOS": "linux", "TARGETARCH": arch,
            "BUILDPLATFORM": f"linux/{arch}", "BUILDOS": "linux", "BUILDARCH": arch,
        }
        self.global_args: dict[str, str] = dict(self.predefined)

    def error(self, message: str, ins: Instruction) -> DockerfileError:
        return self.df.error(message, ins)

    # ------------------------------------------------------------------ stages

    def execute(self) -> _Stage:
        groups: list[list[Instruction]] = []
        for ins in self.df.instructions:
            if ins.keyword == "FROM":
                groups.append([ins])
            elif groups:
                groups[-1].append(ins)
            else:
                self.global_arg(ins)
        target = (self.options.target or "").lower()
        names = [self.stage_name(g[0]) for g in groups]
        if target and target not in names:
            raise DockerfileError(f"target stage {self.options.target!r} is not in the "
                                  f"Dockerfile (stages: {', '.join(n for n in names if n)})",
                                  file=self.df.file)
        for index, group in enumerate(groups):
            stage = self.run_stage(index, group)
            self.stages.append(stage)
            if target and stage.name == target:
                break
        unused = sorted(set(self.options.build_args) - self.used_args)
        if unused:
            self.warnings.append(f"build args not consumed by any ARG: {', '.join(unused)}")
        return self.stages[-1]

    def global_arg(self, ins: Instruction) -> None:
        for name, value in self.arg_words(ins, self.global_args):
            if name in self.options.build_args:
                self.used_args.add(name)
                self.global_args[name] = self.options.build_args[name]
            elif value is not None:
                self.global_args[name] = value

    def arg_words(self, ins: Instruction, env: Mapping[str, str]) -> list[tuple[str, str | None]]:
        out: list[tuple[str, str | None]] = []
        for word in process_words(ins.args, env, self.df.escape):
            name, sep, value = word.partition("=")
            if not name:
                raise self.error(f"ARG {word!r} has no name", ins)
            out.append((name, value if sep else None))
        return out

    def stage_name(self, ins: Instruction) -> str:
        words = process_words(ins.args, self.global_args, self.df.escape)
        if len(words) == 3 and words[1].lower() == "as":
            return words[2].lower()
        return ""

    def find_stage(self, ref: str) -> _Stage | None:
        for stage in self.stages:
            if stage.name and stage.name == ref.lower():
                return stage
        if ref.isdigit() and int(ref) < len(self.stages):
            return self.stages[int(ref)]
        return None

    def base(self, ins: Instruction, index: int) -> _Stage:
        words = process_words(ins.args, self.global_args, self.df.escape)
        if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
            raise self.error("FROM takes an image and optionally AS name", ins)
        name = words[2].lower() if len(words) == 3 else ""
        platform = ins.flag("platform")
        if platform:
            wanted = process_word(platform, self.global_args, self.df.escape)
            if wanted.rstrip("/") != self.predefined["TARGETPLATFORM"]:
                raise self.error(f"platform {wanted} is not this host's "
                                 f"({self.predefined['TARGETPLATFORM']})", ins)
        ref = words[0]
        previous = self.find_stage(ref) if not ref.isdigit() else None
        if ref.lower() == "scratch":
            return _Stage(name, index, _key("scratch"), [], [], [], {}, [])
        if previous is not None:
            return _Stage(name, index, _key("stage", previous.key), list(previous.layer_dirs),
                          list(previous.descriptors), list(previous.diff_ids),
                          json.loads(json.dumps(previous.config)),
                          list(previous.history), created=previous.created)
        return self.image_stage(ref, name, index, ins)

    def image_stage(self, ref: str, name: str, index: int, ins: Instruction) -> _Stage:
        store = self.b.store
        try:
            self.b.fetch(ref, self.options.pull)
            image = store.resolve(ref)
        except NotFound as exc:
            raise self.error(f"base image {ref!r} is not available: {exc}", ins) from exc
        raw = json.loads(store.blob_path(image.ref.id).read_bytes())
        manifest = json.loads(store.blob_path(image.ref.digest).read_bytes())
        descriptors = [
            LayerDescriptor(layer.get("mediaType", OCI_LAYER), layer["digest"], int(layer["size"]))
            for layer in manifest["layers"]
        ]
        config = dict(raw.get("config") or {})
        return _Stage(name, index, _key("image", image.ref.id), list(image.layers),
                      descriptors, list(image.config.diff_ids), config,
                      list(raw.get("history") or []), created=str(raw.get("created") or ""))

    def run_stage(self, index: int, group: list[Instruction]) -> _Stage:
        stage = self.base(group[0], index)
        if "PATH" not in stage.env:
            # docker gives every Linux image the default PATH at FROM (scratch included), so
            # `ENV PATH=/x:$PATH` extends it and the image's containers find /usr/bin
            stage.config["Env"] = [*(stage.config.get("Env") or []), f"PATH={DEFAULT_PATH}"]
        self.report(stage, group[0], cached=True, seconds=0.0)
        for ins in group[1:]:
            started = time.monotonic()
            cached, output = self.step(stage, ins)
            self.report(stage, ins, cached, time.monotonic() - started, output)
        return stage

    def report(self, stage: _Stage, ins: Instruction, cached: bool, seconds: float,
               output: str = "") -> None:
        report = StepReport(stage.name or str(stage.index), len(self.reports) + 1, ins.line,
                            ins.original, cached, seconds, output)
        self.reports.append(report)
        if self.b._on_step is not None:
            self.b._on_step(report)

    # ------------------------------------------------------------------ steps

    def step(self, stage: _Stage, ins: Instruction) -> tuple[bool, str]:
        """Apply one instruction; (whether the cache answered, output of a RUN)."""
        env = stage.substitution_env()
        handler = getattr(self, "do_" + ins.keyword.lower())
        return handler(stage, ins, env)  # type: ignore[no-any-return]

    def cached_or(self, stage: _Stage, ins: Instruction, key_parts: list[Any],
                  make: Callable[[], tuple[tarlayers.LayerFile | None, str]],
                  created_by: str) -> tuple[bool, str]:
        """The layer step's cache protocol: reuse the record of ``key`` or ``make`` the
        entries, write them as a layer and record it."""
        key = _key(stage.key, *key_parts)
        record = None if self.options.no_cache else self.b.lookup(key)
        output = ""
        cached = record is not None
        if record is None:
            layer, output = make()
            diff_id = layer.diff_id if layer is not None else None
            record = {"diff_id": diff_id, "created": _now(), "created_by": created_by}
            self.b.remember(key, record)
        diff_id = record.get("diff_id")
        if diff_id:
            blob = self.b.layer_blob(diff_id)
            stage.layer_dirs.append(self.b.unpacked(diff_id))
            stage.diff_ids.append(diff_id)
            stage.descriptors.append(LayerDescriptor(OCI_LAYER, diff_id, blob.stat().st_size, blob))
        history: dict[str, Any] = {"created": record["created"], "created_by": created_by}
        if not diff_id:
            history["empty_layer"] = True
        stage.history.append(history)
        stage.created = record["created"]
        stage.key = key
        return cached, output

    def write(self, entries: list[tarlayers.Entry]) -> tarlayers.LayerFile | None:
        """The entries as a layer (None when there are none: no empty layers)."""
        try:
            return self.b.write_layer(entries) if entries else None
        finally:
            for tree in self.cleanup:
                shutil.rmtree(tree, ignore_errors=True)
            self.cleanup.clear()

    def meta(self, stage: _Stage, ins: Instruction, canonical_args: Any) -> tuple[bool, str]:
        """A step that changes only the config: recorded in the chain like any other."""
        return self.cached_or(stage, ins, [ins.keyword, canonical_args],
                              lambda: (None, ""), f"{ins.keyword} {ins.args}".strip())

    def do_arg(self, stage: _Stage, ins: Instruction, env: dict[str, str]) -> tuple[bool, str]:
        resolved = []
        for name, default in self.arg_words(ins, env):
            if name in self.options.build_args:
                self.used_args.add(name)
                value: str | None = self.options.build_args[name]
            elif default is not None:
                value = default
            else:
                value = self.global_args.get(name)
            if value is not None:
                stage.args[name] = value
            resolved.append([name, value])
        return self.meta(stage, ins, resolved)

    def do_env(self, stage: _Stage, ins: Instruction, env: dict[str, str]) -> tuple[bool, str]:
        pairs = key_values(ins, env, self.df.escape, self.df.file)
        for key, value in pairs:
            stage.set_env(key, value)
        return self.meta(stage, ins, pairs)

    def do_label(self, stage: _Stage, ins: Instruction, env: dict[str, str]) -> tuple[bool, str]:
        pairs = key_values(ins, env, self.df.escape, self.df.file)
        stage.config["Labels"] = {**(stage.config.get("Labels") or {}), **dict(pairs)}
        return self.meta(stage, ins, pairs)

    def do_workdir(self, stage: _Stage, ins: Instruction, env: dict[str, str]
                   ) -> tuple[bool, str]:
        path = process_word(ins.args, env, self.df.escape)
        stage.config["WorkingDir"] = posixpath.normpath(posixpath.join(stage.workdir, path))
        return self.meta(stage, ins, stage.config["WorkingDir"])

    def do_user(self, stage: _Stage, ins: Instruction, env: dict[str, str]) -> tuple[bool, str]:
        stage.config["User"] = process_word(ins.args, env, self.df.escape)
        return self.meta(stage, ins, stage.config["User"])

    def do_stopsignal(self, stage: _Stage, ins: Instruction, env: dict[str, str]
                      ) -> tuple[bool, str]:
        stage.config["StopSignal"] = process_word(ins.args, env, self.df.escape)
        return self.meta(stage, ins, stage.config["StopSignal"])

    def do_expose(self, stage: _Stage, ins: Instruction, env: dict[str, str]
                  ) -> tuple[bool, str]:
        ports = dict(stage.config.get("ExposedPorts") or {})
        for word in process_words(ins.args, env, self.df.escape):
            spec, _, proto = word.partition("/")
            proto = (proto or "tcp").lower()
            low, _, high = spec.partition("-")
            try:
                first, last = int(low), int(high or low)
            except ValueError:
                raise self.error(f"EXPOSE {word!r} is not a port", ins) from None
            if proto not in ("tcp", "udp", "sctp") or not 0 < first <= last <= 65535:
                raise self.error(f"EXPOSE {word!r} is not a port", ins)
            for port in range(first, last + 1):
                ports[f"{port}/{proto}"] = {}
        stage.config["ExposedPorts"] = ports
        return self.meta(stage, ins, sorted(ports))

    def do_volume(self, stage: _Stage, ins: Instruction, env: dict[str, str]
                  ) -> tuple[bool, str]:
        paths = (
            [process_word(p, env, self.df.escape) for p in ins.exec_form]
            if ins.exec_form is not None
            else process_words(ins.args, env, self.df.escape)
        )
        if not paths or any(not p for p in paths):
            raise self.error("VOLUME needs at least one path", ins)
        stage.config["Volumes"] = {**(stage.config.get("Volumes") or {}),
                                   **{p: {} for p in paths}}
        return self.meta(stage, ins, paths)

    def command(self, stage: _Stage, ins: Instruction) -> list[str]:
        if ins.exec_form is not None:
            return list(ins.exec_form)
        if not ins.args:
            raise self.error(f"{ins.keyword} needs a command", ins)
        return [*stage.shell, ins.args]

    def do_cmd(self, stage: _Stage, ins: Instruction, env: dict[str, str]) -> tuple[bool, str]:
        stage.config["Cmd"] = self.command(stage, ins)
        stage.cmd_set = True
        return self.meta(stage, ins, stage.config["Cmd"])

    def do_entrypoint(self, stage: _Stage, ins: Instruction, env: dict[str, str]
                      ) -> tuple[bool, str]:
        stage.config["Entrypoint"] = self.command(stage, ins)
        # docker: an ENTRYPOINT resets a CMD inherited from the base image
        if not stage.cmd_set:
            stage.config["Cmd"] = None
        return self.meta(stage, ins, stage.config["Entrypoint"])

    def do_shell(self, stage: _Stage, ins: Instruction, env: dict[str, str]) -> tuple[bool, str]:
        assert ins.exec_form is not None  # the parser insists
        stage.config["Shell"] = list(ins.exec_form)
        return self.meta(stage, ins, stage.config["Shell"])

    def do_healthcheck(self, stage: _Stage, ins: Instruction, env: dict[str, str]
                       ) -> tuple[bool, str]:
        words = ins.args.split(None, 1)
        kind = words[0].upper() if words else ""
        if kind == "NONE":
            if ins.flags or len(words) > 1:
                raise self.error("HEALTHCHECK NONE takes no options or arguments", ins)
            stage.config["Healthcheck"] = {"Test": ["NONE"]}
            return self.meta(stage, ins, ["NONE"])
        if kind != "CMD" or len(words) < 2:
            raise self.error("HEALTHCHECK needs NONE or CMD command", ins)
        rest = words[1]
        exec_form = _json_list(rest)
        test = ["CMD", *exec_form] if exec_form is not None else ["CMD-SHELL", rest.strip()]
        check: dict[str, Any] = {"Test": test}
        names = {"interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod",
                 "start-interval": "StartInterval"}
        for flag, value in ins.flags:
            value = process_word(value, env, self.df.escape)
            try:
                if flag == "retries":
                    check["Retries"] = int(value)
                else:
                    check[names[flag]] = parse_duration(value)
            except ValueError:
                raise self.error(f"HEALTHCHECK --{flag}={value} is not valid", ins) from None
        stage.config["Healthcheck"] = check
        return self.meta(stage, ins, check)

    # ------------------------------------------------------------------ RUN

    def do_run(self, stage: _Stage, ins: Instruction, env: dict[str, str]) -> tuple[bool, str]:
        argv = self.command(stage, ins)
        shown = ins.args if ins.exec_form is None else json.dumps(list(ins.exec_form))
        created_by = f"RUN {shown}"
        return self.cached_or(stage, ins, ["RUN", argv, stage.args],
                              lambda: self.run_container(stage, ins, argv), created_by)

    def run_container(self, stage: _Stage, ins: Instruction, argv: list[str]
                      ) -> tuple[tarlayers.LayerFile | None, str]:
        # imported here: a warm build (every step cached) never runs a container
        from orchestrator.runtime.config import ContainerConfig, Mount, Namespaces, User
        from orchestrator.runtime.users import resolve_in_layers

        runtime = self.b.runtime()
        lowers = [str(p) for p in reversed(stage.layer_dirs)]
        if not lowers:
            empty = self.b.scratch / "empty"
            empty.mkdir(exist_ok=True)
            lowers = [str(empty)]
        env_map = {**stage.args, **stage.env}
        env_map.setdefault("PATH", DEFAULT_PATH)
        user = User()
        if stage.config.get("User"):
            try:
                user = resolve_in_layers(str(stage.config["User"]), lowers)
            except (RuntimeFailure, NotFound) as exc:
                raise self.error(f"USER {stage.config['User']}: {exc}", ins) from exc
        has_etc = view.kind_of(stage.layer_dirs, "/etc") == "dir"
        placeholders = {
            p for p in ("proc", "sys", "dev") if view.kind_of(stage.layer_dirs, p) is None
        }
        mounts: list[Mount] = []
        if has_etc:
            for name in ("resolv.conf", "hosts"):
                if Path("/etc", name).is_file():
                    mounts.append(Mount(f"/etc/{name}", f"/etc/{name}", read_only=True))
                    if view.kind_of(stage.layer_dirs, f"/etc/{name}") is None:
                        placeholders.add(f"etc/{name}")
        config = ContainerConfig(
            id=f"build-{secrets.token_hex(8)}",
            command=tuple(argv),
            lowerdirs=tuple(lowers),
            env=tuple(f"{k}={v}" for k, v in env_map.items()),
            working_dir=stage.workdir,
            user=user,
            hostname="pycompose-build",
            namespaces=Namespaces(network="host"),
            mounts=tuple(mounts),
            stop_grace=1.0,
        )
        container = runtime.create(config)
        try:
            container.start()
            code = container.wait()
            output = "".join(entry.text for entry in container.logs())
            if code != 0:
                tail = "\n".join(output.splitlines()[-20:])
                raise BuildFailed(
                    f"RUN at {self.df.file}:{ins.line} failed with exit code {code}"
                    + (f":\n{tail}" if tail else ""),
                    line=ins.line,
                    output=output,
                )

            def skip(rel: str, st: os.stat_result) -> bool:
                if rel not in placeholders:
                    return False
                return stat.S_ISDIR(st.st_mode) or st.st_size == 0

            # the layer is written before the container (and its upper dir) goes
            return self.write(tarlayers.diff_entries(container.bundle.upper, skip)), output
        finally:
            runtime.delete(config.id, force=True)

    # ------------------------------------------------------------------ COPY / ADD

    def do_copy(self, stage: _Stage, ins: Instruction, env: dict[str, str]) -> tuple[bool, str]:
        return self.copy(stage, ins, env, add=False)

    def do_add(self, stage: _Stage, ins: Instruction, env: dict[str, str]) -> tuple[bool, str]:
        return self.copy(stage, ins, env, add=True)

    def copy(self, stage: _Stage, ins: Instruction, env: dict[str, str], *, add: bool
             ) -> tuple[bool, str]:
        words = (
            [process_word(w, env, self.df.escape) for w in ins.exec_form]
            if ins.exec_form is not None
            else process_words(ins.args, env, self.df.escape)
        )
        if len(words) < 2:
            raise self.error(f"{ins.keyword} needs a source and a destination", ins)
        *specs, dest = words
        if add and any("://" in s for s in specs):
            raise self.error(f"{ins.keyword} of a URL is not supported (download it with RUN "
                             "or put the file in the context)", ins)
        chown = ins.flag("chown")
        chmod = ins.flag("chmod")
        owner = process_word(chown, env, self.df.escape) if chown else None
        mode: int | None = None
        if chmod:
            try:
                mode = int(process_word(chmod, env, self.df.escape), 8)
            except ValueError:
                raise self.error(f"--chmod={chmod} is not an octal mode", ins) from None
        source_from = ins.flag("from")
        dest_abs = posixpath.join(stage.workdir, dest)
        multi = len(specs) > 1 or any(c in s for s in specs for c in "*?[")
        if multi and not dest.endswith("/"):
            raise self.error(f"{ins.keyword} with several sources needs a destination "
                             "directory ending with /", ins)
        created_by = f"{ins.keyword} {ins.args}"
        if source_from is None:
            sources = [s for spec in specs
                       for s in self.context.resolve(spec, file=self.df.file, line=ins.line)]
            content = hash_sources(sources)
            return self.cached_or(
                stage, ins, [ins.keyword, specs, dest_abs, owner, mode, content],
                lambda: (self.write(self.copy_entries(stage, ins, sources, dest_abs, dest,
                                                      owner, mode, add)), ""),
                created_by,
            )
        ref = process_word(source_from, env, self.df.escape)
        other = self.find_stage(ref)
        if other is not None:
            origin_key, layers = other.key, other.layer_dirs
        else:
            try:
                self.b.fetch(ref, self.options.pull)
                image = self.b.store.resolve(ref)
            except NotFound as exc:
                raise self.error(f"--from={ref}: no such stage or image ({exc})", ins) from exc
            origin_key, layers = image.ref.id, list(image.layers)

        def make() -> tuple[tarlayers.LayerFile | None, str]:
            with view.merged_view(layers, self.b.scratch) as root:
                tree = BuildContext.of_rootfs(root)
                sources = [s for spec in specs
                           for s in tree.resolve(spec, file=self.df.file, line=ins.line)]
                entries = self.copy_entries(stage, ins, sources, dest_abs, dest, owner, mode,
                                            add=False)
                return self.write(entries), ""  # while the view is still mounted

        return self.cached_or(stage, ins, [ins.keyword, "from", origin_key, specs, dest_abs,
                                           owner, mode], make, created_by)

    def owner_ids(self, stage: _Stage, ins: Instruction, owner: str | None) -> tuple[int, int]:
        if owner is None:
            return 0, 0
        from orchestrator.runtime.users import resolve_in_layers

        lowers = [str(p) for p in reversed(stage.layer_dirs)]
        user, _, group = owner.partition(":")
        try:
            if user.isdigit() and (not group or group.isdigit()):
                return int(user), int(group or user)
            resolved = resolve_in_layers(owner, lowers)
        except (RuntimeFailure, NotFound) as exc:
            raise self.error(f"--chown={owner}: {exc}", ins) from exc
        return resolved.uid, resolved.gid

    def copy_entries(self, stage: _Stage, ins: Instruction, sources: list[Source],
                     dest_abs: str, dest: str, owner: str | None, mode: int | None,
                     add: bool) -> list[tarlayers.Entry]:
        uid, gid = self.owner_ids(stage, ins, owner)
        into_dir = (dest.endswith("/") or len(sources) > 1
                    or view.kind_of(stage.layer_dirs, dest_abs) == "dir")
        entries: dict[str, tarlayers.Entry] = {}
        top = posixpath.normpath(dest_abs).lstrip("/")

        def put(path: str, host: Path, st: os.stat_result, *, keep_owner: bool = False) -> None:
            entry = tarlayers.entry_from_stat(path, host, st)
            if not keep_owner:
                entry.uid, entry.gid = uid, gid
            if mode is not None and entry.kind != tarfile.SYMTYPE:
                entry.mode = mode
            entry.xattrs = {}
            entries[path] = entry

        for source in sources:
            if source.is_dir:
                for member in source.members:
                    path = posixpath.join(top, member.rel) if member.rel else top
                    if path:
                        put(path, member.host, member.st)
                continue
            member = source.members[0]
            name = posixpath.basename(source.name)
            if add and _is_archive(source.host):
                self.extract_into(entries, source.host, top)
                continue
            path = posixpath.join(top, name) if into_dir or dest.endswith("/") else top
            put(path, member.host, member.st)
        # parents the image lacks are created (root-owned unless --chown, mode 0755)
        for path in list(entries):
            parent = posixpath.dirname(path)
            while (parent and parent not in entries
                   and view.kind_of(stage.layer_dirs, parent) is None):
                entries[parent] = tarlayers.Entry(parent, tarfile.DIRTYPE, 0o755,
                                                  uid, gid)
                parent = posixpath.dirname(parent)
        return list(entries.values())

    def extract_into(self, entries: dict[str, tarlayers.Entry], archive: Path, top: str
                     ) -> None:
        """ADD of a local tar: its members go under ``top``, with their own owners.
        Device nodes (a debootstrap/mmdebstrap rootfs has ``/dev/console``...) are left
        out: a container gets its own ``/dev``, and the unpacker refuses them."""
        unpacked = self.b.scratch / f"add-{secrets.token_hex(6)}"
        filtered = self.b.scratch / f"add-{secrets.token_hex(6)}.tar"
        try:
            _without_devices(archive, filtered)
            with open(filtered, "rb") as source:
                extract_layer(source, unpacked, limits=self.b.store.limits,
                              tmp_root=self.b.scratch)
            for dirpath, dirnames, filenames in os.walk(unpacked):
                base = Path(dirpath)
                below = base.relative_to(unpacked).as_posix()
                for name in [*dirnames, *filenames]:
                    host = base / name
                    rel = name if below == "." else f"{below}/{name}"
                    path = posixpath.join(top, rel) if top else rel
                    entries[path] = tarlayers.entry_from_stat(path, host, host.lstat())
        except BaseException:
            shutil.rmtree(unpacked, ignore_errors=True)
            raise
        finally:
            filtered.unlink(missing_ok=True)
        self.cleanup.append(unpacked)  # its files are read when the layer is written


def _without_devices(archive: Path, dest: Path) -> None:
    """Copy the (possibly compressed) tar ``archive`` to a plain tar without device nodes."""
    try:
        with tarfile.open(archive, "r:*") as source, tarfile.open(
            dest, "w", format=tarfile.PAX_FORMAT
        ) as out:
            for member in source:
                if member.ischr() or member.isblk():
                    continue
                out.addfile(member, source.extractfile(member) if member.isfile() else None)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise RuntimeFailure(f"cannot read the archive {archive.name}: {exc}") from exc


def _json_list(text: str) -> list[str] | None:
    stripped = text.strip()
    if not stripped.startswith("["):
        return None
    with contextlib.suppress(json.JSONDecodeError):
        value = json.loads(stripped)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return None


def _is_archive(path: Path) -> bool:
    if not path.name.endswith(_ARCHIVE_SUFFIXES):
        return False
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


