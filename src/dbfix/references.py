"""What an expression provably is: a project class, an instance of one, a statement or result over a model.

Used by the rules that rename model attributes across a project: `x.attr` may be renamed only where `x`
provably is the class, or an instance, of the model that owns `attr`. Everything here answers None when it
cannot prove its answer; it never matches by spelling.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from dbfix.astwalk import children
from dbfix.codemod import FileContext
from dbfix.index import BASE_FACTORIES, ProjectIndex, unwrap_optional

# kinds of Ref
CLASS = "class"  # the class itself (`exact`) or the class or a subclass (`cls` in a classmethod)
INSTANCE = "instance"  # an instance of the class or of a subclass
INSTANCES = "instances"  # an iterable of instances (ScalarResult, list, Query.all())
QUERY = "query"  # a legacy `session.query(Model)`
SELECT = "select"  # a `select(Model)` statement
RESULT = "result"  # `session.execute(select(Model))`: rows, not instances
DML = "dml"  # `insert(Model)`, `update(Model)`, `delete(Model)`
MODULE = "module"
EXTERNAL = "external"  # a name from outside the project that is no class we know: never a model
OPAQUE = "opaque"  # a project name whose value we cannot know (a module variable, a function result)


@dataclass(frozen=True)
class Ref:
    kind: str
    cls: str  # qualified name of the class (the entity of a statement), or the name itself
    exact: bool = False
    plain: bool = True  # for QUERY/SELECT: no join, so `filter_by` targets `cls`


# External classes whose instances are certainly not project models.
KNOWN_CLASSES = frozenset(
    {
        "sqlalchemy.MetaData",
        "sqlalchemy.Table",
        "sqlalchemy.Column",
        "flask_sqlalchemy.SQLAlchemy",
        "builtins.dict",
        "builtins.list",
        "builtins.set",
        "builtins.tuple",
        "builtins.str",
        "builtins.object",
    }
)
UNKNOWN_ANNOTATIONS = frozenset({"typing.Any", "typing_extensions.Any", "builtins.object"})
ITERABLES = frozenset(
    {
        "builtins.list",
        "builtins.set",
        "builtins.frozenset",
        "builtins.tuple",
        "typing.List",
        "typing.Set",
        "typing.FrozenSet",
        "typing.Tuple",
        "typing.Sequence",
        "typing.Iterable",
        "typing.Iterator",
        "typing.Collection",
        "collections.abc.Sequence",
        "collections.abc.Iterable",
        "collections.abc.Iterator",
        "collections.abc.Collection",
        "sqlalchemy.ScalarResult",
        "sqlalchemy.engine.ScalarResult",
    }
)
TYPE_WRAPPERS = frozenset({"builtins.type", "typing.Type"})
SELECTS = frozenset({"sqlalchemy.select", "sqlmodel.select", "sqlmodel.sql.expression.select"})
DMLS = frozenset(
    {
        "sqlalchemy.insert",
        "sqlalchemy.update",
        "sqlalchemy.delete",
        "sqlalchemy.dialects.postgresql.insert",
        "sqlalchemy.dialects.sqlite.insert",
        "sqlalchemy.dialects.mysql.insert",
    }
)
JOINS = frozenset({"join", "outerjoin", "join_from", "outerjoin_from", "select_from", "add_entity", "add_columns"})
STATEMENT_CHAIN = frozenset(
    {
        "where",
        "filter",
        "filter_by",
        "order_by",
        "group_by",
        "having",
        "limit",
        "offset",
        "slice",
        "options",
        "distinct",
        "execution_options",
        "with_for_update",
        "populate_existing",
        "params",
        "enable_assertions",
        "autoflush",
        "correlate",
        "prefix_with",
        "suffix_with",
        "join",
        "outerjoin",
        "join_from",
        "outerjoin_from",
        "select_from",
    }
)
DML_CHAIN = frozenset({"where", "filter", "filter_by", "values", "execution_options", "prefix_with", "inline"})
ONE = frozenset({"first", "one", "one_or_none", "scalar", "scalar_one", "scalar_one_or_none", "first_or_404", "one_or_404"})
GETS = frozenset({"get", "get_one", "get_or_404"})  # `session.get(Model, pk)`, Flask-SQLAlchemy's `db.get_or_404`
MANY = frozenset({"all", "unique", "fetchall", "partitions"})
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)
_NOT_BOUND = object()


# -- the class hierarchy --------------------------------------------------------------------------


def mro(index: ProjectIndex, qualname: str) -> list[str]:
    """The class and its ancestors, depth first: project classes, then the external names they inherit."""
    order: list[str] = []
    stack = [qualname]
    while stack:
        name = stack.pop(0)
        if name in order:
            continue
        order.append(name)
        cls = index.classes.get(name)
        if cls is not None:
            stack[0:0] = list(cls.bases)
    return order


def is_subclass(index: ProjectIndex, qualname: str, ancestor: str) -> bool:
    return ancestor in mro(index, qualname)


def in_project(index: ProjectIndex, qualname: str) -> bool:
    """Whether a qualified name lives in one of the project's modules."""
    parts = qualname.split(".")
    return any(".".join(parts[:i]) in index.modules for i in range(len(parts), 0, -1))


