"""`dbfix verify` on the seed pitfalls: each unfixed model package fails with the notes' error text, offline and
on the real PostgreSQL, and its fixed version passes; `--against` shows the schema diff of an uncommitted fix."""

from __future__ import annotations

import filecmp
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from dbfix.cli_verify import verify
from dbfix.codemod import all_codemods
from dbfix.config import load_config
from dbfix.engine import run

CASES = Path(__file__).parent / "fixtures" / "verify" / "cases"


@dataclass(frozen=True)
class Pitfall:
    codes: tuple[str, ...]  # the codemods that turn before/ into after/
    offline: tuple[str, ...]  # the checks that fail on before/ without a database
    online: tuple[str, ...]  # ... and the ones that fail on PostgreSQL
    texts: tuple[str, ...]  # error texts (from the seeds or FACTS.md) the report must contain
    diff: tuple[str, ...]  # `--against` from before/ to after/: what the fix does to the database


PITFALLS = {
    "reserved_attribute": Pitfall(
        ("DBF001",),
        ("reserved-attributes",),
        (),
        (
            "Attribute name 'metadata' is reserved when using the Declarative API",
            "Attribute name 'metadata' should be left reserved",
        ),
        (),
    ),
    "enum_stores_names": Pitfall(
        ("DBF002",),
        ("enum-labels",),
        ("enum-raw-sql",),
        ('invalid input value for enum userrole: "admin"', 'invalid input value for enum tooltype: "website"'),
        ("~ enum userrole: labels ADMIN, USER -> admin, user",),
    ),
    "aware_default": Pitfall(
        ("DBF003", "DBF004"),
        ("datetime-defaults",),
        ("datetime-values",),
        ("can't subtract offset-naive and offset-aware datetimes",),
        (),
    ),
    "misbuilt_index": Pitfall(
        ("DBF005",),
        ("misbuilt-indexes",),
        (),
        ('index "User.org_id" on users covers only (email)', "Auto-generated names can clash"),
        ("- index User.org_id on users: (email)", "+ index ix_users_org_id_email on users: (org_id, email)"),
    ),
    "index_name_clash": Pitfall(
        ("DBF005",),
        ("duplicate-names",),
        ("create-all",),
        ('relation "ix_members_org_id" already exists', "Auto-generated names can clash"),
        ("- index ix_members_org_id (duplicate) on members: (org_id, role)", "+ index ix_members_org_id_role on members: (org_id, role)"),
    ),
    "circular_fk": Pitfall(
        ("DBF006", "DBF008"),
        ("foreign-key-cycles",),
        ("drop-all",),
        ("Can't sort tables for DROP; an unresolvable foreign key dependency exists between tables: organizations, users",),
        (),
    ),
    "unnamed_constraint": Pitfall(
        ("DBF006",),
        ("unnamed-constraints",),
        (),
        ("Can't emit DROP CONSTRAINT for constraint UniqueConstraint(", "it has no name", "memberships_org_id_user_id_key"),
        (),
    ),
}
# A fix with a schema change but no pitfall for `verify` to catch: only for --against and the migration tests.
TIMESTAMPTZ_DIFF = (
    "~ column events.happened_at: type \"TIMESTAMP WITHOUT TIME ZONE\" -> \"TIMESTAMP WITH TIME ZONE\", timezone false -> true",
)


