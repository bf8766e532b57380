"""DBF001 beyond the golden files: the rewritten fixtures import cleanly and keep their columns, on PostgreSQL too."""

from __future__ import annotations

import filecmp
import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dbfix.codemod import DOC_SECTIONS
from dbfix.config import load_config
from dbfix.engine import run

FIXTURES = Path(__file__).parent / "fixtures" / "reserved_attribute"
CODEMOD = importlib.import_module("dbfix.codemods.reserved_attribute").ReservedAttribute
RESERVED = {"metadata", "registry", "__table__", "__mapper__"}
# written for pydantic 2.9: its `before` imports cleanly on the pydantic this suite runs on
CLEAN_BEFORE_HERE = {"pydantic_29_model_fields"}
# a look-alike left as it is on purpose: a non-table SQLModel warns about `metadata` but works (FACTS claim 1)
EXPECTED_WARNINGS = {"lookalikes_beside_model": 'Field name "metadata" in "EventSchema"'}

# Imports the given modules in a fresh interpreter and describes every mapped class they define.
PROBE = r"""
import importlib, json, sys, warnings
mode, expected, root, *modules = sys.argv[1:]
sys.path.insert(0, root)
caught = []
if mode == "strict":
    warnings.simplefilter("error")
    if expected:
        warnings.filterwarnings("ignore", message=expected)
else:
    warnings.simplefilter("always")
    warnings.showwarning = lambda message, category, *rest, **kw: caught.append(f"{category.__name__}: {message}")
out = {"error": None, "warnings": caught, "tables": {}, "keys": {}, "metadata_ok": True}
try:
    loaded = [importlib.import_module(m) for m in modules]
    from sqlalchemy import MetaData, inspect
    for mod in loaded:
        for value in list(vars(mod).values()):
            if isinstance(value, type) and value.__module__ == mod.__name__ and "__table__" in dir(value):
                table = value.__table__
                out["tables"][table.name] = sorted(c.name for c in table.columns)
                for prop in inspect(value).column_attrs:
                    for column in prop.columns:
                        out["keys"][f"{table.name}.{column.name}"] = prop.key
                out["metadata_ok"] &= isinstance(value.metadata, MetaData)
except Exception as exc:
    out["error"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


def _probe(root: Path, modules: list[str], strict: bool, expected: str = "") -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "strict" if strict else "lenient", expected, str(root), *modules],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _single_cases() -> list[Path]:
    return sorted(p for p in FIXTURES.glob("*.expected.py"))


def _tree_cases() -> list[Path]:
    return sorted([p for p in FIXTURES.iterdir() if (p / "after").is_dir()] + [FIXTURES / "with_config" / "rename_metadata_to"])


def _modules(tree: Path) -> list[str]:
    return sorted(
        ".".join(p.relative_to(tree).with_suffix("").parts).removesuffix(".__init__") for p in tree.rglob("*.py")
    )


def _stage(case: Path, tmp_path: Path) -> tuple[Path, Path, list[str]]:
    """Copies of the case before and after the fix, importable, and the modules to import."""
    before, after = tmp_path / "before", tmp_path / "after"
    if case.is_dir():
        shutil.copytree(case / "before", before)
        shutil.copytree(case / "after", after)
        return before, after, _modules(after)
    name = case.name.removesuffix(".expected.py")
    for folder, source in ((before, case.with_name(f"{name}.py")), (after, case)):
        folder.mkdir()
        shutil.copy(source, folder / f"fixture_{name}.py")
    return before, after, [f"fixture_{name}"]


def _needs(case: Path) -> None:
    text = "".join(p.read_text() for p in ([case] if case.is_file() else case.rglob("*.py")))
    if "flask_sqlalchemy" in text and importlib.util.find_spec("flask_sqlalchemy") is None:
        pytest.skip("flask_sqlalchemy is not installed")


@pytest.mark.parametrize("case", _single_cases() + _tree_cases(), ids=lambda p: p.name.removesuffix(".expected.py"))
def test_rewritten_models_import_without_warnings_and_keep_their_columns(case: Path, tmp_path: Path) -> None:
    _needs(case)
    name = case.name.removesuffix(".expected.py")
    before, after, modules = _stage(case, tmp_path)
    fixed = _probe(after, modules, strict=True, expected=EXPECTED_WARNINGS.get(name, ""))
    assert fixed["error"] is None, fixed["error"]  # warnings are errors here: none was raised
    assert fixed["metadata_ok"], "`Model.metadata` must be the MetaData again"
    assert fixed["tables"], "the fixture maps no model"
    for column, key in fixed["keys"].items():
        if column.rsplit(".", 1)[1] in RESERVED:
            assert key not in RESERVED, f"{column} is still mapped as `{key}`"

    strict_before = _probe(before, modules, strict=True)
    if name not in CLEAN_BEFORE_HERE:
        assert strict_before["error"] is not None, "the original code was expected to fail under -W error"
    original = _probe(before, modules, strict=False)
    if original["error"] is None:  # SQLAlchemy 2.1 builds most of them, with a warning
        assert original["tables"] == fixed["tables"], "the database columns must not change"


def test_reserved_column_keeps_its_name_under_a_new_attribute(tmp_path: Path) -> None:
    _, after, modules = _stage(FIXTURES / "model_used_in_three_modules", tmp_path)
    fixed = _probe(after, modules, strict=True)
    assert fixed["tables"]["documents"] == ["id", "metadata", "title"]
    assert fixed["keys"]["documents.metadata"] == "extra_metadata"


SQLMODEL_ALIAS = r"""
import sys, warnings
warnings.simplefilter("error")
sys.path.insert(0, sys.argv[1])
from app.models import Item, ItemCreate, ItemRead
item = Item(name="a", metadata={"tags": ["x"]})
assert item.extra_metadata == {"tags": ["x"]}, item
assert Item.__table__.c.metadata.name == "metadata"
created = ItemCreate.model_validate({"name": "b", "metadata": {"k": 1}})
assert created.extra_metadata == {"k": 1}
read = ItemRead.model_validate({"id": 1, "name": "c", "metadata": {"k": 2}})
assert read.model_dump(by_alias=True) == {"name": "c", "metadata": {"k": 2}, "id": 1}, read.model_dump(by_alias=True)
assert "extra_metadata" in read.model_dump()
print("ok")
"""


def test_sqlmodel_alias_keeps_the_constructor_keyword_and_the_key(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "sqlmodel_project" / "after", tmp_path / "after")
    done = subprocess.run([sys.executable, "-c", SQLMODEL_ALIAS, str(tmp_path / "after")], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


ROUND_TRIP = r"""
import json, sys, warnings
warnings.simplefilter("error")
root, url, schema = sys.argv[1:]
sys.path.insert(0, root)
import sqlalchemy as sa
from sqlalchemy.orm import Session
from fixture_mapped_column import Base, Project, labels, rename_all

