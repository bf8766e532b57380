"""Turn command-line paths into the .py files a run looks at, and say why others were skipped."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from dbfix import replay
from dbfix.config import Config

if TYPE_CHECKING:
    import pathspec

SKIP_DIRS = frozenset({
    ".git", ".hg", ".svn", ".venv", "venv", "env", ".env", "__pycache__", "node_modules", ".tox",
    ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".dbfix_cache", "build", "dist",
    "site-packages", ".eggs",
})  # fmt: skip
_ALEMBIC_MARKERS = frozenset({"env.py", "script.py.mako", "alembic.ini"})
ALEMBIC_REASON = "Alembic migration script"


class _Ignore(NamedTuple):
    """One ignore file's patterns, and one regex of them all: most paths match none of a project's
    patterns, and one search tells so (pathspec tries each pattern in turn: 0.05 s for polar's 2,000 paths)."""

    spec: pathspec.GitIgnoreSpec
    any_pattern: re.Pattern[str] | None  # None: no combined regex could be made; ask `spec` every time

    def check(self, path: str) -> pathspec.util.CheckResult | None:
        """pathspec's answer for `path`; None when no pattern matches it."""
        if self.any_pattern is not None:
            from pathspec.util import normalize_file

            # the path as pathspec matches it: `\\` made `/` on Windows, no leading `/` or `./`
            if self.any_pattern.match(normalize_file(path)) is None:
                return None
        return self.spec.check_file(path)


def _ignore(spec: pathspec.GitIgnoreSpec) -> _Ignore:
    return _Ignore(spec, _any_pattern(spec))


_DIRECTORY_MARK = "(?P<ps_d>/)"  # the one named group pathspec writes (a name may appear once in a regex)
_ANY_DIRECTORY = "^(?:.+/)?"  # how pathspec starts a pattern without a slash: it matches in any directory


def _any_pattern(spec: pathspec.GitIgnoreSpec) -> re.Pattern[str] | None:
    """A regex that matches a path iff one of `spec`'s patterns does; None if their regexes cannot be
    joined safely (other flags, other groups named or referred to, one not anchored at the start).

    The patterns that match in any directory share their start, so it is written once: each pattern
    trying every `/` of the path on its own took longer than pathspec's own loop.
    """
    regexes = [p.regex for p in spec.patterns if p.include is not None and getattr(p, "regex", None) is not None]
    if not regexes or len({r.flags for r in regexes}) != 1 or any(not isinstance(r.pattern, str) for r in regexes):
        return None
    # only pathspec's own group is rewritten: `(?P<` in a character class (`[(?P<n>]x.py`) is text
    parts = [r.pattern.replace(_DIRECTORY_MARK, "/") for r in regexes]
    if any(not part.startswith("^") or "(?P" in part or re.search(r"\\[1-9]", part) for part in parts):
        return None
    anywhere = [part[len(_ANY_DIRECTORY) :] for part in parts if part.startswith(_ANY_DIRECTORY)]
    rooted = [part[1:] for part in parts if not part.startswith(_ANY_DIRECTORY)]
    branches = [f"(?:.+/)?(?:{'|'.join(f'(?:{p})' for p in anywhere)})"] if anywhere else []
    branches += [f"(?:{p})" for p in rooted]
    try:
        with warnings.catch_warnings():  # pathspec has warned of a pattern already (`[[` is a "nested set")
            warnings.simplefilter("ignore")
            return re.compile(f"^(?:{'|'.join(branches)})", regexes[0].flags)
    except (re.error, RecursionError, OverflowError):
        return None


# (length of the directory prefix to cut off, patterns): patterns are relative to their file's directory
_Ignores = tuple[tuple[int, _Ignore], ...]


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


def is_alembic_versions_file(path: Path) -> bool:
    """Whether `path` is a .py file under a `versions/` directory that sits next to Alembic's env.py."""
    path = Path(os.path.abspath(path))
    return path.suffix == ".py" and _in_alembic_versions(path.parent)


def _in_alembic_versions(directory: Path) -> bool:
    return any(
        d.name == "versions" and any((d.parent / m).is_file() for m in _ALEMBIC_MARKERS)
        for d in (directory, *directory.parents)
    )


def discover(paths: Sequence[Path], root: Path, config: Config) -> tuple[list[Path], list[Skipped]]:
    """The sorted, absolute .py files under `paths`, and what was skipped on the way."""
    walker = _Walker(os.path.abspath(root), config)
    for path in paths:
        p = os.path.abspath(path)
        if os.path.isdir(p):
            walker.walk_top(p)
        elif os.path.exists(p):
            # an explicit file is the user's choice, except a migration: those are history
            if is_alembic_versions_file(Path(p)):
                walker.skipped.setdefault(p, ALEMBIC_REASON)
            else:
                walker.found.add(p)
        else:
            raise FileNotFoundError(f"{path}: no such file or directory")
    skipped = [Skipped(Path(p), r) for p, r in sorted(walker.skipped.items()) if p not in walker.found]
    return [Path(p) for p in sorted(walker.found)], skipped


def project_files(root: Path, config: Config) -> list[Path]:
    """Every .py file of the project under `root`, by the same rules as `discover`."""
    return discover([root], root, config)[0]


class _Walker:
    def __init__(self, root: str, config: Config) -> None:
        self.root = root
        self.root_dir = os.path.join(root, "")
        self.exclude_patterns = [*config.exclude, *config.extend_exclude]
        self.exclude = _ignore(_spec_of(self.exclude_patterns)) if self.exclude_patterns else None
        self.gitignore = config.respect_gitignore
        self.found: set[str] = set()
        self.skipped: dict[str, str] = {}
        self._specs: dict[str, _Ignore | None] = {}

    def walk_top(self, top: str) -> None:
        """Walk a directory named on the command line: its own name is never checked, only its contents."""
        ignores: _Ignores = ()
        if self.gitignore:
            for directory, file in self._outer_ignore_files(top):
                if (spec := self._spec(file)) is not None:
                    ignores = (*ignores, (len(os.path.join(directory, "")), spec))
        self._walk(top, ignores, _in_alembic_versions(Path(top)))

    def _outer_ignore_files(self, top: str) -> list[tuple[str, str]]:
        # Git applies every .gitignore from the repository's top down, so a project inside a
        # monorepo honours the outer ones too; info/exclude has the lowest precedence.
        ancestors = [top, *map(str, Path(top).parents)]
        for i, d in enumerate(ancestors):
            if os.path.exists(os.path.join(d, ".git")):
                files = [(d, os.path.join(d, ".git", "info", "exclude"))]
                break
        else:
            i = ancestors.index(self.root) if self.root in ancestors else 0
            files = []
        # `top`'s own .gitignore is read by _walk
        return files + [(d, os.path.join(d, ".gitignore")) for d in reversed(ancestors[1 : i + 1])]

    def _spec(self, file: str) -> _Ignore | None:
        if file not in self._specs:
            replay.note_dir(os.path.dirname(file))
            if os.path.exists(file):
                replay.note_file(file)
            self._specs[file] = _read_gitignore(file)
        return self._specs[file]

    def _walk(self, top: str, ignores: _Ignores, alembic: bool) -> None:
        try:
            with os.scandir(top) as it:
                entries = list(it)
        except OSError as e:
            self.skipped.setdefault(top, f"unreadable: {e.strerror}")
            return
        names = {e.name for e in entries}
        replay.note_dir(top)
        if self.gitignore and ".gitignore" in names:
            spec = self._spec(os.path.join(top, ".gitignore"))
            if spec is not None:
                ignores = (*ignores, (len(os.path.join(top, "")), spec))
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.name in SKIP_DIRS:
                    continue
                reason = self._ignored(entry.path, ignores, "/")
                if reason:
                    self.skipped.setdefault(entry.path, reason)
                    continue
                versions = entry.name == "versions" and not _ALEMBIC_MARKERS.isdisjoint(names)
                self._walk(entry.path, ignores, alembic or versions)
            elif replay.is_input(entry.name) and entry.is_file():
                replay.note_file(entry.path)  # pyproject, lock and requirements files, .gitignore, alembic.ini
            elif entry.name.endswith(".py") and entry.is_file():
                replay.note_file(entry.path)
                reason = self._ignored(entry.path, ignores, "") or (ALEMBIC_REASON if alembic else None)
                if reason:
                    self.skipped.setdefault(entry.path, reason)
                else:
                    self.found.add(entry.path)

    def _ignored(self, path: str, ignores: _Ignores, slash: str) -> str | None:
        # the trailing slash lets directory-only patterns such as `build/` match
        if self.exclude is not None and path.startswith(self.root_dir):
            result = self.exclude.check(path[len(self.root_dir) :] + slash)
            if result is not None and result.include and result.index is not None:
                return f"excluded by {self.exclude_patterns[result.index]!r}"
        # the deepest .gitignore that says anything about the path decides, as in git
        for prefix, spec in reversed(ignores):
            result = spec.check(path[prefix:] + slash)
            if result is not None and result.include is not None:
                return "gitignored" if result.include else None
        return None


def _spec_of(lines: list[str]) -> pathspec.GitIgnoreSpec:
    import pathspec  # only for a project with ignore files or excludes: a snapshot's run walks nothing

    return pathspec.GitIgnoreSpec.from_lines(lines)


def _read_gitignore(file: str) -> _Ignore | None:
    try:
        with open(file, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    try:
        spec = _spec_of(lines)
    except ValueError:
        # git skips a malformed line and keeps the rest
        spec = _spec_of([line for line in lines if _valid(line)])
    return _ignore(spec) if any(p.include is not None for p in spec.patterns) else None


def _valid(line: str) -> bool:
    try:
        _spec_of([line])
    except ValueError:
        return False
    return True
