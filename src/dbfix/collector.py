"""When Python's cycle collector runs during a run.

A run builds millions of small objects (`ast` trees, facts) that live until it ends. Each collection
re-scans every object still young, and `ast.parse` allocates fast enough to set one off every few
files: with the collector on, even at thresholds of 50,000/20/20, parsing took twice as long (polar,
`-j1`: 1.12 s of `ast.parse` against 0.53 s with it off). Reference counts free what that work leaves
behind, but for cycles: the walks kept on a tree refer back to it, so they are dropped when the tree
is done with (`dbfix.astwalk.release`), and the code avoids making others. libcst's trees and fixes do
leave cycles (a 20k-file `apply` peaked 54 MB higher without the collector), so the collector is
turned on before the first libcst work. `verify` runs the project's code in a child process of its own.
"""

from __future__ import annotations

import gc


def pause_collector() -> None:
    """At the start of a process: no cycle collection while the `ast` passes run."""
    gc.disable()


def collect_cycles() -> None:
    """Before libcst runs in this process: collect cycles from now on, seldom."""
    if not gc.isenabled():
        gc.set_threshold(50_000, 20, 20)
        gc.enable()
