"""`dbfix verify`: import the project's models and prove their PostgreSQL schema offline, on a real server, and against a git revision.

This is the only part of dbfix that imports and runs project code. It does so in a child process
(`python -m dbfix.verify`), so that the project's import side effects, two versions of the same module
(`--against`) and SQLModel's process-wide `MetaData` never meet dbfix or each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

MAX_IDENTIFIER = 63  # PostgreSQL's NAMEDATALEN - 1, in bytes
SESSION_TIME_ZONE = "America/New_York"  # a non-UTC session turns psycopg's silent conversions into visible shifts


class VerifyError(Exception):
    """A usage or environment error (bad module path, no MetaData, no server, bad revision): one line, exit 2."""


# -- results --------------------------------------------------------------------------------------


@dataclass
class Problem:
    message: str  # what is wrong, naming the table, column, index or constraint
    error: str = ""  # the error SQLAlchemy, PostgreSQL or the driver gives (or would give)
    seed: str = ""  # the error text from the teams' notes (or FACTS.md) this corresponds to


@dataclass
class CheckResult:
    name: str
    phase: str  # "offline" | "online"
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: str = ""  # why the check did not run

    @property
    def passed(self) -> bool:
        return not self.problems

    def fail(self, message: str, error: str = "") -> None:
        self.problems.append(Problem(message, error, seed_for(f"{message}\n{error}")))


@dataclass
class Change:
    """One difference between two schema snapshots."""

    op: str  # "+" added, "-" removed, "~" changed
    kind: str  # table | column | index | constraint | enum
    name: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.op} {self.kind} {self.name}" + (f": {self.detail}" if self.detail else "")


@dataclass
class VerifyResult:
    models: str  # the MetaData that was checked: `app.models:Base`
    tables: list[str] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    database: str = ""  # the URL (password hidden) of the online checks
    schema: str = ""  # their throw-away schema
    against: str = ""
    diff: list[Change] | None = None
    snapshot: dict | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data.pop("snapshot")
        data["ok"] = self.ok
        for check, raw in zip(self.checks, data["checks"]):
            raw["passed"] = check.passed
        return data

    @classmethod
    def from_dict(cls, data: dict) -> VerifyResult:
        checks = [
            CheckResult(
                c["name"], c["phase"], [Problem(**p) for p in c["problems"]], list(c["notes"]), c.get("skipped", "")
            )
            for c in data.get("checks", [])
        ]
        diff = data.get("diff")
        return cls(
            models=data["models"],
            tables=list(data.get("tables", [])),
            checks=checks,
            database=data.get("database", ""),
            schema=data.get("schema", ""),
            against=data.get("against", ""),
            diff=[Change(**c) for c in diff] if diff is not None else None,
            snapshot=data.get("snapshot"),
        )


# Every `except Exception` below turns what the project's code, SQLAlchemy or the server raised into a
# finding or a note: verify must report on any project, never crash on one.

# -- the seeds' error texts -----------------------------------------------------------------------

# (pattern in an error or message, the error text from the notes it corresponds to); FACTS.md where the
# notes' explanation is wrong. First match wins.
SEEDS: tuple[tuple[str, str], ...] = (
    (
        r"Attribute name 'metadata'|'metadata' is a ClassVar|attribute `metadata`",
        (
            "seeds/000 #1: sqlalchemy.exc.InvalidRequestError: Attribute name 'metadata' is reserved when using the "
            "Declarative API."
        ),
    ),
    (
        r"invalid input value for enum|is not among the defined enum values|stores the member names",
        'seeds/000 #6: psycopg2.errors.InvalidTextRepresentation: invalid input value for enum tooltype: "website"',
    ),
    (
        r"offset-naive and offset-aware|aware default for the naive",
        "seeds/001 #2: asyncpg.exceptions.DataError: can't subtract offset-naive and offset-aware datetimes",
    ),
    (
        r"must have timezone information|naive default for the timestamptz|session time zone",
        (
            "seeds/001 #2: naive vs aware datetimes (FACTS claim 3: psycopg converts through the session TimeZone; "
            "SQLModel >= 0.0.45: ValueError: Datetime values must have timezone information)"
        ),
    ),
    (
        r"Can't sort tables for DROP|cycle",
        (
            "seeds/000 #2: circular dependencies in foreign keys (FACTS claim 4: sqlalchemy.exc.CircularDependencyError: "
            "Can't sort tables for DROP; an unresolvable foreign key dependency exists between tables)"
        ),
    ),
    (
        r"could not find table",
        (
            "seeds/000 #2: Foreign key associated with column 'users.org_id' could not find table 'organizations' with "
            "which to generate a foreign key"
        ),
    ),
    (
        r"Could not determine join condition|mappers failed to initialize|failed to locate a name",
        (
            "seeds/000 #3: NoForeignKeysError: Could not determine join condition between parent/child tables on "
            "relationship User.sessions"
        ),
    ),
    (
        r"exceeds maximum length|will be truncated to|longer than 63",
        "seeds/003: Long Constraint Names: PostgreSQL has 63-character limit",
    ),
    (
        r'relation ".*" already exists|already exists|index named|Index\(',
        "seeds/000 Index Naming: Index(User.org_id, User.email)  # No explicit name - Auto-generated names can clash",
    ),
    (
        r"it has no name|unnamed",
        (
            "FACTS R4a/R4b: an unnamed constraint cannot be dropped or renamed by a migration: sqlalchemy.exc.CompileError: "
            "Can't emit DROP CONSTRAINT for constraint ...; it has no name"
        ),
    ),
    (
        r"duplicate key value violates unique constraint",
        'seeds/000 #5: psycopg2.errors.UniqueViolation: duplicate key value violates unique constraint "ix_organizations_slug"',
    ),
)


def seed_for(text: str) -> str:
    for pattern, seed in SEEDS:
        if re.search(pattern, text):
            return seed
    return ""


def error_text(exc: BaseException) -> str:
    """`module.Type: first line of the message`, without SQLAlchemy's SQL echo and background link."""
    kind = type(exc)
    module = "" if kind.__module__ == "builtins" else f"{kind.__module__}."
    message = str(exc).strip().split("\n", 1)[0]
    message = re.sub(r"\s*\(Background on this error at: [^)]*\)", "", message)
    return f"{module}{kind.__qualname__}: {message}"


# -- loading the models ---------------------------------------------------------------------------


@dataclass
class Loaded:
    module: str
    label: str = ""
    metadata: Any = None  # sqlalchemy.MetaData
    error: str = ""  # what importing the models raised
    warnings: list[str] = field(default_factory=list)


def import_paths(root: Path) -> list[Path]:
    return [root / "src", root] if (root / "src").is_dir() else [root]


