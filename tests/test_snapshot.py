"""Editor mode's snapshot: the index is reused while the project is unchanged, and rebuilt when not."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import dbfix.engine
from dbfix.cli import main

MODELS = """\
from datetime import datetime
from sqlalchemy import DateTime
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Event(Base):
    __tablename__ = "events"
    id: Mapped[int] = mapped_column(primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
"""

SERVICE = """\
from datetime import datetime

from app.models import Event


def touch(event: Event) -> None:
    event.seen_at = datetime.now()
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\ndependencies = ["sqlalchemy>=2.0"]\n')
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "models.py").write_text(MODELS)
    (tmp_path / "app" / "service.py").write_text(SERVICE)
    (tmp_path / ".dbfix_cache").mkdir()  # as a first run leaves it (made during a run, it moves the root's mtime)
    _settle(tmp_path)
    return tmp_path


def _settle(project: Path) -> None:
    """Date the project's files and folders a minute back, as files the user wrote before the run.

    A snapshot is not saved when anything it read has the mtime of the run's own clock tick: the file
    may have changed while it was read. Files written just before the first run could fall in that tick.
    """
    moment = time.time() - 60
    for path in [project, *project.rglob("*")]:
        os.utime(path, (moment, moment))


def _stdin(project: Path, name: str, source: str) -> str:
    cwd = os.getcwd()
    os.chdir(project)
    try:
        result = CliRunner().invoke(main, ["check", "--stdin-filename", f"app/{name}"], input=source, catch_exceptions=False)
    finally:
        os.chdir(cwd)
    return result.output


def _no_index_builds(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the index was built again")

    monkeypatch.setattr(dbfix.engine, "load_index", refuse)


def test_an_unchanged_project_reuses_its_index(project: Path, monkeypatch) -> None:
    first = _stdin(project, "service.py", SERVICE)
    assert "DBF004" in first
    assert list((project / ".dbfix_cache").glob("editor-*.pickle"))
    _no_index_builds(monkeypatch)
    assert _stdin(project, "service.py", SERVICE) == first


def test_an_edit_elsewhere_rebuilds_the_index(project: Path) -> None:
    assert "DBF004" in _stdin(project, "service.py", SERVICE)
    models = project / "app" / "models.py"
    models.write_text(MODELS.replace("DateTime(timezone=True)", "DateTime(timezone=False)"))
    assert "DBF004" not in _stdin(project, "service.py", SERVICE)  # naive into naive: nothing to say


def test_an_unsaved_buffer_is_indexed_as_it_is(project: Path, monkeypatch) -> None:
    _stdin(project, "service.py", SERVICE)
    changed = MODELS.replace("DateTime(timezone=True)", "DateTime(timezone=False)") + "\n\nx = datetime.now()\n"
    assert "DBF004" not in _stdin(project, "models.py", changed)
    assert "DBF004" in _stdin(project, "service.py", SERVICE)  # the disk still says timestamptz


CONVENTION_MODELS = """\
from sqlalchemy import Column, Integer, MetaData, String
from sqlalchemy.orm import declarative_base

Base = declarative_base(metadata=MetaData(naming_convention={"ix": "%(table_name)s_%(column_0_key)s_idx"}))


class User(Base):
    __tablename__ = "users"
    id = Column(Integer, primary_key=True)
    email = Column(String, index=True)
"""


def test_a_saved_file_is_checked_without_importing_sqlalchemy(project: Path) -> None:
    """Names under a naming convention with a token dbfix does not spell itself (a column key) come from
    SQLAlchemy once; the snapshot keeps them."""
    import subprocess
    import sys

    (project / "app" / "models.py").write_text(CONVENTION_MODELS)
    _settle(project)
    code = (
        "import sys\nfrom dbfix.cli import main\n"
        "try:\n    main(['check', '--stdin-filename', 'app/models.py'])\nexcept SystemExit:\n    pass\n"
        "print('sqlalchemy' in sys.modules)\n"
    )
    runs = [
        subprocess.run([sys.executable, "-c", code], cwd=project, input=CONVENTION_MODELS, capture_output=True, text=True, timeout=120)
        for _ in range(2)
    ]
    assert runs[0].stdout.strip().endswith("True")  # the first run renders the name with SQLAlchemy
    assert runs[1].stdout.strip().endswith("False"), runs[1].stdout + runs[1].stderr


def test_the_project_wide_answers_are_kept_too(project: Path, monkeypatch) -> None:
    import dbfix.schema

    indexed = MODELS.replace("primary_key=True)", "primary_key=True)\n    code: Mapped[str] = mapped_column(index=True)", 1)
    (project / "app" / "models.py").write_text(indexed)
    _settle(project)
    first = _stdin(project, "models.py", indexed)  # DBF005 builds the project's schema view
    _no_index_builds(monkeypatch)

    def refuse(self, *args, **kwargs):
        raise AssertionError("the schema view was built again")

    monkeypatch.setattr(dbfix.schema.SchemaView, "__init__", refuse)
    assert _stdin(project, "models.py", indexed) == first


def test_answers_missing_from_a_snapshot_are_added_on_the_next_save(project: Path, monkeypatch) -> None:
    """A snapshot saved by a check whose findings came from the per-file cache holds no schema view
    (none was computed); the next save computes one, and keeps it for the saves after it."""
    import dbfix.schema

    indexed = MODELS.replace("primary_key=True)", "primary_key=True)\n    code: Mapped[str] = mapped_column(index=True)", 1)
    (project / "app" / "models.py").write_text(indexed)
    _settle(project)
    first = _stdin(project, "models.py", indexed)
    (project / "app" / "scratch.py").write_text("")  # the folder changes: the snapshot no longer holds
    _settle(project)
    assert _stdin(project, "models.py", indexed) == first  # index rebuilt, findings from the per-file cache
    assert _stdin(project, "models.py", indexed) == first  # from the snapshot: the view is computed, kept
    _no_index_builds(monkeypatch)

    def refuse(self, *args, **kwargs):
        raise AssertionError("the schema view was built again")

    monkeypatch.setattr(dbfix.schema.SchemaView, "__init__", refuse)
    assert _stdin(project, "models.py", indexed) == first
