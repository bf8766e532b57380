"""Constraint names from Alembic revisions, and which name a fix may write for the project's databases."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dbfix import dbnames
from dbfix.dbnames import claim, migration_names
from dbfix.index import build_index
from dbfix.schema import SchemaView

MODELS = """
from sqlalchemy import CheckConstraint, Column, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import declarative_base

Base = declarative_base()


class Team(Base):
    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("slug"), CheckConstraint("size  >  0"))
    id = Column(Integer, primary_key=True)
    slug = Column(String(40))
    size = Column(Integer)
    captain_id = Column(Integer, ForeignKey("users.id"))


class User(Base):
    __tablename__ = "users"
    id = Column(Integer, primary_key=True)
    team_id = Column(Integer, ForeignKey("teams.id"))
"""


def project(root: Path, revisions: dict[str, str], requirements: str | None = None) -> tuple:
    (root / "app").mkdir(parents=True)
    (root / "app" / "__init__.py").write_text("")
    (root / "app" / "models.py").write_text(MODELS)
    versions = root / "migrations" / "versions"
    versions.mkdir(parents=True)
    (root / "migrations" / "env.py").write_text("")
    for name, body in revisions.items():
        (versions / name).write_text(textwrap.dedent(body))
    if requirements is not None:
        (root / "requirements.txt").write_text(requirements)
    files = [(p, p.read_bytes()) for p in sorted(root.rglob("*.py")) if "versions" not in p.parts]
    index = build_index(files, root)
    return index, SchemaView(index)


def revision(rev: str, down: str | None, upgrade: str, downgrade: str = "pass") -> str:
    body = textwrap.indent(textwrap.dedent(upgrade).strip(), "    ")
    down_body = textwrap.indent(textwrap.dedent(downgrade).strip(), "    ")
    return (
        f'"""rev {rev}"""\nimport sqlalchemy as sa\nfrom alembic import op\n\nrevision = {rev!r}\ndown_revision = {down!r}\n\n\n'
        f"def upgrade():\n{body}\n\n\ndef downgrade():\n{down_body}\n"
    )


def names(index, database: str = "postgresql") -> dict[tuple, str]:
    return {key: named.name for key, named in migration_names(index).by_database[database].items()}


def test_operations_tables_and_batch_mode(tmp_path):
    index, _ = project(tmp_path, {
        "0001_init.py": revision("0001", None, """
            op.create_table(
                "teams",
                sa.Column("id", sa.Integer(), nullable=False),
                sa.Column("captain_id", sa.Integer(), sa.ForeignKey("users.id", name="teams_captain_fk")),
                sa.UniqueConstraint("slug", name=op.f("uq_teams_slug")),
                sa.CheckConstraint("size > 0", name="teams_size_positive"),
                sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name="teams_owner_fk"),
                sa.UniqueConstraint("a", "b"),
            )
        """),
        "0002_more.py": revision("0002", "0001", """
            op.create_unique_constraint("uq_users_email", "users", ["email"], schema="crm")
            op.create_check_constraint(constraint_name="users_age", table_name="users", condition="age >= 0")
            with op.batch_alter_table("users") as batch_op:
                batch_op.create_foreign_key("users_team_fk", "teams", ["team_id"], ["id"])
                batch_op.create_unique_constraint("uq_users_handle", ["handle"])
        """, downgrade="""
            op.create_foreign_key("downgrade_only", "users", "teams", ["team_id"], ["id"])
        """),
    })
    assert names(index) == {
        (None, "teams", "foreign_key", ("captain_id",)): "teams_captain_fk",
        (None, "teams", "unique", ("slug",)): "uq_teams_slug",
        (None, "teams", "check", ("size > 0",)): "teams_size_positive",
        (None, "teams", "foreign_key", ("owner_id",)): "teams_owner_fk",
        ("crm", "users", "unique", ("email",)): "uq_users_email",
        (None, "users", "check", ("age >= 0",)): "users_age",
        (None, "users", "foreign_key", ("team_id",)): "users_team_fk",
        (None, "users", "unique", ("handle",)): "uq_users_handle",
    }


def test_revision_order_drops_and_renames(tmp_path):
    # file names sort against the revision order: the graph decides
    index, _ = project(tmp_path, {
        "a_rename.py": revision("c3", "b2", """
            op.execute('ALTER TABLE teams RENAME CONSTRAINT "team_slug" TO teams_slug_uq')
        """),
        "b_create.py": revision("a1", None, """
            op.create_unique_constraint("team_slug", "teams", ["slug"])
            op.create_foreign_key("team_captain", "teams", "users", ["captain_id"], ["id"])
        """),
        "c_drop.py": revision("b2", "a1", """
            op.drop_constraint("team_captain", "teams", type_="foreignkey")
        """),
    })
    assert [s.revision for s in migration_names(index).scripts] == ["a1", "b2", "c3"]
    assert names(index) == {(None, "teams", "unique", ("slug",)): "teams_slug_uq"}


@pytest.mark.parametrize(
    ("test", "expected"),
    [
        ('url.startswith("sqlite") is False', {"postgresql", "mysql"}),
        ('not url.startswith("sqlite")', {"postgresql", "mysql"}),
        ('url.startswith("mysql")', {"mysql"}),
        ('url.startswith(("postgres", "mysql+pymysql"))', {"postgresql", "mysql"}),
        ('bind.dialect.name == "postgresql"', {"postgresql"}),
        ('bind.dialect.name != "sqlite"', {"postgresql", "mysql"}),
        ('bind.dialect.name in ("mysql", "mariadb")', {"mysql"}),
        ('"sqlite" in url', {"sqlite"}),
        ('url.startswith("mysql") or url.startswith("sqlite")', {"mysql", "sqlite"}),
        ('has_column and url.startswith("postgres")', {"postgresql"}),
    ],
)
def test_operations_under_a_database_test(tmp_path, test, expected):
    index, _ = project(tmp_path, {"0001.py": revision("0001", None, f"""
        url = str(op.get_bind().engine.url)
        if {test}:
            op.create_foreign_key("team_captain_id", "teams", "users", ["captain_id"], ["id"])
        else:
            op.create_foreign_key("teams_ibfk_1", "teams", "users", ["captain_id"], ["id"])
    """)})
    found = {db for db in ("postgresql", "mysql", "sqlite") if names(index, db).get((None, "teams", "foreign_key", ("captain_id",))) == "team_captain_id"}
    assert found == expected
    otherwise = {db for db in ("postgresql", "mysql", "sqlite") if names(index, db).get((None, "teams", "foreign_key", ("captain_id",))) == "teams_ibfk_1"}
    assert otherwise == {"postgresql", "mysql", "sqlite"} - expected


@pytest.mark.parametrize("test", ['name.startswith("tmp")', "feature_enabled"])
def test_operations_under_another_test_are_not_certain(tmp_path, test):
    index, view = project(tmp_path, {"0001.py": revision("0001", None, f"""
        op.create_unique_constraint("teams_slug_uq", "teams", ["slug"])
        op.create_foreign_key("team_captain_id", "teams", "users", ["captain_id"], ["id"])
        if {test}:
            op.drop_constraint("teams_slug_uq", "teams")
            op.create_foreign_key("teams_captain_other", "teams", "users", ["captain_id"], ["id"])
    """)})
    found = migration_names(index).by_database["postgresql"]
    assert {k[2]: (n.name, n.certain) for k, n in found.items()} == {
        "unique": ("teams_slug_uq", False),
        "foreign_key": ("teams_captain_other", False),
    }
    teams = view.tables_named("teams")[0]
    result = claim(index, (), teams, "foreign_key", ["captain_id"], "teams_captain_id_fkey")
    assert result.name is None and "under a condition dbfix cannot evaluate" in result.note  # type: ignore[operator]


def test_loops_and_exception_handlers_are_not_certain(tmp_path):
    index, _ = project(tmp_path, {"0001.py": revision("0001", None, """
        for _ in range(1):
            op.create_unique_constraint("teams_slug_uq", "teams", ["slug"])
        try:
            op.create_foreign_key("team_captain_id", "teams", "users", ["captain_id"], ["id"])
        except Exception:
            op.create_foreign_key("team_captain_fallback", "users", "teams", ["team_id"], ["id"])
    """)})
    found = migration_names(index).by_database["postgresql"]
    assert {k[1:3]: (n.name, n.certain) for k, n in found.items()} == {
        ("teams", "unique"): ("teams_slug_uq", False),
        ("teams", "foreign_key"): ("team_captain_id", True),
        ("users", "foreign_key"): ("team_captain_fallback", False),
    }


def test_scripts_are_read_again_when_they_change(tmp_path):
    index, _ = project(tmp_path, {"0001.py": revision("0001", None, 'op.create_unique_constraint("one", "teams", ["slug"])')})
    assert names(index) == {(None, "teams", "unique", ("slug",)): "one"}
    script = tmp_path / "migrations" / "versions" / "0001.py"
    script.write_text(revision("0001", None, 'op.create_unique_constraint("renamed_in_place", "teams", ["slug"])'))
    dbnames._LAST.clear()
    assert names(index) == {(None, "teams", "unique", ("slug",)): "renamed_in_place"}


# -- claim ------------------------------------------------------------------------------------------

CAPTAIN = revision("0001", None, """
    if op.get_bind().dialect.name == "mysql":
        op.create_foreign_key("teams_captain_mysql", "teams", "users", ["captain_id"], ["id"])
    else:
        op.create_foreign_key("team_captain_id", "teams", "users", ["captain_id"], ["id"])