def copy_case(name: str, side: str, tmp_path: Path) -> Path:
    target = tmp_path / f"{name}-{side}"
    shutil.copytree(CASES / name / side, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def run_verify(root: Path, *args: str) -> tuple[int, dict | str]:
    result = CliRunner().invoke(verify, ["--models", "app.models", "--root", str(root), *args])
    if "json" in args and result.exit_code in (0, 1):
        return result.exit_code, json.loads(result.output)
    return result.exit_code, result.output


def failed(report: dict) -> set[str]:
    return {c["name"] for c in report["checks"] if not c["passed"]}


def texts(report: dict) -> str:
    return "\n".join(f"{p['message']}\n{p['error']}\n{p['seed']}" for c in report["checks"] for p in c["problems"])


# -- offline --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PITFALLS)
def test_offline_fails_before_with_the_seed_error(name: str, tmp_path: Path) -> None:
    pitfall = PITFALLS[name]
    code, report = run_verify(copy_case(name, "before", tmp_path), "--output-format", "json")
    assert code == 1, report
    assert failed(report) == set(pitfall.offline)
    for text in pitfall.texts:
        assert text in texts(report), text


@pytest.mark.parametrize("name", [*PITFALLS, "timestamptz"])
def test_offline_passes_after(name: str, tmp_path: Path) -> None:
    code, report = run_verify(copy_case(name, "after", tmp_path), "--output-format", "json")
    assert code == 0, texts(report)
    assert report["ok"] and not failed(report)


def test_text_report_names_the_check_the_error_and_the_seed(tmp_path: Path) -> None:
    code, output = run_verify(copy_case("circular_fk", "before", tmp_path))
    assert code == 1
    assert "  FAIL foreign-key-cycles" in output
    assert "error: sqlalchemy.exc.CircularDependencyError: Can't sort tables for DROP" in output
    assert "seed:  seeds/000 #2" in output
    assert output.rstrip().endswith("1 of 11 checks failed: foreign-key-cycles")


# -- online ---------------------------------------------------------------------------------------


def _schemas(url: str) -> set[str]:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    with engine.connect() as conn:
        names = {r[0] for r in conn.exec_driver_sql("SELECT nspname FROM pg_namespace")}
    engine.dispose()
    return names


@pytest.mark.parametrize("name", PITFALLS)
def test_online_fails_before_and_passes_after(name: str, tmp_path: Path, pg_url: str) -> None:
    pitfall = PITFALLS[name]
    code, report = run_verify(copy_case(name, "before", tmp_path), "--database-url", pg_url, "--output-format", "json")
    assert code == 1, report
    assert failed(report) == set(pitfall.offline) | set(pitfall.online)
    assert report["schema"].startswith("dbfix_verify_")
    assert report["schema"] not in _schemas(pg_url), "the throw-away schema must be gone"
    code, report = run_verify(copy_case(name, "after", tmp_path), "--database-url", pg_url, "--output-format", "json")
    assert code == 0, texts(report)
    assert {c["name"] for c in report["checks"] if c["phase"] == "online"} >= {"create-all", "insert", "drop-all"}


def test_online_enum_names_fail_raw_sql_with_the_seed_error(tmp_path: Path, pg_url: str) -> None:
    _, report = run_verify(copy_case("enum_stores_names", "before", tmp_path), "--database-url", pg_url, "--output-format", "json")
    (problem,) = next(c for c in report["checks"] if c["name"] == "enum-raw-sql")["problems"]
    assert "(psycopg2.errors.InvalidTextRepresentation) invalid input value for enum userrole: \"user\"" in problem["error"]
    assert problem["seed"].endswith('invalid input value for enum tooltype: "website"')


def test_online_aware_default_through_asyncpg_fails_the_insert(tmp_path: Path, pg_url: str) -> None:
    pytest.importorskip("asyncpg")
    url = pg_url.replace("+psycopg2", "+asyncpg")
    code, report = run_verify(copy_case("aware_default", "before", tmp_path), "--database-url", url, "--output-format", "json")
    assert code == 1
    (problem,) = next(c for c in report["checks"] if c["name"] == "insert")["problems"]
    assert "can't subtract offset-naive and offset-aware datetimes" in problem["error"]
    assert problem["seed"].endswith("asyncpg.exceptions.DataError: can't subtract offset-naive and offset-aware datetimes")
    code, report = run_verify(copy_case("aware_default", "after", tmp_path), "--database-url", url, "--output-format", "json")
    assert code == 0, texts(report)


def test_online_psycopg_shift_is_caught_through_the_session_time_zone(tmp_path: Path, pg_url: str) -> None:
    _, report = run_verify(copy_case("aware_default", "before", tmp_path), "--database-url", pg_url, "--output-format", "json")
    problems = next(c for c in report["checks"] if c["name"] == "datetime-values")["problems"]
    assert sorted(p["message"].split(":")[0] for p in problems) == ["audit_logs.created_at", "audit_logs.seen_at"]


def test_online_reads_back_truncated_column_names(tmp_path: Path, pg_url: str) -> None:
    long = "c_" + "x" * 68
    package = tmp_path / "long" / "app"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(
        "from sqlalchemy import Column, Integer, MetaData, String, Table\n\n"
        f"metadata = MetaData()\nthings = Table('things', metadata, Column('id', Integer, primary_key=True), Column('{long}', String(5)))\n"
    )
    code, report = run_verify(package.parent, "--database-url", pg_url, "--output-format", "json")
    assert code == 1
    assert failed(report) == {"identifier-length", "schema-read-back"}
    assert f'will be truncated to "{long[:63]}"' in texts(report)


# -- --against ------------------------------------------------------------------------------------


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def committed_before_with_after_in_worktree(name: str, tmp_path: Path) -> Path:
    repo = copy_case(name, "before", tmp_path)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=dbfix", "-c", "user.email=dbfix@example.com", "commit", "-qm", "before")
    shutil.rmtree(repo / "app")
    shutil.copytree(CASES / name / "after" / "app", repo / "app")
    return repo


@pytest.mark.parametrize("name", [*PITFALLS, "timestamptz"])
def test_against_head_shows_the_schema_diff_of_an_uncommitted_fix(name: str, tmp_path: Path) -> None:
    expected = TIMESTAMPTZ_DIFF if name == "timestamptz" else PITFALLS[name].diff
    repo = committed_before_with_after_in_worktree(name, tmp_path)
    code, report = run_verify(repo, "--against", "--output-format", "json")
    assert code == 0, texts(report)
    assert report["against"] == "HEAD"
    shown = [f"{c['op']} {c['kind']} {c['name']}: {c['detail']}" for c in report["diff"]]
    assert shown == list(expected)
    assert git(repo, "worktree", "list").count("\n") == 1, "the temporary worktree must be removed"


def test_against_text_output_and_no_difference(tmp_path: Path) -> None:
    repo = committed_before_with_after_in_worktree("enum_stores_names", tmp_path)
    code, output = run_verify(repo, "--against", "HEAD")
    assert "schema diff HEAD -> working tree\n  ~ enum userrole: labels ADMIN, USER -> admin, user" in output
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=dbfix", "-c", "user.email=dbfix@example.com", "commit", "-qm", "after")
    code, output = run_verify(repo, "--against", "HEAD")
    assert code == 0
    assert "schema diff HEAD -> working tree\n  (no difference)" in output


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--models", "nowhere.models"], "cannot import 'nowhere.models'"),
        (["--models", "app.models:Missing"], "app.models has no attribute 'Missing'"),
        (["--models", "app.models:Agent.name"], "is not a MetaData"),
        (["--models", "app..models"], "expected a module path"),
        (["--models", "app.models", "--database-url", "sqlite://"], "must point to PostgreSQL"),
        (["--models", "app.models", "--database-url", "postgresql+psycopg2://postgres@127.0.0.1:1/x"], "cannot run the online checks"),
        (["--models", "app.models", "--against", "HEAD"], "git rev-parse: fatal: not a git repository"),
    ],
)
def test_errors_are_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    root = copy_case("reserved_attribute", "after", tmp_path)
    result = CliRunner().invoke(verify, [*args, "--root", str(root)], env={"GIT_CEILING_DIRECTORIES": str(tmp_path)})
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert result.output.startswith("dbfix: error: ") and result.output.count("\n") == 1
    assert "Traceback" not in result.output


