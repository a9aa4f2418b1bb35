"""Durations and sizes as compose writes them, to and from canonical numbers.

Durations: Go's syntax as compose uses it ("1m30s", "1.5s", "100ms", "2h", "10us"; a bare
number means seconds), canonical as float seconds. Sizes: "512m", "1gb", "1.5G", "100k",
a bare number of bytes; binary multiples as docker does (k = 1024), canonical as int bytes.
"""

from __future__ import annotations

import re

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(b|ib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_duration(value: str | int | float) -> float:
    """Seconds in ``value``; ValueError with a plain message when it is not a duration."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '10s' or '1m30s', got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a duration cannot be negative, got {value!r}")
        return float(value)
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    sign = 1.0
    if text.startswith("-"):
        raise ValueError(f"a duration cannot be negative, got {value!r}")
    if text.startswith("+"):
        text = text[1:]
    pos, total = 0, 0.0
    if not text:
        raise ValueError("expected a duration like '10s' or '1m30s', got an empty string")
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None:
            raise ValueError(
                f"expected a duration like '10s', '1m30s' or '500ms', got {value!r}"
            )
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    return sign * total


def format_duration(seconds: float) -> str:
    """The shortest Go-style duration string for ``seconds`` ("1m30s", "500ms", "0s")."""
    if seconds == 0:
        return "0s"
    nanos = round(seconds * 1e9)
    hours, nanos = divmod(nanos, 3600 * 10**9)
    minutes, nanos = divmod(nanos, 60 * 10**9)
    out = ""
    if hours:
        out += f"{hours}h"
    if minutes:
        out += f"{minutes}m"
    if nanos:
        if nanos % 10**9 == 0:
            out += f"{nanos // 10**9}s"
        elif not out and nanos < 10**9:
            if nanos % 10**6 == 0:
                out += f"{nanos // 10**6}ms"
            elif nanos % 10**3 == 0:
                out += f"{nanos // 10**3}us"
            else:
                out += f"{nanos}ns"
        else:
            out += f"{nanos / 1e9:.9f}".rstrip("0").rstrip(".") + "s"
    return out


def parse_size(value: str | int | float) -> int:
    """Bytes in ``value``; ValueError with a plain message when it is not a size."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size like '512m' or '1g', got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a size cannot be negative, got {value!r}")
        return int(value)
    match = _SIZE.match(value)
    if match is None:
        raise ValueError(f"expected a size like '512m', '1g' or '100k', got {value!r}")
    number, unit = float(match.group(1)), match.group(2).lower()
    return int(number * _SIZE_UNITS[unit])


def format_size(size: int) -> str:
    """A compact exact size string ("512m", "1g", "1000")."""
    for unit in ("p", "t", "g", "m", "k"):
        factor = _SIZE_UNITS[unit]
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)