""")


def test_claim_unknown_databases_are_postgresql(tmp_path):
    index, view = project(tmp_path, {"0001.py": CAPTAIN})
    teams = view.tables_named("teams")[0]
    found = claim(index, (), teams, "foreign_key", ["captain_id"], "teams_captain_id_fkey")
    assert (found.name, found.unsafe, found.migration.revision) == ("team_captain_id", False, "0001")  # type: ignore[union-attr]
    assert "`create_all()`" in (found.note or "")
    plain = claim(index, (), teams, "unique", ["slug"], "teams_slug_key")
    assert (plain.name, plain.unsafe, plain.migration, plain.note) == ("teams_slug_key", False, None, None)
    check = claim(index, (), teams, "check", None, "teams_size_check", sqltext="size  >  0")
    assert check.name == "teams_size_check"


def test_claim_mysql_only(tmp_path):
    index, view = project(tmp_path, {"0001.py": CAPTAIN})
    teams = view.tables_named("teams")[0]
    named = claim(index, ("mysql",), teams, "foreign_key", ["captain_id"], "teams_captain_id_fkey")
    assert (named.name, named.unsafe) == ("teams_captain_mysql", False)
    unnamed = claim(index, ("mysql",), teams, "unique", ["slug"], "teams_slug_key")
    assert unnamed.name is None
    assert "MySQL" in unnamed.note and "SHOW CREATE TABLE teams" in unnamed.note  # type: ignore[operator]


def test_claim_sqlite_only(tmp_path):
    index, view = project(tmp_path, {})
    teams = view.tables_named("teams")[0]
    found = claim(index, ("sqlite",), teams, "unique", ["slug"], "teams_slug_key")
    assert found.name is None and "keeps an unnamed constraint without a name" in found.note  # type: ignore[operator]


def test_claim_postgresql_with_other_databases(tmp_path):
    index, view = project(tmp_path, {"0001.py": CAPTAIN})
    teams = view.tables_named("teams")[0]
    # SQLite has no name for an unnamed constraint: PostgreSQL's fits both
    assert claim(index, ("postgresql", "sqlite"), teams, "unique", ["slug"], "teams_slug_key").unsafe is False
    # MySQL chose its own: PostgreSQL's name is right for PostgreSQL databases only
    mixed = claim(index, ("postgresql", "mysql"), teams, "unique", ["slug"], "teams_slug_key")
    assert (mixed.name, mixed.unsafe) == ("teams_slug_key", True)
    assert "SHOW CREATE TABLE teams" in mixed.note  # type: ignore[operator]
    revised = claim(index, ("postgresql", "mysql"), teams, "foreign_key", ["captain_id"], "teams_captain_id_fkey")
    assert (revised.name, revised.unsafe) == ("team_captain_id", True)
    assert "`teams_captain_mysql` (revision `0001`)" in revised.note  # type: ignore[operator]


# -- the rules on projects that do not run on PostgreSQL ----------------------------------------------

FIXTURES = Path(__file__).parent / "fixtures"


def _check(case: Path, code: str, tmp_path: Path, *, drivers: bool = True) -> list[tuple[int, str, bool]]:
    import shutil

    from dbfix.config import Config
    from dbfix.engine import run

    work = tmp_path / "project"
    shutil.copytree(case / "before", work)
    (work / "pyproject.toml").touch()
    if not drivers:
        (work / "requirements.txt").unlink()
    outcome = run([work], Config(root=work, select=(code,)), apply=False, write=False, jobs=1)
    return sorted((f.span.line, f.message, f.fix is not None) for r in outcome.results for f in r.findings)


def test_mysql_index_names_are_per_table(tmp_path):
    case = FIXTURES / "index_name" / "mysql_names_are_per_table"
    assert sorted((line, fixed) for line, _, fixed in _check(case, "DBF005", tmp_path)) == [(10, True)]
    # the same models without the MySQL driver: PostgreSQL refuses the second `ix_created`
    found = _check(case, "DBF005", tmp_path / "pg", drivers=False)
    assert sorted((line, fixed) for line, _, fixed in found) == [(10, False), (10, True), (18, False)]


def test_mysql_project_gets_no_postgresql_names(tmp_path):
    found = _check(FIXTURES / "unnamed_constraint" / "mysql_project", "DBF006", tmp_path)
    assert sorted((line, fixed) for line, _, fixed in found) == [(10, False), (10, True)]
    cycles = _check(FIXTURES / "circular_foreign_key" / "mysql_project", "DBF008", tmp_path / "fk")
    assert sorted((line, fixed) for line, _, fixed in cycles) == [(10, True), (23, False)]
