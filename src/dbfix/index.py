"""The project model index: mapped models, their columns, bases, MetaData and Python enums, from `ast`.

Built once per run from every Python file of the project, read-only afterwards, and handed to every
codemod. It never imports or executes user code.
"""

from __future__ import annotations

import ast
import dataclasses
import io
import os
import pickle
import re
import tokenize
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from dbfix.astwalk import release
from dbfix.cache import Cache, digest
from dbfix.names import ModuleNames
from dbfix.triggers import searcher
from dbfix.workers import run_here, shared

if TYPE_CHECKING:
    from dbfix.workers import Shards

# The public names SQLModel re-exports from SQLAlchemy (checked against sqlmodel 0.0.50).
_SQLMODEL_REEXPORTS = frozenset(
    "ARRAY BIGINT BINARY BLOB BOOLEAN BigInteger Boolean CHAR CLOB CheckConstraint Column ColumnDefault "
    "Computed Constraint DATE DATETIME DECIMAL DOUBLE DOUBLE_PRECISION Date DateTime Double Enum FLOAT "
    "FetchedValue Float ForeignKey ForeignKeyConstraint INT INTEGER Identity Index Integer Interval JSON "
    "LargeBinary MetaData NCHAR NUMERIC NVARCHAR Numeric PickleType PrimaryKeyConstraint REAL SMALLINT "
    "Sequence SmallInteger String TEXT TIME TIMESTAMP Table Text Time TypeDecorator UUID Unicode UnicodeText "
    "UniqueConstraint Uuid VARBINARY VARCHAR delete func insert select text update".split()
)
_SA_SUBMODULES = (
    "sqlalchemy.sql.schema.",
    "sqlalchemy.schema.",
    "sqlalchemy.sql.sqltypes.",
    "sqlalchemy.types.",
    "sqlalchemy.sql.expression.",
    "sqlalchemy.sql.functions.",
    "sqlalchemy.sql.",
    "sqlalchemy.sql.type_api.",
)
_ORM_SUBMODULES = (
    "sqlalchemy.orm.decl_api.",
    "sqlalchemy.orm.properties.",
    "sqlalchemy.orm._orm_constructors.",
    "sqlalchemy.orm.relationships.",
    "sqlalchemy.orm.base.",
    "sqlalchemy.ext.declarative.",
)
FLASK_SQLALCHEMY = frozenset({"flask_sqlalchemy.SQLAlchemy", "flask_sqlalchemy.extension.SQLAlchemy"})
DECLARATIVE_BASES = frozenset(
    {
        "sqlalchemy.orm.DeclarativeBase",
        "sqlalchemy.orm.DeclarativeBaseNoMeta",
        "flask_sqlalchemy.Model",
        "sqlalchemy.orm.DeclarativeMeta",
    }
)
BASE_FACTORIES = frozenset({"sqlalchemy.orm.declarative_base"})
ENUM_BASES = frozenset(
    {"enum.Enum", "enum.IntEnum", "enum.StrEnum", "enum.Flag", "enum.IntFlag", "enum.ReprEnum"}
)
COLUMN_CALLS = frozenset({"sqlalchemy.Column"})
MAPPED_COLUMN_CALLS = frozenset({"sqlalchemy.orm.mapped_column"})
FIELD_CALLS = frozenset({"sqlmodel.Field"})
RELATIONSHIP_CALLS = frozenset({"sqlalchemy.orm.relationship", "sqlmodel.Relationship"})
DATETIME_TYPES = frozenset(
    {"sqlalchemy.DateTime", "sqlalchemy.TIMESTAMP", "sqlalchemy.DATETIME", "sqlalchemy.dialects.postgresql.TIMESTAMP"}
)
AWARE_TYPES = frozenset({"sqlmodel.sql.sqltypes.UTCDateTime"})
ENUM_TYPES = frozenset({"sqlalchemy.Enum", "sqlalchemy.dialects.postgresql.ENUM"})
OPTIONAL_WRAPPERS = frozenset({"typing.Optional", "typing_extensions.Optional"})


class _Unknown:
    """A value no literal gives; one object, also after a round trip through the cache's pickle."""

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __reduce__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()


def canonical_name(qualname: str | None) -> str | None:
    """Spell a qualified name the way the rules match it: `sqlmodel.Column` -> `sqlalchemy.Column`."""
    if qualname is None:
        return None
    known = _CANONICAL.get(qualname)
    if known is None:
        known = _CANONICAL[qualname] = _canonical_name(qualname)
    return known


_CANONICAL: dict[str, str] = {}


def _canonical_name(qualname: str) -> str:
    if qualname.startswith("sqlmodel.") and qualname.count(".") == 1:
        tail = qualname[len("sqlmodel.") :]
        if tail in _SQLMODEL_REEXPORTS:
            return f"sqlalchemy.{tail}"
        return qualname
    if qualname.startswith("sqlalchemy."):
        for prefix in _ORM_SUBMODULES:
            if qualname.startswith(prefix) and qualname.count(".") == prefix.count("."):
                return "sqlalchemy.orm." + qualname[len(prefix) :]
        for prefix in _SA_SUBMODULES:
            if qualname.startswith(prefix) and qualname.count(".") == prefix.count("."):
                return "sqlalchemy." + qualname[len(prefix) :]
        if qualname.startswith("sqlalchemy.dialects.postgresql.") and qualname.count(".") == 3:
            tail = qualname.rsplit(".", 1)[1]
            if tail in ("UUID", "JSON", "DOUBLE_PRECISION"):
                return f"sqlalchemy.{tail}"
    if qualname == "flask_sqlalchemy.extension.SQLAlchemy":
        return "flask_sqlalchemy.SQLAlchemy"
    if qualname.startswith("pydantic.types."):
        return "pydantic." + qualname[len("pydantic.types.") :]
    return qualname


