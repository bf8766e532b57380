"""Schema facts beyond the model index, and the names PostgreSQL and SQLAlchemy give indexes and constraints.

Collected per module by `collect` (an index contributor; `facts.extra["schema"]` is a `ModuleSchema`):

- `TableFact`: every Core `Table("name", metadata, Column(...), ..., schema=...)`, with its columns
  (`ColumnInfo`, keyed by column key) and the constraints written inside it;
- `TableArgsFact`: each class's `__table_args__` (its constraints, and the `{"schema": ...}` dict);
- `ConstraintFact` for every `Index`, `UniqueConstraint`, `CheckConstraint`, `ForeignKeyConstraint`,
  `PrimaryKeyConstraint`, for `ForeignKey(...)` / `CheckConstraint(...)` written inside a column, and
  for SQLModel's `Field(foreign_key=...)`; module-level `Index(...)` calls go to `ModuleSchema.indexes`;
- `MetadataFact`: what is known about a `MetaData`: its `naming_convention` and default `schema`.

`SchemaView(index)` joins all modules with the model index into one `TableView` per table (a model or a
Core table), with every constraint and index that belongs to it, including module-level `Index(...)`
calls (`Index(User.org_id, ...)`, `Index("ix", users.c.x)`). As declarative does, a model's table has
the columns of its own class and mixins (a joined-inheritance parent's stay on the parent's table, a
`column_property(Column(...))` is one), and a single-table-inheritance subclass adds its own to its
parent's table. It resolves foreign keys to tables (`foreign_keys()`, `cyclic_foreign_keys()`), tells
each MetaData's convention (`convention()`), and predicts the names a database gets (`pg_names()`,
`sa_name()`, `index_names()`; `dbfix.dbnames` weighs them against Alembic revisions and other databases).

The name functions at the bottom are pure: PostgreSQL's own `makeObjectName`/`ChooseConstraintName`
(src/backend/commands/indexcmds.c; 63 bytes, the longer part truncated first, digits appended to the
label on a clash) and SQLAlchemy's naming-convention rendering, which is delegated to SQLAlchemy itself.
"""

from __future__ import annotations

import ast
import itertools
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TypeVar

from dbfix.astwalk import children
from dbfix.cache import digest
from dbfix.index import (
    ColumnInfo,
    ModelInfo,
    ProjectIndex,
    _const,
    _kw,
    column_from_call,
    extract_classes,
    extract_module,
)
from dbfix.names import ModuleNames

KEY = "schema"
T = TypeVar("T")
Resolver = Callable[[ast.AST], "str | None"]
Pos = tuple[int, int, int, int]  # lineno, col_offset, end_lineno, end_col_offset of the call (as in `ast`)

CONSTRAINT_CALLS = {
    "sqlalchemy.Index": "index",
    "sqlalchemy.UniqueConstraint": "unique",
    "sqlalchemy.CheckConstraint": "check",
    "sqlalchemy.ForeignKeyConstraint": "foreign_key",
    "sqlalchemy.PrimaryKeyConstraint": "primary_key",
}
CONVENTION_KEYS = {  # naming_convention keys given as classes
    "sqlalchemy.Index": "ix",
    "sqlalchemy.UniqueConstraint": "uq",
    "sqlalchemy.CheckConstraint": "ck",
    "sqlalchemy.ForeignKeyConstraint": "fk",
    "sqlalchemy.PrimaryKeyConstraint": "pk",
}
CONVENTION_OF_KIND = {"index": "ix", "unique": "uq", "check": "ck", "foreign_key": "fk", "primary_key": "pk"}
COLUMN_CALLS = frozenset({"sqlalchemy.Column", "sqlalchemy.orm.mapped_column"})
BASE_FACTORIES = frozenset({"sqlalchemy.orm.declarative_base", "sqlalchemy.orm.registry", "flask_sqlalchemy.SQLAlchemy"})
MAX_IDENTIFIER = 63  # PostgreSQL's NAMEDATALEN - 1, in bytes


# -- facts (picklable) ----------------------------------------------------------------------------


@dataclass
class ColumnArg:
    """One column argument of an index or constraint, or a foreign key's target, as written."""

    kind: str  # "name": a string | "attr": `Model.attr` | "table": `Model.__table__.c.x`, `users.c.x`,
    #            `users.c["x"]` | "expr": anything else (`func.lower(...)`, `text(...)`)
    value: str  # the string ("email", or "users.id" for a foreign key), the attribute or key; source for "expr"
    owner: str | None = None  # "attr" / "table": qualified name of the class or Table variable


@dataclass
class ConstraintFact:
    """An `Index`, a constraint, or a column's `ForeignKey`/`CheckConstraint`, as written in the source."""

    kind: str  # "index" | "unique" | "check" | "foreign_key" | "primary_key"
    place: str  # "table_args" | "table" (an argument of Table(...)) | "column" (inside a Column /
    #             mapped_column / sa_column_args) | "field" (SQLModel Field(foreign_key=...)) | "module"
    owner: str | None  # the class (table_args, column, field) or Table key (table); None for "module"
    module: str
    pos: Pos
    name: str | None = None  # the name, when it is a string literal
    named: bool = False  # a name is given (also a non-literal one)
    columns: list[ColumnArg] = field(default_factory=list)  # indexed / constrained / referencing columns
    first: ColumnArg | None = None  # an Index whose first argument (its name!) is a column: that argument
    column: str | None = None  # place "column"/"field": the attribute (model) or key (Core) of its column
    referred: list[ColumnArg] = field(default_factory=list)  # foreign keys: the target columns
    sqltext: str | None = None  # a CHECK's SQL when it is a literal (or `text("...")`)
    unique: bool = False  # Index(unique=True)
    use_alter: bool = False
    options: list[str] = field(default_factory=list)  # the other keyword arguments' names

    @property
    def line(self) -> int:
        return self.pos[0]


@dataclass
class TableFact:
    """A Core `Table(...)` call."""

    key: str  # the variable it is assigned to (`app.db.users`), the class for `__table__ = Table(...)`,
    #           else "<module>:<line>"
    name: str | None
    metadata: str | None  # qualified name of the MetaData argument (`app.db.metadata`, `app.Base.metadata`)
    schema: str | None
    schema_known: bool
    columns: dict[str, ColumnInfo]  # by column key (`ColumnInfo.attr` is the key)
    constraints: list[ConstraintFact]
    module: str
    pos: Pos


@dataclass
class TableArgsFact:
    """A class's `__table_args__`."""

    owner: str
    constraints: list[ConstraintFact]
    schema: str | None = None
    schema_known: bool = True
    dynamic: bool = False  # not a literal tuple or dict (a name, a call, `declared_attr`): contents unknown


@dataclass
class MetadataFact:
    """What a `MetaData` is known to carry. Several facts can describe one MetaData; later ones win."""

    key: str  # the qualified name models and tables refer to it by; normalized by `SchemaView.metadata_key`
    convention: dict[str, str] | None = None  # keys normalized to "ix", "uq", "ck", "fk", "pk" (+ custom tokens)
    convention_ref: str | None = None  # `naming_convention=NAME`: qualified name of a module-level dict
    dynamic: bool = False  # a naming_convention we cannot read (a call, a callable token)
    schema: str | None = None
    assigned: bool = False  # from `X.metadata.naming_convention = ...` (applies after construction)
    module: str = ""


@dataclass
class ModuleSchema:
    module: str
    tables: list[TableFact] = field(default_factory=list)
    table_args: dict[str, TableArgsFact] = field(default_factory=dict)  # by class qualname
    column_constraints: dict[str, list[ConstraintFact]] = field(default_factory=dict)  # by class qualname
    indexes: list[ConstraintFact] = field(default_factory=list)  # Index(...) outside Table() / __table_args__
    metadata: list[MetadataFact] = field(default_factory=list)
    literals: dict[str, MetadataFact] = field(default_factory=dict)  # module-level dicts, parsed as conventions
    # columns the model index does not see: `x = column_property(Column(...), ...)`, by class qualname
    property_columns: dict[str, dict[str, ColumnInfo]] = field(default_factory=dict)


# -- collection -----------------------------------------------------------------------------------


def collect(tree: ast.Module, names: ModuleNames, q: Resolver, facts: object) -> None:
    """The index contributor: store this module's `ModuleSchema` in `facts.extra["schema"]`."""
    schema = collect_module(tree, names, q)
    if schema != ModuleSchema(schema.module):
        facts.extra[KEY] = schema  # type: ignore[attr-defined]


