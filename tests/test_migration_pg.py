"""`write_revision`: the emitted Alembic migration, run against a PostgreSQL database created from the unfixed
models and filled with rows, brings it to exactly the schema of the fixed models (the `--against` diff machinery
says: no difference) with every row intact, and its downgrade brings it back."""

from __future__ import annotations

import ast
import io
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from dbfix.codemod import all_codemods
from dbfix.config import load_config
from dbfix.engine import run
from dbfix.findings import DatabaseChange, Finding, Fix, Impact, Safety, Span
from dbfix.migration import MigrationError, write_revision
from dbfix.verify import diff_snapshots, snapshot_database, snapshot_models

pytest.importorskip("alembic")

CASES = Path(__file__).parent / "fixtures" / "verify" / "cases"
SESSION = "America/New_York"  # a plain ALTER ... TYPE timestamptz would shift the rows by 5 hours here


@dataclass(frozen=True)
class Rows:
    codes: tuple[str, ...]
    insert: str
    query: str
    before: list[tuple]
    after: list[tuple] | None = None  # None: the same rows as before


CASES_ROWS = {
    "enum_stores_names": Rows(
        ("DBF002",),
        "INSERT INTO users (email, role) VALUES ('ann@example.com', 'ADMIN'), ('bob@example.com', 'USER')",
        "SELECT email, role::text FROM users ORDER BY id",
        [("ann@example.com", "ADMIN"), ("bob@example.com", "USER")],
        [("ann@example.com", "admin"), ("bob@example.com", "user")],
    ),
    "misbuilt_index": Rows(
        ("DBF005",),
        "INSERT INTO organizations (id, name) VALUES (1, 'acme');"
        "INSERT INTO users (org_id, email) VALUES (1, 'ann@example.com'), (1, 'bob@example.com')",
        "SELECT u.email, o.name FROM users u JOIN organizations o ON o.id = u.org_id ORDER BY u.id",
        [("ann@example.com", "acme"), ("bob@example.com", "acme")],
    ),
    "timestamptz": Rows(
        ("DBF012",),
        "INSERT INTO events (kind, happened_at) VALUES ('signup', '2024-01-15 12:00:00'), ('login', '2024-07-01 08:30:00')",
        "SELECT kind, happened_at::text FROM events ORDER BY id",
        [("signup", "2024-01-15 12:00:00"), ("login", "2024-07-01 08:30:00")],
        [("signup", "2024-01-15 12:00:00+00"), ("login", "2024-07-01 08:30:00+00")],
    ),
    # Fixes that need no migration: the database made from the unfixed models already is the fixed schema.
    "reserved_attribute": Rows(
        ("DBF001",),
        """INSERT INTO agents (name, metadata) VALUES ('bot', '{"tags": ["a"]}')""",
        "SELECT name, metadata::text FROM agents",
        [("bot", '{"tags": ["a"]}')],
    ),
    "circular_fk": Rows(
        ("DBF006", "DBF008"),
        "INSERT INTO users (id, email) VALUES (1, 'ann@example.com');"
        "INSERT INTO organizations (id, name, owner_id) VALUES (10, 'acme', 1);"
        "UPDATE users SET org_id = 10 WHERE id = 1",
        "SELECT u.email, o.name FROM users u JOIN organizations o ON o.owner_id = u.id AND u.org_id = o.id",
        [("ann@example.com", "acme")],
    ),
    "unnamed_constraint": Rows(
        ("DBF006",),
        "INSERT INTO memberships (org_id, user_id, seats) VALUES (1, 2, 3), (1, 3, 1)",
        "SELECT org_id, user_id, seats FROM memberships ORDER BY id",
        [(1, 2, 3), (1, 3, 1)],
    ),
    "aware_default": Rows(
        ("DBF003", "DBF004"),
        "INSERT INTO audit_logs (action, created_at) VALUES ('login', '2024-01-15 12:00:00')",
        "SELECT action, created_at::text FROM audit_logs",
        [("login", "2024-01-15 12:00:00")],
    ),
}

ENV = '''\
from alembic import context

config = context.config
context.configure(connection=config.attributes["connection"], version_table_schema=config.attributes["schema"])
with context.begin_transaction():
    context.run_migrations()
'''

CREATE_ALL = """\
import sys, warnings
from pathlib import Path
import sqlalchemy
from dbfix.verify import load_models
warnings.simplefilter("ignore")
root, url, schema = sys.argv[1:4]
metadata = load_models("app.models", Path(root)).metadata
engine = sqlalchemy.create_engine(url)
with engine.begin() as conn:
    metadata.create_all(conn.execution_options(schema_translate_map={None: schema}))
engine.dispose()
"""


