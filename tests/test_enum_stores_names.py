"""DBF002 beyond the golden files: the config-driven `sa_type` style, the migration it prints, shared type names."""

from __future__ import annotations

import shutil
from pathlib import Path

from dbfix.codemod import lookup
from dbfix.config import Config, load_config
from dbfix.engine import fix_source, run
from dbfix.enum_migration import members, rename_type_values
from dbfix.findings import Finding
from dbfix.index import build_index
from dbfix.versions import TargetVersions

FIXTURES = Path(__file__).parent / "fixtures" / "enum_stores_names"
VERSIONS = TargetVersions(python=(3, 12), sqlalchemy=(2, 1), sqlmodel=(0, 0, 50), pydantic=(2, 11))


def findings(files: dict[str, str], tmp_path: Path) -> list[Finding]:
    """DBF002's findings in a small project of `files` (module path -> source)."""
    for name, source in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    index = build_index([(tmp_path / n, s.encode()) for n, s in files.items()], tmp_path)
    found: list[Finding] = []
    for name, source in files.items():
        module = name.removesuffix(".py").replace("/", ".")
        result = fix_source(source, name, (module, False), index, Config(), VERSIONS, lookup("DBF002"), apply=False)
        assert result.error is None, result.error
        found.extend(result.findings)
    return found


def fixture_findings(case: str) -> list[Finding]:
    path = FIXTURES / f"{case}.py"
    source = path.read_text()
    index = build_index([(path, source.encode())], path.parent)
    result = fix_source(source, path.name, (path.stem, False), index, Config(), VERSIONS, lookup("DBF002"), apply=False)
    assert result.error is None, result.error
    return result.findings


def test_sqlmodel_enum_style_sa_type_from_pyproject(tmp_path: Path) -> None:
    work = tmp_path / "project"
    shutil.copytree(FIXTURES / "config_sa_type" / "project", work)
    config = load_config(work).replace(select=("DBF002",), unsafe_fixes=True)
    assert config.sqlmodel_enum_style == "sa_type"
    outcome = run([work], config, apply=True, write=True, jobs=1)
    assert [r.error for r in outcome.results if r.error] == []
    assert (work / "models.py").read_text() == (FIXTURES / "config_sa_type" / "expected" / "models.py").read_text()
    again = run([work], config, apply=True, write=True, jobs=1)
    assert not any(r.changed for r in again.results)


def test_rename_statements_once_per_type() -> None:
    found = fixture_findings("column_enum")
    assert len(found) == 2
    changes = {f.fix.database for f in found if f.fix}
    assert len(changes) == 1, "two columns of one type need the statements once"
    (change,) = changes
    assert change.key == "enum-type:userrole"
    assert change.upgrade_sql == (
        "ALTER TYPE userrole RENAME VALUE 'ADMIN' TO 'admin'",
        "ALTER TYPE userrole RENAME VALUE 'USER' TO 'user'",
    )
    assert change.downgrade_sql == (
        "ALTER TYPE userrole RENAME VALUE 'admin' TO 'ADMIN'",
        "ALTER TYPE userrole RENAME VALUE 'user' TO 'USER'",
    )
    assert change.alembic_upgrade == (
        "op.execute(\"ALTER TYPE userrole RENAME VALUE 'ADMIN' TO 'admin'\")",
        "op.execute(\"ALTER TYPE userrole RENAME VALUE 'USER' TO 'user'\")",
    )
    assert all(f.fix and f.fix.safety.value == "unsafe" and f.fix.impact.value == "data" for f in found)


def test_explicit_name_and_unchanged_members() -> None:
    by_line = {f.span.line: f.fix.database for f in fixture_findings("column_sa_enum_named") if f.fix}
    priority, role = (by_line[k] for k in sorted(by_line))
    assert priority.key == "enum-type:ticket_priority"
    assert priority.upgrade_sql == (  # URGENT is stored as 'URGENT' either way
        "ALTER TYPE ticket_priority RENAME VALUE 'LOW' TO 'low'",
        "ALTER TYPE ticket_priority RENAME VALUE 'HIGH' TO 'high'",
    )
    assert role.key == "enum-type:user_role"


