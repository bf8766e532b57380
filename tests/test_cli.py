"""The command line, through click's runner and as a subprocess: exit codes, writes, diffs, stdin, encodings."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dbfix.cli import main

MODEL = """\
from datetime import datetime

from sqlalchemy import Column, DateTime, Integer
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


class Event(Base):
    __tablename__ = "events"
    id = Column(Integer, primary_key=True)
    created_at = Column(DateTime, default=datetime.utcnow)
"""
FIXED_LINE = "created_at = Column(DateTime, default=lambda: datetime.now(UTC).replace(tzinfo=None))"
EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\nrequires-python = ">=3.11"\n')
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "models.py").write_text(MODEL)
    return tmp_path


def invoke(*args: str, input: bytes | None = None, cwd: Path | None = None):
    runner = CliRunner()
    old = Path.cwd()
    os.chdir(cwd or old)
    try:
        return runner.invoke(main, list(args), input=input, catch_exceptions=False)
    finally:
        os.chdir(old)


def test_dry_run_shows_the_diff_writes_nothing_and_exits_1(project: Path) -> None:
    before = (project / "app" / "models.py").read_bytes()
    result = invoke("apply", "--dry-run", str(project))
    assert result.exit_code == 1
    assert "+    " + FIXED_LINE in result.output
    assert "DBF003" in result.output
    assert (project / "app" / "models.py").read_bytes() == before


def test_apply_writes_then_second_run_and_check_have_nothing_to_do(project: Path) -> None:
    path = project / "app" / "models.py"
    path.chmod(0o640)
    assert invoke("apply", str(project)).exit_code == 0
    text = path.read_text()
    assert FIXED_LINE in text and "from datetime import UTC, datetime" in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    again = invoke("apply", str(project))
    assert again.exit_code == 0 and path.read_text() == text
    assert invoke("check", str(project)).exit_code == 0


def test_check_reports_and_exits_1(project: Path) -> None:
    result = invoke("check", str(project))
    assert result.exit_code == 1
    assert "models.py:14:43: DBF003" in result.output


def test_check_json_schema(project: Path) -> None:
    result = invoke("check", "--output-format", "json", str(project))
    assert result.exit_code == 1
    document = json.loads(result.output)
    (file,) = [f for f in document["files"] if f["findings"]]
    (finding,) = file["findings"]
    assert finding["code"] == "DBF003" and finding["name"] == "utcnow"
    assert finding["location"] == {"line": 14, "column": 43, "end_line": 14, "end_column": 58}
    assert finding["fix"]["safety"] == "safe" and finding["fix"]["impact"] == "none"


def test_diff_output_applies_with_git_apply(project: Path) -> None:
    shutil.which("git") or pytest.skip("git is not installed")
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    result = invoke("apply", "--diff", "app/models.py", cwd=project)
    assert result.exit_code == 1
    assert result.output.startswith("--- a/app/models.py\n+++ b/app/models.py\n")
    subprocess.run(["git", "apply", "-"], cwd=project, input=result.output.encode(), check=True)
    assert FIXED_LINE in (project / "app" / "models.py").read_text()


def test_stdin_mode_prints_the_fixed_source(project: Path) -> None:
    path = project / "app" / "models.py"
    result = invoke("apply", "--stdin-filename", str(path), input=MODEL.encode())
    assert result.exit_code == 0
    assert FIXED_LINE in result.stdout
    assert path.read_text() == MODEL  # stdin mode never touches the file


def test_stdin_check_json(project: Path) -> None:
    path = project / "app" / "models.py"
    result = invoke("check", "--stdin-filename", str(path), "--output-format", "json", input=MODEL.encode())
    assert result.exit_code == 1
    assert json.loads(result.stdout)["files"][0]["findings"][0]["code"] == "DBF003"


def test_crlf_and_bom_round_trip(project: Path) -> None:
    path = project / "app" / "models.py"
    data = b"\xef\xbb\xbf" + MODEL.replace("\n", "\r\n").encode()
    path.write_bytes(data)
    assert invoke("apply", str(project)).exit_code == 0
    written = path.read_bytes()
    assert written.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in written and b"\n" not in written.replace(b"\r\n", b"")
    assert FIXED_LINE.encode() in written


def test_coding_cookie_is_kept(project: Path) -> None:
    path = project / "app" / "models.py"
    source = "# -*- coding: latin-1 -*-\n# caf\xe9\n" + MODEL
    path.write_bytes(source.encode("latin-1"))
    assert invoke("apply", str(project)).exit_code == 0
    written = path.read_bytes()
    assert b"caf\xe9" in written
    assert FIXED_LINE in written.decode("latin-1")


def test_unparsable_file_is_reported_left_untouched_and_the_run_goes_on(project: Path) -> None:
    broken = project / "app" / "broken.py"
    broken.write_text("from datetime import datetime\nx = datetime.utcnow(\n")
    result = invoke("apply", str(project))
    assert result.exit_code == 2
    assert "broken.py: error: cannot parse" in result.output
    assert "Traceback" not in result.output
    assert broken.read_text() == "from datetime import datetime\nx = datetime.utcnow(\n"
    assert FIXED_LINE in (project / "app" / "models.py").read_text()


def test_unknown_config_key_is_a_one_line_error(project: Path) -> None:
    (project / "pyproject.toml").write_text("[tool.dbfix]\nselcet = ['DBF003']\n")
    result = invoke("check", str(project))
    assert result.exit_code == 2
    assert "unknown key 'selcet'" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_unknown_rule_and_missing_path_are_errors(project: Path) -> None:
    assert invoke("check", "--select", "DBF999", str(project)).exit_code == 2
    result = invoke("check", str(project / "nope.py"))
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_select_and_ignore(project: Path) -> None:
    assert invoke("check", "--ignore", "utcnow", str(project)).exit_code == 0
    assert invoke("check", "--select", "DBF004", str(project)).exit_code == 0
    assert invoke("check", "--select", "DBF003", str(project)).exit_code == 1


def test_alembic_versions_are_skipped(project: Path) -> None:
    versions = project / "migrations" / "versions"
    versions.mkdir(parents=True)
    (project / "migrations" / "env.py").write_text("")
    (versions / "0001.py").write_text("from datetime import datetime\nx = datetime.utcnow()\n")
    invoke("apply", str(project))
    assert "utcnow" in (versions / "0001.py").read_text()


def test_rules_and_explain() -> None:
    rules = invoke("rules", "--output-format", "json")
    codes = {row["code"] for row in json.loads(rules.output)}
    assert {"DBF003", "DBF004", "DBF012"} <= codes
    explained = invoke("explain", "utcnow")
    assert explained.exit_code == 0
    for heading in ("What it does", "Why is this bad?", "Example", "Use instead", "Fix safety", "Database impact"):
        assert heading in explained.output
    assert invoke("explain", "DBF999").exit_code == 2


def test_subprocess_on_the_shipped_example(tmp_path: Path) -> None:
    work = tmp_path / "examples"
    shutil.copytree(EXAMPLES, work)
    command = [sys.executable, "-m", "dbfix"]
    dry = subprocess.run([*command, "apply", "--dry-run", str(work)], capture_output=True, text=True)
    assert dry.returncode == 1, dry.stderr
    assert "would be rewritten" in dry.stdout
    applied = subprocess.run([*command, "apply", "--unsafe-fixes", str(work)], capture_output=True, text=True)
    assert applied.returncode in (0, 1), applied.stderr
    again = subprocess.run([*command, "apply", "--unsafe-fixes", "--dry-run", str(work)], capture_output=True, text=True)
    assert again.returncode in (0, 1), again.stderr  # 1 only for diagnostics without a fix
    assert "would be rewritten" not in again.stdout


@pytest.mark.skipif(sys.version_info >= (3, 14), reason="this Python parses 3.14 syntax itself")
def test_newer_syntax_is_checked_through_an_older_translation(project: Path) -> None:
    newer = project / "app" / "newer.py"
    source = (
        "from datetime import datetime\n"
        "type Stamp = datetime\n"
        "try:\n"
        "    x = datetime.utcnow()\n"
        "except ValueError, TypeError:\n"
        "    pass\n"
    )
    newer.write_text(source)
    result = invoke("apply", str(project))
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output
    assert newer.read_text() == source.replace(
        "from datetime import datetime", "from datetime import UTC, datetime"
    ).replace("datetime.utcnow()", "datetime.now(UTC).replace(tzinfo=None)")


@pytest.mark.skipif(sys.version_info >= (3, 14), reason="this Python parses 3.14 syntax itself")
def test_untranslatable_newer_syntax_is_a_warning_not_an_error(project: Path) -> None:
    newer = project / "app" / "newer.py"
    source = "from datetime import datetime\nx = datetime.utcnow()\ngreeting = t\"hi {x}\"\n"
    newer.write_text(source)
    result = invoke("apply", str(project))
    assert result.exit_code == 0, result.output
    assert "newer.py: warning: not checked" in result.output
    assert "Not checked (newer syntax)" in result.output
    assert newer.read_text() == source
    assert FIXED_LINE in (project / "app" / "models.py").read_text()


def test_emit_migration_writes_one_revision_for_the_applied_fixes(tmp_path: Path) -> None:
    pytest.importorskip("alembic")
    work = tmp_path / "examples"
    shutil.copytree(EXAMPLES, work)
    versions = work / "migrations" / "versions"
    result = invoke("apply", "--unsafe-fixes", "--emit-migration", str(versions), str(work))
    assert result.exit_code == 0, result.output
    (revision,) = [p for p in versions.glob("*.py") if p.name != "0001_init.py"]
    text = revision.read_text()
    assert "down_revision: Union[str, Sequence[str], None] = '0001'" in text
    assert "ALTER TYPE userrole RENAME VALUE 'ADMIN' TO 'admin'" in text
    assert "op.create_index('ix_users_org_id_email', 'users', ['org_id', 'email']" in text
    compile(text, str(revision), "exec")


def test_emit_migration_needs_a_real_apply(project: Path) -> None:
    result = invoke("apply", "--dry-run", "--emit-migration", str(project / "versions"), str(project))
    assert result.exit_code == 2 and "cannot go with --dry-run" in result.output


def test_verify_is_a_command() -> None:
    result = invoke("verify", "--help")
    assert result.exit_code == 0 and "only dbfix command that imports and runs project code" in result.output


def test_databases_from_the_config_decide_the_constraint_names(project: Path) -> None:
    (project / "app" / "teams.py").write_text(
        "from sqlalchemy import Column, Integer, String, UniqueConstraint\n"
        "from app.models import Base\n\n\n"
        "class Team(Base):\n"
        '    __tablename__ = "teams"\n'
        '    __table_args__ = (UniqueConstraint("name"),)\n'
        "    id = Column(Integer, primary_key=True)\n"
        "    name = Column(String(80))\n"
    )

    def dbf006() -> dict:
        result = invoke("check", "--select", "DBF006", "--output-format", "json", str(project))
        (finding,) = [f for file in json.loads(result.output)["files"] for f in file["findings"]]
        return finding

    assert dbf006()["fix"] is not None  # unknown databases: PostgreSQL's name, as today
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + '\n[tool.dbfix]\ndatabases = ["mysql"]\n')
    assert dbf006()["fix"] is None  # MySQL named it differently: no name is claimed
    pyproject.write_text(pyproject.read_text().replace('["mysql"]', '["oracle"]'))
    result = invoke("check", str(project))
    assert result.exit_code == 2 and "databases must be" in result.output
