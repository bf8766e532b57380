"""Name resolution (`dbfix.names`): answers that do not depend on the order of the questions."""

from __future__ import annotations

import ast

from dbfix.names import ModuleNames

SOURCE = """\
from sqlalchemy import Enum

def reset():
    global Enum
    Enum = make()
    return Enum

column_type = Enum
"""


def _names() -> tuple[ModuleNames, ast.Name, ast.Name]:
    tree = ast.parse(SOURCE)
    parents = {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    uses = {n.lineno: n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == "Enum" and isinstance(n.ctx, ast.Load)}
    return ModuleNames(tree, "m", parent_of=lambda n: parents.get(id(n))), uses[6], uses[8]


def test_a_function_rebinding_a_module_name_does_not_change_what_the_module_means():
    """Function bodies are walked when a name inside is asked about: a `global` in one must not change
    the module-level answer (the index, which walks no body, gives that answer too)."""
    names, inside, outside = _names()
    assert names.qualname(outside) == "sqlalchemy.Enum"
    assert names.qualname(inside) is None  # run-time state inside the function
    assert names.qualname(outside) == "sqlalchemy.Enum"  # the same after the function was walked
    names, inside, outside = _names()
    assert names.qualname(inside) is None and names.qualname(outside) == "sqlalchemy.Enum"
