"""The shards: one share runs in this process, the others in workers; a failure anywhere is handled."""

from __future__ import annotations

import os
import time

import pytest

from dbfix.workers import Shards, shared

PARENT = os.getpid()


def _where(task: int) -> tuple[int, int, object]:
    return task, os.getpid(), shared()


def _fails_in_a_worker(task: int) -> int:
    if os.getpid() != PARENT:
        raise RuntimeError("broken worker")
    return task


def _fails_here(task: int) -> int:
    if os.getpid() == PARENT:
        raise ValueError("broken here")
    return task


def _slow_write_or_fail_here(task: tuple[str, int]) -> int:
    folder, number = task
    if os.getpid() == PARENT:
        raise ValueError("broken here")
    time.sleep(0.05)  # still writing when the parent fails
    with open(os.path.join(folder, f"{number}.done"), "w") as handle:
        handle.write("whole")
    return number


def _tasks(count: int) -> list[tuple[str, int]]:
    return [(f"file_{i}.py", i) for i in range(count)]


def test_each_share_runs_in_its_own_process_and_share_zero_here():
    with Shards(3) as pool:
        tasks = _tasks(60)
        results = pool.map(_where, tasks, state={"phase": 1})
        assert [r[0] for r in results] == list(range(60))  # in the order of the tasks
        assert {r[2]["phase"] for r in results} == {1}  # every process got the state
        by_share: dict[int, set[int]] = {}
        for (key, _), (_, pid, _) in zip(tasks, results):
            by_share.setdefault(pool.owner(key), set()).add(pid)
        assert by_share[0] == {PARENT}
        assert all(len(pids) == 1 for pids in by_share.values()) and len({p for s in by_share.values() for p in s}) == 3
        again = pool.map(_where, tasks)
        assert [r[1] for r in again] == [r[1] for r in results]  # a file stays with its process


def test_a_broken_worker_share_is_redone_here():
    with Shards(2) as pool:
        assert pool.map(_fails_in_a_worker, _tasks(20)) == list(range(20))


def test_a_failure_here_raises_and_the_next_phase_starts_clean():
    with Shards(2) as pool:
        with pytest.raises(ValueError):
            pool.map(_fails_here, _tasks(20))
        assert [r[0] for r in pool.map(_where, _tasks(20))] == list(range(20))


def test_a_failure_here_lets_the_workers_finish_what_they_write(tmp_path):
    tasks = [(f"file_{i}.py", (str(tmp_path), i)) for i in range(20)]
    with Shards(2) as pool:
        with pytest.raises(ValueError):
            pool.map(_slow_write_or_fail_here, tasks)
        theirs = [number for key, (_, number) in tasks if pool.owner(key) != 0]
    assert theirs and sorted(int(p.stem) for p in tmp_path.glob("*.done")) == sorted(theirs)



def test_a_worker_that_died_between_phases_has_its_share_done_here():
    import signal

    tasks = _tasks(40)
    with Shards(2) as pool:
        first = pool.map(_where, tasks, state={"phase": 1})
        worker = next(pid for _, pid, _ in first if pid != PARENT)
        os.kill(worker, signal.SIGKILL)
        os.waitpid(worker, 0)
        again = pool.map(_where, tasks, state={"phase": 2})
    assert [r[0] for r in again] == list(range(40)) and {r[2]["phase"] for r in again} == {2}
    assert {pid for _, pid, _ in again} == {PARENT}
