"""Editor mode's project snapshot: the whole index, valid while nothing it was built from has changed.

An editor runs `dbfix --stdin-filename` on every save. Walking the project, loading the cache and
rebuilding the index from it took most of half a second; the file itself takes a few milliseconds.
So a stdin run that had to build the index leaves it here, with what it was built from (the folders
walked, with their mtimes, and every file's size and mtime, as `dbfix.replay` records them). The next
stdin run in the project checks those stamps, and if the buffer it gets is what the index already holds
for that file (the usual case after a save), it uses the index as it is.
"""

from __future__ import annotations

import os
import pickle
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from dbfix import __version__, replay
from dbfix.cache import digest
from dbfix.config import Config
from dbfix.index import ProjectIndex, may_matter, module_name_for
from dbfix.versions import TargetVersions


@dataclass
class Snapshot:
    index: ProjectIndex
    versions: TargetVersions
    dirs: list[tuple[str, int]]
    files: list[tuple[str, int, int]]
    # the index and constraint names SQLAlchemy renders for the project (`schema.sa_rendered_name`):
    # a project with a naming convention would otherwise import SQLAlchemy on every save
    rendered: dict[str, str | None] = field(default_factory=dict)
    # the project-wide answers the rules computed on this index (schema view, FK graph): the same for
    # every file of the project, so computed on one save and read back on the next
    warm: dict[str, object] = field(default_factory=dict)

    def fits(self, path: Path, data: bytes, root: Path) -> bool:
        """Whether the index, built from the files on disk, already holds `data` for `path`."""
        module, _ = module_name_for(path, root)
        facts = self.index.modules.get(module)
        if facts is not None:
            return facts.digest == digest(data) and facts.path == str(path)
        return not may_matter(data) and path.name != "__init__.py"

    def unchanged(self) -> bool:
        try:
            return all(os.stat(d).st_mtime_ns == m for d, m in self.dirs) and all(
                (s := os.stat(p)).st_mtime_ns == m and s.st_size == size for p, size, m in self.files
            )
        except OSError:
            return False


def _file(cache_dir: Path, root: Path, config: Config) -> Path:
    key = repr((__version__, replay.code_stamp(), str(root), repr(config)))
    return cache_dir / f"editor-{zlib.crc32(key.encode()):08x}.pickle"


def load(cache_dir: Path, root: Path, config: Config) -> Snapshot | None:
    """The snapshot of this project and configuration, if there is one and nothing it read changed."""
    try:
        with open(_file(cache_dir, root, config), "rb") as handle:
            snapshot = pickle.loads(handle.read())
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, TypeError, ValueError):
        return None
    if not isinstance(snapshot, Snapshot) or not snapshot.unchanged():
        return None
    from dbfix import fkgraph, schema

    schema.remember_rendered(snapshot.rendered)
    if "view" in snapshot.warm:
        schema._BASE_VIEW[:] = [(snapshot.index, snapshot.warm["view"])]  # type: ignore[list-item]
    if "graph" in snapshot.warm:
        fkgraph._BASE[:] = [(snapshot.index, snapshot.warm["graph"])]  # type: ignore[list-item]
    return snapshot


@contextmanager
def recording(cache_dir: Path) -> Iterator[replay.Recorder]:
    """Collect what discovery walks and reads while the index is built (see `dbfix.replay`)."""
    outer = replay.RECORDER
    recorder = replay.Recorder((), replay._file_clock(str(cache_dir)))
    replay.RECORDER = recorder
    try:
        yield recorder
    finally:
        replay.RECORDER = outer


def save(cache_dir: Path, root: Path, config: Config, recorder: replay.Recorder, index: ProjectIndex, versions: TargetVersions) -> None:
    stamps = recorder.stamps(str(root))
    if stamps is None:
        return  # something changed while it was read: no snapshot
    _write(cache_dir, root, config, Snapshot(index, versions, *stamps))


def refresh(cache_dir: Path, root: Path, config: Config, known: Snapshot) -> None:
    """Save `known` again if this check computed project-wide answers it lacked.

    A check whose findings came from the per-file cache computes none, so the snapshot it saved has
    none; every later save would compute them again from the index.
    """
    from dbfix import schema

    if _warm(known.index).keys() - known.warm.keys() or len(schema.rendered_names()) > len(known.rendered):
        _write(cache_dir, root, config, known)


def _warm(index: ProjectIndex) -> dict[str, object]:
    """The project-wide answers this process computed on `index` (what `load` puts back)."""
    from dbfix import fkgraph, schema

    warm: dict[str, object] = {}
    if schema._BASE_VIEW and schema._BASE_VIEW[0][0] is index:
        warm["view"] = schema._BASE_VIEW[0][1]
    if fkgraph._BASE and fkgraph._BASE[0][0] is index:
        warm["graph"] = fkgraph._BASE[0][1]
    return warm


def _write(cache_dir: Path, root: Path, config: Config, snapshot: Snapshot) -> None:
    from dbfix import schema

    path = _file(cache_dir, root, config)
    snapshot.rendered, snapshot.warm = schema.rendered_names(), _warm(snapshot.index)
    try:
        data = pickle.dumps(snapshot, protocol=pickle.HIGHEST_PROTOCOL)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        for stale in cache_dir.glob("editor-*.pickle"):
            if stale != path:
                stale.unlink(missing_ok=True)  # another dbfix or configuration: one snapshot per project
    except (OSError, pickle.PicklingError, TypeError, AttributeError):
        pass  # a read-only checkout (or state that does not pickle): the next run builds the index again