# -- what an expression is ------------------------------------------------------------------------


def infer(ctx: FileContext, node: ast.AST | None) -> Ref | None:
    """What `node` provably is, or None."""
    if isinstance(node, ast.Await):
        node = node.value
    if isinstance(node, ast.Name):
        qual = ctx.q(node)
        return _local(ctx, node) if qual is None else named(ctx.index, qual)
    if isinstance(node, ast.Attribute):
        if node.attr == "__table__":
            owner = infer(ctx, node.value)
            return Ref(INSTANCE, "sqlalchemy.Table") if owner is not None and owner.kind == CLASS else None
        if node.attr == "query":  # Flask-SQLAlchemy's `Model.query`
            owner = infer(ctx, node.value)
            model = ctx.index.models.get(owner.cls) if owner is not None and owner.kind == CLASS else None
            if model is not None and model.style == "flask":
                return Ref(QUERY, model.qualname)
        qual = ctx.q(node)
        return named(ctx.index, qual) if qual is not None else None
    if isinstance(node, ast.Call):
        return _call(ctx, node)
    if isinstance(node, ast.Subscript):
        base = infer(ctx, node.value)
        if base is not None and base.kind == INSTANCES and not isinstance(node.slice, ast.Slice):
            return Ref(INSTANCE, base.cls)
    return None


def instance_of(ctx: FileContext, node: ast.AST) -> str | None:
    """The class `node` is provably an instance of (or of a subclass of)."""
    ref = infer(ctx, node)
    return ref.cls if ref is not None and ref.kind == INSTANCE else None


def class_of(ctx: FileContext, node: ast.AST) -> str | None:
    """The class `node` provably is (or, for `cls` in a classmethod, a subclass of)."""
    ref = infer(ctx, node)
    return ref.cls if ref is not None and ref.kind == CLASS else None


def element(ref: Ref | None) -> Ref | None:
    """What iterating over `ref` yields."""
    if ref is not None and ref.kind in (INSTANCES, QUERY):
        return Ref(INSTANCE, ref.cls)
    return None


def named(index: ProjectIndex, qual: str) -> Ref:
    """What a resolved qualified name is."""
    if qual in index.classes:
        return Ref(CLASS, qual, exact=True)
    inst = index.instances.get(qual)
    if inst is not None:
        call = inst.call
        if call in index.classes:
            return Ref(INSTANCE, call)
        if call in BASE_FACTORIES or (call or "").endswith(".generate_base"):
            return Ref(CLASS, qual, exact=True)  # `Base = declarative_base()`
        if call in KNOWN_CLASSES:
            return Ref(INSTANCE, call)
        return Ref(OPAQUE, qual)
    if qual in index.modules:
        return Ref(MODULE, qual)
    if in_project(index, qual):
        return Ref(OPAQUE, qual)
    return Ref(EXTERNAL, qual, exact=True)


def annotation(ctx: FileContext, node: ast.expr | None) -> Ref | None:
    """The values an annotation promises: `M`, `Optional[M]`, `"M"`, `list[M]`, `type[M]`."""
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            node = ast.parse(node.value, mode="eval").body
        except SyntaxError:
            return None
    node, _ = unwrap_optional(node, ctx.q)
    if isinstance(node, ast.Subscript):
        wrapper = ctx.q(node.value)
        inner = node.slice
        if isinstance(inner, ast.Tuple):
            if wrapper not in ("builtins.tuple", "typing.Tuple") or len(inner.elts) != 2:
                return None
            if not (isinstance(inner.elts[1], ast.Constant) and inner.elts[1].value is Ellipsis):
                return None
            inner = inner.elts[0]
        one = annotation(ctx, inner)
        if one is None or one.kind not in (INSTANCE, EXTERNAL):
            return None
        if wrapper in ITERABLES:
            return Ref(INSTANCES, one.cls)
        if wrapper in TYPE_WRAPPERS:
            return Ref(CLASS, one.cls)
        return None
    qual = ctx.q(node)
    if qual is None or qual in UNKNOWN_ANNOTATIONS:
        return None
    ref = named(ctx.index, qual)
    if ref.kind == CLASS or (ref.kind == EXTERNAL and qual not in UNKNOWN_ANNOTATIONS):
        return Ref(INSTANCE, ref.cls)
    return None