def collect_module(tree: ast.Module, names: ModuleNames, q: Resolver) -> ModuleSchema:
    """Every schema fact of one module (also used by the codemods on the source being fixed)."""
    collector = _Collector(names.module, q)
    collector.body(tree.body, names.module, top=True)
    return collector.result


def pos(node: ast.AST) -> Pos:
    return (node.lineno, node.col_offset, node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]


def column_arg(node: ast.expr, q: Resolver) -> ColumnArg:
    """What a column argument refers to (see `ColumnArg.kind`)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return ColumnArg("name", node.value)
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
        owner = _table_holder(node.value, q)
        if owner is not None:
            return ColumnArg("table", node.slice.value, owner)
    if isinstance(node, ast.Attribute):
        owner = _table_holder(node.value, q)
        if owner is not None:
            return ColumnArg("table", node.attr, owner)
        owner = q(node.value)
        if owner is not None and isinstance(node.value, (ast.Name, ast.Attribute)):
            return ColumnArg("attr", node.attr, owner)
    return ColumnArg("expr", ast.unparse(node))


def _table_holder(node: ast.expr, q: Resolver) -> str | None:
    """`users.c` / `User.__table__.c` / `users.columns` -> the qualified name of `users` / `User`."""
    if not (isinstance(node, ast.Attribute) and node.attr in ("c", "columns")):
        return None
    holder = node.value
    if isinstance(holder, ast.Attribute) and holder.attr == "__table__":
        holder = holder.value
    return q(holder) if isinstance(holder, (ast.Name, ast.Attribute)) else None


def _string(node: ast.expr | None, q: Resolver) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Call) and q(node.func) in ("sqlalchemy.text", "sqlalchemy.literal_column") and len(node.args) == 1:
        return _string(node.args[0], q)
    return None


def constraint_from_call(call: ast.Call, q: Resolver, place: str, owner: str | None, module: str) -> ConstraintFact | None:
    """An `Index`/`*Constraint`/`ForeignKey` call as a `ConstraintFact`, or None if it is none of them."""
    func = q(call.func)
    kind = CONSTRAINT_CALLS.get(func or "")
    if func == "sqlalchemy.ForeignKey":
        kind = "foreign_key"
    if kind is None:
        return None
    fact = ConstraintFact(kind=kind, place=place, owner=owner, module=module, pos=pos(call))
    args = list(call.args)
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    name_node = keywords.pop("name", None)
    if func == "sqlalchemy.Index":
        if name_node is None and args:
            name_node = args.pop(0)
            if not (isinstance(name_node, ast.Constant) and (name_node.value is None or isinstance(name_node.value, str))):
                fact.first, name_node = column_arg(name_node, q), None
        fact.columns = [column_arg(a, q) for a in args if not isinstance(a, ast.Starred)]
        fact.unique = _const(keywords.pop("unique", None), False) is True
    elif func == "sqlalchemy.CheckConstraint":
        text = args[0] if args else keywords.pop("sqltext", None)
        fact.sqltext = _string(text, q)
        if name_node is None and len(args) > 1:
            name_node = args[1]
    elif func == "sqlalchemy.ForeignKeyConstraint":
        cols = args[0] if args else keywords.pop("columns", None)
        refs = args[1] if len(args) > 1 else keywords.pop("refcolumns", None)
        fact.columns = [column_arg(e, q) for e in _elements(cols)]
        fact.referred = [column_arg(e, q) for e in _elements(refs)]
        if name_node is None and len(args) > 2:
            name_node = args[2]
    elif func == "sqlalchemy.ForeignKey":
        target = args[0] if args else keywords.pop("column", None)
        fact.referred = [column_arg(target, q)] if target is not None else []
    else:
        fact.columns = [column_arg(a, q) for a in args if not isinstance(a, ast.Starred)]
    if kind == "foreign_key":
        fact.use_alter = _const(keywords.pop("use_alter", None), False) is True
    if name_node is not None and not (isinstance(name_node, ast.Constant) and name_node.value is None):
        fact.named = True
        value = _const(name_node, None)
        fact.name = value if isinstance(value, str) else None
    fact.options = sorted(keywords)
    return fact


def _elements(node: ast.expr | None) -> list[ast.expr]:
    if isinstance(node, (ast.List, ast.Tuple)):
        return [e for e in node.elts if not isinstance(e, ast.Starred)]
    return []


def parse_convention(node: ast.expr | None, q: Resolver, fact: MetadataFact) -> None:
    """Read a `naming_convention` value into `fact` (a literal dict, `dict(...)`, or a name of one)."""
    if node is None:
        return
    pairs: list[tuple[ast.expr | None, ast.expr]] = []
    if isinstance(node, ast.Dict):
        pairs = list(zip(node.keys, node.values))
    elif isinstance(node, ast.Call) and q(node.func) == "builtins.dict" and not node.args:
        pairs = [(ast.Constant(k.arg) if k.arg else None, k.value) for k in node.keywords]
    elif isinstance(node, (ast.Name, ast.Attribute)) and q(node):
        fact.convention_ref = q(node)
        return
    else:
        fact.dynamic = True
        return
    convention: dict[str, str] = {}
    for key, value in pairs:
        if key is None:
            fact.dynamic = True
            continue
        name = key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else CONVENTION_KEYS.get(q(key) or "")
        text = value.value if isinstance(value, ast.Constant) and isinstance(value.value, str) else None
        if name is None or text is None:
            fact.dynamic = True  # a class we do not know, or a callable token
            continue
        convention[name] = text
    fact.convention = convention


class _Collector:
    def __init__(self, module: str, q: Resolver) -> None:
        self.module = module
        self.q = q
        self.result = ModuleSchema(module)
        self.claimed: set[int] = set()  # Index calls that belong to a Table(...) or __table_args__

    def body(self, body: list[ast.stmt], prefix: str, top: bool) -> None:
        for stmt in body:
            if isinstance(stmt, ast.ClassDef):
                self.klass(stmt, f"{prefix}.{stmt.name}")
            elif isinstance(stmt, ast.If):
                self.body(stmt.body, prefix, top)
                self.body(stmt.orelse, prefix, top)
            elif isinstance(stmt, ast.Try):
                self.body(stmt.body, prefix, top)
                self.body(stmt.orelse, prefix, top)
                self.body(stmt.finalbody, prefix, top)
            elif top and not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.module_statement(stmt)

    def module_statement(self, stmt: ast.stmt) -> None:
        q = self.q
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign):
            targets, value = [stmt.target], stmt.value
        if value is not None:
            self.assignment(targets, value)
        for node in _walk(stmt):
            if isinstance(node, ast.Call) and q(node.func) == "sqlalchemy.Table" and id(node) not in self.claimed:
                target = targets[0] if len(targets) == 1 and isinstance(targets[0], ast.Name) and value is node else None
                key = f"{self.module}.{target.id}" if target is not None else f"{self.module}:{node.lineno}"
                self.table(node, key)
        for node in _walk(stmt):
            if isinstance(node, ast.Call) and id(node) not in self.claimed and q(node.func) == "sqlalchemy.Index":
                fact = constraint_from_call(node, q, "module", None, self.module)
                if fact is not None:
                    self.result.indexes.append(fact)

    def assignment(self, targets: list[ast.expr], value: ast.expr) -> None:
        q = self.q
        for target in targets:
            if isinstance(target, ast.Name) and isinstance(value, ast.Dict):
                literal = MetadataFact(key=f"{self.module}.{target.id}", module=self.module)
                parse_convention(value, q, literal)
                self.result.literals[literal.key] = literal
            if isinstance(target, ast.Name) and isinstance(value, ast.Call):
                self.metadata_call(value, f"{self.module}.{target.id}")
            if isinstance(target, ast.Attribute) and target.attr in ("naming_convention", "schema"):
                key = q(target.value)
                if key is None:
                    continue
                fact = MetadataFact(key=key, assigned=True, module=self.module)
                if target.attr == "schema":
                    schema = _const(value, None)
                    fact.schema = schema if isinstance(schema, str) else None
                else:
                    parse_convention(value, q, fact)
                self.result.metadata.append(fact)

    def metadata_call(self, call: ast.Call, key: str) -> None:
        func = self.q(call.func)
        if func == "sqlalchemy.MetaData":
            fact = MetadataFact(key=key, module=self.module)
            parse_convention(_kw(call, "naming_convention"), self.q, fact)
            schema = _const(_kw(call, "schema"), None)
            fact.schema = schema if isinstance(schema, str) else None
            self.result.metadata.append(fact)
        elif func in BASE_FACTORIES:
            inner = _kw(call, "metadata")
            if isinstance(inner, ast.Call):
                self.metadata_call(inner, "flask_sqlalchemy.Model" if func == "flask_sqlalchemy.SQLAlchemy" else key)

    def table(self, call: ast.Call, key: str) -> None:
        q = self.q
        self.claimed.add(id(call))
        name = _const(call.args[0], None) if call.args else _const(_kw(call, "name"), None)
        metadata = q(call.args[1]) if len(call.args) > 1 else (q(_kw(call, "metadata")) if _kw(call, "metadata") else None)  # type: ignore[arg-type]
        schema_node = _kw(call, "schema")
        schema = _const(schema_node, None)
        fact = TableFact(
            key=key,
            name=name if isinstance(name, str) else None,
            metadata=metadata,
            schema=schema if isinstance(schema, str) else None,
            schema_known=schema_node is None or isinstance(schema, str) or schema is None,
            columns={},
            constraints=[],
            module=self.module,
            pos=pos(call),
        )
        for arg in call.args[2:]:
            if not isinstance(arg, ast.Call):
                continue
            self.claimed.add(id(arg))
            if q(arg.func) == "sqlalchemy.Column":
                info = _core_column(arg, q)
                if info is None:
                    continue
                fact.columns[info.attr] = info
                fact.constraints.extend(self.inside_column(arg, key, info.attr, "column"))
                continue
            constraint = constraint_from_call(arg, q, "table", key, self.module)
            if constraint is not None:
                fact.constraints.append(constraint)
        self.result.tables.append(fact)

    def inside_column(self, call: ast.Call, owner: str, column: str, place: str) -> list[ConstraintFact]:
        found = []
        for arg in call.args:
            if isinstance(arg, ast.Call) and self.q(arg.func) in ("sqlalchemy.ForeignKey", "sqlalchemy.CheckConstraint"):
                fact = constraint_from_call(arg, self.q, place, owner, self.module)
                if fact is not None:
                    fact.column = column
                    found.append(fact)
        return found

    def klass(self, node: ast.ClassDef, qualname: str) -> None:
        q = self.q
        for stmt in node.body:
            if isinstance(stmt, ast.ClassDef):
                self.klass(stmt, f"{qualname}.{stmt.name}")
                continue
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                attr, value = stmt.targets[0].id, stmt.value
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
                attr, value = stmt.target.id, stmt.value
            else:
                continue
            if attr == "__table_args__":
                self.table_args(value, qualname)
            elif attr == "__table__" and isinstance(value, ast.Call) and q(value.func) == "sqlalchemy.Table":
                self.table(value, qualname)
            elif attr == "metadata" and isinstance(value, ast.Call):
                self.metadata_call(value, f"{qualname}.metadata")
            elif isinstance(value, ast.Call):
                if q(value.func) == "sqlalchemy.orm.column_property" and value.args and isinstance(value.args[0], ast.Call):
                    # `column_property(Column(...), Parent.x)`: a column of this class's own table
                    value = value.args[0]
                    info = column_from_call(attr, value, q)
                    if info is None:
                        continue
                    info.module = self.module
                    self.result.property_columns.setdefault(qualname, {})[attr] = info
                found = self.column_constraints(value, qualname, attr)
                if found:
                    self.result.column_constraints.setdefault(qualname, []).extend(found)

    def column_constraints(self, call: ast.Call, owner: str, attr: str) -> list[ConstraintFact]:
        q = self.q
        func = q(call.func)
        if func in COLUMN_CALLS:
            return self.inside_column(call, owner, attr, "column")
        if func != "sqlmodel.Field":
            return []
        found: list[ConstraintFact] = []
        sa_column = _kw(call, "sa_column")
        if isinstance(sa_column, ast.Call) and q(sa_column.func) in COLUMN_CALLS:
            found.extend(self.inside_column(sa_column, owner, attr, "column"))
        for arg in _elements(_kw(call, "sa_column_args")):
            if isinstance(arg, ast.Call):
                fact = constraint_from_call(arg, q, "column", owner, self.module)
                if fact is not None and fact.kind in ("foreign_key", "check"):
                    fact.column = attr
                    found.append(fact)
        target = _kw(call, "foreign_key")
        if target is not None:
            fact = ConstraintFact(kind="foreign_key", place="field", owner=owner, module=self.module, pos=pos(call), column=attr)
            fact.referred = [column_arg(target, q)]
            found.append(fact)
        return found

    def table_args(self, value: ast.expr, owner: str) -> None:
        fact = TableArgsFact(owner=owner, constraints=[])
        items: list[ast.expr] = []
        if isinstance(value, (ast.Tuple, ast.List)):
            items = list(value.elts)
        elif isinstance(value, ast.Dict):
            items = [value]
        else:
            fact.dynamic = True
        for item in items:
            if isinstance(item, ast.Dict):
                for key, val in zip(item.keys, item.values):
                    if isinstance(key, ast.Constant) and key.value == "schema":
                        schema = _const(val, None)
                        fact.schema = schema if isinstance(schema, str) else None
                        fact.schema_known = isinstance(schema, str) or schema is None
                    elif key is None:
                        fact.schema_known = False
            elif isinstance(item, ast.Call):
                self.claimed.add(id(item))
                constraint = constraint_from_call(item, self.q, "table_args", owner, self.module)
                if constraint is not None:
                    fact.constraints.append(constraint)
            else:
                fact.dynamic = True  # `*mixin_args` or a name: there may be more
        self.result.table_args[owner] = fact


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """`ast.walk` that does not enter function or lambda bodies (code that may never run)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        for child in children(current):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                stack.append(child)


