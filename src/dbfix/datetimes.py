"""Shared by the datetime codemods: what a datetime expression is, which column it feeds, and how to spell UTC."""

from __future__ import annotations

import ast
import weakref
from dataclasses import dataclass

from dbfix.codemod import FileContext
from dbfix.findings import Edit
from dbfix.index import (
    COLUMN_CALLS,
    FIELD_CALLS,
    MAPPED_COLUMN_CALLS,
    ColumnInfo,
    ModelInfo,
    ProjectIndex,
    _field_column,
    column_from_call,
)
from dbfix.names import Scope

DATETIME = "datetime.datetime"
DEFAULT_KEYWORDS = frozenset({"default", "onupdate", "insert_default", "default_factory"})
NAIVE_ANNOTATIONS = frozenset({"pydantic.NaiveDatetime"})
AWARE_ANNOTATIONS = frozenset({"pydantic.AwareDatetime"})
Import = tuple[str, "str | None", "str | None"]


@dataclass(frozen=True)
class UtcSpelling:
    code: str  # `UTC`, `dt.UTC`, `timezone.utc`
    imports: tuple[Import, ...] = ()


def utc_spelling(ctx: FileContext, at: ast.AST) -> UtcSpelling | None:
    """How to write the UTC tzinfo at `at`, preferring what the code already has in scope.

    In order: a name bound to `datetime.UTC` (3.11+ targets), one bound to `datetime.timezone`
    (`tz.utc`), the `datetime` module under any name (`dt.UTC` / `dt.timezone.utc`), and only then a new
    `from datetime import UTC` (or `timezone` when the target Python is older than 3.11).
    """
    names = ctx.names
    scope = names.scope_at(at)
    use_utc = ctx.versions.python >= (3, 11)
    visible = _visible_names(scope)
    by_target: dict[str, str] = {}
    for name in visible:
        target = names.lookup(name, scope)
        if target is not None:
            by_target.setdefault(target, name)
    if use_utc and "datetime.UTC" in by_target:
        return UtcSpelling(by_target["datetime.UTC"])
    if "datetime.timezone" in by_target:
        return UtcSpelling(f"{by_target['datetime.timezone']}.utc")
    if "datetime" in by_target:
        module = by_target["datetime"]
        return UtcSpelling(f"{module}.UTC" if use_utc else f"{module}.timezone.utc")
    wanted = "UTC" if use_utc else "timezone"
    if not names.is_bound(wanted, at):
        return UtcSpelling(wanted if use_utc else "timezone.utc", (("datetime", wanted, None),))
    if use_utc and not names.is_bound("timezone", at):
        return UtcSpelling("timezone.utc", (("datetime", "timezone", None),))
    return None


def _visible_names(scope: Scope | None) -> list[str]:
    """The names bound in `scope` and the scopes around it, innermost first, each once, in a stable order."""
    seen: dict[str, None] = {}
    while scope is not None:
        for name in sorted(scope.bindings):
            seen.setdefault(name, None)
        scope = scope.parent
    return list(seen)


# -- what an expression is ------------------------------------------------------------------------


def datetime_method(ctx: FileContext, node: ast.AST) -> str | None:
    """`now` for `datetime.now` / `dt.datetime.now` (an attribute of the datetime class), else None."""
    if isinstance(node, ast.Attribute):
        qual = ctx.q(node)
        if qual is not None and qual.startswith(f"{DATETIME}.") and qual.count(".") == 2:
            return node.attr
    return None


def _tz_argument(call: ast.Call) -> ast.expr | None:
    if call.args:
        return call.args[0]
    for kw in call.keywords:
        if kw.arg == "tz":
            return kw.value
    return None


UTC_NAMES = frozenset({"datetime.UTC", "datetime.timezone.utc", "pytz.utc", "pytz.UTC", "dateutil.tz.UTC"})


def is_utc(ctx: FileContext, node: ast.AST | None) -> bool:
    if node is None:
        return False
    if isinstance(node, ast.Call):
        func = ctx.q(node.func)
        if func == "dateutil.tz.tzutc":
            return True
        return func in ("zoneinfo.ZoneInfo", "backports.zoneinfo.ZoneInfo") and any(
            isinstance(a, ast.Constant) and a.value in ("UTC", "Etc/UTC") for a in node.args
        )
    return ctx.q(node) in UTC_NAMES


