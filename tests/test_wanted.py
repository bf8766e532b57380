"""Which files a rule parses at all: the text tests in front of detection must not lose a finding."""

from __future__ import annotations

from pathlib import Path

from dbfix.codemods.datetime_default_mismatch import DatetimeDefaultMismatch
from dbfix.codemods.reserved_attribute import ReservedAttribute

from dbfix.config import Config
from dbfix.engine import run
from dbfix.index import build_index
from dbfix.versions import TargetVersions

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
    metadata = mapped_column("metadata", DateTime)
"""

SERVICE = """\
from datetime import datetime

from app.models import Event


def touch(event: Event) -> None:
    event.seen_at = datetime.now()
    print(event.metadata)
"""

UNRELATED = """\
from datetime import datetime

metadata = {"at": datetime.now()}
seen_at = datetime.now()
"""


def _project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\ndependencies = ["sqlalchemy>=2.0"]\n')
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "models.py").write_text(MODELS)
    (tmp_path / "app" / "service.py").write_text(SERVICE)
    (tmp_path / "app" / "unrelated.py").write_text(UNRELATED)
    return tmp_path


def test_files_naming_a_model_and_its_attribute_are_wanted_others_not(tmp_path: Path) -> None:
    root = _project(tmp_path)
    index = build_index([(p, None) for p in sorted(root.rglob("*.py"))], root)
    config, versions = Config(root=root), TargetVersions(python=(3, 12), sqlalchemy=(2, 0), sqlmodel=None, pydantic=None)
    for rule in (DatetimeDefaultMismatch, ReservedAttribute):
        assert rule.wanted(SERVICE, index, config, versions), rule.code
        assert rule.wanted(MODELS, index, config, versions), rule.code
        assert not rule.wanted(UNRELATED, index, config, versions), rule.code


def test_findings_in_a_file_that_declares_nothing_are_still_found(tmp_path: Path) -> None:
    root = _project(tmp_path)
    outcome = run([root], Config(root=root), apply=False, write=False, jobs=1)
    service = next(r for r in outcome.results if r.path.endswith("service.py"))
    assert {f.code for f in service.findings} >= {"DBF001", "DBF004"}
    unrelated = next(r for r in outcome.results if r.path.endswith("unrelated.py"))
    assert not unrelated.findings
