"""envfile: the compose .env format and how compose picks and layers env files."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import ConfigError, Location
from orchestrator.loader.envfile import parse_env_file, resolve_environment


def write(directory: Path, content: str, name: str = ".env") -> str:
    path = directory / name
    path.write_text(content, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("content", "environ", "expected"),
    [
        ("A=1\n", {}, {"A": "1"}),
        ("A=1", {}, {"A": "1"}),
        ("A=1\r\nB=2\r\n", {}, {"A": "1", "B": "2"}),
        ("export A=1\n", {}, {"A": "1"}),
        ("export\tA=1\n", {}, {"A": "1"}),
        ("exported=1\n", {}, {"exported": "1"}),
        ("# comment\n\n   \nA=1\n  # indented comment\n", {}, {"A": "1"}),
        ("A = spaced \n", {}, {"A": "spaced"}),
        ("A=  lead and trail  \n", {}, {"A": "lead and trail"}),
        ("A=value # comment\n", {}, {"A": "value"}),
        ("A=value#not-a-comment\n", {}, {"A": "value#not-a-comment"}),
        ("A=\n", {}, {"A": ""}),
        ("A=a=b=c\n", {}, {"A": "a=b=c"}),
        ("A: yaml style\n", {}, {"A": "yaml style"}),
        ("my.dotted-key[0]=x\n", {}, {"my.dotted-key[0]": "x"}),
        # single quotes are literal
        ("A='x # y'\n", {}, {"A": "x # y"}),
        ("A='$B \\n'\n", {"B": "b"}, {"A": "$B \\n"}),
        ("A='multi\nline'\n", {}, {"A": "multi\nline"}),
        ("A='it\\'s'\n", {}, {"A": "it\\'s"}),
        ("A=''\n", {}, {"A": ""}),
        # double quotes: escapes, multi-line, interpolation
        ('A="x\\ny"\n', {}, {"A": "x\ny"}),
        ('A="tab\\tend"\n', {}, {"A": "tab\tend"}),
        ('A="back\\\\slash"\n', {}, {"A": "back\\slash"}),
        ('A="say \\"hi\\""\n', {}, {"A": 'say "hi"'}),
        ('A="C:\\\\"\n', {}, {"A": "C:\\"}),
        ('A="\\$B"\n', {"B": "b"}, {"A": "$B"}),
        ('A="\\d stays"\n', {}, {"A": "\\d stays"}),
        ('A="\\0101"\n', {}, {"A": "A"}),
        ('A="multi\nline"\n', {}, {"A": "multi\nline"}),
        ('A="x # y" # real comment\n', {}, {"A": "x # y"}),
        ('A="${B}-$B"\n', {"B": "b"}, {"A": "b-b"}),
        # interpolation against earlier keys and the environment (environment first)
        ("A=1\nB=${A}2\n", {}, {"A": "1", "B": "12"}),
        ("A=1\nB=$A\n", {"A": "os"}, {"A": "1", "B": "os"}),
        ("B=${A:-def}\n", {}, {"B": "def"}),
        ("B=${LATER}\nLATER=x\n", {}, {"B": "", "LATER": "x"}),
        ("B=$$A\n", {"A": "a"}, {"B": "$A"}),
        # a bare key copies the environment value, or is skipped
        ("HOME\n", {"HOME": "/root"}, {"HOME": "/root"}),
        ("NOPE\nA=1\n", {}, {"A": "1"}),
        ("A=1\nHOME", {"HOME": "/h"}, {"A": "1", "HOME": "/h"}),
        # later lines win
        ("A=1\nA=2\n", {}, {"A": "2"}),
        ("\ufeffA=1\n", {}, {"A": "1"}),
        ("", {}, {}),
    ],
)
def test_parse_env_file(
    tmp_path: Path, content: str, environ: dict[str, str], expected: dict[str, str]
) -> None:
    assert parse_env_file(write(tmp_path, content), environ) == expected


def test_parse_env_file_defaults_to_the_os_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYCOMPOSE_TEST_VAR", "from-os")
    path = write(tmp_path, "PYCOMPOSE_TEST_VAR\nB=${PYCOMPOSE_TEST_VAR}\n")
    assert parse_env_file(path) == {"PYCOMPOSE_TEST_VAR": "from-os", "B": "from-os"}


@pytest.mark.parametrize(
    ("content", "line", "words"),
    [
        ("A=1\nB='open\nC=3\n", 2, "unterminated quoted value"),
        ('A=1\n\nB="open\n', 3, "unterminated quoted value"),
        ("A=1\nB C=2\n", 2, "cannot contain a space"),
        ("A=1\nB$=2\n", 2, "unexpected character '$'"),
        ("=value\n", 1, "no variable name"),
        ("A=1\nB=${\n", 2, "never closed"),
        ("A=${NEED:?is required}\n", 1, 'required variable "NEED"'),
        ('A="x"\nB="y" junk\n', 2, "after the closing quote"),
        ("A='multi\nline'\nB=${X:?x}\n", 3, "required"),
    ],
)
def test_parse_env_file_errors(tmp_path: Path, content: str, line: int, words: str) -> None:
    path = write(tmp_path, content)
    with pytest.raises(ConfigError) as info:
        parse_env_file(path, {})
    problem = info.value.problems[0]
    assert problem.location == Location(path, line)
    assert words in problem.message


def test_missing_or_unreadable_env_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        parse_env_file(str(tmp_path / "nope.env"), {})
    bad = tmp_path / "bad.env"
    bad.write_bytes(b"A=\xff\xfe\n")
    with pytest.raises(ConfigError, match="cannot read env file"):
        parse_env_file(str(bad), {})


@pytest.mark.parametrize(
    ("files", "selected", "os_env", "expected"),
    [
        # no --env-file: <project>/.env
        ({".env": "A=dot\n"}, None, {}, {"A": "dot"}),
        ({".env": "A=dot\n"}, [], {}, {"A": "dot"}),
        ({}, None, {}, {}),
        # the OS environment wins over files
        ({".env": "A=dot\nB=b\n"}, None, {"A": "os"}, {"A": "os", "B": "b"}),
        ({".env": "A=dot\n"}, None, {"Z": "z"}, {"A": "dot", "Z": "z"}),
        # --env-file replaces .env; later files win
        ({".env": "A=dot\n", "one.env": "B=1\n"}, ["one.env"], {}, {"B": "1"}),
        (
            {"one.env": "A=1\nB=1\n", "two.env": "B=2\n"},
            ["one.env", "two.env"],
            {},
            {"A": "1", "B": "2"},
        ),
        # a later file interpolates with what earlier files set
        (
            {"one.env": "A=1\n", "two.env": "B=${A}-two\n"},
            ["one.env", "two.env"],
            {},
            {"A": "1", "B": "1-two"},
        ),
        ({"one.env": "A=1\n"}, ["one.env"], {"A": "os"}, {"A": "os"}),
    ],
)
def test_resolve_environment(
    tmp_path: Path,
    files: dict[str, str],
    selected: list[str] | None,
    os_env: dict[str, str],
    expected: dict[str, str],
) -> None:
    for name, content in files.items():
        write(tmp_path, content, name)
    env_files = None if selected is None else [str(tmp_path / name) for name in selected]
    assert resolve_environment(str(tmp_path), env_files, os_env) == expected


def test_resolve_environment_missing_env_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.env")
    with pytest.raises(ConfigError) as info:
        resolve_environment(str(tmp_path), [missing], {})
    assert str(info.value).startswith(f"{missing}: env file {missing} not found")


def test_resolve_environment_ignores_a_dot_env_directory(tmp_path: Path) -> None:
    (tmp_path / ".env").mkdir()
    assert resolve_environment(str(tmp_path), None, {"A": "1"}) == {"A": "1"}