def awareness(ctx: FileContext, expr: ast.AST) -> str | None:
    """`naive`, `aware` (UTC) or `aware-other` for the value an expression, or a callable default, produces."""
    if isinstance(expr, ast.Lambda) and not expr.args.args:
        return awareness(ctx, expr.body)
    if isinstance(expr, ast.Call):
        func = expr.func
        method = datetime_method(ctx, func)
        if method == "now":
            return _aware_if(ctx, _tz_argument(expr))
        if method == "fromtimestamp":
            tz = expr.args[1] if len(expr.args) > 1 else next((k.value for k in expr.keywords if k.arg == "tz"), None)
            return _aware_if(ctx, tz)
        if method in ("today", "utcnow", "utcfromtimestamp"):
            return "naive"
        if isinstance(func, ast.Attribute) and func.attr == "replace":
            tzinfo = next((k.value for k in expr.keywords if k.arg == "tzinfo"), None)
            inner = awareness(ctx, func.value)
            if tzinfo is None or inner is None:
                return inner if tzinfo is None else None
            return _aware_if(ctx, tzinfo)
        if isinstance(func, ast.Attribute) and func.attr == "astimezone" and awareness(ctx, func.value):
            return _aware_if(ctx, _tz_argument(expr)) if _tz_argument(expr) is not None else "aware-other"
        if ctx.q(func) == "functools.partial" and expr.args and datetime_method(ctx, expr.args[0]) == "now":
            rest = expr.args[1:] or [k.value for k in expr.keywords if k.arg == "tz"]
            return _aware_if(ctx, rest[0] if rest else None)
        return None
    if datetime_method(ctx, expr) in ("now", "today", "utcnow"):
        return "naive"
    return None


def _aware_if(ctx: FileContext, tz: ast.AST | None) -> str:
    if tz is None or _is_none(tz):
        return "naive"
    return "aware" if is_utc(ctx, tz) else "aware-other"


