"""An unchanged project's `dbfix check` is replayed from its record; any change to what it read runs it again."""

from __future__ import annotations

import marshal
import subprocess
import sys
from pathlib import Path

import pytest

MODEL = """\
from datetime import datetime

from sqlalchemy import Column, DateTime, Integer
from sqlalchemy.orm import declarative_base

Base = declarative_base()


class Event(Base):
    __tablename__ = "events"
    id = Column(Integer, primary_key=True)
    at = Column(DateTime, default=datetime.utcnow)
"""

SENTINEL = b"replayed from the record\n"


def _check(project: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "dbfix", "check", *args], cwd=project, capture_output=True, timeout=120)


def _records(project: Path) -> list[Path]:
    return sorted((project / ".dbfix_cache").glob("replay-*.marshal"))


def _mark(project: Path) -> None:
    """Replace every record's output with a sentinel: a run that prints it was replayed."""
    for path in _records(project):
        record = marshal.loads(path.read_bytes())
        record["out"] = SENTINEL
        path.write_bytes(marshal.dumps(record))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\ndependencies = ["sqlalchemy>=2.0"]\n')
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "models.py").write_text(MODEL)
    (tmp_path / "app" / "other.py").write_text("x = 1\n")
    first = _check(tmp_path)  # creates the cache folder: this run's own writes prevent its record
    second = _check(tmp_path)
    assert first.stdout == second.stdout and b"DBF003" in first.stdout and first.returncode == second.returncode == 1
    assert _records(tmp_path), "the second run should have left a record"
    return tmp_path


def test_an_unchanged_project_is_replayed_byte_for_byte(project: Path) -> None:
    normal = _check(project, "--no-cache")  # never replayed
    replayed = _check(project)
    assert (replayed.stdout, replayed.stderr, replayed.returncode) == (normal.stdout, normal.stderr, normal.returncode)
    _mark(project)
    assert _check(project).stdout == SENTINEL  # it really came from the record


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda p: (p / "app" / "other.py").write_text("y = 2\n"), id="a source edited"),
        pytest.param(lambda p: (p / "app" / "new.py").write_text("from datetime import datetime\nx = datetime.utcnow()\n"), id="a file added"),
        pytest.param(lambda p: (p / "app" / "other.py").unlink(), id="a file removed"),
        pytest.param(lambda p: (p / "pyproject.toml").write_text('[tool.dbfix]\nignore = ["DBF003"]\n'), id="the config changed"),
        pytest.param(lambda p: (p / ".gitignore").write_text("app/models.py\n"), id="a gitignore added"),
        pytest.param(lambda p: (p / "app" / "uv.lock").write_text(""), id="a lock file added"),
    ],
)
def test_a_change_to_what_the_run_read_runs_it_again(project: Path, change) -> None:
    _mark(project)
    change(project)
    again = _check(project)
    assert again.stdout != SENTINEL
    assert again.stdout == _check(project, "--no-cache").stdout


def test_other_arguments_or_folders_are_not_replayed(project: Path) -> None:
    _mark(project)
    assert _check(project, "-q").stdout != SENTINEL
    assert _check(project, "--output-format", "json").stdout != SENTINEL
    inner = subprocess.run([sys.executable, "-m", "dbfix", "check", "."], cwd=project / "app", capture_output=True, timeout=120)
    assert inner.stdout != SENTINEL


def test_a_run_with_no_cache_leaves_no_record(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "m.py").write_text(MODEL)
    for _ in range(2):
        _check(tmp_path, "--no-cache")
    assert not _records(tmp_path)

