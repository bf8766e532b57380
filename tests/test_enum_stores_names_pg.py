"""DBF002 on a real PostgreSQL: the fixed models store values, and the printed migration carries old rows over.

Every fixing fixture of `tests/fixtures/enum_stores_names` is a case: its models are imported from a copy
(before and after the fix), never restated here.
"""

from __future__ import annotations

import importlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from dbfix.config import Config
from dbfix.engine import run
from dbfix.findings import DatabaseChange

FIXTURES = Path(__file__).parent / "fixtures" / "enum_stores_names"

sa = pytest.importorskip("sqlalchemy")
sqlmodel = pytest.importorskip("sqlmodel")
# the before and after versions of a project define the same classes in the same modules
pytestmark = pytest.mark.filterwarnings("ignore:This declarative base already contains a class")


def _cases() -> list[tuple[str, Path, Path]]:
    """(id, before, after): a file or a folder each."""
    cases = [
        (p.stem, p, p.with_name(p.stem + ".expected.py"))
        for p in sorted(FIXTURES.glob("*.py"))
        if not p.name.endswith(".expected.py") and p.with_name(p.stem + ".expected.py").exists()
    ]
    cases += [(p.name, p / "before", p / "after") for p in sorted(FIXTURES.iterdir()) if (p / "before").is_dir()]
    cases.append(("config_sa_type", FIXTURES / "config_sa_type" / "project", FIXTURES / "config_sa_type" / "expected"))
    return cases


CASES = _cases()


def _copy(source: Path, target: Path, tag: str) -> Path:
    """A project folder holding the fixture; single files get a module name of their own (`<case>_<tag>`)."""
    if source.is_dir():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "pyproject.toml"))
    else:
        target.mkdir(parents=True)
        stem = source.name.removesuffix(".py").removesuffix(".expected")
        (target / f"{stem}_{tag}.py").write_text(source.read_text())
    return target


def _import_all(root: Path) -> list[ModuleType]:
    """Import every module under `root` (SQLModel's shared MetaData emptied first: both versions use one table name)."""
    sqlmodel.SQLModel.metadata.clear()
    names = []
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    tops = {n.split(".")[0] for n in names}
    for name in list(sys.modules):
        if name.split(".")[0] in tops:
            del sys.modules[name]
    sys.path.insert(0, str(root))
    try:
        return [importlib.import_module(n) for n in names]
    finally:
        sys.path.remove(str(root))
        importlib.invalidate_caches()


def _tables(modules: list[ModuleType]) -> dict[str, sa.Table]:
    found: dict[str, sa.Table] = {}
    for module in modules:
        for value in vars(module).values():
            table = getattr(value, "__table__", None) if isinstance(value, type) else value
            if isinstance(table, sa.Table) and (not isinstance(value, type) or value.__module__ == module.__name__):
                found[table.name] = table
    return found


def _enum_columns(table: sa.Table) -> list[sa.Column]:
    return [c for c in table.columns if isinstance(c.type, sa.Enum) and c.type.enum_class is not None]


def _create(engine: sa.Engine, tables: dict[str, sa.Table]) -> None:
    # table by table: SQLModel's shared MetaData keeps the enum listeners of every model loaded before
    with engine.begin() as conn:
        for table in sa.sql.ddl.sort_tables(tables.values()):
            table.create(conn, checkfirst=True)


def _labels(conn: sa.Connection, type_name: str) -> list[str]:
    return list(
        conn.scalars(
            sa.text(
                "SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
                "WHERE t.typname = :name AND pg_type_is_visible(t.oid) ORDER BY e.enumsortorder"
            ),
            {"name": type_name},
        )
    )


def _member(enum_class: type) -> object:
    members = list(enum_class)  # type: ignore[call-overload]
    return enum_class.__members__.get("ADMIN") or next(m for m in members if m.name != m.value)  # type: ignore[attr-defined]


def _migration(project: Path) -> list[DatabaseChange]:
    """The database changes DBF002 reports for `project`, once per key, as the report prints them."""
    config = Config(root=project, select=("DBF002",), unsafe_fixes=True)
    outcome = run([project], config, apply=False, write=False, jobs=1)
    changes: dict[str, DatabaseChange] = {}
    for result in sorted(outcome.results, key=lambda r: r.path):
        assert result.error is None, result.error
        for finding in result.findings:
            database = finding.fix.database if finding.fix else None
            assert database is not None, f"{finding.message}: no migration"
            changes.setdefault(database.key, database)
    return list(changes.values())