def module_name_for(path: Path, root: Path) -> tuple[str, bool]:
    """The dotted module name of a file under the project root, and whether it is a package."""
    text, top = os.fspath(path), os.path.join(os.fspath(root), "")
    if text.startswith(top):  # the usual case, without pathlib's cost (it showed in profiles)
        parts = os.path.splitext(text[len(top) :])[0].split(os.sep)
    else:
        parts = list(path.relative_to(root).with_suffix("").parts)
    if parts and parts[0] == "src" and len(parts) > 1:
        parts = parts[1:]
    is_package = bool(parts) and parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join(parts), is_package


# -- facts --------------------------------------------------------------------------------------


@dataclass
class ForeignKeyInfo:
    target: str  # "table.column", "schema.table.column", or "Model.attr" when given as an attribute
    name: str | None = None
    use_alter: bool = False
    line: int = 0


@dataclass
class ColumnInfo:
    """One mapped attribute that becomes a column."""

    attr: str
    name: str  # the database column name
    style: str  # "column" | "mapped_column" | "field" | "annotation"
    type_name: str | None = None  # canonical qualified name of the SQL type, if known
    timezone: bool | None = None  # for datetime types: is it timestamptz? None if unknown
    enum: str | None = None  # qualified name of the Python enum class stored in it
    values_callable: bool = False
    native_enum: bool = True
    python_type: str | None = None  # qualified name from the annotation (Mapped[X] / SQLModel X)
    nullable: bool | None = None
    primary_key: bool = False
    index: bool = False
    unique: bool = False
    foreign_keys: list[ForeignKeyInfo] = field(default_factory=list)
    explicit_name: bool = False
    line: int = 0
    module: str = ""


@dataclass
class ClassInfo:
    qualname: str
    name: str
    module: str
    path: str
    line: int
    bases: list[str]
    keywords: dict[str, object]
    tablename: str | None = None
    abstract: bool = False
    has_table_attr: bool = False
    columns: dict[str, ColumnInfo] = field(default_factory=dict)
    attributes: set[str] = field(default_factory=set)  # every name assigned in the class body
    enum_members: list[tuple[str, object]] | None = None
    decorators: list[str] = field(default_factory=list)
    type_annotation_map: dict[str, tuple[str | None, bool | None]] = field(default_factory=dict)
    metadata_var: str | None = None  # `metadata = MetaData(...)` inside a DeclarativeBase
    is_type_decorator: bool = False


@dataclass
class InstanceInfo:
    """A module-level `name = Call(...)`: a declarative_base(), a SQLAlchemy() or a MetaData()."""

    qualname: str
    call: str | None
    naming_convention: dict[str, str] | None = None
    metadata_arg: str | None = None


@dataclass
class ModuleFacts:
    module: str
    path: str
    is_package: bool
    bindings: dict[str, str]
    classes: list[ClassInfo]
    instances: list[InstanceInfo]
    # facts gathered by the contributors of other modules (`CONTRIBUTORS`), keyed by contributor
    extra: dict[str, object] = field(default_factory=dict)
    digest: str = ""  # of the file's bytes when indexed: a rule can tell the file has not changed since
    canonical: bool = False  # names resolved by a ProjectIndex already (the cache keeps them resolved)


@dataclass
class ModelInfo:
    """A mapped class: its table, its columns (inherited ones included), its base and MetaData."""

    cls: ClassInfo
    style: str  # "declarative" | "sqlmodel" | "flask"
    base: str  # qualified name of the declarative base (or "sqlmodel.SQLModel")
    metadata: str  # key of the MetaData the table lives in
    table: str | None
    columns: dict[str, ColumnInfo]

    @property
    def qualname(self) -> str:
        return self.cls.qualname


# -- extraction ---------------------------------------------------------------------------------


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    return None


def _const(node: ast.expr | None, default: object = UNKNOWN) -> object:
    if node is None:
        return default
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.Name, ast.Attribute, ast.Lambda, ast.Call)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "set"):
            return UNKNOWN  # what literal_eval refuses, without the cost of its error message
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return UNKNOWN


def _bool(node: ast.expr | None, default: bool | None) -> bool | None:
    value = _const(node, default)
    return value if isinstance(value, bool) or value is None else None


Resolver = Callable[[ast.AST], "str | None"]


def unwrap_optional(annotation: ast.expr, q: Resolver) -> tuple[ast.expr, bool]:
    """`Optional[X]`, `X | None`, `Union[X, None]` -> (X, True); anything else -> (it, False)."""
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        sides = [annotation.left, annotation.right]
        rest = [s for s in sides if not (isinstance(s, ast.Constant) and s.value is None)]
        if len(rest) == 1:
            return rest[0], True
    if isinstance(annotation, ast.Subscript):
        wrapper = q(annotation.value)
        if wrapper in OPTIONAL_WRAPPERS:
            return annotation.slice, True
        if wrapper in ("typing.Union", "typing_extensions.Union") and isinstance(annotation.slice, ast.Tuple):
            elts = annotation.slice.elts
            rest = [e for e in elts if not (isinstance(e, ast.Constant) and e.value is None)]
            if len(rest) == 1 and len(elts) == 2:
                return rest[0], True
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:
            inner = ast.parse(annotation.value, mode="eval").body
        except SyntaxError:
            return annotation, False
        return unwrap_optional(inner, q)
    return annotation, False


def mapped_inner(annotation: ast.expr, q: Resolver) -> ast.expr | None:
    """`Mapped[X]` -> X (None if the annotation is not `Mapped[...]`)."""
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        return None
    if isinstance(annotation, ast.Subscript) and q(annotation.value) == "sqlalchemy.orm.Mapped":
        return annotation.slice
    return None


def type_facts(node: ast.expr | None, q: Resolver) -> dict:
    """The facts of an SQL type expression: `DateTime(timezone=True)`, `Enum(Role, name=...)`."""
    if node is None:
        return {}
    call = node if isinstance(node, ast.Call) else None
    name = q(call.func if call else node)
    facts: dict = {"type_name": name}
    if name in DATETIME_TYPES:
        facts["timezone"] = _bool(_kw(call, "timezone"), False) if call else False
    elif name in AWARE_TYPES:
        facts["timezone"] = True
    elif name in ENUM_TYPES and call is not None and call.args:
        first = call.args[0]
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            facts["enum"] = q(first)
        facts["values_callable"] = _kw(call, "values_callable") is not None
        facts["native_enum"] = _bool(_kw(call, "native_enum"), True) is not False
    return facts


