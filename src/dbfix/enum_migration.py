"""Enum labels: what SQLAlchemy stores for a Python enum, which PostgreSQL type holds it, and the SQL that
carries stored names over to values. Also an index contributor that records every `Enum(...)` of the project.
"""

from __future__ import annotations

import ast
import weakref
from collections.abc import Iterable
from dataclasses import dataclass

from dbfix.astwalk import outside_functions
from dbfix.findings import DatabaseChange
from dbfix.index import ENUM_TYPES, UNKNOWN, ProjectIndex, _const, _kw

VALUES_CALLABLE = "lambda obj: [e.value for e in obj]"
KEY = "dbfix.enum_migration"
STR_ENUM = "enum.StrEnum"

Pairs = list[tuple[str, str]]


# -- members --------------------------------------------------------------------------------------


def members(index: ProjectIndex, qualname: str | None) -> list[tuple[str, object]] | None:
    """(name, value) of each member SQLAlchemy sees (aliases left out); None when a value is not a literal."""
    raw = index.enum_members(qualname)
    if not raw:
        return None
    generated = _auto_values(index, qualname)
    found: list[tuple[str, object]] = []
    seen: set[object] = set()
    for name, value in raw:
        if value == "auto()":
            if generated is None:
                return None
            value = name.lower()
        if value is UNKNOWN:
            return None
        try:
            if value in seen:  # an alias: `omit_aliases=True` drops it
                continue
            seen.add(value)
        except TypeError:
            return None
        found.append((name, value))
    return found


def _auto_values(index: ProjectIndex, qualname: str | None) -> bool | None:
    """`auto()` is predictable only on a `StrEnum` (the lowercased name) without `_generate_next_value_`."""
    chain: list[str] = []
    todo = [qualname or ""]
    while todo:
        current = todo.pop()
        if current in chain:
            continue
        chain.append(current)
        cls = index.classes.get(current)
        if cls is not None:
            if "_generate_next_value_" in cls.attributes:
                return None
            todo.extend(cls.bases)
    return True if STR_ENUM in chain else None


def string_values(pairs: list[tuple[str, object]]) -> list[tuple[str, str]] | None:
    """The members when every value is a string (a PostgreSQL label); None otherwise (`IntEnum`)."""
    if all(isinstance(value, str) for _, value in pairs):
        return [(name, str(value)) for name, value in pairs]
    return None


def default_type_name(enum_qualname: str) -> str:
    """The type name SQLAlchemy gives `Enum(X)` without `name=`: the lowercased class name."""
    return enum_qualname.rsplit(".", 1)[-1].lower()


# -- SQL ------------------------------------------------------------------------------------------


def quote(identifier: str) -> str:
    from dbfix.schema import (
        quote as quote_once,  # one dialect for the run: a new one per name is a cycle
    )

    return quote_once(identifier)


def qualified(name: str, schema: str | None) -> str:
    return f"{quote(schema)}.{quote(name)}" if schema else quote(name)


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def op_execute(sql: str) -> str:
    if '"' not in sql and "\\" not in sql:
        return f'op.execute("{sql}")'
    return f"op.execute({sql!r})"


def _rename_plan(pairs: Pairs, labels: Iterable[str]) -> Pairs:
    """Renames in an order PostgreSQL accepts: through temporary labels when a value is another member's name."""
    existing = set(labels)
    if not any(new in existing for _, new in pairs):
        return list(pairs)
    temporary = [(old, f"{old}__dbfix_tmp") for old, _ in pairs]
    return temporary + [(tmp, new) for (_, tmp), (_, new) in zip(temporary, pairs)]


def rename_type_values(type_name: str, schema: str | None, members: Pairs) -> DatabaseChange:
    """`ALTER TYPE ... RENAME VALUE` for each member whose stored label (its name) becomes its value."""
    pairs = [(name, value) for name, value in members if name != value]
    target = qualified(type_name, schema)
    up = [f"ALTER TYPE {target} RENAME VALUE {literal(a)} TO {literal(b)}" for a, b in _rename_plan(pairs, (n for n, _ in members))]
    back = [(b, a) for a, b in pairs]
    down = [f"ALTER TYPE {target} RENAME VALUE {literal(a)} TO {literal(b)}" for a, b in _rename_plan(back, (v for _, v in members))]
    return DatabaseChange(
        upgrade_sql=tuple(up),
        downgrade_sql=tuple(down),
        alembic_upgrade=tuple(op_execute(s) for s in up),
        alembic_downgrade=tuple(op_execute(s) for s in down),
        key=f"enum-type:{schema + '.' if schema else ''}{type_name}",
    )