def _core_column(call: ast.Call, q: Resolver) -> ColumnInfo | None:
    name = _const(call.args[0], None) if call.args else _const(_kw(call, "name"), None)
    if not isinstance(name, str):
        return None
    info = column_from_call(name, call, q)
    if info is None:
        return None
    key = _const(_kw(call, "key"), None)
    info.attr = key if isinstance(key, str) else name
    return info


# -- the project view -----------------------------------------------------------------------------


@dataclass
class TableView:
    """One table of the project: a model's or a Core `Table`'s, with everything that belongs to it."""

    key: str  # the model's qualified name, or `TableFact.key`
    name: str
    schema: str | None
    metadata: str  # normalized MetaData key (`SchemaView.metadata_key`)
    module: str
    columns: dict[str, ColumnInfo]  # models: by attribute; Core tables: by column key
    constraints: list[ConstraintFact] = field(default_factory=list)  # in DDL order of creation
    model: ModelInfo | None = None
    table_args_dynamic: bool = False
    schema_known: bool = True
    members: list[ModelInfo] = field(default_factory=list)  # single-table-inheritance subclasses mapped to it

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name

    def column(self, arg: ColumnArg) -> ColumnInfo | None:
        """The column a `ColumnArg` refers to in this table, or None."""
        if arg.kind == "attr":
            return self.columns.get(arg.value)
        if arg.kind in ("name", "table"):
            # A declarative table's column keys are the column names; a Core table's are its keys.
            if self.model is None and arg.value in self.columns:
                return self.columns[arg.value]
            for info in self.columns.values():
                if info.name == arg.value:
                    return info
        return None

    def column_names(self, args: Iterable[ColumnArg]) -> list[str] | None:
        """The database names of the columns, or None if one of them is not a known column."""
        found = [self.column(a) for a in args]
        return None if any(c is None for c in found) else [c.name for c in found]  # type: ignore[union-attr]

    def sa_key(self, info: ColumnInfo) -> str:
        return info.name if self.model is not None else info.attr


@dataclass
class ForeignKeyEdge:
    """One foreign key, resolved: `table(columns) -> target(target_columns)`."""

    table: TableView
    columns: list[str]  # referencing column names
    target: TableView | None  # None: no such table in the project (see `target_text`)
    target_columns: list[str]
    target_text: str  # as written: "organizations.id", "Organization.id"
    fact: ConstraintFact
    nullable: bool | None = None  # for a single-column key