def _call(ctx: FileContext, call: ast.Call) -> Ref | None:
    func = call.func
    first = call.args[0] if call.args else None
    qual = ctx.q(func)
    if qual in SELECTS:
        if len(call.args) == 1 and not call.keywords:
            target = infer(ctx, first)
            if _model_class(ctx, target):
                return Ref(SELECT, target.cls)  # type: ignore[union-attr]
        return None
    if qual in DMLS:
        target = infer(ctx, first)
        if _model_class(ctx, target):
            return Ref(DML, target.cls)  # type: ignore[union-attr]
        return Ref(DML, target.cls) if target is not None and target.kind == INSTANCE else None  # a Table
    if qual is not None:
        ref = named(ctx.index, qual)
        if ref.kind == CLASS:
            return Ref(INSTANCE, ref.cls)
        if qual in KNOWN_CLASSES:
            return Ref(INSTANCE, qual)
    if not isinstance(func, ast.Attribute):
        return None
    method = func.attr
    if method in GETS and first is not None:
        target = infer(ctx, first)
        if _model_class(ctx, target):
            return Ref(INSTANCE, target.cls)  # type: ignore[union-attr]
    if method == "query" and len(call.args) == 1 and not call.keywords:
        target = infer(ctx, first)
        return Ref(QUERY, target.cls) if _model_class(ctx, target) else None  # type: ignore[union-attr]
    if method in ("scalar", "scalars", "exec", "execute", "first_or_404", "one_or_404") and first is not None:
        statement = infer(ctx, first)
        if statement is not None and statement.kind == SELECT:
            kind = {"scalars": INSTANCES, "exec": INSTANCES, "execute": RESULT}.get(method, INSTANCE)
            return Ref(kind, statement.cls)
        return None
    receiver = infer(ctx, func.value)
    if receiver is None:
        return None
    if receiver.kind in (QUERY, SELECT):
        if method in STATEMENT_CHAIN:
            return Ref(receiver.kind, receiver.cls, plain=receiver.plain and method not in JOINS)
        if receiver.kind == QUERY and method in ONE | GETS:
            return Ref(INSTANCE, receiver.cls)
        if receiver.kind == QUERY and method in MANY:
            return Ref(INSTANCES, receiver.cls)
        return None
    if receiver.kind == DML and method in DML_CHAIN:
        return receiver
    if receiver.kind == INSTANCES:
        if method in ONE:
            return Ref(INSTANCE, receiver.cls)
        if method in MANY:
            return Ref(INSTANCES, receiver.cls)
    if receiver.kind == RESULT:
        if method == "scalars" and not call.args:
            return Ref(INSTANCES, receiver.cls)
        if method in ("scalar", "scalar_one", "scalar_one_or_none"):
            return Ref(INSTANCE, receiver.cls)
    return None


def _model_class(ctx: FileContext, ref: Ref | None) -> bool:
    return ref is not None and ref.kind == CLASS and ref.cls in ctx.index.models


# -- local names ----------------------------------------------------------------------------------


def _local(ctx: FileContext, name: ast.Name) -> Ref | None:
    """A name bound inside a function, a lambda or a comprehension: what every binding of it agrees on."""
    ident = name.id
    node: ast.AST = name
    in_function = False
    while True:
        parent = ctx.parent(node)
        if parent is None:
            return None  # module level: `ctx.q` would have named it
        if isinstance(parent, _COMPREHENSIONS) and node is not parent.generators[0].iter:
            for gen in parent.generators:
                if any(isinstance(n, ast.Name) and n.id == ident for n in ast.walk(gen.target)):
                    return element(infer(ctx, gen.iter)) if isinstance(gen.target, ast.Name) else None
        elif isinstance(parent, ast.Lambda):
            if ident in _argument_names(parent.args):
                return None
            in_function = True
        elif isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node in parent.body:
                found = _function_binding(ctx, parent, ident)
                if found is not _NOT_BOUND:
                    return found  # type: ignore[return-value]
                in_function = True
        elif isinstance(parent, ast.ClassDef) and not in_function and node in parent.body:
            return None  # a class-body name: class scopes are not inferred
        node = parent


def _argument_names(args: ast.arguments) -> set[str]:
    return {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg] if a is not None}