def _fk_from_call(call: ast.Call, q: Resolver) -> ForeignKeyInfo | None:
    if q(call.func) != "sqlalchemy.ForeignKey" or not call.args:
        return None
    target = call.args[0]
    if isinstance(target, ast.Constant) and isinstance(target.value, str):
        text = target.value
    else:
        text = ast.unparse(target)
    name = _const(_kw(call, "name"), None)
    return ForeignKeyInfo(
        target=text,
        name=name if isinstance(name, str) else None,
        use_alter=_bool(_kw(call, "use_alter"), False) is True,
        line=call.lineno,
    )


def column_from_call(attr: str, call: ast.Call, q: Resolver) -> ColumnInfo | None:
    """A `Column(...)` / `mapped_column(...)` call assigned to `attr`, or None if it is neither."""
    func = q(call.func)
    if func in COLUMN_CALLS:
        style = "column"
    elif func in MAPPED_COLUMN_CALLS:
        style = "mapped_column"
    else:
        return None
    args = list(call.args)
    name = attr
    explicit = False
    if args and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str):
        name, explicit = args.pop(0).value, True
    name_kw = _const(_kw(call, "name"), None)
    if isinstance(name_kw, str):
        name, explicit = name_kw, True
    info = ColumnInfo(attr=attr, name=name, style=style, explicit_name=explicit, line=call.lineno)
    type_node = _kw(call, "type_")
    for arg in args:
        if isinstance(arg, ast.Call):
            fk = _fk_from_call(arg, q)
            if fk is not None:
                info.foreign_keys.append(fk)
                continue
            if type_node is None and q(arg.func) not in ("sqlalchemy.Sequence", "sqlalchemy.Identity", "sqlalchemy.Computed"):
                type_node = arg
        elif type_node is None:
            type_node = arg
    _apply_type(info, type_facts(type_node, q))
    info.primary_key = _bool(_kw(call, "primary_key"), False) is True
    nullable = _kw(call, "nullable")
    info.nullable = _bool(nullable, None) if nullable is not None else None
    info.index = _bool(_kw(call, "index"), False) is True
    info.unique = _bool(_kw(call, "unique"), False) is True
    return info


def _apply_type(info: ColumnInfo, facts: dict) -> None:
    for key, value in facts.items():
        setattr(info, key, value)


def module_classes(tree: ast.Module, module: str) -> Iterator[tuple[str, ast.ClassDef]]:
    """Every class of a module with its qualified name (nested classes too, and under `if`/`try`)."""
    yield from _classes_in(tree.body, module)


def _classes_in(stmts: list[ast.stmt], prefix: str) -> Iterator[tuple[str, ast.ClassDef]]:
    # not a closure: a recursive inner function is a cycle, and the cycle collector is off during a run
    for stmt in stmts:
        if isinstance(stmt, ast.ClassDef):
            qualname = f"{prefix}.{stmt.name}"
            yield qualname, stmt
            yield from _classes_in(stmt.body, qualname)
        elif isinstance(stmt, (ast.If, ast.Try)):
            yield from _classes_in(stmt.body, prefix)
            yield from _classes_in(stmt.orelse, prefix)


class _ClassExtractor:
    def __init__(self, facts: ModuleFacts, names: ModuleNames, q: Resolver) -> None:
        self.facts = facts
        self.names = names
        self.q = q

    def run(self, tree: ast.Module) -> None:
        for qualname, node in module_classes(tree, self.facts.module):
            self.facts.classes.append(self.extract(node, qualname.rsplit(".", 1)[0]))

    def extract(self, node: ast.ClassDef, prefix: str) -> ClassInfo:
        q = self.q
        info = ClassInfo(
            qualname=f"{prefix}.{node.name}",
            name=node.name,
            module=self.facts.module,
            path=self.facts.path,
            line=node.lineno,
            bases=[b for b in (q(base) for base in node.bases) if b],
            keywords={kw.arg: _const(kw.value) for kw in node.keywords if kw.arg},
            decorators=[d for d in (q(x.func if isinstance(x, ast.Call) else x) for x in node.decorator_list) if d],
        )
        for stmt in node.body:
            self._statement(info, stmt)
        return info

    def _statement(self, info: ClassInfo, stmt: ast.stmt) -> None:
        q = self.q
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            attr, value, annotation = stmt.targets[0].id, stmt.value, None
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            attr, value, annotation = stmt.target.id, stmt.value, stmt.annotation
        else:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                info.attributes.add(stmt.name)
            return
        info.attributes.add(attr)
        if attr == "__tablename__":
            table = _const(value, None)
            info.tablename = table if isinstance(table, str) else None
            return
        if attr == "__abstract__":
            info.abstract = _const(value, False) is True
            return
        if attr == "__table__":
            info.has_table_attr = True
            return
        if attr == "impl":
            info.is_type_decorator = True
        if attr == "type_annotation_map" and isinstance(value, ast.Dict):
            for key, val in zip(value.keys, value.values):
                if key is not None:
                    facts = type_facts(val, q)
                    info.type_annotation_map[q(key) or ""] = (facts.get("type_name"), facts.get("timezone"))
            return
        if attr == "metadata" and isinstance(value, ast.Call) and q(value.func) == "sqlalchemy.MetaData":
            info.metadata_var = f"{info.qualname}.metadata"
        elif attr == "metadata" and isinstance(value, (ast.Name, ast.Attribute)) and q(value):
            info.metadata_var = q(value)  # `metadata = my_metadata`: a MetaData made at module level
        # enum members: every plain assignment in an enum body (decided later, once bases are known)
        if annotation is None and not attr.startswith("_"):
            if info.enum_members is None:
                info.enum_members = []
            info.enum_members.append((attr, _enum_value(value, q)))
        column = self._column(attr, value, annotation)
        if column is not None:
            column.module = self.facts.module
            info.columns[attr] = column

    def _column(self, attr: str, value: ast.expr | None, annotation: ast.expr | None) -> ColumnInfo | None:
        q = self.q
        inner = mapped_inner(annotation, q) if annotation is not None else None
        column: ColumnInfo | None = None
        if isinstance(value, ast.Call):
            func = q(value.func)
            if func in RELATIONSHIP_CALLS:
                return None
            column = column_from_call(attr, value, q)
            if column is None and func in FIELD_CALLS:
                column = _field_column(attr, value, annotation, q)
            elif column is None and func == "sqlalchemy.orm.column_property":
                return None
        elif value is None and inner is not None:
            column = ColumnInfo(attr=attr, name=attr, style="annotation")
        elif annotation is not None and inner is None and value is not None and not isinstance(value, ast.Call):
            # SQLModel: `role: Role = Role.USER`
            column = _field_column(attr, None, annotation, q)
        elif annotation is not None and inner is None and value is None:
            column = _field_column(attr, None, annotation, q)
        if column is None:
            return None
        if column.line == 0 and value is not None:
            column.line = value.lineno
        if inner is not None:
            python_node, optional = unwrap_optional(inner, q)
            column.python_type = q(python_node)
            if column.nullable is None and not column.primary_key:
                column.nullable = optional
        if column.nullable is None and column.style == "column":
            column.nullable = not column.primary_key
        return column


