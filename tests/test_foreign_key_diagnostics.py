"""DBF008-DBF010 on their fixtures: the findings, and that what they claim is what SQLAlchemy does.

The golden-file harness (test_fixtures.py) proves the diagnostics change nothing; here we pin what they
report, and run the fixture models in a subprocess to show that each reported problem really fails
(`sorted_tables`, `configure_mappers()`) and that the suggested `primaryjoin` really works.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dbfix.codemod import lookup
from dbfix.config import Config
from dbfix.cstedit import apply_edits
from dbfix.engine import fix_source, run
from dbfix.findings import Edit, Finding
from dbfix.index import build_index
from dbfix.versions import TargetVersions

FIXTURES = Path(__file__).parent / "fixtures"
VERSIONS = TargetVersions(python=(3, 12), sqlalchemy=(2, 0), sqlmodel=None, pydantic=(2, 11))

# fixture -> [(code, line, text the message or a note must contain)]
EXPECTED: dict[str, list[tuple[str, int, str]]] = {
    "unknown_foreign_key_target/typo_in_table_name.py": [("DBF009", 17, "did you mean `organizations`?")],
    "unknown_foreign_key_target/typo_in_column_name.py": [("DBF009", 16, "did you mean `organizations.slug`?")],
    "unknown_foreign_key_target/attribute_name_not_column_name.py": [
        ("DBF009", 17, "the attribute `Organization.id` is the column `org_id`; write `organizations.org_id`")
    ],
    "unknown_foreign_key_target/table_on_other_metadata.py": [
        ("DBF009", 21, "on a different MetaData (`table_on_other_metadata.BillingBase`)")
    ],
    "unknown_foreign_key_target/schema_not_written.py": [("DBF009", 17, "but there is `crm.organizations`")],
    "unknown_foreign_key_target/sqlmodel_field_target.py": [("DBF009", 13, "did you mean `team`?")],
    "unknown_foreign_key_target/noop_valid_targets.py": [],
    "unknown_foreign_key_target/noop_not_provable.py": [],
    "unknown_foreign_key_target/noop_reflected_metadata.py": [],
    "unknown_foreign_key_target/single_table_inheritance_typo.py": [("DBF009", 22, "did you mean `pages`?")],
    "relationship_without_foreign_key/mapped_both_sides.py": [
        ("DBF010", 13, 'primaryjoin="Organization.id == foreign(User.org_id)"'),
        ("DBF010", 20, 'primaryjoin="foreign(User.org_id) == Organization.id"'),
    ],
    "relationship_without_foreign_key/classic_string_and_class.py": [
        ("DBF010", 17, "`projects.organization_id` could carry the foreign key"),
        ("DBF010", 24, 'primaryjoin="foreign(User.org_id) == Organization.id"'),
    ],
    "relationship_without_foreign_key/sqlmodel_relationship.py": [
        ("DBF010", 9, 'sa_relationship_kwargs={"primaryjoin": "Team.id == foreign(Hero.team_id)"}'),
        ("DBF010", 15, 'Field(foreign_key="team.id")'),
    ],
    "relationship_without_foreign_key/foreign_keys_without_foreign_key.py": [
        ("DBF010", 20, "`foreign_keys=` alone is not enough")
    ],
    "relationship_without_foreign_key/noop_linked.py": [],
    "relationship_without_foreign_key/noop_single_table_inheritance.py": [],
    "relationship_without_foreign_key/single_table_inheritance_without_foreign_key.py": [
        ("DBF010", 10, 'primaryjoin="Page.id == foreign(PageFile.page_id)"')
    ],
    "relationship_without_foreign_key/noop_not_provable.py": [],
    "circular_foreign_key/noop_self_referencing.py": [],
    "circular_foreign_key/noop_already_fixed.py": [],
    "circular_foreign_key/noop_separate_metadata.py": [],
    "circular_foreign_key/noop_unreadable_convention.py": [
        ("DBF008", 20, "the MetaData's naming convention cannot be read")
    ],
}
CODES = {"unknown_foreign_key_target": "DBF009", "relationship_without_foreign_key": "DBF010", "circular_foreign_key": "DBF008"}


def _findings(path: Path) -> list[Finding]:
    source = path.read_text()
    index = build_index([(path, source.encode())], path.parent)
    codemods = lookup(CODES[path.parent.name])
    result = fix_source(source, path.name, (path.stem, False), index, Config(), VERSIONS, codemods, apply=False)
    assert result.error is None
    return result.findings


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_findings(case: str) -> None:
    findings = _findings(FIXTURES / case)
    assert [(f.code, f.span.line) for f in findings] == [(code, line) for code, line, _ in EXPECTED[case]]
    for finding, (_, _, text) in zip(findings, EXPECTED[case], strict=True):
        assert text in " ".join([finding.message, *finding.notes])
        assert finding.fix is None, "a diagnostic offers no fix"


def test_every_fixture_is_pinned() -> None:
    for folder in ("unknown_foreign_key_target", "relationship_without_foreign_key"):
        cases = {f"{folder}/{p.name}" for p in (FIXTURES / folder).glob("*.py")}
        assert cases <= set(EXPECTED), cases - set(EXPECTED)


def test_diagnostics_across_files_through_the_cli(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "app").mkdir(parents=True)
    (project / "pyproject.toml").write_text("")
    (project / "app" / "__init__.py").write_text("")
    (project / "app" / "db.py").write_text(
        "from sqlalchemy.orm import DeclarativeBase\n\n\nclass Base(DeclarativeBase):\n    pass\n"
    )
    (project / "app" / "orgs.py").write_text(
        "from sqlalchemy.orm import Mapped, mapped_column, relationship\n\nfrom app.db import Base\n\n\n"
        "class Organization(Base):\n    __tablename__ = \"organizations\"\n"
        "    id: Mapped[int] = mapped_column(primary_key=True)\n"
        "    members = relationship(\"Member\")\n"
    )
    (project / "app" / "members.py").write_text(
        "from sqlalchemy import ForeignKey\nfrom sqlalchemy.orm import Mapped, mapped_column\n\nfrom app.db import Base\n\n\n"
        "class Member(Base):\n    __tablename__ = \"members\"\n"
        "    id: Mapped[int] = mapped_column(primary_key=True)\n"
        "    organization_id: Mapped[int]\n"
        "    team_id: Mapped[int] = mapped_column(ForeignKey(\"team.id\"))\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "dbfix", "check", "--no-cache", "--output-format", "json", "--select", "DBF009,DBF010", "."],
        check=False,
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1, out.stderr
    found = {
        (f["path"], r["code"], r["location"]["line"]): r["message"] for f in json.loads(out.stdout)["files"] for r in f["findings"]
    }
    assert set(found) == {("app/orgs.py", "DBF010", 9), ("app/members.py", "DBF009", 11)}
    assert "no model or `Table` in the project defines table `team`" in found[("app/members.py", "DBF009", 11)]
    assert "no foreign key links `organizations` and `members`" in found[("app/orgs.py", "DBF010", 9)]


# -- what SQLAlchemy does with the fixture models (a subprocess per module: SQLModel's MetaData is global) --

PROBE = """
import importlib, json, sys, warnings
import sqlalchemy as sa
from sqlalchemy.orm import configure_mappers
warnings.simplefilter("ignore")
module = importlib.import_module(sys.argv[1])
found = {}
for value in vars(module).values():
    md = value if isinstance(value, sa.MetaData) else getattr(value, "metadata", None) if isinstance(value, type) else None
    if isinstance(md, sa.MetaData):
        found[id(md)] = md