def load_models(spec: str, root: Path) -> Loaded:
    """Import `module[:attr]` with `root` on sys.path and find its MetaData; VerifyError if there is none."""
    from sqlalchemy import MetaData

    module_name, _, attr = spec.partition(":")
    if not module_name or not all(part.isidentifier() for part in module_name.split(".")):
        raise VerifyError(f"--models {spec!r}: expected a module path like app.models or app.models:Base")
    for path in reversed(import_paths(root)):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    loaded = Loaded(module_name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and (module_name == exc.name or module_name.startswith(f"{exc.name}.")):
                raise VerifyError(f"cannot import {module_name!r} from {root}: no module named {exc.name!r}") from None
            loaded.error = error_text(exc)
        except BaseException as exc:  # noqa: BLE001 - the project's own import failing is a finding, not a crash
            loaded.error = error_text(exc)
    loaded.warnings = [f"{w.category.__name__}: {w.message}" for w in caught]
    if loaded.error:
        loaded.label = spec
        return loaded
    if attr:
        obj: Any = module
        for part in attr.split("."):
            if not hasattr(obj, part):
                raise VerifyError(f"--models {spec!r}: {module_name} has no attribute {attr!r}")
            obj = getattr(obj, part)
        loaded.metadata = metadata_of(obj)
        if loaded.metadata is None:
            raise VerifyError(f"--models {spec!r}: {attr} is not a MetaData, a declarative base or SQLModel")
        loaded.label = spec
        return loaded
    found: dict[int, tuple[MetaData, list[str]]] = {}
    for name, value in vars(module).items():
        md = value if isinstance(value, MetaData) else None
        if md is None and isinstance(value, type) and isinstance(value.__dict__.get("metadata"), MetaData):
            md = value.__dict__["metadata"]  # a base class owns its MetaData; models only inherit it
        if md is not None:
            found.setdefault(id(md), (md, []))[1].append(name)
    choices = list(found.values())
    if len(choices) > 1:
        preferred = [c for c in choices if "Base" in c[1]] or [c for c in choices if c[0].tables]
        choices = preferred if len(preferred) == 1 else choices
    if not choices:
        raise VerifyError(f"no MetaData in {module_name}; pass --models {module_name}:Base (or the MetaData)")
    if len(choices) > 1:
        listed = ", ".join(sorted(n for c in choices for n in c[1][:1]))
        raise VerifyError(f"several MetaData objects in {module_name} ({listed}); pass --models {module_name}:NAME")
    loaded.metadata, names = choices[0]
    loaded.label = f"{module_name}:{min(names, key=lambda n: (n != 'Base', n))}"
    return loaded


def metadata_of(obj: Any) -> Any:
    """The MetaData of a MetaData, a DeclarativeBase, a declarative_base() result, SQLModel, or a model."""
    from sqlalchemy import MetaData

    if isinstance(obj, MetaData):
        return obj
    for path in ("metadata", "registry.metadata", "__table__.metadata"):
        value = obj
        try:
            for part in path.split("."):
                value = getattr(value, part)
        except Exception:  # noqa: BLE001, S112 - a property of the project's class may raise anything
            continue
        if isinstance(value, MetaData):
            return value
    return None


# -- names the way SQLAlchemy and PostgreSQL make them --------------------------------------------


def _pg() -> Any:
    from sqlalchemy.dialects import postgresql

    return postgresql.dialect()


def effective_name(item: Any, dialect: Any = None) -> str | None:
    """The name SQLAlchemy emits for an index or constraint (explicit or by naming convention), else None."""
    from sqlalchemy import exc

    dialect = dialect or _pg()
    try:
        name = dialect.identifier_preparer.format_constraint(item, _alembic_quote=False)
    except exc.IdentifierError:
        name = item.name
    except Exception:  # noqa: BLE001
        name = item.name if isinstance(item.name, str) else None
    return str(name) if name is not None else None


def _clip(text: str, size: int) -> str:
    return text.encode()[:size].decode(errors="ignore")


def pg_object_name(name1: str, name2: str | None, label: str) -> str:
    """PostgreSQL's makeObjectName: `name1_name2_label`, shortening the longer part first to fit 63 bytes."""
    overhead = (len(name2.encode()) + 1 if name2 else 0) + len(label) + 1
    n1, n2 = len(name1.encode()), len(name2.encode()) if name2 else 0
    while n1 + n2 > MAX_IDENTIFIER - overhead:
        if n1 > n2:
            n1 -= 1
        else:
            n2 -= 1
    parts = [_clip(name1, n1)] + ([_clip(name2, n2)] if name2 else []) + [label]
    return "_".join(parts)


def _pg_choose(name1: str, name2: str | None, label: str, taken: set[str]) -> str:
    name, attempt = pg_object_name(name1, name2, label), 0
    while name in taken:
        attempt += 1
        name = pg_object_name(name1, name2, f"{label}{attempt}")
    taken.add(name)
    return name


def _column_addition(names: list[str]) -> str:
    return _clip("_".join(names), MAX_IDENTIFIER)


def _check_column(constraint: Any) -> str | None:
    """The one column a CHECK expression references (PostgreSQL then names it `<table>_<column>_check`)."""
    table = constraint.table
    try:
        referenced = {c.name for c in constraint.columns} or {
            c.name for c in table.columns if re.search(rf"(?<![\w.]){re.escape(c.name)}(?!\w)", str(constraint.sqltext))
        }
    except Exception:  # noqa: BLE001
        return None
    return next(iter(referenced)) if len(referenced) == 1 else None


def constraint_names(table: Any, taken: set[str], dialect: Any = None) -> dict[int, str]:
    """{id(constraint): name} for a table's constraints: SQLAlchemy's name, or the one PostgreSQL will choose."""
    from sqlalchemy import (
        CheckConstraint,
        ForeignKeyConstraint,
        PrimaryKeyConstraint,
        UniqueConstraint,
    )

    names: dict[int, str] = {}
    order = (PrimaryKeyConstraint, UniqueConstraint, CheckConstraint, ForeignKeyConstraint)
    constraints = sorted(
        table.constraints, key=lambda c: (next((i for i, t in enumerate(order) if isinstance(c, t)), 9), c._creation_order)
    )
    for constraint in constraints:
        name = effective_name(constraint, dialect)
        if name is None:
            columns = [c.name for c in constraint.columns]
            if isinstance(constraint, PrimaryKeyConstraint):
                if not columns:
                    continue
                name = _pg_choose(table.name, None, "pkey", taken)
            elif isinstance(constraint, UniqueConstraint):
                name = _pg_choose(table.name, _column_addition(columns), "key", taken)
            elif isinstance(constraint, ForeignKeyConstraint):
                name = _pg_choose(table.name, _column_addition(columns), "fkey", taken)
            elif isinstance(constraint, CheckConstraint):
                name = _pg_choose(table.name, _check_column(constraint), "check", taken)
            else:
                continue
        taken.add(name)
        names[id(constraint)] = name
    return names


# -- types ----------------------------------------------------------------------------------------


def impl_type(type_: Any) -> Any:
    """The type PostgreSQL gets: variants resolved, TypeDecorators unwrapped."""
    from sqlalchemy.types import TypeDecorator

    for _ in range(10):
        variants = getattr(type_, "_variant_mapping", None) or {}
        if "postgresql" in variants:
            type_ = variants["postgresql"]
        elif isinstance(type_, TypeDecorator):
            type_ = type_.impl_instance
        else:
            break
    return type_


def _native_enum(type_: Any) -> bool:
    from sqlalchemy import Enum

    return isinstance(type_, Enum) and bool(type_.native_enum) and bool(type_.name)


_TYPE_ALIASES = {"FLOAT": "DOUBLE PRECISION", "DOUBLE": "DOUBLE PRECISION", "SERIAL": "INTEGER", "BIGSERIAL": "BIGINT"}


def type_string(type_: Any, dialect: Any = None) -> str:
    t = impl_type(type_)
    if _native_enum(t):
        return f"ENUM {t.name}"
    try:
        text = t.compile(dialect=dialect or _pg())
    except Exception:  # noqa: BLE001
        text = repr(t)
    return _TYPE_ALIASES.get(text, text)


def timezone_flag(type_: Any) -> bool | None:
    from sqlalchemy import DateTime

    t = impl_type(type_)
    return bool(t.timezone) if isinstance(t, DateTime) else None


# -- snapshots and the schema diff ----------------------------------------------------------------


def _table_key(schema: str | None, name: str) -> str:
    return f"{schema}.{name}" if schema else name


def snapshot_metadata(metadata: Any) -> dict:
    """The schema PostgreSQL would hold for these models, as plain JSON data (see `snapshot_database`)."""
    from sqlalchemy import (
        CheckConstraint,
        ForeignKeyConstraint,
        PrimaryKeyConstraint,
        UniqueConstraint,
    )

    dialect = _pg()
    tables: dict[str, dict] = {}
    enums: dict[str, list[str]] = {}
    taken: dict[str | None, set[str]] = {}
    for table in _sorted_tables(metadata):
        names = constraint_names(table, taken.setdefault(table.schema, set()), dialect)
        columns = {}
        for column in table.columns:
            columns[column.name] = {
                "type": type_string(column.type, dialect),
                "nullable": bool(column.nullable),
                "timezone": timezone_flag(column.type),
            }
            t = impl_type(column.type)
            if _native_enum(t):
                enums.setdefault(_table_key(t.schema, t.name), list(t.enums))
        indexes: dict[str, dict] = {}
        named = [(effective_name(i, dialect) or "?", [_expr_name(e) for e in i.expressions], i) for i in table.indexes]
        for name, _, index in sorted(named, key=lambda n: n[:2]):
            indexes[_unique_key(indexes, name)] = {
                "columns": [_expr_name(e) for e in index.expressions],
                "unique": bool(index.unique),
            }
        constraints: dict[str, dict] = {}
        for constraint in sorted(table.constraints, key=lambda c: (names.get(id(c), ""), [c.name for c in c.columns])):
            if id(constraint) not in names:
                continue
            entry: dict[str, Any] = {"columns": [c.name for c in constraint.columns]}
            if isinstance(constraint, PrimaryKeyConstraint):
                entry["kind"] = "primary key"
            elif isinstance(constraint, UniqueConstraint):
                entry["kind"] = "unique"
            elif isinstance(constraint, ForeignKeyConstraint):
                entry["kind"] = "foreign key"
                try:
                    target = constraint.referred_table
                    entry["references"] = f"{_table_key(target.schema, target.name)}({', '.join(e.column.name for e in constraint.elements)})"
                except Exception:  # noqa: BLE001
                    entry["references"] = ", ".join(e.target_fullname for e in constraint.elements)
            elif isinstance(constraint, CheckConstraint):
                entry = {"kind": "check", "columns": []}
            constraints[_unique_key(constraints, names[id(constraint)])] = entry
        tables[_table_key(table.schema, table.name)] = {"columns": columns, "indexes": indexes, "constraints": constraints}
    return {"tables": tables, "enums": enums}


def _unique_key(found: dict, name: str) -> str:
    # Two objects with one name cannot both exist in PostgreSQL (duplicate-names reports it); keep both visible.
    return name if name not in found else f"{name} (duplicate)"


def _expr_name(expr: Any) -> str:
    return getattr(expr, "name", None) or str(expr)


def snapshot_database(connection: Any, schemas: str | dict[str | None, str], exclude: tuple[str, ...] = ("alembic_version",)) -> dict:
    """What a live database holds, in `snapshot_metadata`'s form; `schemas` maps model schemas to real ones."""
    from sqlalchemy import inspect

    if isinstance(schemas, str):
        schemas = {None: schemas}
    back = {real: model for model, real in schemas.items()}
    inspector = inspect(connection)
    tables: dict[str, dict] = {}
    enums: dict[str, list[str]] = {}
    dialect = connection.dialect
    for model_schema, schema in schemas.items():
        for enum in inspector.get_enums(schema=schema):
            enums[_table_key(model_schema, enum["name"])] = list(enum["labels"])
        for name in inspector.get_table_names(schema=schema):
            if name in exclude:
                continue
            columns = {
                c["name"]: {
                    "type": type_string(c["type"], dialect),
                    "nullable": bool(c["nullable"]),
                    "timezone": timezone_flag(c["type"]),
                }
                for c in inspector.get_columns(name, schema=schema)
            }
            constraints: dict[str, dict] = {}
            pk = inspector.get_pk_constraint(name, schema=schema)
            if pk and pk.get("constrained_columns"):
                constraints[pk["name"]] = {"columns": pk["constrained_columns"], "kind": "primary key"}
            for uq in inspector.get_unique_constraints(name, schema=schema):
                constraints[uq["name"]] = {"columns": uq["column_names"], "kind": "unique"}
            for fk in inspector.get_foreign_keys(name, schema=schema):
                target = _table_key(back.get(fk.get("referred_schema"), fk.get("referred_schema")), fk["referred_table"])
                constraints[fk["name"]] = {
                    "columns": fk["constrained_columns"],
                    "kind": "foreign key",
                    "references": f"{target}({', '.join(fk['referred_columns'])})",
                }
            for ck in inspector.get_check_constraints(name, schema=schema):
                constraints[ck["name"]] = {"kind": "check", "columns": []}
            indexes = {
                ix["name"]: {"columns": [c or e for c, e in zip(ix["column_names"], ix.get("expressions") or ix["column_names"])], "unique": bool(ix["unique"])}
                for ix in inspector.get_indexes(name, schema=schema)
                if ix["name"] not in constraints and not ix.get("duplicates_constraint")
            }
            tables[_table_key(model_schema, name)] = {"columns": columns, "indexes": indexes, "constraints": constraints}
    return {"tables": tables, "enums": enums}


def _describe(entry: dict) -> str:
    text = f"({', '.join(entry.get('columns', []))})"
    if entry.get("kind"):
        text = f"{entry['kind']} {text}" if entry["columns"] else entry["kind"]
    if entry.get("references"):
        text += f" -> {entry['references']}"
    if entry.get("unique"):
        text = f"unique {text}"
    return text


def _json(value: Any) -> str:
    return json.dumps(value)


def diff_snapshots(old: dict, new: dict) -> list[Change]:
    """Every difference from `old` to `new`: tables, columns (type, nullable, timezone), indexes, constraints, enum labels."""
    changes: list[Change] = []
    old_tables, new_tables = old.get("tables", {}), new.get("tables", {})
    for name in sorted(old_tables.keys() | new_tables.keys()):
        if name not in old_tables:
            changes.append(Change("+", "table", name, ", ".join(new_tables[name]["columns"])))
            continue
        if name not in new_tables:
            changes.append(Change("-", "table", name))
            continue
        before, after = old_tables[name], new_tables[name]
        for column in _ordered(before["columns"], after["columns"]):
            a, b = before["columns"].get(column), after["columns"].get(column)
            if a is None:
                changes.append(Change("+", "column", f"{name}.{column}", f"{b['type']}{'' if b['nullable'] else ' NOT NULL'}"))
            elif b is None:
                changes.append(Change("-", "column", f"{name}.{column}", a["type"]))
            elif a != b:
                detail = [f"{key} {_json(a.get(key))} -> {_json(b.get(key))}" for key in ("type", "nullable", "timezone") if a.get(key) != b.get(key)]
                changes.append(Change("~", "column", f"{name}.{column}", ", ".join(detail)))
        for kind in ("index", "constraint"):
            a_all, b_all = before[f"{kind}es" if kind == "index" else f"{kind}s"], after[f"{kind}es" if kind == "index" else f"{kind}s"]
            for item in sorted(a_all.keys() | b_all.keys()):
                a, b = a_all.get(item), b_all.get(item)
                label = f"{item} on {name}"
                if a is None:
                    changes.append(Change("+", kind, label, _describe(b)))
                elif b is None:
                    changes.append(Change("-", kind, label, _describe(a)))
                elif a != b:
                    changes.append(Change("~", kind, label, f"{_describe(a)} -> {_describe(b)}"))
    old_enums, new_enums = old.get("enums", {}), new.get("enums", {})
    for name in sorted(old_enums.keys() | new_enums.keys()):
        a, b = old_enums.get(name), new_enums.get(name)
        if a is None:
            changes.append(Change("+", "enum", name, ", ".join(b)))
        elif b is None:
            changes.append(Change("-", "enum", name, ", ".join(a)))
        elif a != b:
            changes.append(Change("~", "enum", name, f"labels {', '.join(a)} -> {', '.join(b)}"))
    return changes


def _ordered(a: dict, b: dict) -> list[str]:
    return list(a) + [k for k in b if k not in a]


# -- offline checks -------------------------------------------------------------------------------


def _sorted_tables(metadata: Any) -> list[Any]:
    from sqlalchemy.sql.ddl import sort_tables_and_constraints

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return [t for t, _ in sort_tables_and_constraints(list(metadata.tables.values())) if t is not None]
        except Exception:  # noqa: BLE001
            return list(metadata.tables.values())


def _cycle_foreign_keys(metadata: Any) -> list[Any]:
    """The foreign keys SQLAlchemy must create and drop separately because their tables form a cycle."""
    from sqlalchemy.sql.ddl import sort_tables_and_constraints

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            pairs = sort_tables_and_constraints(list(metadata.tables.values()))
        except Exception:  # noqa: BLE001
            return []
    return [fk for table, fks in pairs if table is None for fk in fks]


def _mappers(metadata: Any) -> list[Any]:
    try:
        from sqlalchemy.orm import mapperlib

        _all_registries = mapperlib._all_registries
    except (ImportError, AttributeError):  # a SQLAlchemy without the registry list: the check has nothing to look at
        return []
    tables = {id(t) for t in metadata.tables.values()}
    found = []
    for registry in list(_all_registries()):
        for mapper in registry.mappers:
            if mapper.local_table is not None and id(mapper.local_table) in tables:
                found.append(mapper)
    return sorted(found, key=lambda m: m.class_.__qualname__)


def _check_import(loaded: Loaded) -> CheckResult:
    check = CheckResult("import", "offline")
    if loaded.error:
        check.fail(f"importing {loaded.module} failed", loaded.error)
    check.notes.extend(w for w in loaded.warnings if "SAWarning" in w)
    return check


def _check_mappers() -> CheckResult:
    from sqlalchemy.orm import configure_mappers

    check = CheckResult("mappers", "offline")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            configure_mappers()
    except Exception as exc:  # noqa: BLE001
        check.fail("configuring the mappers failed (every ORM use of any model raises this)", error_text(exc))
    return check


def _check_reserved(metadata: Any, loaded: Loaded) -> CheckResult:
    from sqlalchemy import MetaData

    check = CheckResult("reserved-attributes", "offline")
    for mapper in _mappers(metadata):
        cls = mapper.class_
        for name in ("metadata", "registry"):
            if name not in mapper.columns:  # `attrs` would configure the mappers, which may be what is broken
                continue
            if name == "metadata" and isinstance(getattr(cls, "metadata", None), MetaData):
                continue
            warning = next((w for w in loaded.warnings if f"Attribute name '{name}'" in w), "")
            consequence = ""
            if name == "metadata":
                try:
                    cls.metadata.create_all  # noqa: B018 - what `Model.metadata.create_all(engine)` runs into
                except Exception as exc:  # noqa: BLE001
                    consequence = f"; `{cls.__name__}.metadata.create_all()` raises {error_text(exc)}"
            check.fail(
                f"{cls.__module__}.{cls.__qualname__}: the mapped attribute `{name}` shadows the declarative `{name}`"
                f" (SQLAlchemy 2.0 refuses the class){consequence}",
                warning or f"SAWarning: Attribute name '{name}' should be left reserved",
            )
    return check


def compile_ddl(metadata: Any, drop: bool = False) -> list[str]:
    """The full PostgreSQL DDL of `create_all` (or `drop_all`), compiled by SQLAlchemy itself; raises what it would."""
    from sqlalchemy import create_mock_engine

    dialect = _pg()
    statements: list[str] = []
    engine = create_mock_engine("postgresql://", lambda sql, *a, **k: statements.append(str(sql.compile(dialect=dialect)).strip()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if drop:
            metadata.drop_all(engine, checkfirst=False)
        else:
            metadata.create_all(engine, checkfirst=False)
    return statements


def _check_ddl(metadata: Any) -> CheckResult:
    check = CheckResult("ddl", "offline")
    try:
        statements = compile_ddl(metadata)
        check.notes.append(f"{len(statements)} CREATE statements compiled for PostgreSQL")
    except Exception as exc:  # noqa: BLE001
        check.fail("compiling the PostgreSQL DDL of create_all failed" + _closest_table(metadata, exc), error_text(exc))
    return check


def _closest_table(metadata: Any, exc: Exception) -> str:
    """For "could not find table": the cause is a typo, a model never imported, or another MetaData (FACTS claim 4)."""
    import difflib

    missing = getattr(exc, "table_name", None)
    if not missing:
        return ""
    close = difflib.get_close_matches(missing.rsplit(".", 1)[-1], [t.name for t in metadata.tables.values()], n=1)
    if close:
        return f": no table {missing!r} in this MetaData; did you mean {close[0]!r}?"
    return f": no table {missing!r} in this MetaData; import the module defining it next to the others, on the same Base"


def _identifiers(metadata: Any) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    dialect = _pg()
    for table in metadata.tables.values():
        found.append(("table", table.name))
        found.extend(("column", f"{table.name}.{c.name}") for c in table.columns)
        for item in [*table.indexes, *table.constraints]:
            name = item.name if isinstance(item.name, str) else effective_name(item, dialect)
            if name:
                kind = "index" if item.__visit_name__ == "index" else "constraint"
                found.append((kind, f"{name}"))
        for column in table.columns:
            t = impl_type(column.type)
            if _native_enum(t):
                found.append(("enum type", t.name))
    return found


def _check_identifiers(metadata: Any) -> CheckResult:
    check = CheckResult("identifier-length", "offline")
    seen = set()
    for kind, name in _identifiers(metadata):
        ident = name.rsplit(".", 1)[-1] if kind == "column" else name
        if len(ident.encode()) > MAX_IDENTIFIER and (kind, name) not in seen:
            seen.add((kind, name))
            if kind == "column":
                error = f'NOTICE: identifier "{ident}" will be truncated to "{_clip(ident, MAX_IDENTIFIER)}"'
                why = "SQLAlchemy does not check it; PostgreSQL truncates it and Alembic then proposes drop + add (data loss)"
            else:
                error = f"sqlalchemy.exc.IdentifierError: Identifier '{ident}' exceeds maximum length of 63 characters"
                why = "SQLAlchemy refuses to emit it"
            check.fail(f"{kind} {name} is {len(ident.encode())} bytes, longer than 63: {why}", error)
    return check


def _check_duplicates(metadata: Any) -> CheckResult:
    from sqlalchemy import PrimaryKeyConstraint, UniqueConstraint

    check = CheckResult("duplicate-names", "offline")
    dialect = _pg()
    relations: dict[tuple[str | None, str], list[str]] = {}
    for table in metadata.tables.values():
        relations.setdefault((table.schema, table.name), []).append(f"table {table.name}")
        per_table: dict[str, int] = {}
        for index in table.indexes:
            name = effective_name(index, dialect)
            if name:
                relations.setdefault((table.schema, name), []).append(f"index on {table.name}")
        for constraint in table.constraints:
            name = effective_name(constraint, dialect)
            if not name:
                continue  # PostgreSQL picks a free name itself
            if isinstance(constraint, (PrimaryKeyConstraint, UniqueConstraint)):
                relations.setdefault((table.schema, name), []).append(f"{type(constraint).__name__} on {table.name}")
            else:
                per_table[name] = per_table.get(name, 0) + 1
        for name, count in per_table.items():
            if count > 1:
                check.fail(
                    f"{count} constraints named {name} on {table.name}",
                    f'constraint "{name}" for relation "{table.name}" already exists',
                )
    for (schema, name), owners in sorted(relations.items(), key=lambda i: (i[0][0] or "", i[0][1])):
        if len(owners) > 1:
            check.fail(
                f"{name} names {len(owners)} relations ({'; '.join(owners)}): indexes, constraints' indexes and tables "
                f"share one namespace per schema",
                f'psycopg2.errors.DuplicateTable: relation "{name}" already exists',
            )
    return check


def _check_misbuilt_indexes(metadata: Any) -> CheckResult:
    check = CheckResult("misbuilt-indexes", "offline")
    dialect = _pg()
    for table in metadata.tables.values():
        columns = set(table.columns.keys()) | {c.name for c in table.columns}
        for index in table.indexes:
            name = effective_name(index, dialect)
            if not name:
                continue
            covered = [_expr_name(e) for e in index.expressions]
            tail = name.rsplit(".", 1)[-1]
            if tail in columns and tail not in covered:
                check.fail(
                    f'index "{name}" on {table.name} covers only ({", ".join(covered)}): its first argument was taken as '
                    f"the name, so `{tail}` is not indexed; write Index(\"ix_{table.name}_{'_'.join([tail, *covered])}\", ...)",
                    f'CREATE INDEX "{name}" ON {table.name} ({", ".join(covered)})',
                )
    return check


def _check_unnamed(metadata: Any) -> CheckResult:
    from sqlalchemy import CheckConstraint, ForeignKeyConstraint, UniqueConstraint
    from sqlalchemy.schema import DropConstraint

    check = CheckResult("unnamed-constraints", "offline")
    dialect = _pg()
    taken: dict[str | None, set[str]] = {}
    for table in _sorted_tables(metadata):
        names = constraint_names(table, taken.setdefault(table.schema, set()), dialect)
        for constraint in table.constraints:
            if not isinstance(constraint, (UniqueConstraint, CheckConstraint, ForeignKeyConstraint)):
                continue
            if constraint._column_flag or constraint._type_bound or effective_name(constraint, dialect):
                continue
            if isinstance(constraint, ForeignKeyConstraint) and _from_column(constraint):
                continue  # `Column(ForeignKey(...))`: only a problem in a cycle (foreign-key-cycles)
            try:
                DropConstraint(constraint).compile(dialect=dialect)
                error = ""
            except Exception as exc:  # noqa: BLE001
                error = error_text(exc)
            columns = ", ".join(c.name for c in constraint.columns)
            check.fail(
                f"unnamed {type(constraint).__name__}({columns}) on {table.name}: PostgreSQL names it "
                f"{names.get(id(constraint))}, the model does not, so a migration cannot drop or alter it",
                _shorten(error),
            )
    return check


def _from_column(constraint: Any) -> bool:
    # The implicit constraint of a `Column(ForeignKey(...))` is built with no column arguments of its own.
    return not getattr(constraint, "_pending_colargs", True)


def _shorten(text: str, size: int = 240) -> str:
    return text if len(text) <= size else re.sub(r"\(.*\)", "(...)", text, count=1)[:size]


def _check_cycles(metadata: Any) -> CheckResult:
    from sqlalchemy.exc import CircularDependencyError, CompileError

    check = CheckResult("foreign-key-cycles", "offline")
    dialect = _pg()
    cycle = _cycle_foreign_keys(metadata)
    unnamed = [fk for fk in cycle if not effective_name(fk, dialect)]
    error = ""
    try:
        compile_ddl(metadata, drop=True)
    except Exception as exc:  # noqa: BLE001
        if not unnamed and not isinstance(exc, (CircularDependencyError, CompileError)):
            check.notes.append(f"drop_all not compiled: {error_text(exc)} (see ddl)")
        else:
            error = error_text(exc)
    if unnamed or error:
        listed = ", ".join(f"{fk.parent.name}({', '.join(c.name for c in fk.columns)})" for fk in unnamed)
        check.fail(
            f"drop_all fails: foreign keys in a cycle have no name ({listed or 'see the error'}); name them "
            f"(PostgreSQL's <table>_<column>_fkey keeps the database as it is)",
            error,
        )
    elif cycle:
        check.notes.append(f"{len(cycle)} foreign keys in cycles, all named")
    return check


def _check_enums(metadata: Any) -> CheckResult:
    check = CheckResult("enum-labels", "offline")
    types: dict[str, tuple[list[str], str]] = {}
    for table in metadata.tables.values():
        for column in table.columns:
            t = impl_type(column.type)
            if not hasattr(t, "enums") or getattr(t, "enum_class", None) is None:
                continue
            labels = list(t.enums)
            values = [_label(m.value) for m in t.enum_class]
            where = f"{table.name}.{column.name}"
            if _native_enum(t):
                previous = types.setdefault(t.name, (labels, where))
                if previous[0] != labels:
                    check.fail(
                        f"{where} and {previous[1]} share the PostgreSQL type {t.name} with different labels "
                        f"({', '.join(labels)} / {', '.join(previous[0])}): the first one created wins silently",
                        f'invalid input value for enum {t.name}: "{next(iter(set(labels) - set(previous[0])), "")}"',
                    )
            if labels == values:
                continue
            wrong = next((v for v, label in zip(values, labels) if v != label and v not in labels), values[0])
            storage = f"PostgreSQL type {t.name}" if _native_enum(t) else "a VARCHAR column (native_enum=False)"
            if _native_enum(t):
                error = f'invalid input value for enum {t.name}: "{wrong}"'
            else:
                error = f"LookupError: '{wrong}' is not among the defined enum values. Enum name: {t.name}. Possible values: {', '.join(labels)}"
            check.fail(
                f"{where} stores the member names ({', '.join(labels)}), not the values ({', '.join(values)}) of "
                f"{t.enum_class.__name__} in {storage}: raw SQL and other clients using the values fail; "
                f"add values_callable=lambda obj: [e.value for e in obj]",
                error,
            )
    return check


def _label(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def evaluate_default(default: Any) -> Any:
    """The value a Python-side column default produces, called once; None when it needs a statement context."""
    if default is None or not hasattr(default, "arg"):
        return None
    if getattr(default, "is_scalar", False):
        return default.arg
    if getattr(default, "is_callable", False):
        try:
            return default.arg(None)
        except Exception:  # noqa: BLE001
            return None
    return None


def _check_datetime_defaults(metadata: Any) -> CheckResult:
    check = CheckResult("datetime-defaults", "offline")
    dialect = _pg()
    for table in metadata.tables.values():
        for column in table.columns:
            tz = timezone_flag(column.type)
            if tz is None:
                continue
            for kind in ("default", "onupdate"):
                value = evaluate_default(getattr(column, kind))
                if not isinstance(value, datetime):
                    continue
                aware = value.tzinfo is not None and value.utcoffset() is not None
                where = f"{table.name}.{column.name}"
                if aware and not tz:
                    check.fail(
                        f"{where}: aware default for the naive timestamp column ({kind} gave {value.isoformat()}): "
                        f"asyncpg rejects every INSERT, psycopg stores it in the session time zone; "
                        f"use .replace(tzinfo=None) on a UTC value",
                        "sqlalchemy.exc.DBAPIError: (asyncpg) invalid input for query argument: "
                        "(can't subtract offset-naive and offset-aware datetimes)",
                    )
                elif not aware and tz:
                    error = ""
                    bind = getattr(column.type, "process_bind_param", None)
                    if bind is not None:
                        try:
                            bind(value, dialect)
                        except Exception as exc:  # noqa: BLE001
                            error = error_text(exc)
                    check.fail(
                        f"{where}: naive default for the timestamptz column ({kind} gave {value.isoformat()}): "
                        f"psycopg reads it in the session time zone (a wrong instant outside UTC); use an aware UTC value",
                        error,
                    )
    return check


OFFLINE_CHECKS = (
    ("ddl", _check_ddl),
    ("identifier-length", _check_identifiers),
    ("duplicate-names", _check_duplicates),
    ("misbuilt-indexes", _check_misbuilt_indexes),
    ("unnamed-constraints", _check_unnamed),
    ("foreign-key-cycles", _check_cycles),
    ("enum-labels", _check_enums),
    ("datetime-defaults", _check_datetime_defaults),
)


@contextlib.contextmanager
def _create_rules_kept(metadata: Any) -> Iterator[None]:
    # SQLAlchemy 2.0's DropConstraint/AddConstraint switch a constraint out of CREATE TABLE for good; a
    # check that compiles one must not change what the online create_all (or the next check) emits.
    rules = [(c, c.__dict__.get("_create_rule")) for t in metadata.tables.values() for c in t.constraints]
    try:
        yield
    finally:
        for constraint, rule in rules:
            constraint._create_rule = rule


def offline_checks(loaded: Loaded) -> list[CheckResult]:
    checks = [_check_import(loaded)]
    metadata = loaded.metadata
    if metadata is None:
        return checks
    checks.append(_check_mappers())
    checks.append(_check_reserved(metadata, loaded))
    for name, run in OFFLINE_CHECKS:
        try:
            with _create_rules_kept(metadata):
                checks.append(run(metadata))
        except Exception as exc:  # noqa: BLE001 - a check must never hide the others
            check = CheckResult(name, "offline")
            check.fail("the check itself failed on these models", error_text(exc))
            checks.append(check)
    return checks


# -- online checks --------------------------------------------------------------------------------


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def connect_url(url: str) -> Any:
    """The SQLAlchemy URL to connect with: PostgreSQL only; with no driver named, the first one installed."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception as exc:  # noqa: BLE001
        raise VerifyError(f"--database-url: {error_text(exc)}") from None
    if parsed.get_backend_name() != "postgresql":
        raise VerifyError(f"--database-url must point to PostgreSQL, not {parsed.get_backend_name()}")
    if "+" not in parsed.drivername:
        for driver in ("psycopg", "psycopg2", "asyncpg"):
            if importlib.util.find_spec(driver) is not None:
                return parsed.set(drivername=f"postgresql+{driver}")
    return parsed


def _run_on_connection(url: Any, work: Any) -> Any:
    """`work(sync_connection)` on a new connection; async drivers go through `run_sync`."""
    from sqlalchemy import create_engine

    shown = url.render_as_string(hide_password=True)
    try:
        if url.get_dialect().is_async:
            from sqlalchemy.ext.asyncio import create_async_engine

            async def go() -> Any:
                engine = create_async_engine(url)
                try:
                    async with engine.connect() as conn:
                        return await conn.run_sync(work)
                finally:
                    await engine.dispose()

            return asyncio.run(go())
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                return work(conn)
        finally:
            engine.dispose()
    except VerifyError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise VerifyError(f"cannot run the online checks on {shown}: {error_text(exc)}") from None


def temp_schemas(metadata: Any, token: str) -> dict[str | None, str]:
    """A throw-away schema for the default schema and for every schema the models name."""
    schemas: dict[str | None, str] = {None: f"dbfix_verify_{token}"}
    for table in metadata.tables.values():
        if table.schema and table.schema not in schemas:
            schemas[table.schema] = _clip(f"dbfix_verify_{token}_{table.schema}", MAX_IDENTIFIER)
    return schemas


class _NoValue:
    pass


NO_VALUE = _NoValue()


def sample_value(column: Any, serial: int) -> Any:
    """A plausible value for a column nobody fills, or NO_VALUE."""
    from sqlalchemy import (
        JSON,
        Boolean,
        Date,
        DateTime,
        Enum,
        Float,
        Integer,
        Interval,
        LargeBinary,
        Numeric,
        String,
        Time,
        Uuid,
    )
    from sqlalchemy.types import ARRAY

    t = impl_type(column.type)
    if isinstance(t, Enum):
        if t.enum_class is not None:
            return next(iter(t.enum_class))
        return t.enums[0] if t.enums else NO_VALUE
    if isinstance(t, Boolean):
        return False
    if isinstance(t, Integer):
        return serial
    if isinstance(t, Float):
        return float(serial)
    if isinstance(t, Numeric):
        return Decimal(serial)
    if isinstance(t, String):
        text = f"dbfix{serial}"
        return text[: t.length] if t.length else text
    if isinstance(t, DateTime):
        now = datetime.now(timezone.utc)
        return now if t.timezone else now.replace(tzinfo=None)
    if isinstance(t, Date):
        return date.today()
    if isinstance(t, Time):
        return time(12, 0)
    if isinstance(t, Interval):
        return timedelta(0)
    if isinstance(t, LargeBinary):
        return b""
    if isinstance(t, JSON):
        return {}
    if isinstance(t, ARRAY):
        return []
    if isinstance(t, Uuid):
        value = uuid.uuid4()
        return value if t.as_uuid else str(value)
    return NO_VALUE


def _row_values(table: Any, rows: dict[int, dict], serial: int) -> tuple[dict, str]:
    values: dict[str, Any] = {}
    for column in table.columns:
        if column.default is not None or column.server_default is not None or column.computed is not None:
            continue
        if column is table.autoincrement_column or column.identity is not None:
            continue
        if column.foreign_keys:
            fk = min(column.foreign_keys, key=lambda f: f.target_fullname)
            try:
                target = fk.column
            except Exception as exc:  # noqa: BLE001
                return {}, f"{column.name}: {error_text(exc)}"
            parent = rows.get(id(target.table))
            if parent is not None and parent.get(target.name) is not None:
                values[column.key] = parent[target.name]
                continue
            if column.nullable and not column.primary_key:
                continue
            return {}, f"{column.name} needs a row in {target.table.name}, which has none"
        if column.nullable and not column.primary_key and not hasattr(impl_type(column.type), "enums"):
            continue
        value = sample_value(column, serial)
        if value is NO_VALUE:
            if column.nullable and not column.primary_key:
                continue
            return {}, f"no value for {column.name} ({type_string(column.type)})"
        values[column.key] = value
    return values, ""


def _datetime_expectations(table: Any) -> dict[str, datetime]:
    found = {}
    for column in table.columns:
        if timezone_flag(column.type) is not None and getattr(column.default, "is_callable", False):
            value = evaluate_default(column.default)
            if isinstance(value, datetime):
                found[column.name] = value
    return found


def _same_instant(stored: datetime, expected: datetime, aware_column: bool) -> bool:
    if aware_column:
        stored_utc = stored if stored.tzinfo else stored.replace(tzinfo=timezone.utc)
        expected_utc = expected if expected.tzinfo else expected.replace(tzinfo=timezone.utc)
    else:
        stored_utc = stored.replace(tzinfo=None) if stored.tzinfo is None else stored.astimezone(timezone.utc).replace(tzinfo=None)
        expected_utc = expected.astimezone(timezone.utc).replace(tzinfo=None) if expected.tzinfo else expected
        stored_utc, expected_utc = stored_utc.replace(tzinfo=timezone.utc), expected_utc.replace(tzinfo=timezone.utc)
    return abs(stored_utc - expected_utc) < timedelta(minutes=2)


ONLINE_CHECKS = ("create-all", "schema-read-back", "insert", "read-back", "datetime-values", "enum-raw-sql", "drop-all")


def online_checks(metadata: Any, url: str) -> tuple[list[CheckResult], str, str]:
    """create_all, one row per table, read back, raw SQL on enums, drop_all: in a throw-away schema, rolled back."""
    parsed = connect_url(url)
    token = uuid.uuid4().hex[:8]
    schemas = temp_schemas(metadata, token)

    def work(conn: Any) -> list[CheckResult]:
        checks = {name: CheckResult(name, "online") for name in ONLINE_CHECKS}
        outer = conn.begin()
        try:
            # Everything happens in one transaction that is rolled back: nothing outlives the run, even if killed.
            conn.exec_driver_sql(f"SET LOCAL TIME ZONE '{SESSION_TIME_ZONE}'")
            for schema in schemas.values():
                conn.exec_driver_sql(f"CREATE SCHEMA {_quote(schema)}")
            translated = conn.execution_options(schema_translate_map=dict(schemas))  # SQLAlchemy may add keys
            _online_steps(translated, metadata, schemas, checks)
            for check in checks.values():  # name objects as the models do, not by their throw-away schema
                for problem in check.problems:
                    for schema in schemas.values():
                        problem.error = problem.error.replace(f"{schema}.", "").replace(f'"{schema}".', "")
            for schema in set(schemas.values()):
                conn.exec_driver_sql(f"DROP SCHEMA {_quote(schema)} CASCADE")
        finally:
            outer.rollback()
        return list(checks.values())

    results = _run_on_connection(parsed, work)
    return results, parsed.render_as_string(hide_password=True), schemas[None]


def _read_schema_back(conn: Any, metadata: Any, schemas: dict[str | None, str], check: CheckResult) -> None:
    """What PostgreSQL made of the DDL: names that differ (truncated, renamed) fail; type spellings are notes."""
    try:
        with conn.begin_nested():
            held = snapshot_database(conn, schemas, exclude=())
    except Exception as error:  # noqa: BLE001
        check.notes.append(f"could not read the schema back: {error_text(error)}")
        return
    for change in diff_snapshots(snapshot_metadata(metadata), held):
        if change.op == "~" and change.kind != "enum":
            check.notes.append(f"the database spells it differently: {change}")
        else:
            check.fail(f"the database differs from the models: {change}", _truncation_notice(change))


def _truncation_notice(change: Change) -> str:
    name = change.name.rsplit(".", 1)[-1].split(" on ")[0]
    if change.op == "-" and len(name.encode()) > MAX_IDENTIFIER:
        return f'NOTICE: identifier "{name}" will be truncated to "{_clip(name, MAX_IDENTIFIER)}"'
    return ""


def _online_steps(conn: Any, metadata: Any, schemas: dict[str | None, str], checks: dict[str, CheckResult]) -> None:
    from sqlalchemy import exc, select, text

    try:
        with conn.begin_nested(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            metadata.create_all(conn, checkfirst=False)
    except Exception as error:  # noqa: BLE001
        checks["create-all"].fail("create_all failed on PostgreSQL", error_text(error))
        for name in ONLINE_CHECKS[1:]:
            checks[name].skipped = "create_all failed"
        return
    checks["create-all"].notes.append(f"{len(metadata.tables)} tables created in {schemas[None]}")
    _read_schema_back(conn, metadata, schemas, checks["schema-read-back"])

    rows: dict[int, dict] = {}
    for serial, table in enumerate(_sorted_tables(metadata), 1):
        values, reason = _row_values(table, rows, serial)
        if reason:
            checks["insert"].notes.append(f"{table.name}: skipped, {reason}")
            continue
        expected = _datetime_expectations(table)
        try:
            with conn.begin_nested():
                row = conn.execute(table.insert().returning(*table.columns), values).mappings().one()
        except exc.IntegrityError as error:  # our synthetic values, not the models, broke a constraint
            checks["insert"].notes.append(f"{table.name}: skipped, the sample row violates a constraint: {error_text(error)}")
            continue
        except Exception as error:  # noqa: BLE001
            checks["insert"].fail(f"{table.name}: INSERT of one row built from the column defaults failed", error_text(error))
            continue
        rows[id(table)] = {c.name: row[c] for c in table.columns}
        for name, value in expected.items():
            stored = rows[id(table)].get(name)
            tz = bool(timezone_flag(table.c[name].type))
            if isinstance(stored, datetime) and not _same_instant(stored, value, tz):
                checks["datetime-values"].fail(
                    f"{table.name}.{name}: the default gave {value.isoformat()}, the database holds {stored.isoformat()} "
                    f"(session time zone {SESSION_TIME_ZONE}): the driver converted it through the session time zone",
                )
    checks["insert"].notes.append(f"{len(rows)} of {len(metadata.tables)} tables got a row")

    for table in _sorted_tables(metadata):
        try:
            with conn.begin_nested():
                conn.execute(select(table)).all()
        except Exception as error:  # noqa: BLE001
            checks["read-back"].fail(f"{table.name}: reading the rows back failed", error_text(error))

    for table in _sorted_tables(metadata):
        qualified = f"{_quote(schemas[table.schema])}.{_quote(table.name)}"
        for column in table.columns:
            t = impl_type(column.type)
            if getattr(t, "enum_class", None) is None or not hasattr(t, "enums"):
                continue
            python_values = [_label(m.value) for m in t.enum_class]
            stored = None
            if id(table) in rows:
                with conn.begin_nested():
                    stored = conn.execute(text(f"SELECT {_quote(column.name)}::text FROM {qualified}")).scalar()
            probe = next((v for v in python_values if v not in t.enums), None)
            if stored is not None and stored in t.enums and stored not in python_values:
                probe = _label(t.enum_class[stored].value) if stored in t.enum_class.__members__ else probe
            if probe is None:
                continue
            sql = f"SELECT count(*) FROM {qualified} WHERE {_quote(column.name)} = :v"
            try:
                with conn.begin_nested():
                    found = conn.execute(text(sql), {"v": probe}).scalar()
                outcome = f"WHERE {column.name} = '{probe}' matched {found} rows; the column stores {stored!r}"
            except Exception as failure:  # noqa: BLE001
                outcome = error_text(failure)
            checks["enum-raw-sql"].fail(
                f"{table.name}.{column.name} stores the member names of {t.enum_class.__name__}: "
                f"raw SQL expecting the value '{probe}' fails",
                outcome,
            )

    try:
        with conn.begin_nested(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            metadata.drop_all(conn, checkfirst=False)
    except Exception as error:  # noqa: BLE001
        checks["drop-all"].fail("drop_all failed on PostgreSQL", error_text(error))


# -- running --------------------------------------------------------------------------------------


def check_models(models: str, root: Path, database_url: str | None = None, snapshot: bool = False) -> VerifyResult:
    """Load the models in this process and run the offline (and, with a URL, the online) checks."""
    loaded = load_models(models, root)
    result = VerifyResult(models=loaded.label)
    result.checks = offline_checks(loaded)
    if loaded.metadata is None:
        return result
    result.tables = sorted(_table_key(t.schema, t.name) for t in loaded.metadata.tables.values())
    if snapshot:
        result.snapshot = snapshot_metadata(loaded.metadata)
    if database_url:
        online, result.database, result.schema = online_checks(loaded.metadata, database_url)
        result.checks.extend(online)
    return result


def _child(request: dict) -> dict:
    """Run one request in a fresh interpreter; user code's own stdout output cannot spoil the answer."""
    with tempfile.TemporaryDirectory(prefix="dbfix-verify-") as tmp:
        out = Path(tmp) / "result.json"
        request = {**request, "out": str(out)}
        env = {k: v for k, v in os.environ.items() if k != "PYTHONSAFEPATH"}
        proc = subprocess.run(
            [sys.executable, "-m", "dbfix.verify"],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            cwd=request["root"],
            env=env,
            check=False,
        )
        if not out.exists():
            last = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
            raise VerifyError(f"importing {request['models']} ended the process: {last}")
        answer = json.loads(out.read_text())
    if "error" in answer:
        raise VerifyError(answer["error"])
    return answer["result"]


def _child_main() -> None:
    request = json.loads(sys.stdin.read())
    try:
        result = check_models(request["models"], Path(request["root"]), request.get("database_url"), request.get("snapshot", False))
        data = result.to_dict()
        data["snapshot"] = result.snapshot
        answer: dict = {"result": data}
    except VerifyError as exc:
        answer = {"error": str(exc)}
    except BaseException as exc:  # noqa: BLE001 - a dbfix bug or a project that escapes every guard: still one line
        answer = {"error": f"internal error: {error_text(exc)}"}
    Path(request["out"]).write_text(json.dumps(answer, default=str))
    sys.stdout.flush()
    os._exit(0)  # the project's atexit hooks and threads are not ours to wait for


def _git(root: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        message = (proc.stderr.strip().splitlines() or [f"git {args[0]} failed"])[-1]
        raise VerifyError(f"git {args[0]}: {message}")
    return proc.stdout.strip()


def snapshot_at(rev: str, models: str, root: Path) -> dict:
    """The schema snapshot of the models as they were at git revision `rev` (a temporary worktree, a child process)."""
    root = root.resolve()
    top = Path(_git(root, "rev-parse", "--show-toplevel")).resolve()
    try:
        commit = _git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except VerifyError:
        commit = ""
    if not commit:
        raise VerifyError(f"--against {rev!r}: no such commit in {top}")
    relative = root.relative_to(top)
    with tempfile.TemporaryDirectory(prefix="dbfix-against-") as tmp:
        tree = Path(tmp) / "tree"
        _git(top, "worktree", "add", "--detach", "--quiet", str(tree), commit)
        try:
            project = tree / relative
            if not project.is_dir():
                raise VerifyError(f"--against {rev}: {relative} does not exist at that revision")
            return snapshot_models(models, project)
        except VerifyError as exc:
            raise VerifyError(f"models at {rev}: {exc}") from None
        finally:
            with contextlib.suppress(VerifyError):
                _git(top, "worktree", "remove", "--force", str(tree))
            with contextlib.suppress(VerifyError):
                _git(top, "worktree", "prune")


def snapshot_models(models: str, root: Path) -> dict:
    """The schema snapshot of `models` imported from `root`, taken in a child process."""
    result = _child({"models": models, "root": str(Path(root).resolve()), "snapshot": True})
    if result.get("snapshot") is None:
        failed = next((p.error for c in VerifyResult.from_dict(result).checks for p in c.problems), "")
        raise VerifyError(f"the models do not load: {failed}")
    return result["snapshot"]


def verify(
    models: str,
    root: Path,
    database_url: str | None = None,
    against: str | None = None,
    isolated: bool = True,
) -> VerifyResult:
    """Run every check on the models (in a child process unless `isolated=False`), and diff against `against`."""
    root = root.resolve()
    if isolated:
        data = _child({"models": models, "root": str(root), "database_url": database_url, "snapshot": bool(against)})
        result = VerifyResult.from_dict(data)
    else:
        result = check_models(models, root, database_url, snapshot=bool(against))
    if against:
        if result.snapshot is None:
            raise VerifyError(f"the models in the working tree do not load; no diff against {against}")
        result.against = against
        result.diff = diff_snapshots(snapshot_at(against, models, root), result.snapshot)
    return result


# -- output ---------------------------------------------------------------------------------------


def render_text(result: VerifyResult) -> str:
    lines = [f"dbfix verify {result.models} ({len(result.tables)} tables)"]
    for phase in ("offline", "online"):
        checks = [c for c in result.checks if c.phase == phase]
        if not checks:
            continue
        header = phase
        if phase == "online":
            header += f" {result.database} (throw-away schema {result.schema}, rolled back)"
        lines.append(header)
        for check in checks:
            status = "skip" if check.skipped else "ok" if check.passed else "FAIL"
            lines.append(f"  {status:<5}{check.name}" + (f": {check.skipped}" if check.skipped else ""))
            for problem in check.problems:
                lines.append(f"         {problem.message}")
                if problem.error:
                    lines.append(f"           error: {problem.error}")
                if problem.seed:
                    lines.append(f"           seed:  {problem.seed}")
            for note in check.notes:
                lines.append(f"         note: {note}")
    if result.diff is not None:
        lines.append(f"schema diff {result.against} -> working tree")
        lines.extend(f"  {change}" for change in result.diff)
        if not result.diff:
            lines.append("  (no difference)")
    failed = [c.name for c in result.checks if not c.passed]
    lines.append(f"{len(failed)} of {len(result.checks)} checks failed: {', '.join(failed)}" if failed else f"all {len(result.checks)} checks passed")
    return "\n".join(lines)


def render_json(result: VerifyResult) -> str:
    return json.dumps(result.to_dict(), indent=2, default=str)


if __name__ == "__main__":
    _child_main()
