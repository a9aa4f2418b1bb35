"""Docker's word processing for Dockerfile arguments: quotes, escapes and ``$`` expansion.

Docker does not hand ``COPY``/``ENV``/``WORKDIR``... arguments to a shell; its own lexer
(moby ``shell_lex.go``) removes quotes, honours the escape character and expands
``$X``, ``${X}``, ``${X:-d}``, ``${X-d}``, ``${X:+a}``, ``${X+a}`` and ``${X:?msg}``. An
unset variable expands to the empty string. Single quotes keep everything literal; inside
double quotes the escape character only escapes ``"``, ``$`` and itself. Getting these rules
exactly right matters because the same Dockerfile must mean the same thing to the docker
engine and to us.
"""

from __future__ import annotations

from collections.abc import Mapping

from orchestrator.errors import ConfigError

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


class SubstitutionError(ConfigError):
    """A ``${X:?message}`` whose variable is unset, or a malformed ``${...}``."""


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, str], escape: str) -> None:
        self.text = text
        self.pos = 0
        self.env = env
        self.escape = escape

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1 if ch else 0
        return ch

    # --- words -------------------------------------------------------------------

    def words(self, split: bool) -> list[str]:
        """The processed text: one word (``split`` false) or words split at unquoted blanks."""
        words: list[str] = []
        current: list[str] = []
        started = False
        while self.pos < len(self.text):
            ch = self.next()
            if split and ch in " \t\r\n":
                if started:
                    words.append("".join(current))
                    current, started = [], False
                continue
            if ch == "$" and split:
                # an unquoted expansion is split at its blanks, as docker's lexer does
                for part in self.dollar():
                    if part in " \t\r\n":
                        if started:
                            words.append("".join(current))
                        current, started = [], False
                    else:
                        current.append(part)
                        started = True
                continue
            started = True
            if ch == "'":
                current.append(self.single_quoted())
            elif ch == '"':
                current.append(self.double_quoted())
            elif ch == "$":
                current.append(self.dollar())
            elif ch == self.escape:
                nxt = self.next()
                current.append(nxt if nxt else ch)
            else:
                current.append(ch)
        if started or not split:
            words.append("".join(current))
        return words

    def single_quoted(self) -> str:
        end = self.text.find("'", self.pos)
        if end < 0:
            raise SubstitutionError(f"unterminated single quote in {self.text!r}")
        value = self.text[self.pos : end]
        self.pos = end + 1
        return value

    def double_quoted(self) -> str:
        out: list[str] = []
        while True:
            ch = self.next()
            if not ch:
                raise SubstitutionError(f"unterminated double quote in {self.text!r}")
            if ch == '"':
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
            elif ch == self.escape and self.peek() in ('"', "$", self.escape) and self.peek():
                out.append(self.next())
            else:
                out.append(ch)

    # --- expansions --------------------------------------------------------------

    def name(self) -> str:
        start = self.pos
        if self.peek().isdigit():
            self.pos += 1  # $1 is a (always empty) positional parameter, one digit only
            return self.text[start : self.pos]
        while self.peek() and self.peek() in _NAME_CHARS:
            self.pos += 1
        return self.text[start : self.pos]

    def dollar(self) -> str:
        if self.peek() == "{":
            self.pos += 1
            return self.braced()
        name = self.name()
        if not name:
            return "$"
        return self.env.get(name, "")

    def word_until_brace(self) -> str:
        """The word of ``${X:-word}``: expanded, quotes removed, up to the matching ``}``."""
        out: list[str] = []
        while True:
            ch = self.next()
            if not ch:
                raise SubstitutionError(f"missing '}}' in {self.text!r}")
            if ch == "}":
                return "".join(out)
            if ch == "'":
                out.append(self.single_quoted())
            elif ch == '"':
                out.append(self.double_quoted())
            elif ch == "$":
                out.append(self.dollar())
            elif ch == self.escape and self.peek():
                out.append(self.next())
            else:
                out.append(ch)

    def braced(self) -> str:
        name = self.name()
        if not name:
            raise SubstitutionError(f"bad substitution in {self.text!r}: no variable name")
        ch = self.next()
        if ch == "}":
            return self.env.get(name, "")
        colon = ch == ":"
        if colon:
            ch = self.next()
        if ch not in ("-", "+", "?"):
            raise SubstitutionError(
                f"unsupported modifier {(':' if colon else '') + ch!r} in ${{{name}...}} of "
                f"{self.text!r}"
            )
        word = self.word_until_brace()
        value = self.env.get(name)
        is_set = value is not None and (value != "" or not colon)
        if ch == "-":
            return value if is_set and value is not None else word
        if ch == "+":
            return word if is_set else ""
        if not is_set:
            raise SubstitutionError(f"{name}: {word or 'is not set'}")
        return value or ""


def process_word(text: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """``text`` as one word: quotes removed, escapes and variables processed."""
    return _Lexer(text, env, escape).words(split=False)[0]


def process_words(text: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """``text`` split into words at unquoted blanks, each processed as by
    :func:`process_word` (``""`` gives an empty word)."""
    return _Lexer(text, env, escape).words(split=True)
