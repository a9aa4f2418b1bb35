"""Docker's word processing: quotes, escapes and the ``${}`` forms, as the engine does them."""

from __future__ import annotations

import pytest

from orchestrator.runtime.build.substitute import SubstitutionError, process_word, process_words

ENV = {"A": "alpha", "E": "", "S": "two words"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$A", "alpha"),
        ("${A}", "alpha"),
        ("x${A}y", "xalphay"),
        ("$UNSET", ""),
        ("${UNSET:-d}", "d"),
        ("${E:-d}", "d"),
        ("${E-d}", ""),
        ("${UNSET-d}", "d"),
        ("${A:-d}", "alpha"),
        ("${A:+set}", "set"),
        ("${E:+set}", ""),
        ("${E+set}", "set"),
        ("${UNSET+set}", ""),
        ("${UNSET:-$A}", "alpha"),
        ("'$A'", "$A"),
        ('"$A"', "alpha"),
        ('"\\$A"', "$A"),
        ("\\$A", "$A"),
        ("a\\ b", "a b"),
        ("$", "$"),
        ("$-", "$-"),
        ('"a \\"q\\" b"', 'a "q" b'),
        ("$1", ""),
    ],
)
def test_process_word(text: str, expected: str) -> None:
    assert process_word(text, ENV) == expected


def test_backtick_escape() -> None:
    assert process_word("`$A", ENV, "`") == "$A"
    assert process_word("c:\\dir", ENV, "`") == "c:\\dir"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a b  c", ["a", "b", "c"]),
        ('"a b" c', ["a b", "c"]),
        ("$S c", ["two", "words", "c"]),
        ('"$S" c', ["two words", "c"]),
        ('"" x', ["", "x"]),
        ("$E x", ["x"]),
    ],
)
def test_process_words_splits_unquoted_blanks(text: str, expected: list[str]) -> None:
    assert process_words(text, ENV) == expected


def test_required_variable() -> None:
    with pytest.raises(SubstitutionError, match="UNSET: needed here"):
        process_word("${UNSET:?needed here}", ENV)
    assert process_word("${A:?x}", ENV) == "alpha"


@pytest.mark.parametrize("text", ["${A", "${}", "'open", '"open', "${A%x}"])
def test_malformed(text: str) -> None:
    with pytest.raises(SubstitutionError):
        process_word(text, ENV)
