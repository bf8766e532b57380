"""A process pool that gives every worker the run's shared state (the index, the job) once.

Sending the index with each task made every share unpickle its own copy and recompute the project-wide
answers (names, FK graph) the rules memoize on it: two workers did more than twice one process's work.
Here the state is an initializer argument: inherited without pickling when the pool forks, pickled once
per worker otherwise. A pool is started on first use, so a run that finds everything cached never pays.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_SHARED: Any = None


def _install(shared: object) -> None:
    global _SHARED
    _SHARED = shared


def shared() -> Any:
    """In a worker: the state the pool was started with."""
    return _SHARED


class Workers:
    """At most one pool at a time; asking with other shared state replaces it (never nested)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._pool: ProcessPoolExecutor | None = None
        self._shared: object = None

    def map(self, fn: Callable[[T], R], tasks: Iterable[T], *, shared: object = None, chunksize: int = 1) -> Iterator[R]:
        if self._pool is None or self._shared is not shared:
            self.shutdown()
            self._pool = ProcessPoolExecutor(max_workers=self.count, initializer=_install, initargs=(shared,))
            self._shared = shared
        return self._pool.map(fn, tasks, chunksize=chunksize)

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool, self._shared = None, None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
