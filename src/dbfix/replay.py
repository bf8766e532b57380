"""The `dbfix` command's entry point: an unchanged project's `check` is answered before anything loads.

A cached `dbfix check` still paid for importing click, rich and the engine and for rebuilding the index
from the cache: ten times ruff's cached run. A run of `check` therefore records what it read (the folders
it walked, with their mtimes, and the size and mtime of every file that can change its answer: sources,
.gitignore, pyproject and lock files, the installed packages' folders) together with what it printed.
The next identical command, from the same folder, in the same terminal, with dbfix's own code unchanged,
prints the recorded output if every stamp still matches; otherwise it runs normally and records anew.
This module imports only the standard library's small modules: it is what a cached run costs.
"""

from __future__ import annotations

import marshal
import os
import sys
import zlib

from dbfix.collector import pause_collector

CACHE_DIR = ".dbfix_cache"
_FORMAT = 1
# the environment that changes what a run prints (colours, width) or reads
_ENV = ("NO_COLOR", "FORCE_COLOR", "TERM", "COLUMNS", "LINES", "CI", "GITHUB_ACTIONS", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "PYTHONIOENCODING", "PYTHONUTF8")
# besides .py sources, the files whose content can change a run's answer (config, versions, ignores, Alembic)
_INPUT_SUFFIXES = (".toml", ".lock", ".txt", ".cfg", ".ini", ".mako", ".gitignore", "Pipfile")


def main() -> None:
    """`dbfix`: replay when nothing changed, else the click CLI (recording a `check` for next time)."""
    pause_collector()
    argv = sys.argv[1:]
    key = _key(argv) if _eligible(argv) else None
    if key is not None:
        recorded = _replayed(key)
        if recorded is not None:
            out, err, code = recorded
            sys.stdout.flush()
            sys.stdout.buffer.write(out)
            sys.stdout.flush()
            sys.stderr.buffer.write(err)
            sys.stderr.flush()
            sys.exit(code)
        global RECORDER
        RECORDER = Recorder(key, _file_clock(os.path.dirname(_record_path(key))))
        sys.stdout = _Tee(sys.stdout, RECORDER.out)  # type: ignore[assignment]
        sys.stderr = _Tee(sys.stderr, RECORDER.err)  # type: ignore[assignment]
    from dbfix.cli import main as cli

    try:
        cli()
    except SystemExit as exc:
        if RECORDER is not None:
            RECORDER.finish(exc.code)
        _exit(exc.code)


def _exit(code: object) -> None:
    """Leave without tearing down every object of the run one by one (the index alone took a fifth of
    a second, longer than checking a file in editor mode); the output is flushed first."""
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        code = code or 1  # a closed pipe: what could not be written is lost, as it would be anyway
    os._exit(code or 0)  # type: ignore[arg-type]


def _eligible(argv: list[str]) -> bool:
    # only `check`, with the default cache; stdin and explicit cache folders take the normal path
    if not argv or argv[0] != "check":
        return False
    return not any(a in ("--no-cache", "--help", "-h") or a.startswith(("--stdin-filename", "--cache-dir")) for a in argv)


def _project_root(start: str) -> str:
    """As `dbfix.config.find_project_root` finds it for the current folder."""
    folder = start
    while True:
        if os.path.isfile(os.path.join(folder, "pyproject.toml")) or os.path.exists(os.path.join(folder, ".git")):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return start
        folder = parent


def code_stamp() -> list[str]:
    """Path, size and mtime of dbfix's own files: what another dbfix (an upgrade, a checkout) recorded is not used."""
    import dbfix
    import dbfix.codemods

    parts = []
    for package in (dbfix, dbfix.codemods):
        for folder in package.__path__:
            for entry in sorted(os.scandir(folder), key=lambda e: e.name):
                if entry.name.endswith(".py"):
                    stat = entry.stat()
                    parts.append(f"{entry.path}:{stat.st_size}:{stat.st_mtime_ns}")
    return parts


def _key(argv: list[str]) -> tuple:
    from dbfix import __version__

    def terminal(stream: object) -> object:
        try:
            return os.get_terminal_size(stream.fileno()) if stream.isatty() else None  # type: ignore[attr-defined]
        except (OSError, ValueError, AttributeError):
            return None

    sizes = [tuple(s) if s else None for s in (terminal(sys.stdout), terminal(sys.stderr))]
    env = tuple(os.environ.get(name) for name in _ENV)
    return (_FORMAT, __version__, tuple(code_stamp()), sys.version, os.getcwd(), tuple(argv), env, tuple(sizes))


def _record_path(key: tuple) -> str:
    root = _project_root(os.getcwd())
    return os.path.join(root, CACHE_DIR, f"replay-{zlib.crc32(repr(key).encode()):08x}.marshal")


def _replayed(key: tuple) -> tuple[bytes, bytes, int] | None:
    try:
        with open(_record_path(key), "rb") as handle:
            record = marshal.loads(handle.read())  # one read: load() reads the file piece by piece
        if record["key"] != _jsonable(key):
            return None
        stat = os.stat
        for path, mtime in record["dirs"]:
            if stat(path).st_mtime_ns != mtime:
                return None
        for path, size, mtime in record["files"]:
            s = stat(path)
            if s.st_mtime_ns != mtime or s.st_size != size:
                return None
        return record["out"], record["err"], record["code"]
    except (OSError, EOFError, ValueError, TypeError, KeyError):
        return None