def _is_none(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


# -- which column a value feeds -------------------------------------------------------------------


@dataclass(frozen=True)
class Consumer:
    """The column a default feeds: its call (`Column`, `mapped_column`, `Field`, a model constructor)."""

    call: ast.AST  # the Column/mapped_column/Field/constructor call, or the assignment `obj.attr = ...`
    keyword: str
    timezone: bool | None  # True: timestamptz, False: timestamp, None: not known
    column: str


def consumer(ctx: FileContext, node: ast.AST) -> Consumer | None:
    """The column that `node` (a default value, possibly inside a `lambda:`) is written to."""
    current: ast.AST = node
    parent = ctx.parent(current)
    if isinstance(parent, ast.Assign) and parent.value is current:
        return _attribute_consumer(ctx, parent)
    if isinstance(parent, ast.Lambda) and parent.body is current:
        current, parent = parent, ctx.parent(parent)
    if isinstance(parent, ast.Dict):  # sa_column_kwargs={"onupdate": ...}
        key = next((k for k, v in zip(parent.keys, parent.values) if v is current), None)
        holder = ctx.parent(parent)
        if (
            isinstance(key, ast.Constant)
            and key.value in DEFAULT_KEYWORDS
            and isinstance(holder, ast.keyword)
            and holder.arg == "sa_column_kwargs"
        ):
            call = ctx.parent(holder)
            if isinstance(call, ast.Call):
                return _column_consumer(ctx, call, str(key.value))
        return None
    if not isinstance(parent, ast.keyword) or parent.arg is None:
        return None
    call = ctx.parent(parent)
    if not isinstance(call, ast.Call):
        return None
    if parent.arg in DEFAULT_KEYWORDS:
        found = _column_consumer(ctx, call, parent.arg)
        if found is not None:
            return found
    model = ctx.index.model(ctx.q(call.func))
    if model is not None and parent.arg in model.columns:
        column = model.columns[parent.arg]
        return Consumer(call, parent.arg, column_timezone(ctx, model, column), column.name)
    return None


def _attribute_consumer(ctx: FileContext, assign: ast.Assign) -> Consumer | None:
    """`user.last_seen = value` where `user` is provably an instance of a model with that column."""
    from dbfix.references import instance_of

    if len(assign.targets) != 1 or not isinstance(assign.targets[0], ast.Attribute):
        return None
    target = assign.targets[0]
    owner = instance_of(ctx, target.value)
    model = ctx.index.model(owner) if owner else None
    if model is None or target.attr not in model.columns:
        return None
    column = model.columns[target.attr]
    return Consumer(assign, target.attr, column_timezone(ctx, model, column), column.name)


def _column_consumer(ctx: FileContext, call: ast.Call, keyword: str) -> Consumer | None:
    func = ctx.q(call.func)
    if func not in COLUMN_CALLS and func not in MAPPED_COLUMN_CALLS and func not in FIELD_CALLS:
        return None
    statement = ctx.parent(call)
    annotation = None
    attr = "?"
    if isinstance(statement, ast.keyword) and statement.arg == "sa_column":  # Field(sa_column=Column(...))
        field_call = ctx.parent(statement)
        statement = ctx.parent(field_call) if field_call is not None else None
    if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
        annotation, attr = statement.annotation, statement.target.id
    elif isinstance(statement, ast.Assign) and isinstance(statement.targets[0], ast.Name):
        attr = statement.targets[0].id
    if func in FIELD_CALLS:
        column = _field_column(attr, call, annotation, ctx.q)
    else:
        column = column_from_call(attr, call, ctx.q)
        if column is not None and annotation is not None:
            from dbfix.index import mapped_inner, unwrap_optional

            inner = mapped_inner(annotation, ctx.q)
            if inner is not None:
                column.python_type = ctx.q(unwrap_optional(inner, ctx.q)[0])
    if column is None:
        return None
    model = _model_at(ctx, call)
    return Consumer(call, keyword, column_timezone(ctx, model, column), column.name)


def _model_at(ctx: FileContext, node: ast.AST) -> ModelInfo | None:
    cls = ctx.enclosing_class(node)
    if cls is None:
        return None
    qualname = ctx.class_qualname(cls)
    model = ctx.index.model(qualname)
    if model is None:
        model = next(iter(ctx.index.models_using(qualname)), None)
    return model


def column_timezone(ctx: FileContext, model: ModelInfo | None, column: ColumnInfo) -> bool | None:
    """Whether the column stores timestamptz (True), timestamp (False), or we cannot tell (None)."""
    if column.timezone is not None:
        return column.timezone
    if column.type_name is not None:
        return None  # some other or custom type: a TypeDecorator may convert values itself
    if column.style == "field" or (model is not None and model.style == "sqlmodel" and column.style != "mapped_column"):
        if column.python_type in NAIVE_ANNOTATIONS:
            return False
        if column.python_type not in (DATETIME, *AWARE_ANNOTATIONS):
            return None
        if ctx.versions.sqlmodel is None:
            return None
        return ctx.index.sqlmodel_datetime_aware(ctx.versions)
    if column.python_type == DATETIME:
        if model is not None:
            mapped = ctx.index.base_annotation_type(model, DATETIME)
            if mapped is not None:
                return mapped[1]
        return False
    return None


# -- edits ----------------------------------------------------------------------------------------


def make_aware(ctx: FileContext, expr: ast.AST, utc: UtcSpelling) -> list[Edit] | None:
    """Edits that turn a naive `now` default into an aware one (None when there is no plain way)."""
    if isinstance(expr, ast.Lambda):
        return make_aware(ctx, expr.body, utc)
    if isinstance(expr, ast.Call):
        method = datetime_method(ctx, expr.func)
        if method == "now" and not expr.args and not expr.keywords:
            return [Edit(ctx.span(expr), "insert_arg", (0, utc.code))]
        func = expr.func
        if isinstance(func, ast.Attribute) and func.attr == "replace" and awareness(ctx, func.value) == "aware":
            return [Edit(ctx.span(expr), "replace", (ctx.code(func.value),))]
        return None
    if datetime_method(ctx, expr) == "now":
        return [Edit(ctx.span(expr), "wrap", (f"lambda: {{}}({utc.code})",))]
    return None


def make_naive(ctx: FileContext, expr: ast.AST) -> list[Edit] | None:
    """Edits that turn an aware default into the same UTC instant without tzinfo."""
    if isinstance(expr, ast.Lambda):
        return make_naive(ctx, expr.body)
    if isinstance(expr, ast.Call) and awareness(ctx, expr) == "aware":
        if ctx.q(expr.func) == "functools.partial":
            return None
        if datetime_method(ctx, expr.func) == "now" or (
            isinstance(expr.func, ast.Attribute) and expr.func.attr in ("replace", "astimezone")
        ):
            return [Edit(ctx.span(expr), "wrap", ("{}.replace(tzinfo=None)",))]
        if datetime_method(ctx, expr.func) == "fromtimestamp":
            return [Edit(ctx.span(expr), "wrap", ("{}.replace(tzinfo=None)",))]
    return None


def default_values(ctx: FileContext) -> list[ast.expr]:
    """Every expression given as a default or keyword, or assigned to an attribute (candidates for `consumer`)."""
    found: list[ast.expr] = []
    for node in ctx.nodes(ast.keyword):
        if node.arg is not None:
            if node.arg == "sa_column_kwargs" and isinstance(node.value, ast.Dict):
                found.extend(v for v in node.value.values if v is not None)
            else:
                found.append(node.value)
    # `obj.attr = value`: a value written into a model instance's column
    found.extend(n.value for n in ctx.nodes(ast.Assign) if len(n.targets) == 1 and isinstance(n.targets[0], ast.Attribute))
    return found


_UTC_METHODS = ("utcnow", "utcfromtimestamp")


def mentions_utcnow(ctx: FileContext, expr: ast.AST) -> bool:
    # the attribute's name first: naming it (`datetime_method`) resolves the whole chain
    return any(
        isinstance(n, ast.Attribute) and n.attr in _UTC_METHODS and datetime_method(ctx, n) in _UTC_METHODS for n in ast.walk(expr)
    )


_DATETIME_COLUMNS: weakref.WeakKeyDictionary[ProjectIndex, tuple[frozenset[str], frozenset[str]]] = weakref.WeakKeyDictionary()


def datetime_columns(index: ProjectIndex) -> tuple[frozenset[str], frozenset[str]]:
    """(names of the models with a datetime column and of their ancestors, those columns' attributes)."""
    found = _DATETIME_COLUMNS.get(index)
    if found is None:
        models: set[str] = set()
        attrs: set[str] = set()
        for model in index.models.values():
            mine = {
                attr for attr, c in model.columns.items()
                if c.timezone is not None or c.python_type in (DATETIME, *NAIVE_ANNOTATIONS, *AWARE_ANNOTATIONS)
            }
            if mine:
                attrs |= mine
                models |= {c.name for c in index._mro(model.cls)}
        found = _DATETIME_COLUMNS[index] = (frozenset(models), frozenset(attrs))
    return found
