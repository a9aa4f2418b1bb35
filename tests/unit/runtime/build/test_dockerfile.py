"""The Dockerfile parser: instructions with their lines, forms, flags, directives, errors."""

from __future__ import annotations

import pytest

from orchestrator.runtime.build.dockerfile import (
    DockerfileError,
    key_values,
    parse,
    parse_duration,
)

DOCKERFILE = """\
# syntax=docker/dockerfile:1
# a comment, not a directive
ARG BASE=busybox
FROM --platform=linux/amd64 $BASE AS build
RUN echo one && \\
    # a comment inside a continuation is dropped
    echo two

run ["/bin/sh", "-c", "echo exec"]
COPY --from=build --chown=1:2 --chmod=640 a b /dst/
ENV A=1 B="two words"
HEALTHCHECK --interval=5s CMD ["true"]
CMD echo [not json
"""


@pytest.mark.parametrize(
    ("index", "keyword", "line", "end_line", "args", "exec_form", "flags"),
    [
        (0, "ARG", 3, 3, "BASE=busybox", None, ()),
        (1, "FROM", 4, 4, "$BASE AS build", None, (("platform", "linux/amd64"),)),
        (2, "RUN", 5, 7, "echo one &&     echo two", None, ()),
        (3, "RUN", 9, 9, '["/bin/sh", "-c", "echo exec"]', ("/bin/sh", "-c", "echo exec"), ()),
        (4, "COPY", 10, 10, "a b /dst/", None,
         (("from", "build"), ("chown", "1:2"), ("chmod", "640"))),
        (5, "ENV", 11, 11, 'A=1 B="two words"', None, ()),
        (6, "HEALTHCHECK", 12, 12, 'CMD ["true"]', None, (("interval", "5s"),)),
        (7, "CMD", 13, 13, "echo [not json", None, ()),
    ],
)
def test_instructions_keep_their_lines_forms_and_flags(
    index: int, keyword: str, line: int, end_line: int, args: str,
    exec_form: tuple[str, ...] | None, flags: tuple[tuple[str, str], ...],
) -> None:
    ins = parse(DOCKERFILE).instructions[index]
    assert (ins.keyword, ins.line, ins.end_line, ins.args, ins.exec_form, ins.flags) == (
        keyword, line, end_line, args, exec_form, flags,
    )


def test_directives_at_the_top_only() -> None:
    parsed = parse(DOCKERFILE)
    assert parsed.syntax == "docker/dockerfile:1"
    assert parsed.escape == "\\"
    late = parse("FROM x\n# escape=`\nRUN a \\\n b\n")
    assert late.escape == "\\"  # after an instruction it is only a comment
    assert [(i.line, i.args) for i in late.instructions] == [(1, "x"), (3, "a  b")]
    after_blank = parse("\n# escape=`\nFROM x\n")
    assert after_blank.escape == "\\"  # a blank line ends the directives


def test_escape_directive_changes_the_continuation_character() -> None:
    parsed = parse("# escape=`\nFROM x\nRUN echo a `\n  b\nCOPY c:\\dir d\n")
    assert parsed.escape == "`"
    assert [(i.keyword, i.line, i.args) for i in parsed.instructions] == [
        ("FROM", 2, "x"), ("RUN", 3, "echo a   b"), ("COPY", 5, "c:\\dir d"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FROM x\nONBUILD RUN true\n", "unsupported instruction ONBUILD at Dockerfile:2"),
        ("FROM x\n\nMAINTAINER me\n", "unsupported instruction MAINTAINER at Dockerfile:3"),
        ("FROM x\nFOO bar\n", "unsupported instruction FOO at Dockerfile:2"),
        ("RUN true\n", "RUN before the first FROM (only ARG may come before it) at Dockerfile:1"),
        ("# just a comment\n", "no FROM instruction in Dockerfile"),
        ("FROM x\nCOPY --bogus=1 a b\n", "unknown flag --bogus for COPY at Dockerfile:2"),
        ("FROM x\nSHELL /bin/bash -c\n", "SHELL requires the JSON array form at Dockerfile:2"),
        ("# escape=x\nFROM x\n", "invalid escape character 'x' (use \\ or `) at Dockerfile:1"),
        ("FROM x\nWORKDIR\n", "WORKDIR requires an argument at Dockerfile:2"),
    ],
)
def test_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(DockerfileError) as caught:
        parse(text)
    assert str(caught.value) == message


def test_key_values_both_forms_use_the_environment_before_the_instruction() -> None:
    parsed = parse('FROM x\nENV a=new b=$a c="x y"\nENV legacy value with spaces\n')
    new_form, legacy = parsed.instructions[1], parsed.instructions[2]
    assert key_values(new_form, {"a": "old"}, "\\", "Dockerfile") == [
        ("a", "new"), ("b", "old"), ("c", "x y"),
    ]
    assert key_values(legacy, {}, "\\", "Dockerfile") == [("legacy", "value with spaces")]


def test_key_values_refuses_a_word_without_equals() -> None:
    ins = parse("FROM x\nLABEL a=1 b\n").instructions[1]
    with pytest.raises(DockerfileError, match="'b' is not key=value at Dockerfile:2"):
        key_values(ins, {}, "\\", "Dockerfile")


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("30s", 30 * 10**9), ("1m30s", 90 * 10**9), ("500ms", 5 * 10**8), ("0", 0),
        ("1h", 3600 * 10**9),
    ],
)
def test_durations(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize("text", ["30", "s", "1x", "1s2"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)