def _field_column(attr: str, call: ast.Call | None, annotation: ast.expr | None, q: Resolver) -> ColumnInfo | None:
    """A SQLModel field; only meaningful once the class is known to be a table model."""
    column = ColumnInfo(attr=attr, name=attr, style="field", line=call.lineno if call else 0)
    if annotation is not None:
        python_node, optional = unwrap_optional(annotation, q)
        column.python_type = q(python_node)
        column.nullable = optional
        if isinstance(python_node, ast.Subscript) and q(python_node.value) in ("typing.ClassVar", "sqlalchemy.orm.Mapped"):
            return None
    if call is not None:
        sa_column = _kw(call, "sa_column")
        if isinstance(sa_column, ast.Call):
            inner = column_from_call(attr, sa_column, q)
            if inner is not None:
                inner.style = "field"
                inner.python_type = column.python_type
                return inner
        _apply_type(column, type_facts(_kw(call, "sa_type"), q))
        kwargs = _kw(call, "sa_column_kwargs")
        if isinstance(kwargs, ast.Dict):
            for key, val in zip(kwargs.keys, kwargs.values):
                if _const(key, None) == "name" and isinstance(_const(val, None), str):
                    column.name, column.explicit_name = _const(val), True  # type: ignore[assignment]
        column.primary_key = _bool(_kw(call, "primary_key"), False) is True
        nullable = _kw(call, "nullable")
        if nullable is not None:
            column.nullable = _bool(nullable, None)
        column.index = _bool(_kw(call, "index"), False) is True
        column.unique = _bool(_kw(call, "unique"), False) is True
        fk = _const(_kw(call, "foreign_key"), None)
        if isinstance(fk, str):
            column.foreign_keys.append(ForeignKeyInfo(target=fk, line=call.lineno))
    return column


def _enum_value(value: ast.expr | None, q: Resolver) -> object:
    if isinstance(value, ast.Call) and q(value.func) == "enum.auto":
        return "auto()"
    return _const(value)


def _naming_convention(call: ast.Call) -> dict[str, str] | None:
    value = _const(_kw(call, "naming_convention"), None)
    return value if isinstance(value, dict) else None


def extract_module(tree: ast.Module, names: ModuleNames, path: str, q: Resolver) -> ModuleFacts:
    """Module-level facts: bindings and `name = Call(...)` instances (classes come in a second pass)."""
    facts = ModuleFacts(
        module=names.module,
        path=path,
        is_package=names.is_package,
        bindings=dict(names.module_bindings()),
        classes=[],
        instances=[],
    )
    for stmt in tree.body:
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and isinstance(stmt.value, ast.Call):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            call = stmt.value
            func = q(call.func)
            metadata = _kw(call, "metadata")
            for target in targets:
                if isinstance(target, ast.Name):
                    facts.instances.append(
                        InstanceInfo(
                            qualname=f"{names.module}.{target.id}",
                            call=func,
                            naming_convention=_naming_convention(call),
                            metadata_arg=q(metadata) if metadata is not None else None,
                        )
                    )
    return facts


def extract_classes(facts: ModuleFacts, tree: ast.Module, names: ModuleNames, q: Resolver) -> None:
    """Add every class of the module, with its columns, to `facts`."""
    _ClassExtractor(facts, names, q).run(tree)


# Modules with a `collect(tree, names, q, facts)` function that add their own per-module facts to
# `facts.extra` (picklable values only) during the second pass; read back with `ProjectIndex.extra`.
CONTRIBUTORS: list[str] = ["dbfix.fkgraph", "dbfix.enum_migration", "dbfix.schema"]


def _contributors() -> list[Callable[..., None]]:
    import importlib

    return [importlib.import_module(name).collect for name in CONTRIBUTORS]


# A file the index may need mentions one of these (plain `in` on bytes is far faster than a regex).
PREFILTER_WORDS = (
    b"sqlalchemy",
    b"sqlmodel",
    b"SQLModel",  # a project's own SQLModel base and its subclasses
    b"enum",  # Python enums: `import enum`, `from enum import ...`
    b"__tablename__",
    b"__table__",
    b"__mapper_args__",  # a single-table-inheritance subclass may declare nothing else
    b"mapped_column",
    b"Column(",
    b"Mapped[",
    b"table=True",
    b"declarative",
    b"MetaData",
    b"db.Model",
)


def may_matter(data: bytes) -> bool:
    return any(word in data for word in PREFILTER_WORDS)


_PREFILTER_TEXT = tuple(w.decode() for w in PREFILTER_WORDS)


def may_declare(source: str) -> bool:
    """`may_matter` for text: whether the module may declare models, tables, columns or enums."""
    return any(word in source for word in _PREFILTER_TEXT)


UNPARSABLE = "unparsable"  # cached for a file neither `ast` nor the translation of newer syntax can read
PARALLEL_FILES = 96  # below this many files to parse, worker processes cost more than they save

