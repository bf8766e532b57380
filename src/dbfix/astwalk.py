"""`ast.iter_child_nodes` without its cost (walks were a third of a cold run), and the walks built on it.

The standard library's version is a generator over every field of every node, `ctx` included (a
`Load`/`Store` singleton under each name). `children` reads only the fields that can hold nodes, in the
same order, and skips `ctx`: no rule looks at a context node itself, only at `node.ctx`.
"""

from __future__ import annotations

import ast

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


_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_LEAVE = object()  # on the walk's stack: the function whose children were pushed before it is done


class TreeNodes:
    """One walk of a module, shared by the index and every rule's detection: nodes in source order
    (depth first), the same for those outside function bodies, and each node's parent."""

    __slots__ = ("by_type", "outside", "parents")

    def __init__(self, tree: ast.AST) -> None:
        by_type: dict[type, list[ast.AST]] = {}
        outside: dict[type, list[ast.AST]] = {}
        parents: dict[int, ast.AST] = {}
        stack: list = [tree]
        depth = 0  # how many functions the nodes now on top of the stack are in
        fields_of = _CHILD_FIELDS
        while stack:
            node = stack.pop()
            if node is _LEAVE:
                depth -= 1
                continue
            kind = node.__class__
            found = by_type.get(kind)
            if found is None:
                by_type[kind] = [node]
            else:
                found.append(node)
            if not depth:
                outside.setdefault(kind, []).append(node)
            kids: list[ast.AST] = []  # `children`, inlined: this loop runs for every node of a module
            for name in fields_of.get(kind) or _fields_of(kind):
                value = getattr(node, name, None)
                if value.__class__ is list:
                    for item in value:
                        if isinstance(item, _AST):
                            kids.append(item)
                            parents[id(item)] = node
                elif isinstance(value, _AST):
                    kids.append(value)
                    parents[id(value)] = node
            if kind in _FUNCTIONS:
                depth += 1
                stack.append(_LEAVE)
            kids.reverse()
            stack.extend(kids)
        self.by_type, self.outside, self.parents = by_type, outside, parents

    def of(self, *types: type) -> list:
        """Every node of the given types (one type: in source order)."""
        if len(types) == 1:
            return self.by_type.get(types[0], [])
        return [n for t in types for n in self.by_type.get(t, [])]


def tree_nodes(tree: ast.AST) -> TreeNodes:
    """The shared walk of `tree`, made on first use and kept on the tree itself."""
    nodes = getattr(tree, "dbfix_nodes", None)
    if nodes is None:
        nodes = TreeNodes(tree)
        tree.dbfix_nodes = nodes  # type: ignore[attr-defined]
    return nodes


def release(tree: ast.AST) -> None:
    """Drop the walks kept on `tree`. They refer back to it, a cycle that reference counts cannot free,
    and the cycle collector is off during a run (`dbfix.collector`): a tree detection is done with
    would stay in memory to the end (1.6M objects on the 20k-file tree)."""
    tree.__dict__.pop("dbfix_nodes", None)
    tree.__dict__.pop("dbfix_outside", None)


def outside_functions(tree: ast.AST, kind: type) -> list:
    """The nodes of one type outside function bodies, in source order (a `def` itself counts as outside).

    The index needs only these. They come from the walk detection uses, since the index's trees are
    kept for detection: a second walk of each cost a tenth of a run over many small model files. A tree
    with every function body left out is seldom detected: it gets a lighter walk, without parents.
    """
    nodes = getattr(tree, "dbfix_nodes", None)
    if nodes is None and getattr(tree, "dbfix_all_cut", False):
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
    return tree_nodes(tree).outside.get(kind, [])
