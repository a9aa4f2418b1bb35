"""Dockerfile builds without a Docker engine, into the runtime's image store.

Knows nothing of compose. What a caller does::

    from orchestrator.runtime.build import Builder, BuildOptions

    builder = Builder(store, fetch=copy_base_image_if_missing)
    result = builder.build(BuildOptions(context=Path("app"), tags=("app:1",),
                                        build_args={"VERSION": "2"}, target="runtime"))
    result.refs       # the ImageRefs loaded into the store, one per tag
    result.steps      # StepReport per instruction: line, cached, seconds, RUN output

Modules: ``dockerfile`` (parser), ``substitute`` (docker's word expansion), ``context``
(.dockerignore, escape-proof sources, content hashes), ``layers`` (deterministic tars,
overlay diffs), ``view`` (a stage's merged tree), ``oci`` (the result archive),
``builder`` (stages, steps, cache). Errors: :class:`DockerfileError` (a ``ConfigError``,
message ending in ``at Dockerfile:LINE``), :class:`ContextEscape` (one of those),
:class:`BuildFailed` (a ``RuntimeFailure``: a RUN exited non-zero).
"""

from orchestrator.runtime.build.builder import (
    Builder,
    BuildFailed,
    BuildOptions,
    BuildResult,
    StepReport,
)
from orchestrator.runtime.build.context import BuildContext, ContextEscape, IgnoreMatcher
from orchestrator.runtime.build.dockerfile import Dockerfile, DockerfileError, Instruction, parse

__all__ = [
    "BuildContext",
    "BuildFailed",
    "BuildOptions",
    "BuildResult",
    "Builder",
    "ContextEscape",
    "Dockerfile",
    "DockerfileError",
    "IgnoreMatcher",
    "Instruction",
    "StepReport",
    "parse",
]