# -- parsed trees, kept for the later passes of the same process ------------------------------------

_KEEP_TREES_BYTES = 4_000_000  # per process, this much source at most (ASTs are ~30x their text)
# path -> (content digest, tree, its module-scope names): the index's second pass and detection reuse them
_TREES: dict[str, tuple[str, ast.Module, ModuleNames]] = {}
_TREES_BYTES = [0]


def _keep(key: str, content: str, parsed: tuple[ast.Module, ModuleNames], size: int) -> bool:
    """Keep the tree for this process's later passes, if the budget allows; whether it was kept."""
    if _TREES_BYTES[0] + size <= _KEEP_TREES_BYTES:
        _TREES[key] = (content, *parsed)
        _TREES_BYTES[0] += size
        return True
    return False


def parsed_tree(key: str, data: bytes) -> tuple[ast.Module, frozenset[int], ModuleNames, bool] | None:
    """The tree this process's index pass made of exactly `data`, if it kept one (taken, not copied),
    with the lines a translation of newer syntax changed (see `dbfix.downgrade`), its names, and
    whether function bodies were left out of it (see `build_index`)."""
    kept = _TREES.pop(key, None)
    if kept is None or kept[0] != digest(data):
        return None
    return kept[1], getattr(kept[1], "dbfix_translated", frozenset()), kept[2], hasattr(kept[1], "dbfix_skeleton_size")


def forget_trees() -> None:
    for _, tree, _ in _TREES.values():
        release(tree)
    _TREES.clear()
    _TREES_BYTES[0] = 0


class TextTests(NamedTuple):
    """What the selected rules' triggers say of a file's text: each a tuple of regexes, one per rule
    (searched one by one: one regex of alternatives scanned several times slower than its parts)."""

    whole: tuple[str, ...] = ()  # parse the file whole (`Codemod.parse_whole`)
    keep: tuple[str, ...] = ()  # keep the function bodies they match in (`Codemod.local_triggers`)
    anywhere: tuple[str, ...] = ()  # a rule may find in a file one matches ...
    declaring: tuple[str, ...] = ()  # ... or, for the `declarations_only` rules, in one that may declare
    # (code, trigger, declarations_only) of the rules that are active in some projects only (their own
    # `Codemod.active`): the two above leave them out, so that a file only they may find in is skipped
    # where the index shows them inactive
    sometimes: tuple[tuple[str, str, bool], ...] = ()


def build_index(
    files: Iterable[tuple[Path, bytes | None]],
    root: Path,
    cache: Cache | None = None,
    pool: Shards | None = None,
    tests: TextTests = TextTests(),
    silent: dict[str, tuple[str, frozenset[str]]] | None = None,
) -> ProjectIndex:
    """Index the files that can matter (a cheap text prefilter first), reusing `cache`.

    A file given without bytes is read only if its size and mtime differ from the cache's record.
    With `pool`, reading and parsing are spread over its workers, each file always in the same one.
    The index reads no function body, so a file is parsed without them (`dbfix.skeleton`), except a
    file that `tests.whole` matches (parsed whole) and the bodies `tests.keep` matches in: the parsing
    process keeps the tree for detection (see `Codemod.parse_whole` and `local_triggers`).
    With `silent`, it gets (path: (content digest, codes)) of every file read that no rule can find
    anything in, by `tests.anywhere` and `tests.declaring`, but the rules of `codes` (`tests.sometimes`)
    if they are active: otherwise the per-file pass need not read it again.
    """
    cache = cache or Cache(None)
    given: dict[str, bytes] = {}
    order: list[str] = []
    content_of: dict[str, str] = {}
    todo: list[tuple[str, tuple[str, bytes | None]]] = []
    for path, data in files:
        key = str(path)
        order.append(key)
        if data is not None:
            given[key] = data
        known = cache.content_of(path) if data is None else None
        if known is None:
            todo.append((key, (key, data)))
            continue
        content, matters = known
        if matters or path.name == "__init__.py":
            content_of[key] = content
            if (key, content) not in cache.first:
                todo.append((key, (key, None)))
    run = pool.map if pool is not None and len(todo) >= PARALLEL_FILES else run_here
    found: dict[str, ModuleFacts | None] = {}
    state = (root, tests, silent is not None)
    for (key, _), (content, matters, stamp, first, quiet) in zip(todo, run(_first_pass, todo, state=state)):
        if content is None:
            content_of.pop(key, None)
            continue  # unreadable: the per-file pass reports it
        if quiet is not None and silent is not None:
            silent[key] = (content, quiet)
        if stamp is not None:
            cache.remember(key, stamp, content, matters)
        if matters or os.path.basename(key) == "__init__.py":
            content_of[key] = content
            found[key] = first
    candidates = [(k, content_of[k]) for k in order if k in content_of]
    firsts: dict[str, ModuleFacts] = {}
    for key, content in candidates:
        first = cache.first.get((key, content)) if key not in found else found[key]
        if key in found:
            cache.first[(key, content)] = first if first is not None else UNPARSABLE
            cache.dirty = True
        if first is None or first is UNPARSABLE or first == UNPARSABLE:
            continue  # unparsable: reported by the per-file pass; the index does without it
        firsts[key] = first  # type: ignore[assignment]
    candidates = [c for c in candidates if c[0] in firsts]
    first_digest = digest(pickle.dumps((CONTRIBUTORS, sorted(candidates))))
    missing = [(k, (k, c, firsts[k], given.get(k))) for k, c in candidates if (k, c, first_digest) not in cache.second]
    completed: dict[str, ModuleFacts | None] = {}
    if missing:
        preliminary = ProjectIndex(firsts.values())
        run = pool.map if pool is not None and len(missing) >= PARALLEL_FILES else run_here
        completed = dict(zip((k for k, _ in missing), run(_second_pass, missing, state=(preliminary, root))))
    complete: list[ModuleFacts] = []
    for key, content in candidates:
        if key in completed:
            facts = completed[key]
            if facts is None:
                continue
            cache.second[(key, content, first_digest)] = facts
            cache.dirty = True
        else:
            facts = cache.second[(key, content, first_digest)]
        facts.digest = content
        complete.append(facts)  # canonicalizing names in place is idempotent: cached facts may take it
    index = ProjectIndex(complete)
    # the index is a function of these files' contents: its digest keys the findings cache
    index.digest = digest(root.as_posix(), first_digest, *(f"{k}:{c}" for k, c in sorted(candidates)))
    return index


