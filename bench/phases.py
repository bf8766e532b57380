"""Where a cold `dbfix check` spends its time, phase by phase: the figures behind the README's account.

    python bench/phases.py TREE [--jobs 2] [--repeat 3]

Runs `dbfix check --no-cache -q .` in TREE (a project's root) in this process (as the `dbfix` command
does: the cycle collector off), with timers around the run's phases and the parts that cost most, and
prints the median of each over the repeats. With `--jobs 1` every part is this process's CPU time; with more,
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


def _timed(owner: object, name: str, label: str | Callable[..., str], into: Timings) -> Callable[[], None]:
    """Wrap `owner.name` so that its time adds up in `into[label]` (or the label `label(*args)` gives);
    returns the undo."""
    original = getattr(owner, name)

    def wrapper(*args: object, **kwargs: object) -> object:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            into[label(*args) if callable(label) else label] += time.perf_counter() - start

    setattr(owner, name, wrapper)
    return lambda: setattr(owner, name, original)


_PASSES = {"_first_pass": "first pass", "_second_pass": "second pass"}


def _pass(fn: Callable) -> str:
    return _PASSES.get(fn.__name__, fn.__name__)


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
        # the index's two passes, mapped by the pool or run in this process (one process, or too few files)
        _timed(workers.Shards, "map", lambda _pool, fn, *_: _pass(fn), into),
        _timed(index, "run_here", lambda fn, *_: _pass(fn), into),
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


PHASES = ("walk the tree", "read the versions", "first pass", "second pass", "detection")
PARTS = ("  ast.parse", "  skeletons' text", "  module names (index)", "  text tests (index)", "  rules (detect)")


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
    for label in (*PHASES, *PARTS, "total"):
        values = [run.get(label, 0.0) for run in runs]
        print(f"{label:28} {statistics.median(values):7.3f}")
    rest = statistics.median(
        run["total"] - sum(run.get(k, 0.0) for k in PHASES) for run in runs
    )
    print(f"{'(the rest: start, report)':28} {rest:7.3f}")


if __name__ == "__main__":
    main()