def test_varchar_enums_update_rows_widen_and_rebuild_the_check() -> None:
    role, status = sorted((f for f in fixture_findings("native_enum_false")), key=lambda f: f.span.line)
    assert role.fix.database.upgrade_sql == (
        (
            "UPDATE logins SET role = CASE role WHEN 'ADMIN' THEN 'admin' WHEN 'USER' THEN 'user' END "
            "WHERE role IN ('ADMIN', 'USER')"
        ),
    )
    assert status.fix.database.upgrade_sql == (
        "ALTER TABLE logins DROP CONSTRAINT status",
        "ALTER TABLE logins ALTER COLUMN status TYPE VARCHAR(23)",
        (
            "UPDATE logins SET status = CASE status WHEN 'ACTIVE' THEN 'active' "
            "WHEN 'LOCKED' THEN 'locked_by_administrator' END WHERE status IN ('ACTIVE', 'LOCKED')"
        ),
        "ALTER TABLE logins ADD CONSTRAINT status CHECK (status IN ('active', 'locked_by_administrator'))",
    )
    assert status.fix.database.downgrade_sql[-2:] == (
        "ALTER TABLE logins ALTER COLUMN status TYPE VARCHAR(6)",
        "ALTER TABLE logins ADD CONSTRAINT status CHECK (status IN ('ACTIVE', 'LOCKED'))",
    )


def test_check_constraint_name_follows_the_naming_convention() -> None:
    kind = min(fixture_findings("table_columns"), key=lambda f: f.span.line)
    assert kind.fix.database.upgrade_sql[0] == "ALTER TABLE events DROP CONSTRAINT ck_events_eventkind"


def test_reserved_type_name_is_quoted_and_swapped_labels_go_through_temporary_ones() -> None:
    change = rename_type_values("user", None, [("A", "B"), ("B", "A")])
    assert change.upgrade_sql == (
        'ALTER TYPE "user" RENAME VALUE \'A\' TO \'A__dbfix_tmp\'',
        'ALTER TYPE "user" RENAME VALUE \'B\' TO \'B__dbfix_tmp\'',
        'ALTER TYPE "user" RENAME VALUE \'A__dbfix_tmp\' TO \'B\'',
        'ALTER TYPE "user" RENAME VALUE \'B__dbfix_tmp\' TO \'A\'',
    )
    assert change.alembic_upgrade[0] == "op.execute('ALTER TYPE \"user\" RENAME VALUE \\'A\\' TO \\'A__dbfix_tmp\\'')"


def test_two_enums_sharing_a_type_name_are_reported(tmp_path: Path) -> None:
    model = """
import enum
from sqlalchemy import Column, Enum, Integer
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

class Base(DeclarativeBase):
    pass

class {cls}(enum.Enum):
    {members}

class {model}(Base):
    __tablename__ = "{table}"
    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[{cls}]
"""
    found = findings(
        {
            "billing.py": model.format(cls="Status", members='PAID = "paid"', model="Invoice", table="invoices"),
            "shipping.py": model.format(cls="Status", members='SENT = "sent"', model="Parcel", table="parcels"),
            "legacy.py": 'from sqlalchemy import Enum, MetaData, Table, Column\n'
            't = Table("old", MetaData(), Column("s", Enum("paid", "sent", name="status")))\n',
        },
        tmp_path,
    )
    assert len(found) == 2
    billing = next(f for f in found if f.path == "billing.py")
    assert any("`shipping.Status`" in n and "'sent'" in n for n in billing.notes), billing.notes
    assert any("string-literal Enum at legacy:2" in n for n in billing.notes), billing.notes
    assert all("give one of them its own `name=`" in n for n in billing.notes)


def test_no_note_when_the_same_enum_is_used_twice(tmp_path: Path) -> None:
    assert all(not f.notes for f in fixture_findings("column_enum"))


def test_members_of_str_enum_auto_aliases_and_unknown_values(tmp_path: Path) -> None:
    source = """
import enum

class Color(enum.StrEnum):
    RED = enum.auto()
    CRIMSON = "red"
    BLUE = enum.auto()

class Custom(enum.Enum):
    def _generate_next_value_(name, start, count, last_values):
        return name
    A = enum.auto()

class Computed(enum.Enum):
    A = "x".upper()
"""
    path = tmp_path / "colors.py"
    index = build_index([(path, source.encode())], tmp_path)
    assert members(index, "colors.Color") == [("RED", "red"), ("BLUE", "blue")]  # CRIMSON is an alias
    assert members(index, "colors.Custom") is None
    assert members(index, "colors.Computed") is None


def test_forward_reference_is_reported_without_a_fix(tmp_path: Path) -> None:
    source = """from __future__ import annotations
import enum
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

class Base(DeclarativeBase):
    pass

class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    role: Mapped[Role]

class Role(enum.Enum):
    ADMIN = "admin"
"""
    (finding,) = findings({"accounts.py": source}, tmp_path)
    assert finding.fix is None
