"""Which files a rule parses at all: the text tests in front of detection must not lose a finding."""

from __future__ import annotations

from pathlib import Path

import pytest
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


@pytest.fixture
def processed(monkeypatch) -> list[str]:
    """The name of every file the per-file pass processes, in order."""
    import dbfix.engine

    names: list[str] = []
    real = dbfix.engine.process_file

    def spy(path: Path, job, data=None):
        names.append(path.name)
        return real(path, job, data)

    monkeypatch.setattr(dbfix.engine, "process_file", spy)
    return names


def test_a_file_no_trigger_matches_is_read_once(tmp_path: Path, processed: list[str]) -> None:
    """The index reads every file; one in which no rule's trigger matches is not read again. A file that
    does not decode is still read again, and reported."""
    root = _project(tmp_path)
    (root / "app" / "plain.py").write_text("def add(a, b):\n    return a + b\n")
    (root / "app" / "latin.py").write_bytes(b"# -*- coding: ascii -*-\nname = '\xe9'\n")
    outcome = run([root], Config(root=root), apply=False, write=False, jobs=1)
    assert "plain.py" not in processed and {"service.py", "latin.py"} <= set(processed)
    by_name = {Path(r.path).name: r for r in outcome.results}
    assert not by_name["plain.py"].findings and by_name["plain.py"].error is None
    assert "cannot decode" in (by_name["latin.py"].error or "")
    assert "DBF004" in {f.code for f in by_name["service.py"].findings}


def test_a_file_only_an_inactive_rule_may_find_in_is_read_once(tmp_path: Path, processed: list[str]) -> None:
    """`x.model_dump()` matches DBF001's trigger, which is active only where a model declares a reserved
    name: the file is processed in such a project, and not read again in one without."""
    for declares in (True, False):
        (tmp_path / str(declares)).mkdir()
        root = _project(tmp_path / str(declares))
        if not declares:
            (root / "app" / "models.py").write_text(MODELS.replace("    metadata = ", "    details = "))
        (root / "app" / "dumps.py").write_text("def dump(x):\n    return x.model_dump()\n")
        processed.clear()
        outcome = run([root], Config(root=root), apply=False, write=False, jobs=1)
        assert ("dumps.py" in processed) is declares
        assert "models.py" in processed
        assert not next(r for r in outcome.results if r.path.endswith("dumps.py")).findings


def test_names_with_letters_beyond_ascii_are_words(tmp_path: Path) -> None:
    """A column `créé_le` written in another module is still a reason to parse that module (DBF004)."""
    root = _project(tmp_path)
    models = MODELS.replace("seen_at", "créé_le").replace('    metadata = mapped_column("metadata", DateTime)\n', "")
    service = SERVICE.replace("seen_at", "créé_le").replace("    print(event.metadata)\n", "")
    assert "metadata" not in models + service  # the only datetime column is `créé_le`
    (root / "app" / "models.py").write_text(models, encoding="utf-8")
    (root / "app" / "service.py").write_text(service, encoding="utf-8")
    outcome = run([root], Config(root=root), apply=False, write=False, jobs=1)
    service = next(r for r in outcome.results if r.path.endswith("service.py"))
    assert "DBF004" in {f.code for f in service.findings}



def test_defined_classes_reads_class_statements_only() -> None:
    """As `^[ \\t]*class[ \\t]+(name)` would read them, over every fixture and a few odd lines."""
    import re

    from dbfix.codemod import defined_classes

    line_start = re.compile(r"^[ \t]*class[ \t]+([^\W\d]\w*)", re.MULTILINE)
    odd = "subclass Fake:\n  class Inner:\nx = 1; class_ = 2\n\tclass\tTabbed(Base):\nclass Événement:\nclass Last"
    texts = [odd, *(p.read_text(encoding="utf-8") for p in sorted((Path(__file__).parent / "fixtures").rglob("*.py")))]
    for text in texts:
        assert defined_classes(text) == frozenset(line_start.findall(text))
    assert defined_classes(odd) == {"Inner", "Tabbed", "Événement", "Last"}


def test_a_model_named_beyond_ascii_gets_the_schema_rules(tmp_path: Path) -> None:
    """`class Événement(Base)`: its module defines a model, so DBF007 looks at its 70-character column."""
    root = _project(tmp_path)
    long_name = "a" * 70
    (root / "app" / "models.py").write_text(
        MODELS.replace("class Event(Base)", "class Événement(Base)").replace(
            "    metadata = mapped_column", f'    code = mapped_column("{long_name}", DateTime)\n    metadata = mapped_column'
        ),
        encoding="utf-8",
    )
    outcome = run([root], Config(root=root), apply=False, write=False, jobs=1)
    models = next(r for r in outcome.results if r.path.endswith("models.py"))
    assert "DBF007" in {f.code for f in models.findings}