def test_help_says_it_runs_project_code() -> None:
    result = CliRunner().invoke(verify, ["--help"])
    assert "The only dbfix command that imports and runs project code" in result.output


# -- loading the models ---------------------------------------------------------------------------


def write_package(tmp_path: Path, source: str) -> Path:
    package = tmp_path / "proj" / "app"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(source)
    return package.parent


@pytest.mark.parametrize(
    ("source", "spec", "label"),
    [
        (
            ("from sqlalchemy import Column, Integer\nfrom sqlalchemy.orm import declarative_base\n"
             "Model = declarative_base()\nclass T(Model):\n    __tablename__ = 't'\n    id = Column(Integer, primary_key=True)\n"),
            "app.models",
            "app.models:Model",
        ),
        (
            ("from sqlalchemy import Column, Integer, MetaData, Table\nmeta = MetaData()\n"
             "t = Table('t', meta, Column('id', Integer, primary_key=True))\n"),
            "app.models:meta",
            "app.models:meta",
        ),
        (
            "from sqlmodel import Field, SQLModel\nclass T(SQLModel, table=True):\n    id: int | None = Field(default=None, primary_key=True)\n",
            "app.models",
            "app.models:SQLModel",
        ),
        (
            ("import sqlalchemy as sa\nfrom sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column\n"
             "class Base(DeclarativeBase):\n    pass\nclass Other(DeclarativeBase):\n    pass\n"
             "class T(Base):\n    __tablename__ = 't'\n    id: Mapped[int] = mapped_column(primary_key=True)\n"
             "print('hello from the project')\n"),
            "app.models",
            "app.models:Base",
        ),
    ],
    ids=["declarative_base", "metadata_attribute", "sqlmodel", "prefers_base_and_survives_print"],
)
def test_finds_the_metadata(source: str, spec: str, label: str, tmp_path: Path) -> None:
    root = write_package(tmp_path, source)
    result = CliRunner().invoke(verify, ["--models", spec, "--root", str(root), "--output-format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["models"] == label and report["tables"] == ["t"]


def test_several_bases_need_an_attribute(tmp_path: Path) -> None:
    root = write_package(
        tmp_path,
        "from sqlalchemy.orm import DeclarativeBase\nclass A(DeclarativeBase):\n    pass\nclass B(DeclarativeBase):\n    pass\n",
    )
    result = CliRunner().invoke(verify, ["--models", "app.models", "--root", str(root)])
    assert result.exit_code == 2
    assert "several MetaData objects in app.models (A, B); pass --models app.models:NAME" in result.output


def test_a_failing_import_is_a_failed_check(tmp_path: Path) -> None:
    root = write_package(tmp_path, "raise RuntimeError('no DATABASE_URL set')\n")
    code, report = run_verify(root, "--output-format", "json")
    assert code == 1
    assert failed(report) == {"import"}
    assert "RuntimeError: no DATABASE_URL set" in texts(report)


def test_relationship_without_foreign_key_and_unknown_table(tmp_path: Path) -> None:
    root = write_package(
        tmp_path,
        "from sqlalchemy import Column, ForeignKey, Integer\nfrom sqlalchemy.orm import DeclarativeBase, relationship\n"
        "class Base(DeclarativeBase):\n    pass\n"
        "class User(Base):\n    __tablename__ = 'users'\n    id = Column(Integer, primary_key=True)\n"
        "    org_id = Column(Integer, ForeignKey('organisations.id'))\n    team_id = Column(Integer)\n"
        "    team = relationship('Team')\n"
        "class Organization(Base):\n    __tablename__ = 'organizations'\n    id = Column(Integer, primary_key=True)\n"
        "class Team(Base):\n    __tablename__ = 'teams'\n    id = Column(Integer, primary_key=True)\n",
    )
    code, report = run_verify(root, "--output-format", "json")
    assert code == 1
    assert failed(report) == {"mappers", "ddl"}
    assert "NoForeignKeysError: Could not determine join condition between parent/child tables on relationship User.team" in texts(report)
    assert "could not find table 'organisations'" in texts(report)
    assert "did you mean 'organizations'?" in texts(report)


# -- the fixtures are what the codemods produce -----------------------------------------------------


@pytest.mark.parametrize("name", [*PITFALLS, "timestamptz"])
def test_dbfix_apply_turns_before_into_after(name: str, tmp_path: Path) -> None:
    codes = ("DBF012",) if name == "timestamptz" else PITFALLS[name].codes
    missing = sorted(set(codes) - {c.code for c in all_codemods()})
    if missing:
        pytest.skip(f"codemod {', '.join(missing)} is not registered yet; after/ is written by hand to its spec")
    work = copy_case(name, "before", tmp_path)
    config = load_config(work).replace(root=work)
    outcome = run([work], config, apply=True, write=True, jobs=1)
    assert [r.error for r in outcome.results if r.error] == []
    assert {f.code for r in outcome.results for f in r.applied} == set(codes)
    _assert_same_tree(filecmp.dircmp(work, CASES / name / "after", ignore=["__pycache__", ".dbfix_cache"]))


def _assert_same_tree(comparison: filecmp.dircmp) -> None:
    assert not comparison.left_only and not comparison.right_only, (comparison.left_only, comparison.right_only)
    for name in comparison.common_files:
        assert Path(comparison.left, name).read_text() == Path(comparison.right, name).read_text(), name
    for sub in comparison.subdirs.values():
        _assert_same_tree(sub)

