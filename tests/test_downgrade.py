"""Newer syntax translated line for line for this Python's `ast`."""

from __future__ import annotations

import ast

import pytest

import dbfix.downgrade
from dbfix.downgrade import downgrade

GENERIC = """\
class Repository[
    M: Model[Any],
    ID,
](Base):
    x = 1


class Plain[
    T
]:
    pass


def first[
    T: (int, str)
](items: list[T]) -> T:
    return items[0]


def one_line[T: Base[int]](x: T) -> T:
    return x
"""


def test_type_parameters_over_several_lines_keep_every_line_in_place(monkeypatch):
    monkeypatch.setattr(dbfix.downgrade, "_by_libcst", lambda source: pytest.fail("libcst was not needed"))
    tree, changed = downgrade(GENERIC)  # type: ignore[misc]
    classes = {n.name: n for n in ast.walk(tree) if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    assert classes["Repository"].lineno == 1 and classes["Repository"].body[0].lineno == 5
    assert [ast.unparse(b) for b in classes["Repository"].bases] == ["Base"]
    assert classes["Plain"].bases == [] and classes["Plain"].body[0].lineno == 11
    assert [a.arg for a in classes["first"].args.args] == ["items"] and classes["first"].body[0].lineno == 17
    assert classes["one_line"].lineno == 20
    assert changed == {1, 2, 3, 4, 8, 9, 10, 14, 15, 16, 20}  # findings there are dropped


def test_syntax_libcst_cannot_translate_either_does_not_go_through_it(monkeypatch):
    monkeypatch.setattr(dbfix.downgrade, "_by_libcst", lambda source: pytest.fail("libcst cannot help here"))
    assert downgrade('name = "x"\ngreeting = f"{name + f"{1}"}"\n') is None  # a nested f-string quote (3.12)
