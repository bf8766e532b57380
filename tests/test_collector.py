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


def test_a_tree_detection_is_done_with_is_freed_without_the_collector(tmp_path):
    """The rules' walk kept on a tree refers back to it; detection breaks that cycle when it is done."""
    import ast
    import weakref

    from dbfix.codemod import all_codemods
    from dbfix.config import Config
    from dbfix.engine import detect
    from dbfix.index import build_index
    from dbfix.names import ModuleNames
    from dbfix.versions import TargetVersions

    source = (
        "import enum\nfrom sqlalchemy import Enum\nfrom sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column\n\n"
        "class Role(enum.Enum):\n    ADMIN = 'admin'\n\nclass Base(DeclarativeBase):\n    pass\n\n"
        "class User(Base):\n    __tablename__ = 'users'\n    id: Mapped[int] = mapped_column(primary_key=True)\n"
        "    role = mapped_column(Enum(Role))\n"
    )
    (tmp_path / "models.py").write_text(source)
    index = build_index([(tmp_path / "models.py", None)], tmp_path)
    versions = TargetVersions(python=(3, 12), sqlalchemy=(2, 0), sqlmodel=None, pydantic=None)
    was = gc.isenabled()
    gc.disable()
    try:
        tree = ast.parse(source)
        alive = weakref.ref(tree)
        parsed = (tree, frozenset(), ModuleNames(tree, "models", shallow=True), False)
        del tree
        found = detect(source, "models.py", ("models", False), index, Config(), versions, list(all_codemods()), parsed)
        assert [f.code for f in found] == ["DBF002"]  # the rules walked the tree
        del parsed
        assert alive() is None
    finally:
        (gc.enable if was else gc.disable)()


def test_the_index_leaves_no_tree_to_the_collector(tmp_path, monkeypatch):
    """Trees the index does not keep (over its budget, or parsed again in the second pass for a file the
    cache gave the first pass of) are freed by reference counts."""
    import ast
    from pathlib import Path

    import dbfix.index
    from dbfix.index import build_index, forget_trees

    fixtures = sorted((Path(__file__).parent / "fixtures").rglob("*.py"))
    monkeypatch.setattr(dbfix.index, "_KEEP_TREES_BYTES", 0)
    was = gc.isenabled()
    gc.disable()
    try:
        gc.collect()
        index = build_index([(p, None) for p in fixtures], Path(__file__).parent / "fixtures")
        assert len(index.modules) > 100
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        left = [o for o in gc.garbage if isinstance(o, ast.Module)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        forget_trees()
        (gc.enable if was else gc.disable)()
    assert left == []
