"""The build context: ``.dockerignore`` matching, safe source resolution, content hashing.

Three jobs that all answer "which bytes of the user's directory may go into the image":

* ``.dockerignore`` is matched exactly as docker's ``patternmatcher`` does (``*`` stays
  within a path segment, ``**`` crosses them, a pattern that matches a parent directory
  excludes everything under it, later ``!`` lines re-include, the last match wins), so
  a context means the same to the engine and to us.
* A source never leaves the context: ``COPY ../x`` and a symlink whose target lies outside
  are refused with the Dockerfile line, instead of silently reading ``/etc/shadow`` of the
  build host. Symlinks *inside* a copied directory are copied as links (docker does the
  same), so their targets are never read.
* The cache key of a ``COPY`` is a hash of what would be copied (names, types, modes,
  contents), not of timestamps, so touching a file does not invalidate the cache.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from orchestrator.runtime.build.dockerfile import DockerfileError

_SPECIAL = set(".+()|{}$^")
_WILDCARD = re.compile(r"[*?\[]")


class ContextEscape(DockerfileError):
    """A source path, or a symlink on its way, points outside the build context."""


@dataclass(frozen=True)
class IgnorePattern:
    text: str
    exclusion: bool
    regex: re.Pattern[str]


def _compile(pattern: str) -> re.Pattern[str]:
    out = ["^"]
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < len(pattern) and pattern[i] == "*":
                i += 1
                if i < len(pattern) and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= len(pattern) else "(.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch in _SPECIAL:
            out.append("\\" + ch)
        elif ch == "\\":
            if i < len(pattern):
                out.append(re.escape(pattern[i]))
                i += 1
            else:
                out.append("\\\\")
        else:
            out.append(ch)
    out.append("$")
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error as exc:
        raise DockerfileError(f"bad .dockerignore pattern {pattern!r}: {exc}",
                              file=".dockerignore") from exc


def parse_ignore(text: str) -> list[IgnorePattern]:
    """The patterns of a ``.dockerignore`` file, cleaned as docker cleans them."""
    patterns = []
    for line in text.splitlines():
        line = line.lstrip("\ufeff")
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        exclusion = pattern.startswith("!")
        if exclusion:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = posixpath.normpath(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern.lstrip("/") or "/"
        patterns.append(IgnorePattern(pattern, exclusion, _compile(pattern)))
    return patterns


class IgnoreMatcher:
    """Whether a context path (slash-separated, relative) is excluded."""

    def __init__(self, patterns: list[IgnorePattern]) -> None:
        self.patterns = patterns
        self.has_exceptions = any(p.exclusion for p in patterns)

    @classmethod
    def from_text(cls, text: str) -> IgnoreMatcher:
        return cls(parse_ignore(text))

    def excluded(self, path: str) -> bool:
        path = posixpath.normpath(path)
        parent = posixpath.dirname(path)
        parents = parent.split("/") if parent else []
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue  # an include that already matched, or an exception with nothing to undo
            hit = bool(pattern.regex.match(path))
            if not hit:
                for i in range(len(parents)):
                    if pattern.regex.match("/".join(parents[: i + 1])):
                        hit = True
                        break
            if hit:
                matched = not pattern.exclusion
        return matched


@dataclass(frozen=True)
class Member:
    """One thing to copy: ``rel`` is its path below the copied source ("" for the source
    itself), ``host`` where it is, ``st`` its lstat."""

    rel: str
    host: Path
    st: os.stat_result


@dataclass(frozen=True)
class Source:
    """One resolved COPY/ADD source: its name in the context and what it holds."""

    name: str  # context-relative path ("." for the context itself)
    host: Path
    is_dir: bool
    members: tuple[Member, ...]


class BuildContext:
    """The directory a build reads from, with its ``.dockerignore`` applied."""

    def __init__(self, root: Path, *, hidden: tuple[str, ...] = (), rootfs: bool = False
                 ) -> None:
        self.root = Path(os.path.realpath(root))
        self.rootfs = rootfs
        if not self.root.is_dir():
            raise DockerfileError(f"build context {root} is not a directory", file=str(root))
        ignore_file = self.root / ".dockerignore"
        text = ignore_file.read_text() if ignore_file.is_file() and not rootfs else ""
        self.ignore = IgnoreMatcher.from_text(text)
        # the Dockerfile and .dockerignore reach the builder but are never copied
        self.hidden = frozenset() if rootfs else frozenset({".dockerignore", *hidden})

    @classmethod
    def of_rootfs(cls, root: Path) -> BuildContext:
        """Another stage's or image's tree (``COPY --from``): no ``.dockerignore``, and
        symlinks resolve as they would inside that image (``/`` is its root)."""
        return cls(root, rootfs=True)

    def _skipped(self, rel: str) -> bool:
        return rel in self.hidden or self.ignore.excluded(rel)

    def _checked(self, spec: str, file: str, line: int | None) -> str:
        """The context-relative form of ``spec``; refused when it climbs out."""
        rel = posixpath.normpath(spec)
        if rel == ".." or rel.startswith("../"):
            raise ContextEscape(f"source {spec!r} is outside the build context", file=file,
                                line=line)
        return rel.lstrip("/") or "."

    def _inside(self, rel: str, spec: str, file: str, line: int | None) -> Path:
        """The host path of ``rel`` with symlinks followed, refused if they lead out."""
        if self.rootfs:
            return _scoped(self.root, rel)
        host = self.root / rel
        real = Path(os.path.realpath(host))
        if real != self.root and self.root not in real.parents:
            raise ContextEscape(
                f"source {spec!r} is a symlink (or goes through one) pointing outside the "
                f"build context, to {real}",
                file=file,
                line=line,
            )
        return real

    def _walk(self, rel: str, host: Path) -> list[Member]:
        members: list[Member] = []
        for dirpath, dirnames, filenames in os.walk(host):
            base = Path(dirpath)
            below = base.relative_to(host).as_posix()
            below = "" if below == "." else below
            keep_dirs = []
            for name in sorted(dirnames):
                sub = f"{below}/{name}" if below else name
                crel = posixpath.normpath(f"{rel}/{sub}")
                path = base / name
                st = path.lstat()
                if stat.S_ISLNK(st.st_mode):  # os.walk does not follow links: copy the link
                    if not self._skipped(crel):
                        members.append(Member(sub, path, st))
                    continue
                if self._skipped(crel):
                    if self.ignore.has_exceptions:
                        keep_dirs.append(name)  # an exception may re-include something below
                    continue
                members.append(Member(sub, path, st))
                keep_dirs.append(name)
            dirnames[:] = keep_dirs
            for name in sorted(filenames):
                sub = f"{below}/{name}" if below else name
                crel = posixpath.normpath(f"{rel}/{sub}")
                if not self._skipped(crel):
                    path = base / name
                    members.append(Member(sub, path, path.lstat()))
        # a directory skipped itself but holding a re-included file must exist in the copy
        present = {m.rel for m in members}
        for member in list(members):
            parent = posixpath.dirname(member.rel)
            while parent and parent not in present:
                path = host / parent
                members.append(Member(parent, path, path.lstat()))
                present.add(parent)
                parent = posixpath.dirname(parent)
        return sorted(members, key=lambda m: m.rel.split("/"))

    def _all_paths(self) -> list[str]:
        found = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            below = Path(dirpath).relative_to(self.root).as_posix()
            for name in sorted(dirnames) + sorted(filenames):
                found.append(name if below == "." else f"{below}/{name}")
        return found

    def resolve(self, spec: str, *, file: str = "Dockerfile", line: int | None = None
                ) -> list[Source]:
        """The sources ``spec`` names (a path or a wildcard pattern), each with the members
        to copy; refused when nothing matches or a path escapes."""
        rel = self._checked(spec, file, line)
        if _WILDCARD.search(rel):
            parts = rel.split("/")
            names = [
                p for p in self._all_paths()
                if len(p.split("/")) == len(parts)
                and all(fnmatch.fnmatchcase(a, b) for a, b in zip(p.split("/"), parts, strict=True))
                and not self._skipped(p)
            ]
            if not names:
                raise DockerfileError(f"no source files match {spec!r}", file=file, line=line)
        else:
            names = [rel]
        sources = []
        for name in names:
            host = self._inside(name, spec, file, line)
            if name != "." and self._skipped(name):
                raise DockerfileError(
                    f"source {spec!r} is excluded by .dockerignore", file=file, line=line
                )
            try:
                st = host.stat()
            except FileNotFoundError:
                raise DockerfileError(
                    f"source {spec!r} does not exist in the build context", file=file, line=line
                ) from None
            if stat.S_ISDIR(st.st_mode):
                members = (Member("", host, st), *self._walk(name, host))
                sources.append(Source(name, host, True, members))
            else:
                sources.append(Source(name, host, False, (Member("", host, st),)))
        return sources


def _scoped(root: Path, rel: str) -> Path:
    """``rel`` below ``root`` with every symlink resolved as if ``root`` were ``/``."""
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    done: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = root.joinpath(*done, part)
        try:
            st = candidate.lstat()
        except (FileNotFoundError, NotADirectoryError):
            return root.joinpath(*done, part, *parts)
        if not stat.S_ISLNK(st.st_mode):
            done.append(part)
            continue
        hops += 1
        if hops > 40:
            raise DockerfileError(f"too many levels of symbolic links in {rel!r}")
        target = os.readlink(candidate)
        if target.startswith("/"):
            done = []
        parts = [p for p in target.split("/") if p not in ("", ".")] + parts
    return root.joinpath(*done)


def hash_sources(sources: list[Source]) -> str:
    """A digest of what copying ``sources`` would write: names, types, permission bits,
    file contents and link targets (not owners or times: COPY resets the owner and the
    cache must survive a ``touch``)."""
    digest = hashlib.sha256()
    for source in sources:
        digest.update(f"S\0{source.name}\0{int(source.is_dir)}\0".encode())
        for member in source.members:
            mode = member.st.st_mode
            digest.update(f"M\0{member.rel}\0{stat.S_IFMT(mode)}\0{mode & 0o7777}\0".encode())
            if stat.S_ISREG(mode):
                with open(member.host, "rb") as handle:
                    digest.update(hashlib.file_digest(handle, "sha256").digest())
            elif stat.S_ISLNK(mode):
                digest.update(os.readlink(member.host).encode(errors="surrogateescape"))
    return digest.hexdigest()
