"""The cache: unchanged files come from it; a change anywhere in the index re-checks the files that depend on it."""

from __future__ import annotations

from pathlib import Path

from dbfix.config import Config
from dbfix.engine import run

MODELS = """\
from sqlalchemy import Column, DateTime, Integer
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


class Job(Base):
    __tablename__ = "jobs"
    id = Column(Integer, primary_key=True)
    queued_at = Column(DateTime(timezone=True))
"""
SERVICE = """\
from datetime import datetime

from app.models import Job


def enqueue() -> Job:
    return Job(queued_at=datetime.utcnow())
"""


def _project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\nrequires-python = ">=3.11"\n')
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "models.py").write_text(MODELS)
    (tmp_path / "app" / "service.py").write_text(SERVICE)
    return tmp_path


def _check(root: Path, cache: Path | None):
    outcome = run([root], Config(root=root), apply=False, write=False, jobs=1, cache_dir=cache)
    return {Path(r.path).name: r for r in outcome.results}


def test_second_run_comes_from_the_cache_with_the_same_findings(tmp_path: Path) -> None:
    root = _project(tmp_path)
    cache = root / ".dbfix_cache"
    first = _check(root, cache)
    assert not any(r.cached for r in first.values())
    assert (cache / ".gitignore").read_text().strip().endswith("*")
    second = _check(root, cache)
    assert all(r.cached for r in second.values())
    assert [f.message for f in second["service.py"].findings] == [f.message for f in first["service.py"].findings]


def test_editing_a_model_in_one_module_changes_the_finding_in_another(tmp_path: Path) -> None:
    root = _project(tmp_path)
    cache = root / ".dbfix_cache"
    (before,) = _check(root, cache)["service.py"].findings
    assert "timestamptz column `queued_at`" in before.message
    assert before.fix is not None and "aware" in before.fix.description

    (root / "app" / "models.py").write_text(MODELS.replace("DateTime(timezone=True)", "DateTime"))
    results = _check(root, cache)
    assert not results["service.py"].cached  # service.py did not change, but the index it depends on did
    (after,) = results["service.py"].findings
    assert "timestamptz" not in after.message
    assert after.fix is not None and "replace(tzinfo=None)" in after.fix.description


def test_no_cache_directory_means_nothing_is_written(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _check(root, None)
    assert not (root / ".dbfix_cache").exists()


def test_facts_read_back_from_the_cache_equal_fresh_ones(tmp_path: Path) -> None:
    """Rules compare cached facts with facts extracted again after a fix: a pickle round trip must keep them equal."""
    from dbfix.cache import Cache
    from dbfix.engine import load_index

    root = _project(tmp_path)
    (root / "app" / "enums.py").write_text("import enum\n\nclass Role(enum.Enum):\n    A = 'a'\n    B = compute()\n")
    cache_dir = root / ".dbfix_cache"
    config = Config(root=root)
    fresh = load_index(root, config, cache=Cache.load(None))
    first = Cache.load(cache_dir)
    load_index(root, config, cache=first)
    first.save()
    cached = load_index(root, config, cache=Cache.load(cache_dir))
    assert cached.modules.keys() == fresh.modules.keys()
    for name, facts in fresh.modules.items():
        assert cached.modules[name].classes == facts.classes, name


def test_a_dry_run_is_remembered_and_apply_writes_the_same_fix(tmp_path: Path) -> None:
    root = _project(tmp_path)
    cache = root / ".dbfix_cache"
    config = Config(root=root)
    first = run([root], config, apply=True, write=False, jobs=1, cache_dir=cache)
    second = run([root], config, apply=True, write=False, jobs=1, cache_dir=cache)
    (old,) = [r for r in first.results if r.changed]
    (new,) = [r for r in second.results if r.changed]
    assert new.cached and not old.cached
    assert (new.old_source, new.new_source) == (old.old_source, old.new_source)
    written = run([root], config, apply=True, write=True, jobs=1, cache_dir=cache)
    assert [r.written for r in written.results if r.changed] == [True]
    assert (root / "app" / "service.py").read_text() == old.new_source
    after = run([root], config, apply=True, write=False, jobs=1, cache_dir=cache)
    assert not any(r.changed for r in after.results)


def test_a_sub_project_has_its_own_target_versions(tmp_path: Path) -> None:
    """A monorepo: the server/ folder's own pyproject.toml decides its files' target Python."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "mono"\nrequires-python = ">=3.12"\n')
    server = tmp_path / "server"
    server.mkdir()
    (server / "pyproject.toml").write_text('[project]\nname = "server"\nrequires-python = ">=3.10"\n')
    source = "from datetime import datetime\nx = datetime.utcnow()\n"
    (server / "old.py").write_text(source)
    (tmp_path / "new.py").write_text(source)
    run([tmp_path], Config(root=tmp_path), apply=True, write=True, jobs=1)
    assert "timezone.utc" in (server / "old.py").read_text()
    assert "datetime.now(UTC)" in (tmp_path / "new.py").read_text()


def test_a_run_through_the_process_pool_finds_the_same(tmp_path: Path, monkeypatch) -> None:
    import dbfix.engine
    import dbfix.index

    root = _project(tmp_path)
    for i in range(6):
        (root / "app" / f"copy{i}.py").write_text(SERVICE)
    alone = run([root], Config(root=root), apply=False, write=False, jobs=1)
    monkeypatch.setattr(dbfix.engine, "PARALLEL_THRESHOLD", 1)
    monkeypatch.setattr(dbfix.index, "PARALLEL_FILES", 1)
    pooled = run([root], Config(root=root), apply=False, write=False, jobs=2)
    assert [(r.path, r.findings) for r in pooled.results] == [(r.path, r.findings) for r in alone.results]
    assert sum(len(r.findings) for r in pooled.results) == 7


def test_editing_a_migration_script_re_checks_the_project(tmp_path: Path) -> None:
    """Rules read constraint names from Alembic scripts, which are not indexed: their edits still count."""
    root = _project(tmp_path)
    versions = root / "migrations" / "versions"
    versions.mkdir(parents=True)
    (root / "migrations" / "env.py").write_text("")
    script = versions / "0001_init.py"
    script.write_text('revision = "0001"\ndown_revision = None\n\ndef upgrade():\n    pass\n')
    cache = root / ".dbfix_cache"
    _check(root, cache)
    assert all(r.cached for r in _check(root, cache).values())
    script.write_text('revision = "0001"\ndown_revision = None\n\ndef upgrade():\n    op.execute("select 1")\n')
    assert not any(r.cached for r in _check(root, cache).values())
    assert len(list(cache.glob("cache-*.pickle"))) == 1
