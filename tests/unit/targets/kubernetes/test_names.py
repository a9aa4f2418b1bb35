"""Compose names → Kubernetes names and labels."""

from __future__ import annotations

import pytest

from orchestrator.targets.kubernetes.names import (
    dns_label,
    is_label_key,
    is_label_value,
    label_key,
    label_value,
    port_name,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("web", "web"),
        ("My_Service", "my-service"),
        ("api.v2", "api-v2"),
        ("1db", "x1db"),
        ("__", None),  # nothing left: a hashed name
    ],
)
def test_dns_label(name: str, expected: str | None) -> None:
    out = dns_label(name)
    if expected is not None:
        assert out == expected
    assert len(out) <= 63 and out[0].isalpha() and out[-1].isalnum()


def test_long_names_are_cut_and_stay_distinct() -> None:
    a, b = dns_label("a" * 80 + "x"), dns_label("a" * 80 + "y")
    assert len(a) <= 63 and len(b) <= 63 and a != b


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        ("com.example.description", True),
        ("traefik.http.routers.web.rule", True),
        ("example.com/role", True),
        ("Example.com/role", False),
        ("has space", False),
        ("a/b/c", False),
        ("x" * 64, False),
    ],
)
def test_label_keys(key: str, valid: bool) -> None:
    assert is_label_key(key) is valid
    assert is_label_key(label_key(key))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", "true"),
        ("", ""),
        ("Accounting webapp", "Accounting-webapp"),
        ("Host(`whoami.localhost`)", "Host-whoami.localhost"),
        ("-lead-", "lead"),
    ],
)
def test_label_values(value: str, expected: str) -> None:
    assert label_value(value) == expected
    assert is_label_value(label_value(value))


def test_long_label_value_is_cut_to_63() -> None:
    assert len(label_value("v" * 100)) <= 63


@pytest.mark.parametrize(
    ("name", "expected"),
    [("http", "http"), ("Web_UI", "web-ui"), ("123", "x123"), ("a" * 20, "a" * 15)],
)
def test_port_names(name: str, expected: str | None) -> None:
    assert port_name(name) == expected