FirstPass = tuple["str | None", bool, "tuple[int, int] | None", "ModuleFacts | None", "frozenset[str] | None"]


def _first_pass(task: tuple[str, bytes | None]) -> FirstPass:
    """Read (unless given), prefilter, and parse one file; its module-level facts if it can matter.

    Returns (content digest or None if unreadable, prefilter verdict, (size, mtime) when read from disk,
    facts or None when unparsable, the only rules that may find anything in it (`_only_rules`)). The
    tree stays in this process for the second pass and detection.
    """
    key, data = task
    root, tests, tell_silent = shared()
    stamp = None
    if data is None:
        try:
            with open(key, "rb") as handle:
                data = handle.read()
                stat = os.fstat(handle.fileno())
        except OSError:
            return None, False, None, None, None
        stamp = (stat.st_size, stat.st_mtime_ns) if stat.st_size == len(data) else None
    content, matters, hits = digest(data), may_matter(data), _TriggerHits(data)
    quiet = _only_rules(hits, matters, tests) if tell_silent else None
    if not (matters or os.path.basename(key) == "__init__.py"):
        return content, matters, stamp, None, quiet
    parsed = _parse(Path(key), data, root, hits.any(tests.whole), "|".join(tests.keep) if hits.any(tests.keep) else None)
    if parsed is None:
        return content, matters, stamp, None, quiet
    kept = _keep(key, content, parsed, getattr(parsed[0], "dbfix_skeleton_size", len(data)))
    first = _first_facts(key, parsed)
    if not kept:
        release(parsed[0])  # see `dbfix.astwalk.release`
    return content, matters, stamp, first, quiet


class _TriggerHits:
    """Which triggers match one file's text, each searched once: the groups of `TextTests` share some
    (DBF003's and DBF004's are in `keep` and `anywhere`, DBF002's and DBF006's in `whole` and `declaring`)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._found: dict[str, bool] = {}

    def hit(self, pattern: str) -> bool:
        found = self._found.get(pattern)
        if found is None:
            found = self._found[pattern] = searcher(pattern, True)(self.data)
        return found

    def any(self, patterns: Iterable[str]) -> bool:
        return any(self.hit(pattern) for pattern in patterns)


def _only_rules(hits: _TriggerHits, matters: bool, tests: TextTests) -> frozenset[str] | None:
    """None if a rule active in every project may find something in this text (its triggers are
    necessary conditions), or it does not decode (the per-file pass reports such a file); else the codes
    of the rules active in some projects only that may (none: no rule can)."""
    if hits.any(tests.anywhere) or (matters and hits.any(tests.declaring)):
        return None
    if not (hits.data.isascii() or _source_text(hits.data) is not None):
        return None
    return frozenset(code for code, trigger, declaring in tests.sometimes if (matters or not declaring) and hits.hit(trigger))


def _source_text(data: bytes) -> str | None:
    """A module's text, decoded as Python reads it (BOM, coding cookie); None if it does not decode."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError):
        return None


def _second_pass(task: tuple[str, str, ModuleFacts, bytes | None]) -> ModuleFacts | None:
    """The complete facts of one file, names resolved through the preliminary index of all first facts."""
    key, content, first, data = task
    preliminary, root = shared()
    kept = _TREES.get(key)
    if kept is not None and kept[0] == content:
        return _complete(preliminary, first, (kept[1], kept[2]))
    parsed = _parse_bytes(key, data, root)  # read from the cache in the first pass, or over the budget
    if parsed is None:
        return None
    facts = _complete(preliminary, first, parsed)
    release(parsed[0])  # no later pass has this tree: free it now (see `dbfix.astwalk.release`)
    return facts


def _first_facts(key: str, parsed: tuple[ast.Module, ModuleNames]) -> ModuleFacts:
    tree, names = parsed
    return extract_module(tree, names, key, lambda n: canonical_name(names.qualname(n)))


def _parse_bytes(key: str, data: bytes | None, root: Path) -> tuple[ast.Module, ModuleNames] | None:
    data = data if data is not None else read_file(Path(key))
    return _parse(Path(key), data, root, whole=False, keep=None) if data is not None else None


def _complete(preliminary: ProjectIndex, first: ModuleFacts, parsed: tuple[ast.Module, ModuleNames]) -> ModuleFacts:
    tree, names = parsed
    facts = dataclasses.replace(first, classes=[], extra={}, canonical=False)
    q = lambda n: preliminary.resolve(names.qualname(n))  # noqa: E731
    extract_classes(facts, tree, names, q)
    for collect in _contributors():
        collect(tree, names, q, facts)
    return facts


def _parse_skeleton(data: bytes, keep: str | None = None) -> ast.Module | None:
    """The tree of the module without its function bodies (but those `keep` matches in), or None (then
    the caller parses it whole)."""
    from dbfix.skeleton import parse_skeleton

    text = _source_text(data)
    # a tree with every body cut serves the index alone (no rule's trigger asked for a body, see
    # `Codemod.local_triggers`), which reads no parameter: they go too
    tree = parse_skeleton(text, keep, bare=keep is None) if text is not None else None
    if tree is None:
        return None
    tree.dbfix_all_cut = keep is None  # type: ignore[attr-defined]  # no body kept for a rule: seldom detected
    return tree


