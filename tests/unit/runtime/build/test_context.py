"""The build context: .dockerignore as docker matches it, sources that cannot escape, hashes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.runtime.build.context import (
    BuildContext,
    ContextEscape,
    IgnoreMatcher,
    hash_sources,
)
from orchestrator.runtime.build.dockerfile import DockerfileError


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        ("*.log", "a.log", True),
        ("*.log", "dir/a.log", False),  # * stays within one segment
        ("**/*.log", "dir/sub/a.log", True),
        ("**/*.log", "a.log", True),
        ("dir", "dir/sub/file", True),  # a matched parent excludes what is below
        ("dir/*", "dir/file", True),
        ("dir/*", "dir", False),
        ("/abs", "abs", True),  # a leading slash is the context root
        ("./a/../b", "b", True),  # patterns are cleaned
        ("*.md\n!README.md", "README.md", False),
        ("*.md\n!README.md", "CHANGES.md", True),
        ("!README.md\n*.md", "README.md", True),  # the last match wins
        ("docs\n!docs/keep.txt", "docs/keep.txt", False),
        ("docs\n!docs/keep.txt", "docs/other.txt", True),
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        ("[ab].txt", "b.txt", True),
        ("[!ab].txt", "c.txt", False),  # [!..] is not negation in Go's regexp translation
        ("# comment\n\n  spaced.txt  ", "spaced.txt", True),
        ("**", "anything/at/all", True),
        ("x/**/y", "x/y", True),
        ("x/**/y", "x/a/b/y", True),
        ("file.+", "file.+", True),
        ("file.+", "fileaa", False),
    ],
)
def test_dockerignore_matching(patterns: str, path: str, excluded: bool) -> None:
    assert IgnoreMatcher.from_text(patterns).excluded(path) is excluded


@pytest.fixture
def context(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    (root / "src" / "sub").mkdir(parents=True)
    (root / "src" / "a.txt").write_text("a")
    (root / "src" / "sub" / "b.txt").write_text("b")
    (root / "src" / "skip.log").write_text("log")
    (root / "top.txt").write_text("top")
    (root / "Dockerfile").write_text("FROM scratch\n")
    (root / ".dockerignore").write_text("**/*.log\nsecret\n")
    (root / "secret").write_text("no")
    (tmp_path / "outside.txt").write_text("host secret")
    return root


def names(sources: list) -> list[tuple[str, list[str]]]:  # type: ignore[type-arg]
    return [(s.name, [m.rel for m in s.members]) for s in sources]


def test_a_directory_source_holds_what_dockerignore_keeps(context: Path) -> None:
    ctx = BuildContext(context, hidden=("Dockerfile",))
    assert names(ctx.resolve("src")) == [("src", ["", "a.txt", "sub", "sub/b.txt"])]
    whole = [m.rel for m in ctx.resolve(".")[0].members]
    assert "Dockerfile" not in whole and ".dockerignore" not in whole and "secret" not in whole
    assert "top.txt" in whole and "src/skip.log" not in whole


def test_wildcards_match_one_segment(context: Path) -> None:
    ctx = BuildContext(context)
    assert [s.name for s in ctx.resolve("src/*.txt")] == ["src/a.txt"]
    with pytest.raises(DockerfileError, match="no source files match 'nothing\\*' at Dockerfile:4"):
        ctx.resolve("nothing*", line=4)


def test_an_ignored_or_missing_source_is_refused_with_its_line(context: Path) -> None:
    ctx = BuildContext(context)
    with pytest.raises(DockerfileError, match=r"excluded by \.dockerignore at Dockerfile:3"):
        ctx.resolve("secret", line=3)
    with pytest.raises(DockerfileError, match=r"does not exist in the build context at .*:5"):
        ctx.resolve("missing", line=5)


@pytest.mark.parametrize("spec", ["../outside.txt", "src/../../outside.txt", ".."])
def test_parent_paths_are_refused(context: Path, spec: str) -> None:
    with pytest.raises(ContextEscape, match=r"is outside the build context at Dockerfile:7"):
        BuildContext(context).resolve(spec, line=7)


def test_symlinks_pointing_outside_are_refused(context: Path, tmp_path: Path) -> None:
    os.symlink(tmp_path / "outside.txt", context / "leak")
    os.symlink("../..", context / "src" / "up")
    ctx = BuildContext(context)
    with pytest.raises(ContextEscape, match=r"pointing outside the build context.*Dockerfile:2"):
        ctx.resolve("leak", line=2)
    with pytest.raises(ContextEscape, match="Dockerfile:9"):
        ctx.resolve("src/up/outside.txt", line=9)


def test_symlinks_inside_a_copied_tree_stay_links(context: Path, tmp_path: Path) -> None:
    os.symlink(tmp_path / "outside.txt", context / "src" / "link")
    ctx = BuildContext(context)
    members = {m.rel: m for m in ctx.resolve("src")[0].members}
    assert os.path.islink(members["link"].host)  # copied as a link: its target is never read
    inside = BuildContext(context)
    os.symlink("top.txt", context / "alias")
    assert inside.resolve("alias")[0].host == context.resolve() / "top.txt"


def test_rootfs_symlinks_resolve_inside_the_tree(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "busybox").write_text("bb")
    os.symlink("/bin/busybox", root / "bin" / "sh")
    os.symlink("../../../../etc/passwd", root / "bin" / "climb")
    tree = BuildContext.of_rootfs(root)
    assert tree.resolve("/bin/sh")[0].host == root.resolve() / "bin" / "busybox"
    with pytest.raises(DockerfileError, match="does not exist"):
        tree.resolve("/bin/climb")  # clamped at the image root: /etc/passwd of the image


def test_hash_follows_content_not_times(context: Path) -> None:
    ctx = BuildContext(context)
    before = hash_sources(ctx.resolve("src"))
    os.utime(context / "src" / "a.txt", (1, 1))
    assert hash_sources(BuildContext(context).resolve("src")) == before
    (context / "src" / "a.txt").write_text("changed")
    assert hash_sources(BuildContext(context).resolve("src")) != before
    os.chmod(context / "top.txt", 0o600)
    first = hash_sources(BuildContext(context).resolve("top.txt"))
    os.chmod(context / "top.txt", 0o644)
    assert hash_sources(BuildContext(context).resolve("top.txt")) != first