def alembic_project(tmp_path: Path) -> tuple[object, Path]:
    """`alembic init` with an env.py that runs on the test's connection, and a first, empty revision 0001."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(tmp_path / "alembic.ini"), stdout=io.StringIO())
    command.init(config, str(tmp_path / "migrations"))
    config = Config(str(tmp_path / "alembic.ini"), stdout=io.StringIO())
    (tmp_path / "migrations" / "env.py").write_text(ENV)
    command.revision(config, "initial", rev_id="0001")
    return config, tmp_path / "migrations" / "versions"


def alembic(config: object, command_name: str, revision: str, engine: object, schema: str) -> None:
    from alembic import command

    with engine.connect() as conn:  # type: ignore[attr-defined]
        config.attributes["connection"] = conn  # type: ignore[attr-defined]
        config.attributes["schema"] = schema  # type: ignore[attr-defined]
        getattr(command, command_name)(config, revision)
        conn.commit()


def rows(engine: object, query: str) -> list[tuple]:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        conn.exec_driver_sql("SET TIME ZONE 'UTC'")
        return [tuple(r) for r in conn.exec_driver_sql(query)]


def held(engine: object, schema: str) -> dict:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        return snapshot_database(conn, schema)


def apply_fixes(project: Path) -> list[Finding]:
    config = load_config(project).replace(root=project)
    outcome = run([project], config, apply=True, write=True, jobs=1)
    assert [r.error for r in outcome.results if r.error] == []
    return [f for r in outcome.results for f in r.applied]


@pytest.mark.parametrize("name", CASES_ROWS)
def test_emitted_migration_carries_a_filled_database_to_the_fixed_models(name: str, tmp_path: Path, pg_schema) -> None:
    import sqlalchemy

    url, schema = pg_schema
    case = CASES_ROWS[name]
    missing = sorted(set(case.codes) - {c.code for c in all_codemods()})
    if missing:
        pytest.skip(f"codemod {', '.join(missing)} is not registered yet")
    project = tmp_path / "project"
    shutil.copytree(CASES / name / "before", project, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-c", CREATE_ALL, str(project), url, schema], check=True, cwd=project)
    engine = sqlalchemy.create_engine(url, connect_args={"options": f"-c search_path={schema} -c timezone={SESSION}"})
    try:
        with engine.begin() as conn:
            for statement in case.insert.split(";"):
                conn.exec_driver_sql(statement)
        config, versions = alembic_project(tmp_path)
        alembic(config, "stamp", "0001", engine, schema)
        before = snapshot_models("app.models", project)
        assert diff_snapshots(held(engine, schema), before) == [], "the database is what the unfixed models say"

        applied = apply_fixes(project)
        assert {f.code for f in applied} == set(case.codes)
        after = snapshot_models("app.models", project)
        path = write_revision(versions, applied, "dbfix fixes")
        if path is None:
            assert not any(f.fix and f.fix.database for f in applied)
            assert diff_snapshots(held(engine, schema), after) == [], "no migration, so there must be nothing to migrate"
            assert rows(engine, case.query) == case.before
            return

        module = ast.parse(path.read_text())
        assigned = {n.targets[0].id: n.value for n in module.body if isinstance(n, ast.Assign)}
        assigned.update({n.target.id: n.value for n in module.body if isinstance(n, ast.AnnAssign)})
        assert ast.literal_eval(assigned["down_revision"]) == "0001"

        alembic(config, "upgrade", "head", engine, schema)
        assert diff_snapshots(held(engine, schema), after) == []
        assert rows(engine, case.query) == (case.after or case.before)

        alembic(config, "downgrade", "0001", engine, schema)
        assert diff_snapshots(held(engine, schema), before) == []
        assert rows(engine, case.query) == case.before
    finally:
        engine.dispose()


# -- the revision file, without a database ---------------------------------------------------------


def finding(code: str, change: DatabaseChange, line: int = 1) -> Finding:
    fix = Fix(f"fix {code}", Safety.UNSAFE, Impact.SCHEMA, (), database=change)
    return Finding(code, code.lower(), "app/models.py", Span(line, 0, line, 1), "message", fix)


RENAME = DatabaseChange(
    upgrade_sql=("ALTER TYPE userrole RENAME VALUE 'ADMIN' TO 'admin'",),
    downgrade_sql=("ALTER TYPE userrole RENAME VALUE 'admin' TO 'ADMIN'",),
    key="enum-type:userrole",
)
TIMESTAMPTZ = DatabaseChange(
    upgrade_sql=("ALTER TABLE events ALTER COLUMN happened_at TYPE timestamptz USING happened_at AT TIME ZONE 'UTC'",),
    alembic_upgrade=(
        "op.alter_column('events', 'happened_at', type_=sa.DateTime(timezone=True), postgresql_using=\"happened_at AT TIME ZONE 'UTC'\")",
    ),
    alembic_downgrade=(
        "op.alter_column('events', 'happened_at', type_=sa.DateTime(), postgresql_using=\"happened_at AT TIME ZONE 'UTC'\")",
    ),
    key="timestamptz:events.happened_at",
)
INDEX = DatabaseChange(
    alembic_upgrade=("op.drop_index('User.org_id', table_name='users')", "op.create_index('ix_users_org_id_email', 'users', ['org_id', 'email'])"),
    alembic_downgrade=("op.drop_index('ix_users_org_id_email', table_name='users')", "op.create_index('User.org_id', 'users', ['email'])"),
    key="index:users.User.org_id",
)


def revision_of(path: Path) -> dict[str, object]:
    module = ast.parse(path.read_text())
    found = {}
    for node in module.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            found[node.target.id] = ast.literal_eval(node.value)  # type: ignore[arg-type]
    return found


def body(path: Path, function: str) -> list[str]:
    text = path.read_text().split(f"def {function}() -> None:", 1)[1]
    return [line.strip() for line in text.split("# ### end dbfix commands ###", 1)[0].splitlines() if line.strip().startswith("op.")]


def test_empty_history_then_a_second_revision_on_top(tmp_path: Path) -> None:
    versions = tmp_path / "versions"  # a bare folder: no alembic.ini, no script.py.mako
    versions.mkdir()
    first = write_revision(versions, [finding("DBF002", RENAME)], "rename enum labels")
    assert first is not None and first.parent == versions
    assert revision_of(first)["down_revision"] is None
    second = write_revision(versions, [finding("DBF012", TIMESTAMPTZ)], "timestamptz")
    assert second is not None
    assert revision_of(second)["down_revision"] == revision_of(first)["revision"]
    compile(second.read_text(), str(second), "exec")


def test_operations_are_rendered_by_alembic_deduplicated_and_reversed(tmp_path: Path) -> None:
    findings = [finding("DBF002", RENAME, 3), finding("DBF002", RENAME, 9), finding("DBF005", INDEX), finding("DBF012", TIMESTAMPTZ)]
    path = write_revision(tmp_path, findings, "dbfix")
    assert path is not None
    assert body(path, "upgrade") == [
        "op.execute(\"ALTER TYPE userrole RENAME VALUE 'ADMIN' TO 'admin'\")",  # Alembic's ExecuteSQLOp, once
        "op.drop_index('User.org_id', table_name='users')",
        "op.create_index('ix_users_org_id_email', 'users', ['org_id', 'email'], unique=False)",  # Alembic adds unique=
        # Alembic's renderer drops postgresql_using (and with it the UTC reading): dbfix keeps its own line
        "op.alter_column('events', 'happened_at', type_=sa.DateTime(timezone=True), postgresql_using=\"happened_at AT TIME ZONE 'UTC'\")",
    ]
    assert body(path, "downgrade") == [
        "op.alter_column('events', 'happened_at', type_=sa.DateTime(), postgresql_using=\"happened_at AT TIME ZONE 'UTC'\")",
        "op.drop_index('ix_users_org_id_email', table_name='users')",
        "op.create_index('User.org_id', 'users', ['email'], unique=False)",
        "op.execute(\"ALTER TYPE userrole RENAME VALUE 'admin' TO 'ADMIN'\")",
    ]
    assert "# DBF002 dbf002 (app/models.py:3): fix DBF002" in path.read_text()


def test_nothing_to_migrate_writes_nothing(tmp_path: Path) -> None:
    plain = Finding("DBF001", "reserved-attribute", "a.py", Span(1, 0, 1, 1), "m", Fix("rename", Safety.SAFE, Impact.NONE, ()))
    assert write_revision(tmp_path, [plain], "dbfix") is None
    assert list(tmp_path.iterdir()) == []


def test_several_heads_are_a_one_line_error(tmp_path: Path) -> None:
    for rev in ("aaaa", "bbbb"):
        (tmp_path / f"{rev}.py").write_text(f"revision = {rev!r}\ndown_revision = None\n")
    with pytest.raises(MigrationError, match="Multiple heads are present") as raised:
        write_revision(tmp_path, [finding("DBF002", RENAME)], "dbfix")
    assert "\n" not in str(raised.value)


def test_a_template_that_does_not_render_the_upgrades_is_refused(tmp_path: Path) -> None:
    versions = tmp_path / "migrations" / "versions"
    versions.mkdir(parents=True)
    (tmp_path / "migrations" / "script.py.mako").write_text('revision = ${repr(up_revision)}\ndown_revision = ${repr(down_revision)}\n')
    with pytest.raises(MigrationError, match="does not render"):
        write_revision(versions, [finding("DBF002", RENAME)], "dbfix")
    assert list(versions.glob("*.py")) == []


def test_without_alembic_the_error_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "alembic", None)
    with pytest.raises(MigrationError, match=r"pip install 'dbfix\[verify\]'"):
        write_revision(tmp_path, [finding("DBF002", RENAME)], "dbfix")
