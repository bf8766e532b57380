"""DBF008 against the real PostgreSQL: what the unfixed cycle does, and that the fix leaves no drift.

Each fixture's models are imported from a temporary copy of its `before` and `after` files, in a
subprocess per variant (SQLModel's MetaData is process-wide), with `search_path` set to a throw-away schema.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "circular_foreign_key"
CYCLE = (
    "CircularDependencyError: Can't sort tables for DROP; an unresolvable foreign key dependency exists between "
    "tables: {tables}.  Please ensure that the ForeignKey and ForeignKeyConstraint objects involved in the cycle "
    "have names so that they can be dropped using DROP CONSTRAINT."
)
# (case, what `drop_all` of the unfixed models says: FACTS claim 4; None where it works already)
CASES = [
    ("two_table_cycle_across_files", CYCLE.format(tables="organizations, users")),
    ("three_table_cycle", CYCLE.format(tables="accounts, members, projects")),
    ("two_cycles_through_one_table", CYCLE.format(tables="organizations, projects, users")),
    ("column_cycle", CYCLE.format(tables="organizations, users")),
    ("sqlmodel_field_cycle", CYCLE.format(tables="hero, team")),
    ("single_table_inheritance_cycle", CYCLE.format(tables="crews, sailors")),  # the subclass's FK is on `sailors`
    ("naming_convention", None),  # the convention names the FKs: drop_all works, Alembic still needs use_alter
    ("unnamed_use_alter", "CompileError: Can't emit DROP CONSTRAINT for constraint ForeignKeyConstraint("),
]

SCRIPT = r"""
import importlib, json, sys, warnings
from pathlib import Path

import sqlalchemy as sa

url, schema = sys.argv[1], sys.argv[2]
sys.path.insert(0, ".")
modules = [importlib.import_module(".".join(p.with_suffix("").parts).removesuffix(".__init__")) for p in sorted(Path(".").rglob("*.py"))]
metadatas = {}
for module in modules:
    for value in vars(module).values():
        md = value if isinstance(value, sa.MetaData) else getattr(value, "metadata", None) if isinstance(value, type) else None
        if isinstance(md, sa.MetaData) and md.tables:
            metadatas[id(md)] = md
(metadata,) = metadatas.values()
engine = sa.create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
out = {}
caught = []


def filler(column):
    if isinstance(column.type, sa.String):
        return "x"
    return 1


def insert_cycle(connection):
    # one row per table, id 1, every FK pointing at the other rows: NOT NULL FKs in dependency order,
    # nullable ones set afterwards, so that the rows really reference each other in a cycle
    tables = list(metadata.tables.values())
    done, order = set(), []
    while len(order) < len(tables):
        for table in tables:
            needs = {fk.column.table.name for fk in table.foreign_keys if not fk.parent.nullable} - {table.name}
            if table.name not in done and needs <= done:
                done.add(table.name)
                order.append(table)
                break
        else:
            raise RuntimeError("a cycle of NOT NULL foreign keys")
    for table in order:
        row = {}
        for column in table.columns:
            if column.primary_key:
                row[column.name] = 1
            elif column.foreign_keys:
                row[column.name] = None if column.nullable else 1
            elif not column.nullable:
                row[column.name] = filler(column)
        connection.execute(table.insert().values(**row))
    for table in order:
        later = {c.name: 1 for c in table.columns if c.foreign_keys and c.nullable}
        if later:
            connection.execute(table.update().values(**later))


with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    metadata.create_all(engine)
    with engine.begin() as connection:
        out["foreign_keys"] = sorted(
            [name, table, sorted(columns), on_delete]
            for name, table, columns, on_delete in connection.exec_driver_sql(
                "SELECT c.conname, t.relname, array_agg(a.attname::text), c.confdeltype::text FROM pg_constraint c "
                "JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
                "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY (c.conkey) "
                "WHERE c.contype = 'f' AND n.nspname = %(schema)s GROUP BY c.conname, t.relname, c.confdeltype",
                {"schema": schema},
            )
        )
        insert_cycle(connection)
    out["use_alter"] = sorted(
        [c.name, c.table.name] for t in metadata.tables.values() for c in t.foreign_key_constraints if c.use_alter
    )
    try:
        metadata.drop_all(engine)
        out["drop_all"] = "ok"
    except Exception as exc:
        out["drop_all"] = f"{type(exc).__name__}: {exc}"
out["warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught]
print(json.dumps(out))
"""


def _variant(case: str, side: str, tmp_path: Path) -> Path:
    target = tmp_path / side
    tree = FIXTURES / case / side
    if tree.is_dir():
        shutil.copytree(tree, target)
    else:
        target.mkdir()
        name = f"{case}.py" if side == "before" else f"{case}.expected.py"
        shutil.copy(FIXTURES / name, target / "models.py")
    return target


def _run(directory: Path, url: str, schema: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, url, schema], check=False, cwd=directory, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize(("case", "unfixed_drop"), CASES, ids=[c for c, _ in CASES])
def test_fixed_cycle_creates_and_drops_without_drift(
    case: str, unfixed_drop: str | None, pg_schema: tuple[str, str], tmp_path: Path
) -> None:
    url, schema = pg_schema
    before = _run(_variant(case, "before", tmp_path), url, schema)
    if unfixed_drop is None:
        assert before["drop_all"] == "ok"
    else:
        assert before["drop_all"].startswith(unfixed_drop)
        _reset(url, schema)  # the tables are still there
    after = _run(_variant(case, "after", tmp_path), url, schema)
    assert after["drop_all"] == "ok"
    assert after["warnings"] == []
    # zero drift: the fixed models name every FK exactly as PostgreSQL named the unfixed ones (and keep ON DELETE)
    assert after["foreign_keys"] == before["foreign_keys"]
    assert after["use_alter"], "the fix marks at least one FK use_alter"
    assert {name for name, _ in after["use_alter"]} <= {fk[0] for fk in before["foreign_keys"]}


def _reset(url: str, schema: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE; CREATE SCHEMA "{schema}"')
    engine.dispose()
