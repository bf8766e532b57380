"""What a name in one module refers to: qualified names from imports, definitions and scopes (on `ast`)."""

from __future__ import annotations

import ast
import builtins
from collections.abc import Callable, Iterator

from dbfix.astwalk import children

BUILTINS = frozenset(dir(builtins))


class Scope:
    __slots__ = ("kind", "parent", "bindings", "globals")

    def __init__(self, kind: str, parent: Scope | None) -> None:
        self.kind = kind  # "module" | "class" | "function"
        self.parent = parent
        self.bindings: dict[str, list[str]] = {}
        self.globals: set[str] = set()

    def bind(self, name: str, qualname: str) -> None:
        target = self
        if name in self.globals:
            if self.kind == "function":
                # a module name a function rebinds at run time: unknown inside it, and what the module
                # binds outside it, as the index reads it (function bodies are walked only on demand,
                # so a module binding added here would change answers with the order of questions)
                self.bindings.setdefault(name, []).append(LOCAL)
                return
            while target.parent is not None:
                target = target.parent
        target.bindings.setdefault(name, []).append(qualname)


LOCAL = "<local>"  # a value computed at run time: not an import, not a definition we can name


def resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute module of `from <level dots><name> import …` written in `module`."""
    parts = module.split(".") if module else []
    if not is_package:
        parts = parts[:-1]
    if level > 1:
        parts = parts[: len(parts) - (level - 1)] if level - 1 <= len(parts) else []
    if name:
        parts.append(name)
    return ".".join(parts)


class ModuleNames:
    """Resolves `ast` names and attribute chains of one module to qualified names.

    A name bound in more than one way (an import and a local class of the same name) resolves to
    None: the rules must not guess.
    """

    def __init__(
        self,
        tree: ast.Module,
        module: str,
        is_package: bool = False,
        *,
        shallow: bool = False,
        parent_of: Callable[[ast.AST], ast.AST | None] | None = None,
    ) -> None:
        self.module = module
        self.is_package = is_package
        # shallow: function bodies are not walked (the project index needs module and class level only)
        self.shallow = shallow
        # with `parent_of`, a function body is walked only when a name inside it is asked about:
        # most rules only ask about module and class level code
        self.parent_of = parent_of
        self._pending: dict[int, tuple[ast.FunctionDef | ast.AsyncFunctionDef, Scope, str]] = {}
        self.module_scope = Scope("module", None)
        self._scope_of: dict[int, Scope] = {}
        self.star_imports: list[str] = []
        self._walk_body(tree.body, self.module_scope, module)

    # -- building -------------------------------------------------------------------------------
    def _walk_body(self, body: list[ast.stmt], scope: Scope, prefix: str) -> None:
        for stmt in body:
            self._stmt(stmt, scope, prefix)

    def _stmt(self, node: ast.stmt, scope: Scope, prefix: str) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for deco in node.decorator_list:
                self._expr(deco, scope)
            self._arguments_defaults(node.args, scope)
            if node.returns is not None:
                self._expr(node.returns, scope)
            scope.bind(node.name, f"{prefix}.{node.name}")
            if self.shallow or self.parent_of is not None:
                # walked when a name inside is asked about, once `parent_of` is known (detection
                # reuses the index's shallow names this way)
                self._pending[id(node)] = (node, scope, prefix)
                return
            self._walk_function(node, scope, prefix)
        elif isinstance(node, ast.ClassDef):
            for deco in node.decorator_list:
                self._expr(deco, scope)
            for base in node.bases:
                self._expr(base, scope)
            for kw in node.keywords:
                self._expr(kw.value, scope)
            scope.bind(node.name, f"{prefix}.{node.name}")
            inner = Scope("class", scope)
            self._walk_body(node.body, inner, f"{prefix}.{node.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    scope.bind(alias.asname, alias.name)
                else:
                    top = alias.name.split(".")[0]
                    scope.bind(top, top)
        elif isinstance(node, ast.ImportFrom):
            base = (
                resolve_relative(self.module, self.is_package, node.level, node.module)
                if node.level
                else node.module or ""
            )
            for alias in node.names:
                if alias.name == "*":
                    self.star_imports.append(base)
                    continue
                scope.bind(alias.asname or alias.name, f"{base}.{alias.name}" if base else alias.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            if isinstance(node, ast.Global):
                scope.globals.update(node.names)
        else:
            if isinstance(node, ast.Assign):
                self._expr(node.value, scope)
                for target in node.targets:
                    self._target(target, scope, prefix)
            elif isinstance(node, ast.AnnAssign):
                self._expr(node.annotation, scope)
                if node.value is not None:
                    self._expr(node.value, scope)
                self._target(node.target, scope, prefix)
            elif isinstance(node, ast.AugAssign):
                self._expr(node.value, scope)
                self._expr(node.target, scope)
            elif isinstance(node, (ast.For, ast.AsyncFor)):
                self._expr(node.iter, scope)
                self._target(node.target, scope, prefix)
                self._walk_body(node.body, scope, prefix)
                self._walk_body(node.orelse, scope, prefix)
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    self._expr(item.context_expr, scope)
                    if item.optional_vars is not None:
                        self._target(item.optional_vars, scope, prefix)
                self._walk_body(node.body, scope, prefix)
            elif isinstance(node, (ast.If, ast.While)):
                self._expr(node.test, scope)
                self._walk_body(node.body, scope, prefix)
                self._walk_body(node.orelse, scope, prefix)
            elif isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
                self._walk_body(node.body, scope, prefix)  # type: ignore[attr-defined]
                for handler in node.handlers:  # type: ignore[attr-defined]
                    if handler.type is not None:
                        self._expr(handler.type, scope)
                    if handler.name:
                        scope.bind(handler.name, LOCAL)
                    self._walk_body(handler.body, scope, prefix)
                self._walk_body(node.orelse, scope, prefix)  # type: ignore[attr-defined]
                self._walk_body(node.finalbody, scope, prefix)  # type: ignore[attr-defined]
            elif isinstance(node, ast.Match):
                self._expr(node.subject, scope)
                for case in node.cases:
                    for sub in ast.walk(case.pattern):
                        name = getattr(sub, "name", None)
                        if isinstance(name, str):
                            scope.bind(name, LOCAL)
                    if case.guard is not None:
                        self._expr(case.guard, scope)
                    self._walk_body(case.body, scope, prefix)
            elif isinstance(node, ast.Delete):
                for target in node.targets:
                    self._expr(target, scope)
            else:
                for child in children(node):
                    if isinstance(child, ast.expr):
                        self._expr(child, scope)
                    elif isinstance(child, ast.stmt):
                        self._stmt(child, scope, prefix)

    def _walk_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef, scope: Scope, prefix: str) -> None:
        inner = Scope("function", scope)
        self._bind_arguments(node.args, inner)
        self._walk_body(node.body, inner, f"{prefix}.{node.name}.<locals>")

    def _scope_for(self, name: ast.AST) -> Scope | None:
        """The scope recorded for a Name node, walking the functions around it first if they wait."""
        scope = self._scope_of.get(id(name))
        while scope is None and self._pending and self.parent_of is not None:
            outermost = None
            current = self.parent_of(name)
            while current is not None:
                if id(current) in self._pending:
                    outermost = current
                current = self.parent_of(current)
            if outermost is None:
                return None
            self._walk_function(*self._pending.pop(id(outermost)))
            scope = self._scope_of.get(id(name))
        return scope

    def _target(self, target: ast.expr, scope: Scope, prefix: str) -> None:
        if isinstance(target, ast.Name):
            qual = f"{prefix}.{target.id}" if scope.kind != "function" else LOCAL
            scope.bind(target.id, qual)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:
                self._target(elt, scope, prefix)
        elif isinstance(target, ast.Starred):
            self._target(target.value, scope, prefix)
        else:
            self._expr(target, scope)

    def _arguments_defaults(self, args: ast.arguments, scope: Scope) -> None:
        for default in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
            self._expr(default, scope)
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if arg is not None and arg.annotation is not None:
                self._expr(arg.annotation, scope)

    @staticmethod
    def _bind_arguments(args: ast.arguments, scope: Scope) -> None:
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if arg is not None:
                scope.bind(arg.arg, LOCAL)

    def _expr(self, node: ast.expr, scope: Scope) -> None:
        stack: list[ast.AST] = [node]
        scope_of = self._scope_of
        while stack:
            current = stack.pop()
            kind = current.__class__
            if kind is ast.Name:
                scope_of[id(current)] = scope
                if current.ctx.__class__ is ast.Store:  # type: ignore[attr-defined]  # walrus
                    scope.bind(current.id, LOCAL)  # type: ignore[attr-defined]
            elif kind is ast.Attribute:
                stack.append(current.value)  # type: ignore[attr-defined]  # the most common node: its only child
            elif kind is ast.Constant:
                continue
            elif isinstance(current, ast.Lambda):
                self._arguments_defaults(current.args, scope)
                inner = Scope("function", scope)
                self._bind_arguments(current.args, inner)
                self._expr(current.body, inner)
            elif isinstance(current, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
                inner = Scope("function", scope)
                first = True
                for gen in current.generators:
                    self._expr(gen.iter, scope if first else inner)
                    first = False
                    self._target(gen.target, inner, "<comp>")
                    for cond in gen.ifs:
                        self._expr(cond, inner)
                if isinstance(current, ast.DictComp):
                    self._expr(current.key, inner)
                    self._expr(current.value, inner)
                else:
                    self._expr(current.elt, inner)
            else:
                stack.extend(children(current))

    # -- querying -------------------------------------------------------------------------------
    def lookup(self, name: str, scope: Scope | None) -> str | None:
        """The qualified name bound to `name` as seen from `scope`, or None if unknown or ambiguous."""
        current = scope or self.module_scope
        skip_class = False
        while current is not None:
            if not (skip_class and current.kind == "class"):
                found = current.bindings.get(name)
                if found is not None:
                    unique = set(found)
                    if len(unique) != 1:
                        return None
                    value = found[0]
                    return None if value == LOCAL else value
            if current.kind == "function":
                skip_class = True
            current = current.parent
        if name in BUILTINS:
            return f"builtins.{name}"
        return None

    def qualname(self, node: ast.AST) -> str | None:
        """`sa.orm.mapped_column` -> `sqlalchemy.orm.mapped_column` (None when it is not provable)."""
        attrs: list[str] = []
        while isinstance(node, ast.Attribute):
            attrs.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        base = self.lookup(node.id, self._scope_for(node))
        if base is None:
            return None
        return ".".join([base, *reversed(attrs)])

    def scope_at(self, node: ast.AST) -> Scope:
        """The scope a name or attribute chain is evaluated in."""
        while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
            node = node.func if isinstance(node, ast.Call) else node.value
        return self._scope_for(node) or self.module_scope

    def is_bound(self, name: str, node: ast.AST | None = None) -> bool:
        """Whether `name` is bound at all (by anything) where `node` is, or at module level."""
        current: Scope | None = self.scope_at(node) if node is not None else self.module_scope
        while current is not None:
            if name in current.bindings or name in current.globals:
                return True
            current = current.parent
        return bool(self.star_imports)

    def module_bindings(self) -> Iterator[tuple[str, str]]:
        """Unambiguous module-level bindings: (name, qualified name)."""
        for name, values in self.module_scope.bindings.items():
            if len(set(values)) == 1 and values[0] != LOCAL:
                yield name, values[0]
