"""The facade: Composer.up/down/ps/... (what the CLI, tests and library users call)."""