def _parse_newer(data: bytes) -> ast.Module | None:
    from dbfix.downgrade import downgrade

    try:
        older = downgrade(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        return None
    if older is None:
        return None
    older[0].dbfix_translated = frozenset(older[1])  # type: ignore[attr-defined]  # detection skips findings there
    return older[0]


def read_file(path: Path) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


_REFLECTS = re.compile(rb"\.[\s\\]*reflect\b|autoload_with")  # `metadata.reflect(...)`, `Table(..., autoload_with=...)`


def _parse(path: Path, data: bytes, root: Path, whole: bool, keep: str | None) -> tuple[ast.Module, ModuleNames] | None:
    """The module's tree and names; without the function bodies `keep` does not match in, unless `whole`
    (or the text mentions reflection)."""
    # then every call counts, in functions too; the words first: the regex tries every `.` of the file
    reflects = (b"reflect" in data or b"autoload_with" in data) and _REFLECTS.search(data) is not None
    tree = None if whole or reflects else _parse_skeleton(data, keep)
    if tree is None:
        try:
            tree = ast.parse(data, filename=str(path))
        except SyntaxError:
            tree = _parse_newer(data)  # models in Python 3.12+ syntax still count for the other files
            if tree is None:
                return None
        except (ValueError, MemoryError, RecursionError):
            return None
    module, is_package = module_name_for(path, root)
    tree.dbfix_mentions_reflect = reflects  # type: ignore[attr-defined]
    return tree, ModuleNames(tree, module, is_package, shallow=True)


# -- the project --------------------------------------------------------------------------------


class ProjectIndex:
    """Every module's facts, and what follows from all of them together: which classes are models."""

    def __init__(self, modules: Iterable[ModuleFacts] = ()) -> None:
        self.digest = ""
        self._resolved: dict[str, tuple[str | None]] = {}
        self._mro_cache: dict[str, list[ClassInfo]] = {}
        self._users_cache: dict[str, list[ModelInfo]] | None = None
        self._mapped_names: frozenset[str] | None = None
        self.modules: dict[str, ModuleFacts] = {}
        self.classes: dict[str, ClassInfo] = {}
        self.instances: dict[str, InstanceInfo] = {}
        pending: list[ModuleFacts] = []
        for facts in sorted(modules, key=lambda m: (m.module, m.path)):
            self.modules.setdefault(facts.module, facts)
            for cls in facts.classes:
                self.classes.setdefault(cls.qualname, cls)
            for inst in facts.instances:
                self.instances.setdefault(inst.qualname, inst)
            if not facts.canonical:
                pending.append(facts)
        self._canonicalize(pending)
        self.models: dict[str, ModelInfo] = {}
        self.enums: dict[str, ClassInfo] = {}
        self._find_enums()
        self._find_models()

    # names --------------------------------------------------------------------------------------
    def resolve(self, qualname: str | None) -> str | None:
        """Follow re-exports between project modules and map Flask-SQLAlchemy's `db.X` to SQLAlchemy."""
        if qualname is None:
            return None
        known = self._resolved.get(qualname)
        if known is None:
            # memoized: a name's answer depends only on the index, and rules ask for every call's function
            known = self._resolved[qualname] = (self._resolve(qualname),)
        return known[0]

    def _resolve(self, qualname: str) -> str | None:
        for _ in range(16):
            if qualname in self.classes or qualname in self.instances:
                break
            head, rest = self._split_module(qualname)
            if head is None or not rest:
                break
            first, _, tail = rest.partition(".")
            target = self.modules[head].bindings.get(first)
            if target is None or target == f"{head}.{first}":
                break
            qualname = f"{target}.{tail}" if tail else target
        return canonical_name(self._flask(qualname))

    def _split_module(self, qualname: str) -> tuple[str | None, str]:
        parts = qualname.split(".")
        for i in range(len(parts) - 1, 0, -1):
            head = ".".join(parts[:i])
            if head in self.modules:
                return head, ".".join(parts[i:])
        return None, ""

    def _flask(self, qualname: str) -> str:
        head, _, attr = qualname.rpartition(".")
        inst = self.instances.get(head)
        if inst is not None and canonical_name(inst.call) in FLASK_SQLALCHEMY and "." not in attr:
            if attr == "Model":
                return "flask_sqlalchemy.Model"
            if attr in ("relationship", "backref", "mapped_column", "Mapped", "declared_attr", "column_property"):
                return f"sqlalchemy.orm.{attr}"
            return f"sqlalchemy.{attr}"
        return qualname

    def _canonicalize(self, pending: list[ModuleFacts]) -> None:
        """Resolve the names the facts hold, once: facts read back from the cache are already resolved."""
        for facts in pending:
            for cls in facts.classes:
                cls.bases = [self.resolve(b) or b for b in cls.bases]
                for column in cls.columns.values():
                    column.type_name = self.resolve(column.type_name)
                    column.enum = self.resolve(column.enum)
                    column.python_type = self.resolve(column.python_type)
            for inst in facts.instances:
                inst.call = self.resolve(inst.call)
            facts.canonical = True
        self._resolved.clear()  # answers given while instances' calls were still being resolved

    # enums --------------------------------------------------------------------------------------
    def _find_enums(self) -> None:
        changed = True
        while changed:
            changed = False
            for cls in self.classes.values():
                if cls.qualname not in self.enums and any(b in ENUM_BASES or b in self.enums for b in cls.bases):
                    self.enums[cls.qualname] = cls
                    changed = True

    def enum_members(self, qualname: str | None) -> list[tuple[str, object]] | None:
        """(name, literal value) of each member of a project enum; inherited members first."""
        cls = self.enums.get(qualname or "")
        if cls is None:
            return None
        members: list[tuple[str, object]] = []
        for base in cls.bases:
            inherited = self.enum_members(base)
            if inherited:
                members.extend(inherited)
        members.extend(m for m in cls.enum_members or [] if not _looks_like_method(cls, m[0]))
        return members

    # models -------------------------------------------------------------------------------------
    def _base_kind(self, qualname: str, seen: frozenset[str] = frozenset()) -> tuple[str, str] | None:
        """(style, base qualname) when the class or instance is a declarative base or a model."""
        if qualname in seen:
            return None
        seen = seen | {qualname}
        if qualname in DECLARATIVE_BASES:
            return ("flask" if qualname.startswith("flask_") else "declarative", qualname)
        if qualname == "sqlmodel.SQLModel":
            return ("sqlmodel", qualname)
        inst = self.instances.get(qualname)
        if inst is not None and (inst.call in BASE_FACTORIES or (inst.call or "").endswith(".generate_base")):
            return ("declarative", qualname)
        cls = self.classes.get(qualname)
        if cls is None:
            return None
        for base in cls.bases:
            kind = self._base_kind(base, seen)
            if kind is not None:
                if kind[1] in DECLARATIVE_BASES and kind[1] != "flask_sqlalchemy.Model":
                    return (kind[0], qualname)  # this class is the project's declarative base
                return kind
        if any(d.endswith((".mapped", ".mapped_as_dataclass")) for d in cls.decorators):
            return ("declarative", qualname)
        return None

    def _find_models(self) -> None:
        for cls in sorted(self.classes.values(), key=lambda c: c.qualname):
            if cls.qualname in self.enums:
                continue
            kind = None
            for base in cls.bases:
                kind = self._base_kind(base)
                if kind is not None:
                    break
            if kind is None and any(d.endswith((".mapped", ".mapped_as_dataclass")) for d in cls.decorators):
                kind = ("declarative", cls.qualname)
            if kind is None:
                continue
            style, base = kind
            if style == "sqlmodel" and not self._is_table(cls):
                continue
            if cls.abstract or self._is_declarative_base_class(cls):
                continue
            columns = self._all_columns(cls, style)
            self.models[cls.qualname] = ModelInfo(
                cls=cls,
                style=style,
                base=base,
                metadata=self._metadata_of(base),
                table=self._table_name(cls, style),
                columns=columns,
            )

    def _is_declarative_base_class(self, cls: ClassInfo) -> bool:
        return any(b in DECLARATIVE_BASES and b != "flask_sqlalchemy.Model" for b in cls.bases)

    def _is_table(self, cls: ClassInfo) -> bool:
        if cls.keywords.get("table") is True:
            return True
        return False

    def _mro(self, cls: ClassInfo) -> list[ClassInfo]:
        """The class and its project ancestors, depth-first (memoized: codemods ask for it per node)."""
        cached = self._mro_cache.get(cls.qualname)
        if cached is not None:
            return cached
        order: list[ClassInfo] = []
        seen: set[str] = set()
        stack = [cls]
        while stack:
            c = stack.pop()
            if c.qualname in seen:
                continue
            seen.add(c.qualname)
            order.append(c)
            stack.extend(p for p in (self.classes.get(b) for b in reversed(c.bases)) if p is not None)
        self._mro_cache[cls.qualname] = order
        return order

    def _all_columns(self, cls: ClassInfo, style: str) -> dict[str, ColumnInfo]:
        columns: dict[str, ColumnInfo] = {}
        for c in reversed(self._mro(cls)):
            for attr, column in c.columns.items():
                if column.style == "field" and style != "sqlmodel":
                    continue
                if column.style == "annotation" and column.python_type is None:
                    continue
                columns[attr] = column
            for attr in c.attributes:
                if attr not in c.columns and attr in columns and c is cls:
                    del columns[attr]
        return columns

    def _table_name(self, cls: ClassInfo, style: str) -> str | None:
        for c in self._mro(cls):
            if c.tablename is not None:
                return c.tablename
        if style == "sqlmodel":
            return cls.name.lower()
        if style == "flask":
            return re.sub(r"(?<!^)(?=[A-Z])", "_", cls.name).lower()
        return None

    def _metadata_of(self, base: str) -> str:
        cls = self.classes.get(base)
        if cls is not None and cls.metadata_var:
            return cls.metadata_var
        inst = self.instances.get(base)
        if inst is not None and inst.metadata_arg:
            return self.resolve(inst.metadata_arg) or inst.metadata_arg
        return base

    # queries ------------------------------------------------------------------------------------
    def extra(self, key: str) -> dict[str, object]:
        """A contributor's facts for every module that has some: {module name: value}."""
        return {name: facts.extra[key] for name, facts in self.modules.items() if key in facts.extra}

    def model_by_table(self, table: str, metadata: str | None = None) -> ModelInfo | None:
        """The model mapped to `table` (within one MetaData when given)."""
        for model in self.models.values():
            if model.table == table and (metadata is None or model.metadata == metadata):
                return model
        return None

    def model(self, qualname: str | None) -> ModelInfo | None:
        return self.models.get(qualname or "")

    def is_model_or_mixin(self, qualname: str) -> bool:
        """A mapped class, or a class some mapped class inherits from (a mixin or abstract base)."""
        return qualname in self._users()

    def models_using(self, qualname: str) -> Iterator[ModelInfo]:
        """Every model that has `qualname` in its class hierarchy."""
        yield from self._users().get(qualname, ())

    def mapped_class_names(self) -> frozenset[str]:
        """The short names of every model and of the classes models inherit from (memoized)."""
        if self._mapped_names is None:
            self._mapped_names = frozenset(self.classes[q].name for q in self._users() if q in self.classes)
        return self._mapped_names

    def _users(self) -> dict[str, list[ModelInfo]]:
        if self._users_cache is None:
            users: dict[str, list[ModelInfo]] = {}
            for model in self.models.values():
                for c in self._mro(model.cls):
                    users.setdefault(c.qualname, []).append(model)
            self._users_cache = users
        return self._users_cache

    def sqlmodel_datetime_aware(self, versions: object) -> bool:
        """SQLModel >= 0.0.45 maps `datetime` fields to timestamptz (FACTS, first section)."""
        version = getattr(versions, "sqlmodel", None)
        return version is not None and tuple(version) >= (0, 0, 45)

    def base_annotation_type(self, model: ModelInfo, python_type: str | None) -> tuple[str | None, bool | None] | None:
        """What `Mapped[python_type]` maps to through the base's `type_annotation_map`, if it says."""
        for c in self._mro(model.cls):
            if python_type in c.type_annotation_map:
                return c.type_annotation_map[python_type]
        base = self.classes.get(model.base)
        if base is not None:
            for c in self._mro(base):
                if python_type in c.type_annotation_map:
                    return c.type_annotation_map[python_type]
        return None


def _looks_like_method(cls: ClassInfo, name: str) -> bool:
    return name.startswith("_")
