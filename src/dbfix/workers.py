"""Worker processes that each own a fixed share of the files for the whole run.

A file is parsed once: the worker that reads it for the index keeps its tree for the index's second pass
and for detection, because a file always goes to the same worker (`Shards.owner`). A pool that hands
tasks to whichever process is free parsed every model file three times and restarted per phase; two
workers then did barely better than one. The run's shared state (the preliminary index, the job) is
sent once per worker and phase, never per task.

The parent process owns one share itself: it would only wait for the workers otherwise, and its share
needs no pickling, neither the phase's state nor the results (on polar, 0.03 s per phase and worker to
load the job alone). So `count` shares take `count - 1` worker processes.

Workers start on first use (a run that finds everything cached never pays) and are never nested.
"""

from __future__ import annotations

import pickle
import traceback
import zlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_SHARED: Any = None


def shared() -> Any:
    """In a worker (or in-process): the state the current phase was started with."""
    return _SHARED


def _serve(conn: Any) -> None:
    global _SHARED
    from dbfix.collector import pause_collector

    pause_collector()  # inherited on fork; set again for a spawned worker
    while True:
        try:
            message = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if message is None:
            return
        fn, tasks, state = message
        _SHARED = pickle.loads(state) if state is not None else None
        try:
            conn.send((True, [fn(task) for task in tasks]))
        except BaseException:  # noqa: BLE001 - reported to the parent, which redoes the share itself
            conn.send((False, traceback.format_exc(limit=8)))


class Shards:
    """`count` shares: share 0 in this process, each other in a worker process of its own; `map` runs
    each task in the process that owns its key."""

    def __init__(self, count: int, preload: Callable[[], object] | None = None) -> None:
        self.count = count
        self._preload = preload  # imports every worker needs, done once here before a fork shares them
        self._conns: list[Any] = []
        self._procs: list[Any] = []

    def owner(self, key: str) -> int:
        return zlib.crc32(key.encode("utf-8", "surrogateescape")) % self.count

    def _start(self) -> None:
        if self._preload is not None:
            self._preload()
        import multiprocessing  # here: a run that needs no workers does not pay for it

        context = multiprocessing.get_context()
        for _ in range(self.count - 1):
            parent, child = context.Pipe()
            process = context.Process(target=_serve, args=(child,), daemon=True)
            process.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(process)

    def map(self, fn: Callable[[T], R], tasks: Sequence[tuple[str, T]], *, state: object = None) -> list[R]:
        """`fn(task)` for every (key, task), each in its key's process; results in the order of `tasks`."""
        global _SHARED
        if not self._procs and self.count > 1:
            self._start()
        shares: list[list[int]] = [[] for _ in range(self.count)]
        for position, (key, _) in enumerate(tasks):
            shares[self.owner(key)].append(position)
        blob = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL) if state is not None and self._conns else None  # once for all
        sent: list[str | None] = []  # per worker: None, or why it has no answer coming
        for conn, share in zip(self._conns, shares[1:]):
            try:
                conn.send((fn, [tasks[i][1] for i in share], blob))
                sent.append(None)
            except OSError as exc:  # it ended since the last phase (killed, out of memory)
                sent.append(f"the worker process ended: {exc!r}")
        results: list[Any] = [None] * len(tasks)
        _SHARED = state
        try:
            for i in shares[0]:
                results[i] = fn(tasks[i][1])
        except BaseException:
            # the workers finish their share (a file being written is written whole; on Ctrl-C they stop
            # too), and their answers are read, or the next phase would read them as its own
            self._drain(sent)
            raise
        failure = None
        for conn, share, gone in zip(self._conns, shares[1:], sent):
            try:
                ok, payload = (False, gone) if gone else conn.recv()
            except (EOFError, OSError) as exc:
                ok, payload = False, f"the worker process ended: {exc!r}"
            if not ok:
                failure = payload
                payload = [fn(tasks[i][1]) for i in share]  # done here instead
            for i, result in zip(share, payload):
                results[i] = result
        if failure is not None:
            self.close()  # a broken worker is not used again; the next phase starts fresh ones
        return results

    def _drain(self, sent: list[str | None]) -> None:
        for conn, gone in zip(self._conns, sent):
            try:
                if not gone:
                    conn.recv()
            except (EOFError, OSError):
                pass
        self.close()

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.send(None)
            except OSError:
                pass  # it has ended: its end of the pipe is closed
            conn.close()
        for process in self._procs:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
        self._conns, self._procs = [], []

    def __enter__(self) -> Shards:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_here(fn: Callable[[T], R], tasks: Sequence[tuple[str, T]], *, state: object = None) -> list[R]:
    """What `Shards.map` does, in this process (small runs, one job)."""
    global _SHARED
    _SHARED = state
    return [fn(task) for _, task in tasks]
