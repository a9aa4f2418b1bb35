"""The Dockerfile parser: directives, comments, continuations, exec vs shell form, flags.

Parsing is separate from execution so that every syntax mistake is reported with its
line before anything runs (a build that fails at step 9 after five minutes of RUN because
of a typo is what we avoid). Instruction arguments stay raw here: variable substitution
depends on the ENV and ARG values in effect at that point of the build, which only the
builder knows, so helpers below take the environment as a parameter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from orchestrator.errors import ConfigError
from orchestrator.runtime.build.substitute import process_word, process_words

SUPPORTED = frozenset(
    {
        "FROM", "RUN", "COPY", "ADD", "ENV", "ARG", "WORKDIR", "USER", "LABEL", "EXPOSE",
        "VOLUME", "ENTRYPOINT", "CMD", "HEALTHCHECK", "STOPSIGNAL", "SHELL",
    }
)
# flags each instruction accepts (docker's names); anything else is refused
FLAGS: Mapping[str, frozenset[str]] = {
    "FROM": frozenset({"platform"}),
    "COPY": frozenset({"from", "chown", "chmod", "link"}),
    "ADD": frozenset({"chown", "chmod", "link"}),
    "RUN": frozenset(),
    "HEALTHCHECK": frozenset(
        {"interval", "timeout", "start-period", "start-interval", "retries"}
    ),
}
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9_-]*)\s*=\s*(.*?)\s*$")
_KNOWN_DIRECTIVES = ("syntax", "escape", "check")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9,
            "h": 3600 * 10**9}


class DockerfileError(ConfigError):
    """A Dockerfile that cannot be built as written; the message names ``file:line``."""

    def __init__(self, message: str, *, file: str = "Dockerfile", line: int | None = None) -> None:
        where = f" at {file}:{line}" if line is not None else f" in {file}"
        super().__init__(message + where)
        self.file = file
        self.line = line


@dataclass(frozen=True)
class Instruction:
    """One instruction. ``args`` is the raw text after the keyword and its flags (lines
    joined); ``exec_form`` the JSON array when the arguments are one; ``line`` the 1-based
    line where the instruction starts, ``end_line`` where its last continuation ends."""

    keyword: str
    args: str
    line: int
    end_line: int
    flags: tuple[tuple[str, str], ...] = ()
    exec_form: tuple[str, ...] | None = None
    original: str = ""

    def flag(self, name: str) -> str | None:
        for key, value in self.flags:
            if key == name:
                return value
        return None


@dataclass(frozen=True)
class Dockerfile:
    instructions: tuple[Instruction, ...]
    escape: str = "\\"
    syntax: str | None = None
    file: str = "Dockerfile"

    def error(self, message: str, at: Instruction | None = None) -> DockerfileError:
        return DockerfileError(message, file=self.file, line=at.line if at else None)


def _directives(lines: list[str], file: str) -> tuple[dict[str, str], int]:
    """Parser directives at the very top; the index of the first line after them."""
    found: dict[str, str] = {}
    index = 0
    while index < len(lines):
        match = _DIRECTIVE.match(lines[index].strip())
        if not match or match.group(1).lower() not in _KNOWN_DIRECTIVES:
            break
        key = match.group(1).lower()
        if key in found:
            raise DockerfileError(f"directive {key!r} is given twice", file=file, line=index + 1)
        found[key] = match.group(2)
        index += 1
    return found, index


def _split_flags(text: str) -> tuple[list[tuple[str, str]], str]:
    """Leading ``--name=value`` words and the rest of the text."""
    flags: list[tuple[str, str]] = []
    rest = text.lstrip()
    while rest.startswith("--"):
        word, _, remainder = rest.partition(" ")
        if "\t" in word:
            word, _, more = word.partition("\t")
            remainder = more + " " + remainder
        name, sep, value = word[2:].partition("=")
        flags.append((name.lower(), value if sep else "true"))
        rest = remainder.lstrip()
    return flags, rest


def _exec_form(text: str) -> tuple[str, ...] | None:
    stripped = text.strip()
    if not stripped.startswith("["):
        return None
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError:
        return None  # docker falls back to the shell form for a malformed array
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def _instruction(text: str, line: int, end_line: int, file: str) -> Instruction:
    keyword, _, rest = text.strip().partition(" ")
    if "\t" in keyword:
        keyword, _, more = keyword.partition("\t")
        rest = more + " " + rest
    keyword = keyword.upper()
    if keyword not in SUPPORTED:
        raise DockerfileError(f"unsupported instruction {keyword}", file=file, line=line)
    rest = rest.strip()
    flags: list[tuple[str, str]] = []
    if keyword in FLAGS:
        flags, rest = _split_flags(rest)
        for name, _value in flags:
            if name not in FLAGS[keyword]:
                raise DockerfileError(
                    f"unknown flag --{name} for {keyword}", file=file, line=line
                )
    exec_form = _exec_form(rest) if keyword in (
        "RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME", "HEALTHCHECK"
    ) else None
    if keyword == "SHELL" and not exec_form:
        raise DockerfileError("SHELL requires the JSON array form", file=file, line=line)
    if keyword in ("FROM", "WORKDIR", "USER", "STOPSIGNAL", "ENV", "LABEL", "ARG") and not rest:
        raise DockerfileError(f"{keyword} requires an argument", file=file, line=line)
    return Instruction(keyword, rest, line, end_line, tuple(flags), exec_form, text.strip())


def parse(text: str, *, file: str = "Dockerfile") -> Dockerfile:
    """Parse a whole Dockerfile; every syntax error is a :class:`DockerfileError`."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    directives, index = _directives(lines, file)
    escape = directives.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise DockerfileError(f"invalid escape character {escape!r} (use \\ or `)", file=file,
                              line=1)
    continuation = re.compile(re.escape(escape) + r"[ \t]*$")
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    while index < len(lines):
        raw = lines[index]
        index += 1
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # blank and comment lines, also inside a continuation
        if not pending:
            start = index
        match = continuation.search(raw)
        if match:
            pending.append(raw[: match.start()])
            if index < len(lines):
                continue
        else:
            pending.append(raw)
        instructions.append(_instruction("".join(pending), start, index, file))
        pending = []
    if pending:  # a continuation on the last line
        instructions.append(_instruction("".join(pending), start, index, file))
    first = next((i for i in instructions if i.keyword != "ARG"), None)
    if first is None:
        raise DockerfileError("no FROM instruction", file=file)
    if first.keyword != "FROM":
        raise DockerfileError(
            f"{first.keyword} before the first FROM (only ARG may come before it)",
            file=file,
            line=first.line,
        )
    return Dockerfile(tuple(instructions), escape, directives.get("syntax"), file)