def _jsonable(value: object) -> object:
    # marshal keeps tuples, but comparing lists spares a conversion of the stored record
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value


class _Tee:
    """A text stream that also keeps what is written to it (as the bytes the real stream gets)."""

    def __init__(self, stream: object, sink: list[str]) -> None:
        self._stream = stream
        self._sink = sink

    def write(self, text: str) -> int:
        if isinstance(text, str):  # click probes with b"" for a binary stream
            self._sink.append(text)
        return self._stream.write(text)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


def _file_clock(folder: str) -> int | None:
    """The file system's idea of now (its mtimes may run on a coarser clock than `time.time_ns`).

    Made here and now, not during the run: the cache folder created meanwhile would move its parent's mtime.
    """
    try:
        os.makedirs(folder, exist_ok=True)
        clock = os.path.join(folder, ".clock")
        with open(clock, "wb"):
            pass
        return os.stat(clock).st_mtime_ns
    except OSError:
        return None


class Recorder:
    """What one run read and printed; saved when the run ends cleanly (exit 0 or 1)."""

    def __init__(self, key: tuple, started: int | None) -> None:
        self.key = key
        self.started = started
        self.dirs: set[str] = set()
        self.files: set[str] = set()
        self.out: list[str] = []
        self.err: list[str] = []
        self.cache_dir: str | None = None
        self.root: str | None = None
        self.enabled = True

    def stamps(self, root: str | None) -> tuple[list[tuple[str, int]], list[tuple[str, int, int]]] | None:
        """(folders with their mtimes, files with size and mtime) as they are now; None if any changed
        since the run started (what it printed or built may not match them)."""
        if self.started is None:
            return None
        try:
            outer = _outer_dirs(os.getcwd(), root) if root else set()
            dirs = {d: os.stat(d).st_mtime_ns for d in self.dirs | outer | _installed_dirs()}
            files = {}
            for path in self.files:
                s = os.stat(path)
                files[path] = (s.st_size, s.st_mtime_ns)
        except OSError:
            return None
        if any(m >= self.started for m in dirs.values()) or any(m >= self.started for _, m in files.values()):
            return None
        return sorted(dirs.items()), sorted((p, s, m) for p, (s, m) in files.items())

    def finish(self, code: object) -> None:
        if not self.enabled or code not in (0, 1, None) or self.cache_dir is None:
            return
        if os.path.abspath(self.cache_dir) != os.path.dirname(_record_path(self.key)):
            return  # a configured cache folder: the fast path would not look there
        stamps = self.stamps(self.root)
        if stamps is None:
            return
        try:
            record = {
                "key": _jsonable(self.key),
                "dirs": stamps[0],
                "files": stamps[1],
                "out": "".join(self.out).encode(getattr(sys.stdout, "encoding", None) or "utf-8", "replace"),
                "err": "".join(self.err).encode(getattr(sys.stderr, "encoding", None) or "utf-8", "replace"),
                "code": int(code or 0),
            }
            path = _record_path(self.key)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "wb") as handle:
                marshal.dump(record, handle)
            os.replace(tmp, path)
            _prune(os.path.dirname(path))
        except (OSError, ValueError):
            pass  # a read-only checkout: the next run is simply not replayed


def _prune(folder: str, keep: int = 8) -> None:
    """Keep the records of the few most recent commands (each differs in arguments, folder or terminal)."""
    records = [e for e in os.scandir(folder) if e.name.startswith("replay-") and e.name.endswith(".marshal")]
    for entry in sorted(records, key=lambda e: e.stat().st_mtime_ns, reverse=True)[keep:]:
        try:
            os.unlink(entry.path)
        except OSError:
            pass


def _outer_dirs(start: str, root: str) -> set[str]:
    """The folders from `start` up to the project root: a pyproject.toml or .git added there moves the root."""
    found: set[str] = set()
    folder = start
    while folder.startswith(root) and folder not in found:
        found.add(folder)
        folder = os.path.dirname(folder)
    return found


def _installed_dirs() -> set[str]:
    """The package folders on sys.path: installing or upgrading a package changes the versions a run may
    read. (Not the script's own folder, which sys.path also holds: /tmp's mtime changes all the time.)"""
    return {p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and os.path.isdir(p)}


RECORDER: Recorder | None = None


def note_dir(path: str) -> None:
    """Discovery walked this folder (its mtime changes when an entry is added, removed or renamed)."""
    if RECORDER is not None:
        RECORDER.dirs.add(path)


def note_file(path: str) -> None:
    """The run read this file, or its answer depends on it."""
    if RECORDER is not None:
        RECORDER.files.add(path)


def is_input(name: str) -> bool:
    """Besides .py sources: a file whose content can change a run's answer."""
    return name.endswith(_INPUT_SUFFIXES)


def disable() -> None:
    """What this run printed is not worth replaying (a progress bar, a partial run)."""
    if RECORDER is not None:
        RECORDER.enabled = False
