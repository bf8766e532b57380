"""The on-disk cache: per-file index facts and findings, keyed by content, version, config and the project."""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from dbfix import __version__

CACHE_DIR = ".dbfix_cache"
_FILE = f"cache-{__version__}.pickle"


def _code_stamp() -> str:
    """A digest of dbfix's own files: a cache written by other code (an upgrade, a checkout) is never read."""
    from dbfix.replay import code_stamp

    return digest(*code_stamp())[:12]


# (key, the findings of that content, (fixed source, applied, remaining) when fixes change it,
#  the notice of a file that could not be checked)
CacheEntry = tuple[str, list, "tuple[str, list, list] | None", "str | None"]


def digest(*parts: bytes | str) -> str:
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()


def unchanged_content(stamps: dict[str, tuple[tuple[int, int], str, bool]], path: Path) -> tuple[str, bool] | None:
    """(content digest, prefilter verdict) from `stamps` if the file's size and mtime are as recorded."""
    known = stamps.get(str(path))
    if known is None:
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    return (known[1], known[2]) if known[0] == (stat.st_size, stat.st_mtime_ns) else None


@dataclass
class Cache:
    """What a previous run learned. Entries are looked up by exact keys; stale ones are simply not found."""

    path: Path | None
    # (path, content digest) -> pass-one module facts (bindings and instances: depend on the file alone)
    first: dict[tuple[str, str], object] = field(default_factory=dict)
    # (path, content digest, digest of every file's pass-one facts) -> complete module facts
    second: dict[tuple[str, str, str], object] = field(default_factory=dict)
    # path -> (key of content + run settings + whole-index digest, findings, fixed or None)
    findings: dict[str, CacheEntry] = field(default_factory=dict)
    # path -> ((size, mtime_ns), content digest, passes the index prefilter): files unchanged since are not read
    stamps: dict[str, tuple[tuple[int, int], str, bool]] = field(default_factory=dict)
    # folder -> (size and mtime of its version files, the TargetVersions read from them)
    versions: dict[str, tuple[tuple, object]] = field(default_factory=dict)
    dirty: bool = False

    def content_of(self, path: Path) -> tuple[str, bool] | None:
        """(content digest, prefilter verdict) of a file whose size and mtime are as recorded, else None."""
        return unchanged_content(self.stamps, path)

    def remember(self, path: str, stamp: tuple[int, int], content: str, matters: bool) -> None:
        """A file's (size, mtime) as it was read, its content digest and its prefilter verdict."""
        if self.path is None:
            return
        self.stamps[path] = (stamp, content, matters)
        self.dirty = True

    @classmethod
    def load(cls, directory: Path | None) -> Cache:
        if directory is None:
            return cls(None)
        path = directory / _FILE.replace(".pickle", f"-{_code_stamp()}.pickle")
        try:
            with path.open("rb") as handle:
                data = pickle.load(handle)
            return cls(path, data["first"], data["second"], data["findings"], data["stamps"], data["versions"])
        except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, AttributeError, ImportError):
            return cls(path)  # no cache, or one from another dbfix: start afresh

    def save(self, used: set[str] | None = None) -> None:
        """Write atomically, keeping only the entries of files seen in this run (`used`)."""
        if self.path is None or not self.dirty:
            return
        if used is not None:
            self.first = {k: v for k, v in self.first.items() if k[0] in used}
            self.second = {k: v for k, v in self.second.items() if k[0] in used}
        directory = self.path.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
            ignore = directory / ".gitignore"
            if not ignore.exists():
                ignore.write_text("# Created by dbfix automatically.\n*\n")
            fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
            with os.fdopen(fd, "wb") as handle:
                pickle.dump(
                    {
                        "first": self.first,
                        "second": self.second,
                        "findings": self.findings,
                        "stamps": self.stamps,
                        "versions": self.versions,
                    },
                    handle,
                    protocol=pickle.HIGHEST_PROTOCOL,
                )
            os.replace(tmp, self.path)
            for stale in directory.glob("cache-*.pickle"):
                if stale != self.path:
                    stale.unlink(missing_ok=True)  # written by another dbfix: never read again
        except OSError:
            pass  # a read-only checkout still gets its results, just not cached
