"""pycompose: a Compose-spec multi-container orchestrator.

Kept import-free on purpose: ``pycompose --version`` must start fast, so nothing heavy
(yaml, jsonschema, docker, rich) is imported until a command needs it.
"""

__version__ = "0.1.0"
