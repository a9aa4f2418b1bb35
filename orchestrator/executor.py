"""Runs a Plan against a Backend."""