engine = sa.create_engine(url).execution_options(schema_translate_map={None: schema})
Base.metadata.create_all(engine)
with Session(engine) as session:
    session.add(Project(id=1, extra_metadata={"k": "v"}))
    session.commit()
    rename_all(session, {"k": "w"})
    session.commit()
    found = session.scalars(sa.select(Project).filter_by(extra_metadata={"k": "w"})).all()
    assert sorted(p.id for p in found) == [1, 99], found
    assert labels(session) == []
with engine.connect() as connection:
    raw = connection.exec_driver_sql(f'SELECT id, metadata FROM "{schema}".projects ORDER BY id').all()
    columns = connection.exec_driver_sql(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s ORDER BY 1, 2", (schema,)
    ).all()
print(json.dumps({"raw": [list(r) for r in raw], "columns": [list(c) for c in columns]}))
"""


def test_round_trip_on_postgresql(pg_schema: tuple[str, str], tmp_path: Path) -> None:
    url, schema = pg_schema
    shutil.copy(FIXTURES / "mapped_column.expected.py", tmp_path / "fixture_mapped_column.py")
    done = subprocess.run([sys.executable, "-c", ROUND_TRIP, str(tmp_path), url, schema], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["raw"] == [[1, {"k": "w"}], [99, {"k": "w"}]]
    assert ["projects", "metadata"] in out["columns"] and ["runs", "metadata"] in out["columns"]
    assert not any(column.startswith("extra_") for _, column in out["columns"])


SQLMODEL_ROUND_TRIP = r"""
import sys, warnings
warnings.simplefilter("error")
root, url, schema = sys.argv[1:]
sys.path.insert(0, root)
import sqlalchemy as sa
from sqlmodel import Session, SQLModel
from app.crud import find_by_metadata
from app.models import Item

engine = sa.create_engine(url).execution_options(schema_translate_map={None: schema})
SQLModel.metadata.create_all(engine)
with Session(engine) as session:
    session.add(Item(name="a", metadata={"tags": ["x"]}))
    session.commit()
    assert find_by_metadata(session, {"tags": ["x"]}).name == "a"
with engine.connect() as connection:
    print(connection.exec_driver_sql(f'SELECT name, metadata FROM "{schema}".item').all())
"""


def test_sqlmodel_round_trip_on_postgresql(pg_schema: tuple[str, str], tmp_path: Path) -> None:
    url, schema = pg_schema
    shutil.copytree(FIXTURES / "sqlmodel_project" / "after", tmp_path / "after")
    done = subprocess.run(
        [sys.executable, "-c", SQLMODEL_ROUND_TRIP, str(tmp_path / "after"), url, schema], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[('a', {'tags': ['x']})]"


def test_rename_metadata_to_from_pyproject(tmp_path: Path) -> None:
    case = FIXTURES / "with_config" / "rename_metadata_to"
    work = tmp_path / "project"
    shutil.copytree(case / "before", work)
    config = load_config(work).replace(select=("DBF001",))
    assert config.rename_metadata_to == "attributes"
    outcome = run([work], config, apply=True, write=True, jobs=1)
    assert [r.error for r in outcome.results if r.error] == []
    comparison = filecmp.dircmp(work, case / "after", ignore=["__pycache__", ".dbfix_cache"])
    assert not comparison.diff_files and not comparison.left_only and not comparison.right_only
    for sub in comparison.subdirs.values():
        assert not sub.diff_files and not sub.left_only and not sub.right_only, sub.diff_files
    assert not any(r.changed for r in run([work], config, apply=True, write=True, jobs=1).results)


def test_report_lists_the_references_it_could_not_prove(tmp_path: Path) -> None:
    work = tmp_path / "project"
    shutil.copytree(FIXTURES / "model_used_in_three_modules" / "before", work)
    (work / "pyproject.toml").touch()
    outcome = run([work], load_config(work).replace(select=("DBF001",)), apply=True, write=False, jobs=1)
    by_file = {Path(r.path).name: r for r in outcome.results}
    unproven = [f for r in outcome.results for f in r.remaining]
    assert [(Path(f.path).name, f.span.line) for f in unproven] == [("reports.py", 16)]
    assert "row.metadata" in unproven[0].message and "check it" in unproven[0].notes[0]
    renamed = {name: len(r.applied) for name, r in by_file.items() if r.applied}
    assert renamed == {"api.py": 4, "models.py": 2, "reports.py": 2, "services.py": 2}


def test_documentation_has_every_section() -> None:
    doc = CODEMOD.documentation()
    assert all(f"## {section}" in doc for section in DOC_SECTIONS)
