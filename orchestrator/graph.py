"""Service dependency graph."""