# --- argument helpers (need the environment in effect) --------------------------------


def key_values(ins: Instruction, env: Mapping[str, str], escape: str, file: str
               ) -> list[tuple[str, str]]:
    """``ENV``/``LABEL`` pairs: ``k=v k2="v 2"`` or the legacy ``key value with spaces``.
    Every value is expanded with the environment from *before* the instruction, as docker
    does (``ENV a=1 b=$a`` gives ``b`` the old ``a``)."""
    words = process_words(ins.args, env, escape)
    if not words:
        raise DockerfileError(f"{ins.keyword} requires an argument", file=file, line=ins.line)
    raw_first = ins.args.split(None, 1)[0]
    if "=" not in raw_first:  # legacy form: one key, the rest of the line is its value
        key, _, value = ins.args.partition(" ")
        if "\t" in key:
            key, _, value = ins.args.partition("\t")
        if not value.strip():
            raise DockerfileError(f"{ins.keyword} {key} needs a value", file=file, line=ins.line)
        return [(process_word(key, env, escape), process_word(value.strip(), env, escape))]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise DockerfileError(
                f"{ins.keyword}: {word!r} is not key=value", file=file, line=ins.line
            )
        pairs.append((key, value))
    return pairs


def parse_duration(text: str) -> int:
    """A Go duration (``30s``, ``1m30s``, ``500ms``) in nanoseconds; ValueError if not one."""
    if text in ("0", ""):
        return 0
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            raise ValueError(text)
        total += float(match.group(1)) * _UNIT_NS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(text)
    return int(total)
