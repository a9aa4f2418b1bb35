"""Compose ``build`` sections on the namespace backend, through our own builder.

The translation is small on purpose: compose keys become :class:`BuildOptions` and base
images are made present by the backend's own ``ensure_image`` (so they come from wherever
the backend gets images: the store, a Docker engine to copy from, a registry), with
``--pull`` asking for a fresh copy. RUN steps use a runtime rooted beside the backend's
own containers, with the backend's spawner, so no second spawner is compiled.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.errors import NotFound, Unsupported
from orchestrator.model import Build
from orchestrator.runtime.build import Builder, BuildOptions, BuildResult, StepReport

if TYPE_CHECKING:
    from orchestrator.backends.namespace.backend import NamespaceBackend
    from orchestrator.runtime.container import Runtime


def build_options(build: Build, tag: str, *, no_cache: bool = False, pull: bool = False
                  ) -> BuildOptions:
    """The builder's options for a compose ``build`` section built as ``tag``."""
    if "://" in build.context or build.context.startswith("git@"):
        raise Unsupported(
            f"build context {build.context}: the namespace builder reads local directories only"
        )
    context = Path(build.context)
    if not context.is_dir():
        raise NotFound(f"build context {context} is not a directory")
    extras = build.extras or {}
    if extras.get("network") not in (None, "host", "default"):
        raise Unsupported("the namespace builder runs RUN steps on the host network only")
    args = {k: v for k, v in build.args.items() if v is not None}
    tags = tuple(dict.fromkeys((tag, *build.tags)))
    return BuildOptions(
        context=context,
        dockerfile=build.dockerfile,
        dockerfile_text=build.dockerfile_inline,
        build_args=args,
        target=build.target,
        tags=tags,
        labels=dict(build.labels),
        no_cache=no_cache,
        pull=pull,
    )


def make_builder(backend: NamespaceBackend,
                 on_step: Callable[[StepReport], None] | None = None) -> Builder:
    def fetch(name: str, pull: bool) -> None:
        backend.ensure_image(name, "always" if pull else "missing")

    def runtime(root: Path) -> Runtime:
        # only a RUN step that misses the cache needs it: a warm build never imports it
        from orchestrator.runtime.container import Runtime
        from orchestrator.runtime.spawner import ensure_spawner

        return Runtime(root, spawner=ensure_spawner(backend.root / "bin"))

    return Builder(backend.images, runtime_factory=runtime, fetch=fetch, on_step=on_step)


def build_image(backend: NamespaceBackend, build: Build, tag: str, *, no_cache: bool = False,
                pull: bool = False) -> BuildResult:
    """Build ``tag`` (and the section's extra ``tags``) into the backend's image store."""
    options = build_options(build, tag, no_cache=no_cache, pull=pull)
    result = make_builder(backend).build(options)
    _forget(backend, options.tags)
    return result


def _forget(backend: NamespaceBackend, tags: tuple[str, ...]) -> None:
    """A rebuilt tag must not be served from the backend's resolved-image memo."""
    resolved = getattr(backend, "_resolved", None)
    lock = getattr(backend, "_lock", None)
    if isinstance(resolved, dict) and lock is not None:
        with lock:
            for name in tags:
                resolved.pop(name, None)
                resolved.pop(name.removesuffix(":latest"), None)
