"""Kubernetes naming rules: compose allows names and labels Kubernetes refuses.

Compose service names may hold ``_``, ``.`` and capitals; Kubernetes wants DNS-1123/1035
labels for object names and its own charset for label keys and values. Every name goes
through here so that the same compose name always becomes the same Kubernetes name.
"""

from __future__ import annotations

import hashlib
import re

MAX_LABEL = 63  # DNS-1123 label, label name, label value
MAX_PREFIX = 253  # DNS-1123 subdomain (label key prefix)

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _digest(value: str, length: int = 6) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:length]


def _shorten(name: str, original: str, limit: int) -> str:
    """Cut ``name`` to ``limit`` keeping it unique: the tail becomes a hash of the original."""
    if len(name) <= limit:
        return name
    suffix = _digest(original)
    head = name[: limit - len(suffix) - 1].rstrip("-._")
    return f"{head}-{suffix}"


def dns_label(name: str) -> str:
    """A DNS-1035 label (what a Service name must be, the strictest object name rule).

    Lowercased, anything outside ``[a-z0-9-]`` becomes ``-``, a leading digit gets an
    ``x`` in front; a name that had to change keeps a hash of the original only when cut.
    """
    if _DNS_LABEL.match(name) and len(name) <= MAX_LABEL:
        return name
    out = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    out = re.sub(r"-{2,}", "-", out)
    if not out:
        out = "x-" + _digest(name)
    if not out[0].isalpha():
        out = "x" + out
    return _shorten(out, name, MAX_LABEL).rstrip("-")


def is_label_key(key: str) -> bool:
    """Whether ``key`` is a valid label (and annotation) key: ``[prefix/]name``."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > MAX_PREFIX or not _SUBDOMAIN.match(prefix)):
        return False
    return bool(name) and len(name) <= MAX_LABEL and bool(_LABEL_NAME.match(name))


def is_label_value(value: str) -> bool:
    return len(value) <= MAX_LABEL and bool(_LABEL_NAME.match(value))


def label_value(value: str) -> str:
    """``value`` made a valid label value: invalid runs become ``-``, cut to 63."""
    if is_label_value(value):
        return value
    out = re.sub(r"[^-A-Za-z0-9_.]+", "-", value)
    out = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", out)
    if len(out) > MAX_LABEL:
        out = re.sub(r"[^A-Za-z0-9]+$", "", _shorten(out, value, MAX_LABEL))
    return out


def label_key(key: str) -> str:
    """``key`` made a valid label key; the prefix is kept when it can be made valid."""
    if is_label_key(key):
        return key
    prefix, slash, name = key.rpartition("/")
    fixed_name = label_value(name) or "x-" + _digest(key)
    if slash:
        parts = [dns_label(part) for part in prefix.split(".") if part]
        fixed_prefix = ".".join(parts)[:MAX_PREFIX].strip(".-")
        if fixed_prefix:
            return f"{fixed_prefix}/{fixed_name}"
    return fixed_name


def port_name(name: str) -> str | None:
    """An IANA service name (15 chars, a letter, no ``--``), or None when none can be made."""
    out = re.sub(r"-{2,}", "-", dns_label(name))[:15].strip("-")
    if not out or not re.search(r"[a-z]", out):
        return None
    return out
