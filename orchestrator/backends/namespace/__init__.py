"""The built-in namespace backend: the Backend protocol over orchestrator.runtime."""

from orchestrator.backends.namespace.backend import NamespaceBackend

__all__ = ["NamespaceBackend"]
