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


_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


class TreeNodes:
    """One walk of a module, shared by the index's contributors and by every rule's detection.

    Nodes in source order (depth first), each node's parent, and the nodes outside function bodies
    (a `def` or `lambda` itself counts as outside; what it contains does not).
    """

    __slots__ = ("by_type", "outside_by_type", "parents")

    def __init__(self, tree: ast.AST) -> None:
        by_type: dict[type, list[ast.AST]] = {}
        outside_by_type: dict[type, list[ast.AST]] = {}
        parents: dict[int, ast.AST] = {}
        stack: list[tuple[ast.AST, bool]] = [(tree, False)]
        while stack:
            node, inside = stack.pop()
            kind = node.__class__
            by_type.setdefault(kind, []).append(node)
            if not inside:
                outside_by_type.setdefault(kind, []).append(node)
            inner = inside or isinstance(node, _FUNCTIONS)
            kids = children(node)
            for child in kids:
                parents[id(child)] = node
            stack.extend((child, inner) for child in reversed(kids))
        self.by_type, self.outside_by_type, self.parents = by_type, outside_by_type, parents

    def of(self, *types: type, outside_functions: bool = False) -> list:
        """Every node of the given types (one type: in source order)."""
        found = self.outside_by_type if outside_functions else self.by_type
        if len(types) == 1:
            return found.get(types[0], [])
        return [n for t in types for n in found.get(t, [])]


def tree_nodes(tree: ast.AST) -> TreeNodes:
    """The shared walk of `tree`, made on first use and kept on the tree itself."""
    nodes = getattr(tree, "dbfix_nodes", None)
    if nodes is None:
        nodes = TreeNodes(tree)
        tree.dbfix_nodes = nodes  # type: ignore[attr-defined]
    return nodes


def outside_functions(tree: ast.AST, kind: type) -> list:
    """The nodes of one type outside function bodies, in source order (a `def` itself counts as outside).

    The index needs only these: walking into function bodies (most of a test module) for it cost more
    than parsing. Taken from the full walk when a rule already made it.
    """
    full = getattr(tree, "dbfix_nodes", None)
    if full is not None:
        return full.of(kind, outside_functions=True)
    found: dict[type, list[ast.AST]] | None = getattr(tree, "dbfix_outside", None)
    if found is None:
        found = {}
        stack: list[ast.AST] = [tree]
        while stack:
            node = stack.pop()
            found.setdefault(node.__class__, []).append(node)
            if not isinstance(node, _FUNCTIONS):
                stack.extend(reversed(children(node)))
        tree.dbfix_outside = found  # type: ignore[attr-defined]
    return found.get(kind, [])
