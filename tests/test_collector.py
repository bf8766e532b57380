"""The cycle collector is off while `ast` work runs, and on before libcst's."""

from __future__ import annotations

import gc

from dbfix.collector import pause_collector
from dbfix.cstedit import apply_edits


def test_libcst_work_turns_the_collector_back_on():
    was, threshold = gc.isenabled(), gc.get_threshold()
    try:
        pause_collector()
        assert not gc.isenabled()
        assert apply_edits("x = 1\n", []) == "x = 1\n"
        assert gc.isenabled()
        assert gc.get_threshold()[0] >= 10_000  # and seldom: the run's trees are still alive
    finally:
        gc.set_threshold(*threshold)
        (gc.enable if was else gc.disable)()