@pytest.fixture
def engine(pg_schema: tuple[str, str]) -> Iterator[sa.Engine]:
    url, schema = pg_schema
    engine = sa.create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine
    finally:
        engine.dispose()
        sqlmodel.SQLModel.metadata.clear()


@pytest.mark.parametrize(("case", "before", "after"), CASES, ids=[c[0] for c in CASES])
def test_fixed_models_store_values(engine: sa.Engine, tmp_path: Path, case: str, before: Path, after: Path) -> None:
    tables = _tables(_import_all(_copy(after, tmp_path / "after", "after")))
    assert any(_enum_columns(t) for t in tables.values()), "the fixture maps no enum column"
    _create(engine, tables)
    with engine.begin() as conn:
        for table in tables.values():
            columns = _enum_columns(table)
            if not columns:
                continue
            for column in columns:
                enum_class = column.type.enum_class
                if column.type.native_enum:
                    assert _labels(conn, column.type.name) == [m.value for m in enum_class]
            row = {c.name: _member(c.type.enum_class) for c in columns}
            conn.execute(table.insert().values(row))
            for column in columns:
                stored = conn.execute(sa.select(sa.cast(column, sa.Text))).scalar_one()
                assert stored == row[column.name].value
                assert conn.execute(sa.select(column)).scalar_one() is row[column.name]


@pytest.mark.parametrize(("case", "before", "after"), CASES, ids=[c[0] for c in CASES])
def test_printed_migration_keeps_existing_rows(engine: sa.Engine, tmp_path: Path, case: str, before: Path, after: Path) -> None:
    old_project = _copy(before, tmp_path / "before", "before")
    old = _tables(_import_all(old_project))
    _create(engine, old)
    written: dict[str, list[dict[str, str]]] = {}
    with engine.begin() as conn:
        for name, table in old.items():
            columns = _enum_columns(table)
            if not columns:
                continue
            rows = _every_member(columns)
            conn.execute(table.insert(), rows)
            written[name] = [{k: m.name for k, m in row.items()} for row in rows]
            stored = conn.execute(sa.select(*[sa.cast(c, sa.Text) for c in columns])).all()
            assert {v for r in stored for v in r} <= {m.name for c in columns for m in c.type.enum_class}

    changes = _migration(old_project)
    with engine.begin() as conn:
        for change in changes:
            for statement in change.upgrade_sql:
                conn.exec_driver_sql(statement)

    new = _tables(_import_all(_copy(after, tmp_path / "after", "after")))
    with engine.begin() as conn:
        for name, rows in written.items():
            assert _read(conn, new[name]) == rows
            # the migrated schema takes every value written through the fixed models (VARCHAR width, CHECK)
            savepoint = conn.begin_nested()
            conn.execute(new[name].delete())
            conn.execute(new[name].insert(), _every_member(_enum_columns(new[name])))
            savepoint.rollback()

    with engine.begin() as conn:
        for change in changes:
            for statement in change.downgrade_sql:
                conn.exec_driver_sql(statement)
        for name, rows in written.items():
            assert _read(conn, old[name]) == rows


def _read(conn: sa.Connection, table: sa.Table) -> list[dict[str, str]]:
    columns = _enum_columns(table)
    order = list(table.primary_key.columns)
    result = conn.execute(sa.select(*columns).order_by(*order)).mappings().all()
    return [{c.name: row[c.name].name for c in columns} for row in result]


def _every_member(columns: list[sa.Column]) -> list[dict[str, object]]:
    """Rows that together hold every member of every enum column."""
    count = max(len(c.type.enum_class) for c in columns)
    return [{c.name: list(c.type.enum_class)[i % len(c.type.enum_class)] for c in columns} for i in range(count)]


def test_swapped_labels_rename_through_temporary_ones(engine: sa.Engine) -> None:
    from dbfix.enum_migration import rename_type_values

    change = rename_type_values("swap", None, [("A", "B"), ("B", "A")])
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TYPE swap AS ENUM ('A', 'B')")
        conn.exec_driver_sql("CREATE TABLE t (id serial PRIMARY KEY, v swap)")
        conn.exec_driver_sql("INSERT INTO t (v) VALUES ('A'), ('B')")
        for statement in change.upgrade_sql:
            conn.exec_driver_sql(statement)
        assert conn.exec_driver_sql("SELECT v::text FROM t ORDER BY id").scalars().all() == ["B", "A"]
        for statement in change.downgrade_sql:
            conn.exec_driver_sql(statement)
        assert conn.exec_driver_sql("SELECT v::text FROM t ORDER BY id").scalars().all() == ["A", "B"]
        assert _labels(conn, "swap") == ["A", "B"]