@dataclass(frozen=True)
class VarcharColumn:
    """A `native_enum=False` column: a VARCHAR holding the labels, maybe with a CHECK constraint."""

    table: str
    column: str
    old_length: int | None = None  # widen the VARCHAR from this length to `new_length` first
    new_length: int | None = None
    constraint: str | None = None  # the CHECK constraint's name, when `create_constraint=True`


def update_column_values(columns: list[VarcharColumn], members: Pairs) -> DatabaseChange:
    """`UPDATE ... SET col = CASE ...` per column, with the VARCHAR widened and the CHECK rebuilt around it."""
    names = [n for n, _ in members]
    values = [v for _, v in members]
    pairs = [(n, v) for n, v in members if n != v]
    up: list[str] = []
    down: list[str] = []
    for c in columns:
        table, column = quote(c.table), quote(c.column)
        if c.constraint:
            drop = f"ALTER TABLE {table} DROP CONSTRAINT {quote(c.constraint)}"
            up.append(drop)
            down.append(drop)
        if c.old_length and c.new_length:
            up.append(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE VARCHAR({c.new_length})")
        up.append(_case_update(table, column, pairs))
        down.append(_case_update(table, column, [(b, a) for a, b in pairs]))
        if c.old_length and c.new_length:
            down.append(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE VARCHAR({c.old_length})")
        if c.constraint:
            up.append(_check(table, column, c.constraint, values))
            down.append(_check(table, column, c.constraint, names))
    return DatabaseChange(
        upgrade_sql=tuple(up),
        downgrade_sql=tuple(down),
        alembic_upgrade=tuple(op_execute(s) for s in up),
        alembic_downgrade=tuple(op_execute(s) for s in down),
        key="enum-column:" + ",".join(f"{c.table}.{c.column}" for c in columns),
    )


def _case_update(table: str, column: str, pairs: Pairs) -> str:
    whens = " ".join(f"WHEN {literal(a)} THEN {literal(b)}" for a, b in pairs)
    old = ", ".join(literal(a) for a, _ in pairs)
    return f"UPDATE {table} SET {column} = CASE {column} {whens} END WHERE {column} IN ({old})"


def _check(table: str, column: str, name: str, labels: list[str]) -> str:
    listed = ", ".join(literal(label) for label in labels)
    return f"ALTER TABLE {table} ADD CONSTRAINT {quote(name)} CHECK ({column} IN ({listed}))"


def check_constraint_name(type_name: str | None, table: str, column: str, convention: dict[str, str] | None) -> str | None:
    """The name SQLAlchemy gives an Enum's CHECK constraint: the type name, or the MetaData's `ck` convention."""
    template = (convention or {}).get("ck")
    if template is None or (type_name is not None and "%(constraint_name)s" not in template):
        return type_name
    tokens = {
        "table_name": table,
        "constraint_name": type_name or "",
        "column_0_name": column,
        "column_0_label": f"{table}_{column}",
        "column_0_key": column,
    }
    try:
        return template % tokens
    except (KeyError, ValueError, TypeError):
        return None


# -- the project's enum types ---------------------------------------------------------------------


@dataclass(frozen=True)
class Declaration:
    """One place that makes SQLAlchemy create a PostgreSQL enum type, with the labels it will have once fixed."""

    type_key: str  # "schema.name" or "name"
    labels: tuple[str, ...]
    where: str  # "module:line"
    enum: str | None


def collect(tree: ast.Module, names: object, q: object, facts: object) -> None:
    """Index contributor: every `Enum(...)` / `postgresql.ENUM(...)` call of the module, wherever it is."""
    found: list[tuple] = []
    # the index resolves names from module scope only: what a function body binds is not known
    for node in outside_functions(tree, ast.Call):
        if q(node.func) not in ENUM_TYPES:  # type: ignore[operator]
            continue
        if _kw(node, "native_enum") is not None and _const(_kw(node, "native_enum")) is not True:
            continue  # a VARCHAR: no type to share (an unknown value counts as such too)
        name = _const(_kw(node, "name"), None)
        schema = _const(_kw(node, "schema"), None)
        if not isinstance(name, (str, type(None))) or not isinstance(schema, (str, type(None))):
            continue
        literals = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        if node.args and len(literals) == len(node.args):
            if name is not None:
                found.append((name, schema, None, tuple(literals), node.lineno))
        elif len(node.args) == 1:
            enum = q(node.args[0])  # type: ignore[operator]
            if enum is not None:
                found.append((name, schema, enum, None, node.lineno))
    if found:
        facts.extra[KEY] = tuple(found)  # type: ignore[attr-defined]


_DECLARATIONS: weakref.WeakKeyDictionary[ProjectIndex, dict[str, list[Declaration]]] = weakref.WeakKeyDictionary()


def declarations(index: ProjectIndex) -> dict[str, list[Declaration]]:
    """Every enum type the project declares, by type key, with the labels each declaration gives it."""
    cached = _DECLARATIONS.get(index)
    if cached is not None:
        return cached
    found: dict[str, list[Declaration]] = {}

    def add(name: str | None, schema: str | None, enum: str | None, labels: tuple[str, ...] | None, where: str) -> None:
        if enum is not None:
            labels = fixed_labels(index, enum)
            name = name or default_type_name(enum)
        if name is None or labels is None:
            return
        key = f"{schema}.{name}" if schema else name
        found.setdefault(key, []).append(Declaration(key, labels, where, enum))

    for module, uses in index.extra(KEY).items():
        for name, schema, enum, labels, line in uses:  # type: ignore[attr-defined]
            add(name, schema, index.resolve(enum), labels, f"{module}:{line}")
    seen: set[tuple[str, str]] = set()
    for model in index.models.values():
        for column in model.columns.values():
            if not _implicit_enum(index, model, column) or (column.module, column.attr) in seen:
                continue
            seen.add((column.module, column.attr))
            where = f"{column.module}:{column.line}" if column.line else f"{column.module} (`{column.attr}`)"
            add(None, None, column.python_type, None, where)
    _DECLARATIONS[index] = found
    return found


def _implicit_enum(index: ProjectIndex, model: object, column: object) -> bool:
    """A column whose enum type SQLAlchemy or SQLModel infers from the annotation alone."""
    python_type = getattr(column, "python_type", None)
    if python_type not in index.enums or getattr(column, "type_name", None) is not None or column.foreign_keys:  # type: ignore[attr-defined]
        return False
    if getattr(model, "style", "") != "sqlmodel" and index.base_annotation_type(model, python_type) is not None:  # type: ignore[arg-type]
        return False
    return getattr(column, "style", "") in ("annotation", "mapped_column", "field")


def fixed_labels(index: ProjectIndex, enum: str) -> tuple[str, ...] | None:
    """The labels an `Enum(enum)` has once DBF002 has run: the values, or the names when they are not strings."""
    found = members(index, enum)
    if found is None:
        return None
    strings = string_values(found)
    return tuple(v for _, v in strings) if strings is not None else tuple(n for n, _ in found)


def sharing_notes(index: ProjectIndex, type_key: str, labels: tuple[str, ...]) -> list[str]:
    """Notes for other declarations of the same PostgreSQL type with different labels."""
    others = [d for d in declarations(index).get(type_key, []) if d.labels != labels]
    notes = []
    for d in others:
        what = f"`{d.enum}`" if d.enum else "a string-literal Enum"
        notes.append(
            f"the PostgreSQL type `{type_key}` is also declared by {what} at {d.where} with labels "
            f"{', '.join(map(repr, d.labels))}: SQLAlchemy creates the type once, with the labels it meets first, "
            "and inserts through the other declaration fail; give one of them its own `name=`"
        )
    return notes