_ACTIVE: set[tuple[int, str]] = set()  # bindings being inferred: `x = x[0]` must not recurse forever


def _function_binding(ctx: FileContext, func: ast.FunctionDef | ast.AsyncFunctionDef, ident: str) -> object:
    key = (id(func), ident)
    if key in _ACTIVE:
        return None
    _ACTIVE.add(key)
    try:
        return _function_binding_once(ctx, func, ident)
    finally:
        _ACTIVE.discard(key)


def _function_binding_once(ctx: FileContext, func: ast.FunctionDef | ast.AsyncFunctionDef, ident: str) -> object:
    refs: list[Ref | None] = []
    positional = [*func.args.posonlyargs, *func.args.args]
    for arg in [*positional, *func.args.kwonlyargs, func.args.vararg, func.args.kwarg]:
        if arg is None or arg.arg != ident:
            continue
        if arg is func.args.vararg or arg is func.args.kwarg:
            return None
        if positional and arg is positional[0]:
            implicit = _implicit_first(ctx, func)
            if implicit is not _NOT_BOUND:
                refs.append(implicit)  # type: ignore[arg-type]
                break
        refs.append(annotation(ctx, arg.annotation))
    for stmt in func.body:
        refs.extend(_bindings(ctx, stmt, ident))
    if not refs:
        return _NOT_BOUND
    if any(r is None for r in refs) or len(set(refs)) != 1:
        return None
    return refs[0]


def _implicit_first(ctx: FileContext, func: ast.FunctionDef | ast.AsyncFunctionDef) -> object:
    """`self` / `cls` of a method: an instance, or the class or a subclass; _NOT_BOUND if not a method."""
    owner = ctx.parent(func)
    if not isinstance(owner, ast.ClassDef):
        return _NOT_BOUND
    qualname = ctx.class_qualname(owner)
    kinds = set()
    for deco in func.decorator_list:
        target = deco.func if isinstance(deco, ast.Call) else deco
        qual = ctx.q(target) or ""
        if qual == "builtins.staticmethod":
            return _NOT_BOUND
        if qual == "builtins.classmethod" or qual.startswith(("sqlalchemy.orm.declared_attr", "sqlalchemy.ext.declarative.declared_attr")):
            kinds.add(CLASS)
        elif isinstance(target, ast.Attribute) and target.attr == "expression":
            kinds.add(CLASS)  # a hybrid's `@name.expression` runs on the class
    if func.name in ("__new__", "__init_subclass__", "__class_getitem__"):
        kinds.add(CLASS)
    return Ref(CLASS if kinds else INSTANCE, qualname)


def _bindings(ctx: FileContext, stmt: ast.AST, ident: str) -> list[Ref | None]:
    """Every binding of `ident` in a function-body statement (nested scopes excluded), as what it binds."""
    found: list[Ref | None] = []
    stack: list[ast.AST] = [stmt]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name == ident:
                found.append(None)
            continue  # its body is another scope (decorators/defaults are rare enough to ignore)
        if isinstance(node, (ast.Lambda, *_COMPREHENSIONS)):
            if any(isinstance(n, ast.NamedExpr) and n.target.id == ident for n in ast.walk(node)):
                found.append(None)
            continue
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id == ident:
                    found.append(infer(ctx, node.value))
                elif _binds(target, ident):
                    found.append(None)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == ident:
            declared = annotation(ctx, node.annotation)
            found.append(declared if declared is not None else infer(ctx, node.value) if node.value else None)
        elif isinstance(node, ast.AugAssign) and _binds(node.target, ident):
            found.append(None)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            if isinstance(node.target, ast.Name) and node.target.id == ident:
                found.append(element(infer(ctx, node.iter)))
            elif _binds(node.target, ident):
                found.append(None)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            if any(item.optional_vars is not None and _binds(item.optional_vars, ident) for item in node.items):
                found.append(None)
        elif isinstance(node, ast.ExceptHandler) and node.name == ident:
            found.append(None)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if any((a.asname or a.name.split(".")[0]) == ident for a in node.names):
                found.append(None)
        elif isinstance(node, (ast.Global, ast.Nonlocal)) and ident in node.names:
            found.append(None)
        elif isinstance(node, ast.NamedExpr) and node.target.id == ident:
            found.append(infer(ctx, node.value))
        elif isinstance(node, ast.match_case) and any(getattr(n, "name", None) == ident for n in ast.walk(node.pattern)):
            found.append(None)
        stack.extend(children(node))
    return found


def _binds(target: ast.AST, ident: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == ident and isinstance(n.ctx, ast.Store) for n in ast.walk(target))