errors = []
for md in found.values():
    try:
        md.sorted_tables
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
try:
    configure_mappers()
    mappers = "ok"
except Exception as exc:
    mappers = f"{type(exc).__name__}: {exc}"
print(json.dumps({"tables": errors, "mappers": mappers}))
"""


def _probe(directory: Path, module: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, module], check=False, cwd=directory, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize(
    "case", sorted(c for c, found in EXPECTED.items() if c.startswith("unknown_foreign_key_target/") and found)
)
def test_unknown_target_fails_where_the_note_says(case: str, tmp_path: Path) -> None:
    path = FIXTURES / case
    shutil.copy(path, tmp_path / path.name)
    (finding,) = _findings(path)
    errors = _probe(tmp_path, path.stem)["tables"]
    raised = finding.notes[0].split("raises `", 1)[1].rstrip("`")
    assert raised in errors


@pytest.mark.parametrize(
    "case", sorted(c for c, found in EXPECTED.items() if c.startswith("relationship_without_foreign_key/") and found)
)
def test_relationship_fails_and_the_primaryjoin_works(case: str, tmp_path: Path) -> None:
    path = FIXTURES / case
    shutil.copy(path, tmp_path / path.name)
    assert "NoForeignKeysError: Could not determine join condition" in _probe(tmp_path, path.stem)["mappers"]
    edits = []
    for finding in _findings(path):
        note = finding.notes[0]
        if "sa_relationship_kwargs=" in note:
            kwarg = note.split("`sa_relationship_kwargs=", 1)[1].split("}`", 1)[0] + "}"
            edits.append(Edit(finding.span, "add_kwarg", ("sa_relationship_kwargs", kwarg)))
        elif 'primaryjoin="' in note:
            join = note.split('primaryjoin="', 1)[1].split('"', 1)[0]
            edits.append(Edit(finding.span, "add_kwarg", ("primaryjoin", f'"{join}"')))
        else:  # no column to join on: the note asks for a schema change; let SQLAlchemy confirm nothing else
            return
    (tmp_path / path.name).write_text(apply_edits(path.read_text(), edits))
    assert _probe(tmp_path, path.stem)["mappers"] == "ok"


def test_linked_relationships_configure(tmp_path: Path) -> None:
    path = FIXTURES / "relationship_without_foreign_key/noop_linked.py"
    shutil.copy(path, tmp_path / path.name)
    assert _probe(tmp_path, path.stem) == {"tables": [], "mappers": "ok"}


def test_single_table_inheritance_configures_and_nothing_is_reported(tmp_path: Path) -> None:
    """A subclass without `__tablename__` puts its columns and FKs on its parent's table (CTFd's `PageFiles`,
    `UserFieldEntries`): SQLAlchemy configures every relationship, and no FK rule may say otherwise."""
    path = FIXTURES / "relationship_without_foreign_key/noop_single_table_inheritance.py"
    shutil.copy(path, tmp_path / path.name)
    assert _probe(tmp_path, path.stem) == {"tables": [], "mappers": "ok"}
    source = path.read_text()
    index = build_index([(path, source.encode())], path.parent)
    codemods = [c for code in ("DBF006", "DBF008", "DBF009", "DBF010") for c in lookup(code)]
    result = fix_source(source, path.name, (path.stem, False), index, Config(), VERSIONS, codemods, apply=False)
    assert result.error is None and result.findings == []


def test_cycle_fix_is_stable_across_runs(tmp_path: Path) -> None:
    """After the fix, a new run (a new index, the FK now in `sa_column_args`) finds nothing to do."""
    project = tmp_path / "p"
    project.mkdir()
    (project / "pyproject.toml").write_text("")
    shutil.copy(FIXTURES / "circular_foreign_key/sqlmodel_field_cycle.py", project / "models.py")
    config = Config(root=project, select=("DBF008", "DBF009", "DBF010"))
    first = run([project], config, apply=True, write=True, jobs=1)
    assert [r.error for r in first.results] == [None] and first.results[0].changed
    second = run([project], config, apply=False, write=False, jobs=1)
    assert second.results[0].findings == []
