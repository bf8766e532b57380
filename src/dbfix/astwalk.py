"""`ast.iter_child_nodes` and `ast.walk`, without their cost: they were a third of a cold run.

The standard library's versions are generators over every field of every node, `ctx` included (a
`Load`/`Store` singleton under each name). These read only the fields that can hold nodes, in the same
order, and skip `ctx`: no rule looks at a context node itself, only at `node.ctx`.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterator

# fields that never hold a node a rule walks to (strings, numbers, flags, and the context singletons)
_LEAF_FIELDS = frozenset(
    {"ctx", "id", "attr", "arg", "name", "kind", "type_comment", "level", "module", "conversion", "is_async", "simple", "tag"}
)
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}
_AST = ast.AST


def _fields_of(cls: type) -> tuple[str, ...]:
    fields = _CHILD_FIELDS.get(cls)
    if fields is None:
        fields = _CHILD_FIELDS[cls] = tuple(f for f in cls._fields if f not in _LEAF_FIELDS)  # type: ignore[attr-defined]
    return fields


def children(node: ast.AST) -> list[ast.AST]:
    """The child nodes of `node`, in `ast.iter_child_nodes` order (without `ctx`)."""
    found: list[ast.AST] = []
    for name in _CHILD_FIELDS.get(node.__class__) or _fields_of(node.__class__):
        value = getattr(node, name, None)
        if value.__class__ is list:
            for item in value:
                if isinstance(item, _AST):
                    found.append(item)
        elif isinstance(value, _AST):
            found.append(value)
    return found


def walk(node: ast.AST) -> Iterator[ast.AST]:
    """Every node below and including `node`, breadth first like `ast.walk` (without `ctx`)."""
    todo = deque([node])
    while todo:
        current = todo.popleft()
        todo.extend(children(current))
        yield current
