"""Where a cold `dbfix check` spends its time, phase by phase: the figures behind the README's account.

    python bench/phases.py TREE [--jobs 2] [--repeat 3]

Runs `dbfix check --no-cache -q .` in TREE (a project's root) in this process (as the `dbfix` command does: the cycle
collector off), with timers around the run's phases and the parts of a phase that cost most, and prints
the median of each over the repeats. With `--jobs 1` every part is this process's CPU time; with more,
a parallel phase's time is this process's share plus its wait for the workers. What a command pays
once (starting Python, importing dbfix, `packaging` for the versions) is paid by the first run only:
`bench/compare.py` times whole commands.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import gc
import io
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

_START = time.perf_counter()
from dbfix import cli, engine, index, skeleton, workers

IMPORTS = time.perf_counter() - _START

Timings = dict[str, float]


def _timed(owner: object, name: str, label: str, into: Timings) -> Callable[[], None]:
    """Wrap `owner.name` so that its time adds up in `into[label]`; returns the undo."""
    original = getattr(owner, name)

    def wrapper(*args: object, **kwargs: object) -> object:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            into[label] += time.perf_counter() - start

    setattr(owner, name, wrapper)
    return lambda: setattr(owner, name, original)


_PHASES = {"_first_pass": "first pass", "_second_pass": "second pass"}


def _phase_runs(into: Timings) -> Callable[[], None]:
    """Time the index's two passes, whether a pool maps them (`Shards.map`) or this process alone does
    (`run_here`: one process, or too few files to pay for the workers)."""
    original_map, original_here = workers.Shards.map, index.run_here

    def map_(self: workers.Shards, fn: Callable, tasks: list, *, state: object = None) -> list:
        start = time.perf_counter()
        try:
            return original_map(self, fn, tasks, state=state)
        finally:
            into[_PHASES.get(fn.__name__, fn.__name__)] += time.perf_counter() - start

    def here(fn: Callable, tasks: list, *, state: object = None) -> list:
        start = time.perf_counter()
        try:
            return original_here(fn, tasks, state=state)
        finally:
            into[_PHASES.get(fn.__name__, fn.__name__)] += time.perf_counter() - start

    workers.Shards.map, index.run_here = map_, here  # type: ignore[method-assign]

    def undo() -> None:
        workers.Shards.map, index.run_here = original_map, original_here  # type: ignore[method-assign]

    return undo


def one_run(tree: Path, jobs: int) -> Timings:
    into: Timings = defaultdict(float)
    undo = [
        _timed(engine, "discover", "walk the tree", into),
        _timed(engine, "versions_of", "read the versions", into),
        _timed(engine, "_run_files", "detection", into),  # the files' pass, in a pool or not
        _timed(ast, "parse", "  ast.parse", into),
        _timed(skeleton, "skeleton", "  skeletons' text", into),
        _timed(index, "ModuleNames", "  module names (index)", into),
        _timed(index, "_only_rules", "  text tests (index)", into),
        _timed(engine, "detect", "  rules (detect)", into),
        _phase_runs(into),
    ]
    cwd, argv = os.getcwd(), sys.argv
    os.chdir(tree)
    sys.argv = ["dbfix", "check", "--no-cache", "-q", "--jobs", str(jobs), "."]
    gc.disable()  # as `dbfix.replay.main` does (see `dbfix.collector`); a run may have turned it on
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
            cli.main()
    finally:
        into["total"] = time.perf_counter() - start
        os.chdir(cwd)
        sys.argv = argv
        for restore in reversed(undo):
            restore()
        index.forget_trees()
    return into


ORDER = (
    "walk the tree", "read the versions", "first pass", "second pass", "detection",
    "  ast.parse", "  skeletons' text", "  module names (index)", "  text tests (index)", "  rules (detect)", "total",
)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tree", type=Path)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs = [one_run(args.tree.resolve(), args.jobs) for _ in range(args.repeat)]
    print(f"dbfix check --no-cache on {args.tree} with {args.jobs} process(es), median of {args.repeat} runs (s):")
    print("  (indented: the costliest parts, summed over the whole run; with more than one process, this")
    print("  process's share only)")
    print(f"{'(importing dbfix, once)':28} {IMPORTS:7.3f}")
    for label in ORDER:
        values = [run.get(label, 0.0) for run in runs]
        print(f"{label:28} {statistics.median(values):7.3f}")
    rest = statistics.median(
        run["total"] - sum(run.get(k, 0.0) for k in ("walk the tree", "read the versions", "first pass", "second pass", "detection"))
        for run in runs
    )
    print(f"{'(the rest: start, report)':28} {rest:7.3f}")


if __name__ == "__main__":
    main()
