"""Render a compose project as Kubernetes manifests (pure: model in, plain dicts out).

No Kubernetes client is involved: the output is for ``kubectl apply``. See
docs/kubernetes.md for the mapping and the decisions behind it.
"""

from orchestrator.targets.kubernetes.render import (
    Rendering,
    render_project,
    to_json,
    to_stream,
    write_files,
)
from orchestrator.targets.kubernetes.validate import KUBERNETES_VERSION, problems, validate

__all__ = [
    "KUBERNETES_VERSION",
    "Rendering",
    "problems",
    "render_project",
    "to_json",
    "to_stream",
    "validate",
    "write_files",
]
