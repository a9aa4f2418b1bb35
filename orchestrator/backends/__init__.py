"""Backends: the one small protocol (``base.Backend``) and its implementations."""