@dataclass
class NameUse:
    """A name some index, constraint or table takes in a schema."""

    name: str
    schema: str | None
    table: str  # TableView key
    kind: str  # "table" | "index" | "unique" | "primary_key" | "check" | "foreign_key"
    relation: bool  # indexes, unique and primary keys and tables share PostgreSQL's relation namespace
    fact: ConstraintFact | None = None
    column: str | None = None  # for `index=True` / `unique=True` on a column: its attribute or key
    explicit: bool = True


class SchemaView:
    """The project's tables, from the model index and the schema facts (`current` replaces one module's)."""

    def __init__(self, index: ProjectIndex, current: ModuleSchema | None = None) -> None:
        self.index = index
        modules: dict[str, ModuleSchema] = dict(index.extra(KEY))  # type: ignore[arg-type]
        if current is not None:
            modules[current.module] = current
        self.modules = modules
        self.tables: dict[str, TableView] = {}
        self.aliases: dict[str, str] = {}  # single-table-inheritance subclasses -> their parent's key
        self.orphans: list[ConstraintFact] = []  # module-level Index(...) with no table we can tell
        self._metadata: dict[str, list[MetadataFact]] = {}
        self._literals: dict[str, MetadataFact] = {}
        self._cache: dict[object, object] = {}
        for schema in modules.values():
            self._literals.update(schema.literals)
            for fact in schema.metadata:
                self._metadata.setdefault(self.metadata_key(fact.key), []).append(fact)
        for facts in self._metadata.values():
            facts.sort(key=lambda f: f.assigned)
        self._models()
        self._core_tables()
        self._module_indexes()

    # building ------------------------------------------------------------------------------------
    def _models(self) -> None:
        singles: dict[str, str] = {}  # single-table-inheritance subclass -> its nearest mapped ancestor
        for qualname in sorted(self.index.models):
            model = self.index.models[qualname]
            if model.table is None:
                continue
            mro = self.index._mro(model.cls)
            parent = next((c.qualname for c in mro[1:] if c.qualname in self.index.models and self.index.models[c.qualname].table == model.table), None)
            if parent is not None and model.cls.tablename is None and not model.cls.has_table_attr:
                singles[qualname] = parent
                continue
            args = self._table_args(model)
            metadata = self.metadata_key(model.metadata)
            schema = args.schema if args is not None and args.schema is not None else self.default_schema(metadata)
            view = TableView(
                key=qualname,
                name=model.table,
                schema=schema,
                metadata=metadata,
                module=model.cls.module,
                columns={},
                model=model,
                table_args_dynamic=bool(args and args.dynamic),
                schema_known=args.schema_known if args is not None else True,
            )
            self._own_columns(view, model)
            if args is not None:
                view.constraints.extend(args.constraints)
            self.tables[qualname] = view
        # Single-table inheritance: a subclass's own columns and their constraints are the parent table's.
        # Done once every table exists, in definition order (the order SQLAlchemy appends the columns in).
        order = sorted(singles, key=lambda q: (self.index.models[q].cls.module, self.index.models[q].cls.line, q))
        for qualname in order:
            root = singles[qualname]
            while root in singles:
                root = singles[root]
            view = self.tables.get(root)
            if view is None:
                continue
            self.aliases[qualname] = root
            view.members.append(self.index.models[qualname])
            self._own_columns(view, self.index.models[qualname])

    def _own_classes(self, model: ModelInfo) -> list:
        """The model's class and the unmapped classes (mixins, abstract bases) it inherits other than through
        a mapped ancestor: declarative copies their columns into the model's own table, and only theirs."""
        found, seen, stack = [], set(), [model.cls]
        while stack:
            cls = stack.pop()
            if cls.qualname in seen or (cls is not model.cls and cls.qualname in self.index.models):
                continue
            seen.add(cls.qualname)
            found.append(cls)
            stack.extend(p for p in (self.index.classes.get(b) for b in reversed(cls.bases)) if p is not None)
        return found

    def _own_columns(self, view: TableView, model: ModelInfo) -> None:
        """Add the columns the model declares itself (not its mapped ancestors': theirs are on their own
        tables) and the constraints written inside them."""
        own = self._own_classes(model)
        attrs = {attr for cls in own for attr in cls.columns}
        for attr, info in model.columns.items():
            if attr in attrs:
                view.columns.setdefault(attr, info)
        for cls in reversed(own):
            for attr, info in self._module(cls.module).property_columns.get(cls.qualname, {}).items():
                view.columns.setdefault(attr, info)
        present = {id(c) for c in view.constraints}
        for cls in own:
            for fact in self._module(cls.module).column_constraints.get(cls.qualname, []):
                if fact.column in view.columns and id(fact) not in present:
                    present.add(id(fact))
                    view.constraints.append(fact)

    def _table_args(self, model: ModelInfo) -> TableArgsFact | None:
        for cls in self.index._mro(model.cls):
            if cls is not model.cls and cls.qualname in self.index.models:
                return None  # a mapped parent's __table_args__ belong to its own table
            args = self._module(cls.module).table_args.get(cls.qualname)
            if args is not None:
                return args
        return None

    def _module(self, module: str) -> ModuleSchema:
        return self.modules.get(module) or ModuleSchema(module)

    def _core_tables(self) -> None:
        for schema in self.modules.values():
            for fact in schema.tables:
                if fact.name is None or fact.key in self.tables:
                    continue
                metadata = self.metadata_key(fact.metadata or "")
                self.tables[fact.key] = TableView(
                    key=fact.key,
                    name=fact.name,
                    schema=fact.schema if fact.schema is not None else self.default_schema(metadata),
                    metadata=metadata,
                    module=fact.module,
                    columns=dict(fact.columns),
                    constraints=list(fact.constraints),
                    schema_known=fact.schema_known,
                )

    def _module_indexes(self) -> None:
        for schema in self.modules.values():
            for fact in schema.indexes:
                view = self.index_table(fact)
                if view is None:
                    self.orphans.append(fact)
                else:
                    view.constraints.append(fact)

    def index_table(self, fact: ConstraintFact) -> TableView | None:
        """The table a module-level `Index(...)` is built on: the one all its column arguments name."""
        owners = {a.owner for a in ([fact.first] if fact.first else []) + fact.columns if a and a.kind in ("attr", "table")}
        views = {id(v): v for v in (self.table_for(o) for o in owners)}
        if len(views) != 1:
            return None
        return next(iter(views.values()))

    # queries -------------------------------------------------------------------------------------
    def table_for(self, owner: str | None) -> TableView | None:
        """The table of a model or Core table variable (by qualified name; re-exports followed)."""
        if owner is None:
            return None
        for key in (owner, self.index.resolve(owner) or owner):
            key = self.aliases.get(key, key)
            if key in self.tables:
                return self.tables[key]
        return None

    def tables_named(self, name: str, schema: str | None = None, metadata: str | None = None) -> list[TableView]:
        by_name = self._memo("by_name", self._tables_by_name)
        return [t for t in by_name.get((name, schema), ()) if metadata is None or t.metadata == metadata]

    def _tables_by_name(self) -> dict[tuple[str, str | None], list[TableView]]:
        found: dict[tuple[str, str | None], list[TableView]] = {}
        for table in self.tables.values():
            found.setdefault((table.name, table.schema), []).append(table)
        return found

    def tables_in(self, module: str) -> list[TableView]:
        """The tables declared in one module."""
        by_module = self._memo("by_module", self._tables_by_module)
        return by_module.get(module, [])

    def _tables_by_module(self) -> dict[str, list[TableView]]:
        found: dict[str, list[TableView]] = {}
        for table in self.tables.values():
            for module in dict.fromkeys([table.module, *(m.cls.module for m in table.members)]):
                found.setdefault(module, []).append(table)
        return found

    def taken_names(self) -> set[str]:
        """Every index, constraint and table name in the project (do not mutate)."""
        return self._memo("taken", lambda: {use.name for use in self.index_names()})

    def _memo(self, key: object, compute: Callable[[], T]) -> T:
        """Project-wide answers are computed once per view: every file of a run asks for them."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]  # type: ignore[return-value]

    def metadata_key(self, key: str) -> str:
        """One key per MetaData: `Base.metadata`, `Base` and `declarative_base(metadata=md)`'s `md` agree."""
        if key.endswith(".metadata"):
            prefix = key[: -len(".metadata")]
            cls = self.index.classes.get(prefix)
            if cls is not None and cls.metadata_var:
                return cls.metadata_var
            inst = self.index.instances.get(prefix)
            if inst is not None and inst.metadata_arg:
                return self.index.resolve(inst.metadata_arg) or inst.metadata_arg
            if cls is not None or inst is not None or prefix == "sqlmodel.SQLModel":
                return prefix
        return self.index.resolve(key) or key

    def _metadata_facts(self, metadata: str) -> list[MetadataFact]:
        return self._metadata.get(metadata, [])

    def convention(self, metadata: str) -> tuple[dict[str, str] | None, bool]:
        """The MetaData's custom naming convention (None: SQLAlchemy's default), and whether it is known."""
        convention: dict[str, str] | None = None
        known = True
        for fact in self._metadata_facts(metadata):
            if fact.convention is None and fact.convention_ref is None and not fact.dynamic:
                continue  # MetaData() without naming_convention, or a schema assignment
            known, convention = not fact.dynamic, fact.convention
            if fact.convention_ref is not None:
                literal = self._literals.get(self.index.resolve(fact.convention_ref) or fact.convention_ref)
                if literal is None:
                    literal = self._literals.get(fact.convention_ref)
                known = literal is not None and not literal.dynamic
                convention = literal.convention if literal is not None else None
        return (convention or None), known

    def default_schema(self, metadata: str) -> str | None:
        schema = None
        for fact in self._metadata_facts(metadata):
            if fact.schema is not None:
                schema = fact.schema
        return schema

    def convention_template(self, table: TableView, kind: str) -> tuple[str | None, bool]:
        """The convention template for a kind of constraint on this table (SQLAlchemy's default for
        indexes), and whether it is known."""
        convention, known = self.convention(table.metadata)
        if convention is None:
            return (DEFAULT_INDEX_CONVENTION if kind == "index" else None), known
        return convention.get(CONVENTION_OF_KIND[kind]), known

    def owners_sharing(self, fact: ConstraintFact) -> list[TableView]:
        """The tables a class-level constraint lands on (a mixin's `__table_args__` lands on several)."""
        return self._memo("owners", self._owners).get(id(fact), [])

    def _owners(self) -> dict[int, list[TableView]]:
        found: dict[int, list[TableView]] = {}
        for table in self.tables.values():
            for key in dict.fromkeys(id(c) for c in table.constraints):  # each table once per constraint
                found.setdefault(key, []).append(table)
        return found

    # foreign keys --------------------------------------------------------------------------------
    def foreign_keys(self) -> list[ForeignKeyEdge]:
        """Every foreign key of every table, its target resolved where the project defines it."""
        return self._memo("foreign_keys", self._foreign_keys)

    def _foreign_keys(self) -> list[ForeignKeyEdge]:
        edges: list[ForeignKeyEdge] = []
        for view in self.tables.values():
            for fact in view.constraints:
                if fact.kind != "foreign_key":
                    continue
                if fact.place in ("column", "field"):
                    info = view.columns.get(fact.column or "")
                    if info is None:
                        continue
                    columns = [info.name]
                    nullable = info.nullable
                else:
                    names = view.column_names(fact.columns)
                    if names is None:
                        continue
                    columns, nullable = names, None
                    if len(fact.columns) == 1:
                        nullable = view.column(fact.columns[0]).nullable  # type: ignore[union-attr]
                target, target_columns = self._resolve_targets(view, fact.referred)
                text = ", ".join(a.value if a.kind != "attr" else f"{(a.owner or '').rsplit('.', 1)[-1]}.{a.value}" for a in fact.referred)
                edges.append(ForeignKeyEdge(view, columns, target, target_columns, text, fact, nullable))
        return edges

    def _resolve_targets(self, view: TableView, referred: list[ColumnArg]) -> tuple[TableView | None, list[str]]:
        targets: set[str] = set()
        columns: list[str] = []
        for arg in referred:
            if arg.kind == "name":
                parts = arg.value.split(".")
                if len(parts) < 2:
                    return None, []
                schema = ".".join(parts[:-2]) or self.default_schema(view.metadata)
                found = self.tables_named(parts[-2], schema, view.metadata)
                if len(found) != 1:
                    return None, []
                target = found[0]
                info = target.column(ColumnArg("name", parts[-1]))
                columns.append(info.name if info else parts[-1])
            elif arg.kind in ("attr", "table"):
                target = self.table_for(arg.owner)
                if target is None:
                    return None, []
                info = target.column(arg)
                columns.append(info.name if info else arg.value)
            else:
                return None, []
            targets.add(target.key)
        if len(targets) != 1:
            return None, []
        return self.tables[targets.pop()], columns

    def cyclic_foreign_keys(self) -> list[ForeignKeyEdge]:
        """The foreign keys that lie on a cycle between two or more tables (self-references excluded)."""
        return self._memo("cyclic_foreign_keys", self._cyclic_foreign_keys)

    def _cyclic_foreign_keys(self) -> list[ForeignKeyEdge]:
        edges = [e for e in self.foreign_keys() if e.target is not None and e.target.key != e.table.key]
        graph: dict[str, set[str]] = {}
        for e in edges:
            graph.setdefault(e.table.key, set()).add(e.target.key)  # type: ignore[union-attr]
        component = _strongly_connected(graph)
        return [e for e in edges if component.get(e.table.key) is not None and component.get(e.table.key) == component.get(e.target.key)]  # type: ignore[union-attr]

    # names ---------------------------------------------------------------------------------------
    def sa_name(self, table: TableView, kind: str, columns: list[ColumnInfo], *, name: str | None = None,
                referred: tuple[TableView, list[ColumnInfo]] | None = None, sqltext: str | None = None) -> str | None:
        """The name SQLAlchemy gives this index or constraint on PostgreSQL (convention, truncation)."""
        convention, known = self.convention(table.metadata)
        if not known:
            return None
        return sa_rendered_name(
            table.name, table.schema, [(table.sa_key(c), c.name) for c in columns], kind, convention, name=name,
            referred=(referred[0].name, referred[0].schema, [(referred[0].sa_key(c), c.name) for c in referred[1]]) if referred else None,
            sqltext=sqltext,
        )

    def pg_names(self, table: TableView) -> PgNames:
        """The names PostgreSQL gives this table's unnamed constraints (see `PgNames`)."""
        cache_key = ("pg", table.key)
        if cache_key not in self._cache:
            self._cache[cache_key] = _pg_names(self, table)
        return self._cache[cache_key]  # type: ignore[return-value]

    def index_names(self) -> list[NameUse]:
        """Every name the project's tables, indexes and constraints take (explicit, or generated today)."""
        if "names" not in self._cache:
            self._cache["names"] = list(_name_uses(self))
        return self._cache["names"]  # type: ignore[return-value]

    def names_in(self, schema: str | None, *, relation: bool | None = None) -> dict[str, list[NameUse]]:
        return self._memo(("names_in", schema, relation), lambda: self._names_in(schema, relation))

    def _names_in(self, schema: str | None, relation: bool | None) -> dict[str, list[NameUse]]:
        found: dict[str, list[NameUse]] = {}
        for use in self.index_names():
            if use.schema == schema and (relation is None or use.relation == relation):
                found.setdefault(use.name, []).append(use)
        return found


def strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components of two or more nodes, in a deterministic order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    counter = itertools.count()

    def push(node: str) -> None:
        index[node] = low[node] = next(counter)
        stack.append(node)
        on_stack.add(node)

    for root in sorted(graph):
        if root in index:
            continue
        push(root)
        work = [(root, iter(sorted(graph.get(root, ()))))]
        while work:  # iterative, so that long FK chains cannot hit the recursion limit
            node, successors = work[-1]
            for succ in successors:
                if succ not in index:
                    push(succ)
                    work.append((succ, iter(sorted(graph.get(succ, ())))))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component: set[str] = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(component)
    return sorted(found, key=sorted)


def _strongly_connected(graph: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """Node -> component number, for components of two or more nodes."""
    return {node: number for number, members in enumerate(strongly_connected(graph), 1) for node in members}


# -- PostgreSQL's names ---------------------------------------------------------------------------


def pg_identifier(name: str) -> str:
    """What PostgreSQL keeps of an identifier: its first 63 bytes, never splitting a character."""
    return _clip(name.encode(), MAX_IDENTIFIER).decode()


def _clip(data: bytes, limit: int) -> bytes:
    # pg_mbcliplen: cut at `limit` bytes, backing off to a character boundary (UTF-8)
    return data[:limit].decode("utf-8", "ignore").encode()


def make_object_name(name1: str, name2: str | None, label: str | None) -> str:
    """PostgreSQL's makeObjectName: `name1_name2_label` in 63 bytes, truncating the longer name first."""
    one = pg_identifier(name1).encode()
    two = name2.encode() if name2 is not None else None
    overhead = (1 if two is not None else 0) + (len(label.encode()) + 1 if label else 0)
    available = MAX_IDENTIFIER - overhead
    n1, n2 = len(one), len(two) if two is not None else 0
    while n1 + n2 > available:
        if n1 > n2:
            n1 -= 1
        else:
            n2 -= 1
    out = _clip(one, n1)
    if two is not None:
        out += b"_" + _clip(two, n2)
    if label:
        out += b"_" + label.encode()
    return out.decode()


def name_addition(columns: Iterable[str]) -> str:
    """PostgreSQL's ChooseIndexNameAddition / ChooseForeignKeyConstraintNameAddition."""
    buf = b""
    for column in columns:
        if buf:
            buf += b"_"
        buf += pg_identifier(column).encode()
        if len(buf) >= MAX_IDENTIFIER + 1:
            break
    return buf.decode("utf-8", "ignore")


def choose_name(name1: str, name2: str | None, label: str, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """PostgreSQL's ChooseRelationName / ChooseConstraintName: on a clash, `label1`, `label2`, ..."""
    candidate = make_object_name(name1, name2, label)
    attempt = 0
    while candidate in taken:
        attempt += 1
        candidate = make_object_name(name1, name2, f"{label}{attempt}")
    return candidate


def pg_unique_name(table: str, columns: list[str], taken: set[str] | frozenset[str] = frozenset()) -> str:
    return choose_name(table, name_addition(columns), "key", taken)


def pg_primary_key_name(table: str, taken: set[str] | frozenset[str] = frozenset()) -> str:
    return choose_name(table, None, "pkey", taken)


def pg_foreign_key_name(table: str, columns: list[str], taken: set[str] | frozenset[str] = frozenset()) -> str:
    return choose_name(table, name_addition(columns), "fkey", taken)


def pg_check_name(table: str, column: str | None, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """`<table>_<column>_check` when the expression references exactly one column, else `<table>_check`."""
    return choose_name(table, column, "check", taken)


_SQL_TOKEN = re.compile(
    r"""(?P<string>[eE]?'(?:[^']|'')*')|(?P<quoted>"(?:[^"]|"")+")|(?P<word>[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*)"""
    r"""|(?P<cast>::)|(?P<dot>\.)|(?P<paren>\()|(?P<space>\s+)|(?P<other>.)""",
    re.DOTALL,
)
_NOT_COLUMN_AFTER = frozenset({"as", "interval", "collate"})


def check_columns(sqltext: str, columns: Iterable[str]) -> set[str] | None:
    """The table columns a CHECK expression references (what PostgreSQL's pull_var_clause finds)."""
    known = set(columns)
    lowered = {c.lower(): c for c in known if c == c.lower()}
    tokens = [(m.lastgroup, m.group()) for m in _SQL_TOKEN.finditer(sqltext) if m.lastgroup != "space"]
    found: set[str] = set()
    for i, (kind, text) in enumerate(tokens):
        if kind not in ("word", "quoted"):
            continue
        before = tokens[i - 1] if i else (None, "")
        after = tokens[i + 1] if i + 1 < len(tokens) else (None, "")
        if after[0] in ("paren", "dot") or before[0] == "cast" or before[1].lower() in _NOT_COLUMN_AFTER:
            continue  # a function, a qualifier, a type
        if kind == "quoted":
            name = text[1:-1].replace('""', '"')
            if name in known:
                found.add(name)
        elif text.lower() in lowered:
            found.add(lowered[text.lower()])
    if not tokens:
        return None
    return found


@dataclass
class PgNames:
    """PostgreSQL's names for one table's unnamed constraints; None where they cannot be known (`reasons`)."""

    by_fact: dict[int, str | None] = field(default_factory=dict)  # id(ConstraintFact) -> name
    unique_columns: dict[str, str | None] = field(default_factory=dict)  # `unique=True` column attr -> name
    primary_key: str | None = None
    duplicates: dict[int, int] = field(default_factory=dict)  # id(fact) -> line of the identical constraint
    # id(fact) -> why its name is None: "sql" (a CHECK's SQL is not a literal), "columns:<name>" (a column
    # it names is not one we see), "order" (an earlier constraint whose name we cannot tell may have taken it)
    reasons: dict[int, str] = field(default_factory=dict)

    def of(self, fact: ConstraintFact) -> str | None:
        return self.by_fact.get(id(fact))


_ANY = None  # a blocker whose name could be any name of its label


def _pg_names(view: SchemaView, table: TableView) -> PgNames:
    """PostgreSQL picks `<table>_<columns>_<label>` and appends a digit when a name is taken, so a name
    depends on the order of creation only when an earlier constraint could have picked the same one."""
    names = PgNames()
    explicit = {c.name for c in table.constraints if c.name and c.kind != "index"}
    taken: set[str] = set(explicit)

    def place(fact: ConstraintFact, name: str | None, blockers: list[str | None], base: str | None, reason: str) -> str | None:
        """Record the name PostgreSQL gave `fact`, or why it is unknown; `base` is its name before digits."""
        if name is not None and (_ANY in blockers or base in blockers):
            name, reason = None, "order"
        if name is None:
            names.reasons[id(fact)] = reason
            blockers.append(base)
        else:
            taken.add(name)
        names.by_fact[id(fact)] = name
        return name

    # PostgreSQL names CHECKs first (with the table), in DDL order: SQLAlchemy writes column-level
    # ones inline, then the table-level ones in creation order; then the primary key, the unique
    # indexes, and last the foreign keys.
    checks = [c for c in table.constraints if c.kind == "check" and c.place == "column"]
    checks.sort(key=lambda c: list(table.columns).index(c.column) if c.column in table.columns else 0)
    checks += [c for c in table.constraints if c.kind == "check" and c.place in ("table_args", "table")]
    column_names = [c.name for c in table.columns.values()]
    blockers: list[str | None] = []
    for fact in checks:
        if fact.named:
            continue
        refs = check_columns(fact.sqltext, column_names) if fact.sqltext is not None else None
        if refs is None:
            place(fact, None, blockers, _ANY, "sql")  # it may reference any column
            continue
        column = next(iter(refs)) if len(refs) == 1 else None
        place(fact, pg_check_name(table.name, column, taken), blockers, pg_check_name(table.name, column), "")
    pk_fact = next((c for c in table.constraints if c.kind == "primary_key"), None)
    has_pk = pk_fact is not None or any(c.primary_key for c in table.columns.values())
    if has_pk and not (pk_fact and pk_fact.named):
        names.primary_key = pg_primary_key_name(table.name, taken)
        taken.add(names.primary_key)
        if pk_fact is not None:
            names.by_fact[id(pk_fact)] = names.primary_key
    seen: dict[tuple[str, ...], int] = {}
    uniques: list[tuple[ConstraintFact | None, str | None, list[str] | None]] = [
        (c, None, table.column_names(c.columns)) for c in table.constraints if c.kind == "unique" and c.place in ("table_args", "table")
    ]
    # `unique=True, index=True` is a unique index, not a constraint
    uniques += [(None, attr, [info.name]) for attr, info in table.columns.items() if info.unique and not info.index and not info.primary_key]
    blockers = []
    for fact, attr, cols in uniques:
        if fact is not None and fact.named:
            if cols:
                seen.setdefault(tuple(cols), fact.line)
            continue
        if cols is None:
            assert fact is not None
            place(fact, None, blockers, _possible(table.name, fact.columns, "key"), _columns_reason(table, fact.columns))
            continue
        if tuple(cols) in seen:
            if fact is not None:
                names.duplicates[id(fact)] = seen[tuple(cols)]
                names.by_fact[id(fact)] = None
            else:
                names.unique_columns[attr] = None  # type: ignore[index]
            continue
        seen[tuple(cols)] = fact.line if fact is not None else table.columns[attr].line  # type: ignore[index]
        name: str | None = pg_unique_name(table.name, cols, taken)
        base = pg_unique_name(table.name, cols)
        if fact is not None:
            place(fact, name, blockers, base, "")
        elif _ANY in blockers or base in blockers:
            names.unique_columns[attr] = None  # type: ignore[index]
        else:
            taken.add(name)  # type: ignore[arg-type]
            names.unique_columns[attr] = name  # type: ignore[index]
    fks = [c for c in table.constraints if c.kind == "foreign_key" and c.place in ("table_args", "table")]
    fks += sorted(
        (c for c in table.constraints if c.kind == "foreign_key" and c.place in ("column", "field")),
        key=lambda c: list(table.columns).index(c.column) if c.column in table.columns else 0,
    )
    blockers = []
    for fact in fks:
        if fact.named:
            continue
        if fact.place in ("column", "field"):
            info = table.columns.get(fact.column or "")
            cols = [info.name] if info is not None else None
            possible, reason = _ANY, f"columns:{fact.column}"
        else:
            cols = table.column_names(fact.columns)
            possible, reason = _possible(table.name, fact.columns, "fkey"), _columns_reason(table, fact.columns)
        if cols is None:
            place(fact, None, blockers, possible, reason)
            continue
        place(fact, pg_foreign_key_name(table.name, cols, taken), blockers, pg_foreign_key_name(table.name, cols), "")
    return names


def _possible(table: str, args: list[ColumnArg], label: str) -> str | None:
    """The name (before digits) a constraint on columns we cannot see would get: strings name columns."""
    if args and all(a.kind == "name" for a in args):
        return choose_name(table, name_addition([a.value for a in args]), label)
    return _ANY


def _columns_reason(table: TableView, args: list[ColumnArg]) -> str:
    missing = next((a.value for a in args if table.column(a) is None), "")
    return f"columns:{missing}"


# -- SQLAlchemy's names ---------------------------------------------------------------------------

DEFAULT_INDEX_CONVENTION = "ix_%(column_0_label)s"  # MetaData's default naming_convention


@cache
def _dialect() -> object:
    from sqlalchemy.dialects import postgresql

    return postgresql.dialect()


def sa_truncate(name: str, *, index: bool = True) -> str:
    """Shorten a name over 63 characters the way a naming convention does (`_` + 4 hex of its md5)."""
    from sqlalchemy.sql.elements import conv

    preparer = _dialect().identifier_preparer  # type: ignore[attr-defined]
    render = preparer.truncate_and_render_index_name if index else preparer.truncate_and_render_constraint_name
    return render(conv(name), _alembic_quote=False)


def quote(name: str) -> str:
    """An identifier as PostgreSQL DDL needs it (quoted only when necessary)."""
    return _dialect().identifier_preparer.quote(name)  # type: ignore[attr-defined]


def qualified(name: str, schema: str | None) -> str:
    preparer = _dialect().identifier_preparer  # type: ignore[attr-defined]
    return f"{preparer.quote_schema(schema)}.{preparer.quote(name)}" if schema else preparer.quote(name)


def sa_rendered_name(
    table: str,
    schema: str | None,
    columns: list[tuple[str, str]],
    kind: str,
    convention: dict[str, str] | None,
    *,
    name: str | None = None,
    referred: tuple[str, str | None, list[tuple[str, str]]] | None = None,
    sqltext: str | None = None,
) -> str | None:
    """Build the object with SQLAlchemy on a throw-away `MetaData(naming_convention=...)` and read the
    name its PostgreSQL dialect renders. `columns` are (key, name) pairs. None when SQLAlchemy gives
    none (no convention for an unnamed constraint) or refuses (a token it cannot fill).

    Names whose convention uses only the common tokens are spelled without SQLAlchemy (`_spelled`; a
    test holds the two equal); the others are memoized, since the project-wide name list and the rules
    ask for the same names."""
    if name is None:
        spelled = _spelled(table, schema, columns, kind, convention, referred)
        if spelled is not None:
            return spelled
    key = repr((table, schema, columns, kind, convention, name, referred, sqltext))
    if key not in _RENDERED:
        _RENDERED[key] = _sa_rendered_name(table, schema, columns, kind, convention, name=name, referred=referred, sqltext=sqltext)
    return _RENDERED[key]


_DEFAULT_CONVENTION = {"ix": "ix_%(column_0_label)s"}
_RENDERED: dict[str, str | None] = {}
_TOKEN = re.compile(r"%\((\w+)\)s")


def _spelled(
    table: str, schema: str | None, columns: list[tuple[str, str]], kind: str,
    convention: dict[str, str] | None, referred: tuple[str, str | None, list[tuple[str, str]]] | None,
) -> str | None:
    """The convention's name for an unnamed object, spelled without SQLAlchemy for the common tokens
    (SQLAlchemy's import alone costs more than a file's check); None: ask SQLAlchemy."""
    template = (convention or _DEFAULT_CONVENTION).get(CONVENTION_OF_KIND.get(kind, ""))
    if not isinstance(template, str) or not columns or not table.isascii():
        return None
    names = [c for _, c in columns]
    labels = [f"{table}_{c}" for c in names]
    tokens: dict[str, str] = {
        "table_name": table, "column_0_name": names[0], "column_0_N_name": "_".join(names), "column_0N_name": "".join(names),
    }
    if schema is None:  # with a schema, a label carries it too
        tokens |= {"column_0_label": labels[0], "column_0_N_label": "_".join(labels), "column_0N_label": "".join(labels)}
    if referred is not None and referred[2]:
        targets = [c for _, c in referred[2]]
        tokens |= {"referred_table_name": referred[0], "referred_column_0_name": targets[0],
                   "referred_column_0_N_name": "_".join(targets), "referred_column_0N_name": "".join(targets)}
    if any(token not in tokens for token in _TOKEN.findall(template)):
        return None  # a key, a constraint name, a function token: SQLAlchemy knows them
    try:
        spelled = template % tokens
    except (KeyError, ValueError, TypeError):
        return None
    return spelled if len(spelled) <= MAX_IDENTIFIER and spelled.isascii() else None  # truncation: SQLAlchemy's


def rendered_names() -> dict[str, str | None]:
    """The names rendered so far in this process (kept by editor mode's snapshot)."""
    return dict(_RENDERED)


def remember_rendered(names: dict[str, str | None]) -> None:
    _RENDERED.update(names)


def _sa_rendered_name(
    table: str,
    schema: str | None,
    columns: list[tuple[str, str]],
    kind: str,
    convention: dict[str, str] | None,
    *,
    name: str | None = None,
    referred: tuple[str, str | None, list[tuple[str, str]]] | None = None,
    sqltext: str | None = None,
) -> str | None:
    import sqlalchemy as sa

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            metadata = sa.MetaData(naming_convention=convention) if convention else sa.MetaData()
            seen: dict[str, str] = {}
            for key, col in columns:
                seen.setdefault(key, col)
            if referred is not None and (referred[0], referred[1]) == (table, schema):
                for key, col in referred[2]:
                    seen.setdefault(key, col)
            t = sa.Table(table, metadata, *[sa.Column(col, sa.Integer, key=key) for key, col in seen.items()], schema=schema)
            cols = [t.c[key] for key, _ in columns]
            obj: object
            if kind == "index":
                obj = sa.Index(name, *cols)
            elif kind == "unique":
                obj = sa.UniqueConstraint(*cols, name=name)
            elif kind == "primary_key":
                obj = sa.PrimaryKeyConstraint(*cols, name=name)
            elif kind == "check":
                obj = sa.CheckConstraint(sa.text(sqltext or "true"), name=name)
            elif kind == "foreign_key" and referred is not None:
                target = t if (referred[0], referred[1]) == (table, schema) else sa.Table(
                    referred[0], metadata, *[sa.Column(col, sa.Integer, key=key) for key, col in referred[2]], schema=referred[1]
                )
                obj = sa.ForeignKeyConstraint(cols, [target.c[key] for key, _ in referred[2]], name=name)
            else:
                return None
            if kind != "index":
                t.append_constraint(obj)  # type: ignore[arg-type]
            preparer = _dialect().identifier_preparer  # type: ignore[attr-defined]
            rendered = preparer.format_constraint(obj, _alembic_quote=False)
            # a plain str: SQLAlchemy's subclass of it would make every pickle holding it import SQLAlchemy
            return str.__str__(rendered) if rendered is not None else None
    except Exception:  # noqa: BLE001 - a convention token SQLAlchemy cannot fill, a name it refuses
        return None


def _name_uses(view: SchemaView) -> Iterator[NameUse]:
    for table in view.tables.values():
        yield NameUse(table.name, table.schema, table.key, "table", True)
        pg = view.pg_names(table)
        convention, known = view.convention(table.metadata)
        for fact in table.constraints:
            relation = fact.kind in ("index", "unique", "primary_key")
            if fact.kind == "index":
                name = index_name_today(view, table, fact)
                if name is not None:
                    yield NameUse(name, table.schema, table.key, "index", True, fact, explicit=fact.name is not None)
                continue
            if fact.name is not None:
                yield NameUse(fact.name, table.schema, table.key, fact.kind, relation, fact)
            elif not fact.named and known:
                template = (convention or {}).get(CONVENTION_OF_KIND[fact.kind])
                name = None if template else pg.of(fact)
                if name is not None:
                    yield NameUse(name, table.schema, table.key, fact.kind, relation, fact, explicit=False)
        for attr, info in table.columns.items():
            if info.index and known:
                name = view.sa_name(table, "index", [info])
                if name is not None:
                    yield NameUse(name, table.schema, table.key, "index", True, column=attr, explicit=False)
            if info.unique and not info.index and known and not (convention or {}).get("uq"):
                name = pg.unique_columns.get(attr)
                if name is not None:
                    yield NameUse(name, table.schema, table.key, "unique", True, column=attr, explicit=False)
        if pg.primary_key is not None and known and not (convention or {}).get("pk"):
            yield NameUse(pg.primary_key, table.schema, table.key, "primary_key", True, explicit=False)


def index_name_today(view: SchemaView, table: TableView, fact: ConstraintFact) -> str | None:
    """The name an `Index(...)` gets today: its string, `str()` of a misplaced column, or the convention's."""
    if fact.name is not None:
        return fact.name
    if fact.first is not None:
        return built_name(view, fact.first)
    if fact.named:
        return None
    infos = [table.column(a) for a in fact.columns]
    if not infos or any(i is None for i in infos):
        return None
    return view.sa_name(table, "index", infos)  # type: ignore[arg-type]


def built_name(view: SchemaView, arg: ColumnArg) -> str | None:
    """The name SQLAlchemy takes from a column passed where the index name goes (`str()` of it)."""
    table = view.table_for(arg.owner)
    if arg.kind == "attr":
        # str(InstrumentedAttribute) is "<class name>.<attribute>"
        return f"{(arg.owner or '').rsplit('.', 1)[-1]}.{arg.value}"
    if arg.kind == "table" and table is not None:
        info = table.column(arg)
        return f"{table.name}.{info.name if info else arg.value}"
    return None


# -- for the codemods -----------------------------------------------------------------------------

_BASE_VIEW: list[tuple[ProjectIndex, SchemaView]] = []
_LAST_VIEW: list[tuple[ast.Module, ProjectIndex, SchemaView]] = []


def view_for(ctx: object) -> SchemaView:
    """The project's schema as the file being fixed now has it.

    The index was built before any fix; once a fix has changed this file, its classes and schema facts
    are extracted again from `ctx.tree` and the index rebuilt around them, so that a fixed file is
    judged on what it says now.
    """
    if _LAST_VIEW and _LAST_VIEW[0][0] is ctx.tree and _LAST_VIEW[0][1] is ctx.index:  # type: ignore[attr-defined]
        return _LAST_VIEW[0][2]  # the other naming rules on the same file
    view = _view_for(ctx)
    _LAST_VIEW[:] = [(ctx.tree, ctx.index, view)]  # type: ignore[attr-defined]
    return view


def _view_for(ctx: object) -> SchemaView:
    index: ProjectIndex = ctx.index  # type: ignore[attr-defined]
    names: ModuleNames = ctx.names  # type: ignore[attr-defined]
    stored = index.modules.get(names.module)
    if stored is not None and stored.digest == digest(ctx.source.encode("utf-8")):  # type: ignore[attr-defined]
        return _base_view(index)  # the file as indexed (the usual case): one view serves every file of the run
    fresh = extract_module(ctx.tree, names, stored.path if stored else ctx.path, ctx.q)  # type: ignore[attr-defined]
    extract_classes(fresh, ctx.tree, names, ctx.q)  # type: ignore[attr-defined]
    schema = collect_module(ctx.tree, names, ctx.q)  # type: ignore[attr-defined]
    unchanged = stored is not None and fresh.classes == stored.classes and schema == stored.extra.get(KEY, ModuleSchema(names.module))
    # a module the index's prefilter passed over (no SQLAlchemy words) declares no tables unless it has schema facts
    if unchanged or (stored is None and schema == ModuleSchema(names.module)):
        # unchanged since indexing, or a module with no schema at all (the usual cases): one view for the run
        return _base_view(index)
    fresh.extra = {**(stored.extra if stored else {}), KEY: schema}
    rebuilt = ProjectIndex([*(m for name, m in index.modules.items() if name != names.module), fresh])
    return SchemaView(rebuilt)


def _base_view(index: ProjectIndex) -> SchemaView:
    if not _BASE_VIEW or _BASE_VIEW[0][0] is not index:
        _BASE_VIEW[:] = [(index, SchemaView(index))]
    return _BASE_VIEW[0][1]


def calls_by_pos(ctx: object) -> dict[Pos, ast.Call]:
    return {pos(node): node for node in ctx.nodes(ast.Call)}  # type: ignore[attr-defined]


def in_module(view: SchemaView, module: str) -> Iterator[tuple[TableView, ConstraintFact]]:
    """(table, constraint) for every constraint written in `module`; a mixin's once, with its first table."""
    yield from view._memo("in_module", lambda: _constraints_by_module(view)).get(module, ())


def _constraints_by_module(view: SchemaView) -> dict[str, list[tuple[TableView, ConstraintFact]]]:
    found: dict[str, list[tuple[TableView, ConstraintFact]]] = {}
    seen: set[int] = set()
    for table in view.tables.values():
        for fact in table.constraints:
            if id(fact) not in seen:
                seen.add(id(fact))
                found.setdefault(fact.module, []).append((table, fact))
    return found


def literal(text: str) -> str:
    """A Python string literal in double quotes."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class TakenNames:
    """The project's names plus those this file's fixes take; the project's set is shared, never copied."""

    def __init__(self, base: set[str], new: set[str] | None = None, skip: str | None = None) -> None:
        self.base, self.new, self.skip = base, new if new is not None else set(), skip

    def __contains__(self, name: object) -> bool:
        return name != self.skip and (name in self.new or name in self.base)

    def add(self, name: str) -> None:
        self.new.add(name)

    def excluding(self, name: str) -> TakenNames:
        """The same names but `name` (a fix may keep the name it replaces)."""
        return TakenNames(self.base, self.new, name)


def unique_name(base: str, taken: set[str] | TakenNames) -> str:
    """`base` shortened like a naming convention does, with `_2`, `_3`, ... until no name in `taken`."""
    name, attempt = sa_truncate(base), 1
    while name in taken:
        attempt += 1
        name = sa_truncate(f"{base}_{attempt}")
    return name


def create_index_sql(name: str, table: TableView, columns: list[str], unique: bool = False) -> str:
    head = "CREATE UNIQUE INDEX" if unique else "CREATE INDEX"
    return f"{head} {quote(name)} ON {qualified(table.name, table.schema)} ({', '.join(quote(c) for c in columns)})"


def drop_index_sql(name: str, table: TableView) -> str:
    return f"DROP INDEX {qualified(name, table.schema)}"


def _schema_kw(table: TableView) -> str:
    return f", schema={table.schema!r}" if table.schema else ""


def alembic_create_index(name: str, table: TableView, columns: list[str], unique: bool = False) -> str:
    return f"op.create_index({name!r}, {table.name!r}, {columns!r}{', unique=True' if unique else ''}{_schema_kw(table)})"


def alembic_drop_index(name: str, table: TableView) -> str:
    return f"op.drop_index({name!r}, table_name={table.name!r}{_schema_kw(table)})"


def rename_constraint_sql(table: TableView, old: str, new: str) -> str:
    return f"ALTER TABLE {qualified(table.name, table.schema)} RENAME CONSTRAINT {quote(old)} TO {quote(new)}"


CONCURRENTLY_NOTE = (
    "on a large table, build the index without blocking writes: `CREATE INDEX CONCURRENTLY ...` outside a "
    "transaction (Alembic: `op.create_index(..., postgresql_concurrently=True)` inside "
    "`with op.get_context().autocommit_block():`)"
)
