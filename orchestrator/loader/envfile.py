"""Loader stage: the ``.env`` files that feed interpolation, read as docker compose does.

The format follows compose-go's dotenv parser so that one ``.env`` gives the same values
under pycompose and docker compose: ``KEY=VALUE`` (or ``KEY: VALUE``), an optional
``export`` prefix, ``#`` comments (inline only after a space on unquoted values),
single quotes literal, double quotes with escapes and ``${VAR}`` interpolation, and a
bare ``KEY`` that copies the variable from the environment when it is set there.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence

from orchestrator.errors import ConfigError, Location, Problem
from orchestrator.loader.interpolate import interpolate_string

__all__ = ["parse_env_file", "resolve_environment"]

_SPACE = " \t\v\f\r\x85\xa0"
_KEY_PUNCTUATION = frozenset("_.-[]")
_ESCAPE_RE = re.compile(r"\\(?:0([0-7]{3})|([abfnrtv\"\\$]))")
_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    '"': '"',
    "\\": "\\",
    # Interpolation runs after unescaping; "$$" is how it spells a literal dollar.
    "$": "$$",
}


class _Lookup(Mapping[str, str]):
    """Variables visible to interpolation in an env file: the environment, then earlier keys."""

    def __init__(self, first: Mapping[str, str], second: Mapping[str, str]) -> None:
        self._first = first
        self._second = second

    def __getitem__(self, key: str) -> str:
        if key in self._first:
            return self._first[key]
        return self._second[key]

    def __iter__(self) -> Iterator[str]:
        yield from self._first
        yield from (k for k in self._second if k not in self._first)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _unescape(match: re.Match[str]) -> str:
    octal, char = match.groups()
    if octal is not None:
        code = int(octal, 8)
        return chr(code) if code <= 0o377 else match.group()
    return _ESCAPES[char]


class _Parser:
    """A cursor over one env file's text that knows which line it is on."""

    def __init__(self, text: str, path: str, environ: Mapping[str, str]) -> None:
        self.text = text
        self.path = path
        self.environ = environ
        self.pos = 0
        self.line = 1
        self.out: dict[str, str] = {}

    def fail(self, message: str, line: int | None = None, hint: str = "") -> ConfigError:
        where = Location(self.path, line if line is not None else self.line)
        return ConfigError(Problem(message, location=where, hint=hint))

    def skip_blank(self) -> bool:
        """Skip whitespace and comment lines; False at the end of the text."""
        text, end = self.text, len(self.text)
        while self.pos < end:
            char = text[self.pos]
            if char == "\n":
                self.line += 1
                self.pos += 1
            elif char in _SPACE:
                self.pos += 1
            elif char == "#":
                newline = text.find("\n", self.pos)
                self.pos = end if newline < 0 else newline
            else:
                return True
        return False

    def skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _SPACE:
            self.pos += 1

    def parse(self) -> dict[str, str]:
        while self.skip_blank():
            self.statement()
        return self.out

    def statement(self) -> None:
        line = self.line
        text = self.text
        if text.startswith("export", self.pos) and text[self.pos + 6 : self.pos + 7] in (
            " ",
            "\t",
        ):
            self.pos += 6
            self.skip_spaces()
        key, terminator = self.key(line)
        if terminator != "=" and terminator != ":":
            # A bare KEY: take it from the environment, or leave it out.
            if key in self.environ:
                self.out[key] = self.environ[key]
            return
        self.skip_spaces()
        quote = text[self.pos : self.pos + 1]
        if quote in ("'", '"'):
            value = self.quoted(quote, line)
        else:
            value = self.unquoted()
        self.out[key] = value

    def key(self, line: int) -> tuple[str, str]:
        text, start, end = self.text, self.pos, len(self.text)
        while self.pos < end:
            char = text[self.pos]
            if char in "=:\n":
                break
            if not (char.isalnum() or char in _KEY_PUNCTUATION or char in _SPACE):
                raise self.fail(
                    f"unexpected character {char!r} in variable name "
                    f"{text[start : self.pos + 1].strip()!r}",
                    line,
                    hint="variable names use letters, digits, '_', '.', '-', '[' and ']'",
                )
            self.pos += 1
        key = text[start : self.pos].strip(_SPACE)
        terminator = text[self.pos : self.pos + 1]
        if terminator != "\n":
            self.pos += len(terminator)
        if not key:
            raise self.fail("a line starts with '=' but has no variable name before it", line)
        if any(char in _SPACE for char in key):
            raise self.fail(f"variable name {key!r} cannot contain a space", line)
        return key, terminator

    def unquoted(self) -> str:
        newline = self.text.find("\n", self.pos)
        stop = len(self.text) if newline < 0 else newline
        raw = self.text[self.pos : stop]
        self.pos = stop
        raw = raw.split(" #", 1)[0].rstrip()
        return self.expand(raw, self.line)

    def quoted(self, quote: str, line: int) -> str:
        text, end = self.text, len(self.text)
        index = self.pos + 1
        while index < end:
            char = text[index]
            if char == "\\" and index + 1 < end and (quote == '"' or text[index + 1] == "'"):
                if text[index + 1] == "\n":
                    self.line += 1
                index += 2
                continue
            if char == "\n":
                self.line += 1
            elif char == quote:
                break
            index += 1
        else:
            first = text[self.pos :].split("\n", 1)[0]
            raise self.fail(
                f"unterminated quoted value {first}",
                line,
                hint=f"close the value with a matching {quote}",
            )
        raw = text[self.pos + 1 : index]
        self.pos = index + 1
        self.trailing(line)
        if quote == "'":
            return raw
        return self.expand(_ESCAPE_RE.sub(_unescape, raw), line)

    def trailing(self, line: int) -> None:
        """After a closing quote only spaces and a comment may follow on the line."""
        self.skip_spaces()
        if self.pos >= len(self.text) or self.text[self.pos] in "\n#":
            return
        raise self.fail(
            "unexpected text after the closing quote",
            self.line,
            hint="put a comment after '#', or quote the whole value",
        )

    def expand(self, raw: str, line: int) -> str:
        try:
            return interpolate_string(raw, _Lookup(self.environ, self.out))
        except ValueError as exc:
            raise self.fail(str(exc), line, hint="write $$ for a literal dollar sign") from None


def parse_env_file(path: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Read one env file. ``environ`` (default ``os.environ``) answers bare keys and ``${VAR}``."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            text = handle.read()
    except FileNotFoundError as exc:
        raise ConfigError(Problem(f"env file {path} not found", location=Location(path))) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            Problem(f"cannot read env file {path}: {exc}", location=Location(path))
        ) from exc
    text = text.replace("\r\n", "\n")
    return _Parser(text, path, os.environ if environ is None else environ).parse()


def resolve_environment(
    project_dir: str, env_files: Sequence[str] | None, os_env: Mapping[str, str]
) -> dict[str, str]:
    """The variables interpolation sees, by compose's rules.

    ``env_files`` (``--env-file``, later files win) replace the default
    ``<project_dir>/.env``, which is read only if it exists. The OS environment wins over
    every file.
    """
    merged: dict[str, str] = {}
    if env_files:
        for env_file in env_files:
            if not os.path.isfile(env_file):
                raise ConfigError(
                    Problem(
                        f"env file {env_file} not found",
                        location=Location(env_file),
                        hint="check the --env-file path; it is relative to the current directory",
                    )
                )
            merged.update(parse_env_file(env_file, _Lookup(os_env, merged)))
    else:
        default = os.path.join(project_dir, ".env")
        if os.path.isfile(default):
            merged.update(parse_env_file(default, os_env))
    merged.update(os_env)
    return merged
