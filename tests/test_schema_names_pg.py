"""DBF005-DBF007 on the real PostgreSQL: fixed fixtures build and drop cleanly, DBF006's names are the
ones PostgreSQL already chose (zero drift), and DBF005's migration SQL turns the misbuilt index into the
intended one.

Fixture model code runs in a child process per build (forked, or this file run as a script): every
fixture declares its own `Base`, and SQLModel's MetaData and class registry are global to a process.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
FOLDERS = ("index_name", "unnamed_constraint", "identifier_too_long")


def _fixed_fixtures() -> list[Path]:
    found = [p for folder in FOLDERS for p in sorted((FIXTURES / folder).glob("*.expected.py"))]
    found += [p / "after" for folder in FOLDERS for p in sorted((FIXTURES / folder).glob("*")) if (p / "after").is_dir() and _on_postgres(p)]
    return found


def _on_postgres(case: Path) -> bool:
    """Whether a tree case's project runs on PostgreSQL (its drivers say so, or say nothing)."""
    from dbfix.versions import detect_versions

    databases = detect_versions(case / "before").databases
    return not databases or "postgresql" in databases


def _pairs(folder: str) -> list[tuple[Path, Path]]:
    """(unfixed, fixed) for every fixing case of a codemod whose names are PostgreSQL's (not a revision's)."""
    pairs = [(p.with_name(p.name.replace(".expected.py", ".py")), p) for p in sorted((FIXTURES / folder).glob("*.expected.py"))]
    pairs += [
        (p / "before", p / "after")
        for p in sorted((FIXTURES / folder).glob("*"))
        if (p / "after").is_dir() and not _revisions(p / "before") and _on_postgres(p)
    ]
    return pairs


def _revisions(root: Path) -> list[Path]:
    """A case's Alembic revision scripts: the names they give are the ones an upgraded database has."""
    return sorted(root.glob("migrations/versions/*.py"))


def _id(path: Path) -> str:
    return str(path.relative_to(FIXTURES)).replace(".expected.py", "")


# -- building a fixture in a child interpreter ----------------------------------------------------


def build(source: Path, url: str, schema: str, *, drop: bool = False, work: Path, migrate: bool = False) -> dict:
    """Import the fixture's models in a fresh process and `create_all` (+ `drop_all`) them into
    `schema`; tables in an explicit schema `x` go to `<schema>_x`. With `migrate`, run its Alembic
    revisions instead. Returns {"error", "warnings"}."""
    target = work / uuid.uuid4().hex[:8]
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        target.mkdir()
        shutil.copy(source, target / "models.py")
    request = {"root": str(target), "url": url, "schema": schema, "drop": drop, "migrate": migrate}
    if "fork" in multiprocessing.get_all_start_methods():
        # a forked child starts with SQLAlchemy and SQLModel imported: far faster than a new interpreter
        import sqlalchemy  # noqa: F401
        import sqlmodel  # noqa: F401

        context = multiprocessing.get_context("fork")
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_forked, args=(request, send))
        process.start()
        send.close()
        result = receive.recv() if receive.poll(120) else {"error": "timeout", "warnings": []}
        process.join(10)
        return result
    done = subprocess.run([sys.executable, __file__, json.dumps(request)], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _forked(request: dict, send: object) -> None:
    try:
        result = _child(request)
    except BaseException as exc:  # noqa: BLE001 - the parent must hear back
        result = {"error": f"child crashed: {type(exc).__name__}: {exc}", "warnings": []}
    send.send(result)  # type: ignore[attr-defined]


def _child(request: dict) -> dict:
    import warnings

    import sqlalchemy as sa

    root = Path(request["root"])
    sys.path.insert(0, str(root))
    # a forked child inherits the parent's modules: other tests may have imported an `app` or `models`
    tops = {p.relative_to(root).parts[0].removesuffix(".py") for p in root.rglob("*.py")}
    for name in [n for n in sys.modules if n.split(".")[0] in tops]:
        del sys.modules[name]
    importlib.invalidate_caches()
    if request.get("migrate"):
        return _upgrade(root, request["url"], request["schema"])
    warnings.simplefilter("always")
    caught: list[str] = []
    result: dict = {"error": None, "warnings": caught}
    with warnings.catch_warnings(record=True) as recorded:
        warnings.simplefilter("always")
        modules = [
            importlib.import_module(".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__"))
            for p in sorted(root.rglob("*.py"))
        ]
        metadatas: dict[int, sa.MetaData] = {}
        for module in modules:
            for value in vars(module).values():
                candidate = getattr(value, "metadata", value) if isinstance(value, type) else value
                if isinstance(candidate, sa.MetaData) and candidate.tables:
                    metadatas[id(candidate)] = candidate
        schema = request["schema"]
        engine = sa.create_engine(request["url"], connect_args={"options": f"-csearch_path={schema}"})
        explicit = sorted({t.schema for m in metadatas.values() for t in m.tables.values() if t.schema})
        translate = {name: f"{schema}_{name}" for name in explicit}
        try:
            with engine.begin() as connection:
                for name in translate.values():
                    connection.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{name}"')
            with engine.connect() as connection:
                connection = connection.execution_options(schema_translate_map=translate)
                for metadata in metadatas.values():
                    metadata.create_all(connection)
                connection.commit()
                if request["drop"]:
                    for metadata in metadatas.values():
                        metadata.drop_all(connection)
                    connection.commit()
        except Exception as exc:  # noqa: BLE001 - reported to the test, which decides
            result["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        finally:
            engine.dispose()
        caught.extend(f"{w.category.__name__}: {w.message}" for w in recorded)
    return result


def _upgrade(root: Path, url: str, schema: str) -> dict:
    """Run every revision's `upgrade()` of `root/migrations`, base first, as `alembic upgrade head` does."""
    import sqlalchemy as sa
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    result: dict = {"error": None, "warnings": []}
    engine = sa.create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        scripts = list(reversed(list(ScriptDirectory(str(root / "migrations")).walk_revisions())))
        with engine.begin() as connection, Operations.context(MigrationContext.configure(connection)):
            for script in scripts:
                script.module.upgrade()
    except Exception as exc:  # noqa: BLE001 - reported to the test
        result["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    finally:
        engine.dispose()
    return result


# -- reading the catalog --------------------------------------------------------------------------


@contextmanager
def schemas(url: str, base: str) -> Iterator[None]:
    """Drop every `<base>_*` schema a build created, whatever happens."""
    import sqlalchemy as sa

    try:
        yield
    finally:
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            names = connection.exec_driver_sql(
                "select nspname from pg_namespace where nspname like %(p)s", {"p": base.replace("_", r"\_") + r"\_%"}
            ).scalars().all()
            for name in names:
                connection.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
        engine.dispose()


def catalog(url: str, base: str) -> dict[str, set[tuple[str, ...]]]:
    """Constraints, indexes and columns in `base` and `base_*`, with the schema names made logical."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    like = {"base": base, "p": base.replace("_", r"\_") + r"\_%"}

    def logical(nsp: str) -> str:
        return "" if nsp == base else nsp[len(base) + 1 :]

    with engine.connect() as connection:
        constraints = connection.exec_driver_sql(
            "select n.nspname, r.relname, c.conname, c.contype from pg_constraint c join pg_class r on r.oid = c.conrelid "
            "join pg_namespace n on n.oid = r.relnamespace where n.nspname = %(base)s or n.nspname like %(p)s",
            like,
        ).all()
        indexes = connection.exec_driver_sql(
            "select schemaname, tablename, indexname, regexp_replace(indexdef, '^.* USING ', '') from pg_indexes "
            "where schemaname = %(base)s or schemaname like %(p)s",
            like,
        ).all()
        columns = connection.exec_driver_sql(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where table_schema = %(base)s or table_schema like %(p)s",
            like,
        ).all()
    engine.dispose()
    return {
        "constraints": {(logical(s), t, n, k) for s, t, n, k in constraints},
        "indexes": {(logical(s), t, n, d) for s, t, n, d in indexes},
        "columns": {(logical(s), t, c) for s, t, c in columns},
    }


# -- the tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixed", _fixed_fixtures(), ids=_id)
def test_fixed_fixture_creates_and_drops_without_warning(fixed: Path, pg_schema: tuple[str, str], tmp_path: Path) -> None:
    url, schema = pg_schema
    with schemas(url, schema):
        result = build(fixed, url, schema, drop=True, work=tmp_path)
    assert result == {"error": None, "warnings": []}


@pytest.mark.parametrize("pair", _pairs("unnamed_constraint"), ids=lambda p: _id(p[1]))
def test_unnamed_constraint_names_equal_what_postgres_chose(pair: tuple[Path, Path], pg_schema: tuple[str, str], tmp_path: Path) -> None:
    url, schema = pg_schema
    before, after = pair
    other = f"{schema}_fixed"
    with schemas(url, schema):
        assert build(before, url, schema, work=tmp_path)["error"] is None
        _create_schema(url, other)
        assert build(after, url, other, work=tmp_path)["error"] is None
        unfixed = catalog(url, schema)
        fixed = catalog(url, other)
    assert fixed["constraints"] == _own(unfixed["constraints"])
    written = _names_written(before, after)
    assert written, "the case writes no name"
    assert written <= {name for _, _, name, _ in unfixed["constraints"]}


MIGRATION_CASES = [
    FIXTURES / folder / p.name
    for folder in ("unnamed_constraint", "circular_foreign_key")
    for p in sorted((FIXTURES / folder).glob("*"))
    if (p / "after").is_dir() and _revisions(p / "before") and _on_postgres(p)
]


@pytest.mark.parametrize("case", MIGRATION_CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_names_from_revisions_are_what_the_upgraded_database_has(case: Path, pg_schema: tuple[str, str], tmp_path: Path) -> None:
    """The fixed models, built with `create_all`, have exactly the constraints (names included) of a database
    upgraded by the project's revisions; the unfixed models' PostgreSQL names do not."""
    url, schema = pg_schema
    other, unfixed = f"{schema}_fixed", f"{schema}_unfixed"
    with schemas(url, schema):
        assert build(case / "before", url, schema, work=tmp_path, migrate=True)["error"] is None
        _create_schema(url, other)
        assert build(case / "after", url, other, work=tmp_path)["error"] is None
        _create_schema(url, unfixed)
        assert build(case / "before", url, unfixed, work=tmp_path)["error"] is None
        found = catalog(url, schema)["constraints"]
    upgraded = {r for r in found if r[0] == ""}
    fixed = {("",) + r[1:] for r in found if r[0] == "fixed"}
    assert fixed == upgraded
    assert {("",) + r[1:] for r in found if r[0] == "unfixed"} != upgraded, "the case must need a revision's names"
    written = _names_written(case / "before", case / "after")
    assert written and written <= {name for _, _, name, _ in upgraded}


def test_unnamed_foreign_keys_on_a_cycle_block_drop_all_until_named(pg_schema: tuple[str, str], tmp_path: Path) -> None:
    url, schema = pg_schema
    case = FIXTURES / "unnamed_constraint" / "cycle_across_files"
    with schemas(url, schema):
        result = build(case / "before", url, schema, drop=True, work=tmp_path)
    assert result["error"] is not None and result["error"].startswith("CircularDependencyError")


def test_unnamed_constraint_convention_mode_renames_to_the_fixed_names(pg_schema: tuple[str, str], tmp_path: Path) -> None:
    from dbfix.codemods.unnamed_constraint import UnnamedConstraint

    url, schema = pg_schema
    before = FIXTURES / "unnamed_constraint" / "table_args_unique_and_check.py"
    fixed_source, findings = _fix(before, UnnamedConstraint, constraint_names="convention")
    assert "uq_users_org_id_email" in fixed_source and "ck_users_age" in fixed_source
    (tmp_path / "fixed.py").write_text(fixed_source)
    other = f"{schema}_conv"
    with schemas(url, schema):
        assert build(before, url, schema, work=tmp_path)["error"] is None
        _execute(url, schema, [sql for f in findings if f.fix and f.fix.database for sql in f.fix.database.upgrade_sql])
        _create_schema(url, other)
        assert build(tmp_path / "fixed.py", url, other, work=tmp_path)["error"] is None
        migrated = _own(catalog(url, schema)["constraints"])
        fixed = catalog(url, other)["constraints"]
    assert migrated == fixed


def test_misbuilt_index_is_named_after_a_column_and_the_migration_repairs_it(pg_schema: tuple[str, str], tmp_path: Path) -> None:
    from dbfix.codemods.index_name import IndexName

    url, schema = pg_schema
    before = FIXTURES / "index_name" / "module_level_attributes.py"
    after = before.with_name("module_level_attributes.expected.py")
    other = f"{schema}_fixed"
    _, findings = _fix(before, IndexName)
    with schemas(url, schema):
        assert build(before, url, schema, work=tmp_path)["error"] is None
        unfixed = _user_indexes(catalog(url, schema))
        assert unfixed == {("User.org_id", "btree (email)"), ("User.email", "btree (id)")}
        _execute(url, schema, [sql for f in findings for sql in f.fix.database.upgrade_sql])  # type: ignore[union-attr]
        migrated = _user_indexes(catalog(url, schema))
        _create_schema(url, other)
        assert build(after, url, other, work=tmp_path)["error"] is None
        fixed = _user_indexes(catalog(url, other))
        _execute(url, schema, [sql for f in findings for sql in f.fix.database.downgrade_sql])  # type: ignore[union-attr]
        downgraded = _user_indexes(catalog(url, schema))
    assert fixed == {("ix_users_organization_id_email", "btree (organization_id, email)"), ("ix_users_email_id", "btree (email, id)")}
    assert migrated == fixed
    assert downgraded == unfixed


def test_index_none_collision_fails_before_and_builds_after(pg_schema: tuple[str, str], tmp_path: Path) -> None:
    url, schema = pg_schema
    before = FIXTURES / "index_name" / "index_none_collides_with_index_true.py"
    with schemas(url, schema):
        result = build(before, url, schema, work=tmp_path)
        assert result["error"] is not None and 'relation "ix_users_org_id" already exists' in result["error"]
        assert build(before.with_name(before.stem + ".expected.py"), url, schema, work=tmp_path)["error"] is None
        built = _user_indexes(catalog(url, schema))
    assert built == {("ix_users_org_id", "btree (org_id)"), ("ix_users_org_id_email", "btree (org_id, email)")}


def test_index_none_keeps_the_name_sqlalchemy_gave(pg_schema: tuple[str, str], tmp_path: Path) -> None:
    url, schema = pg_schema
    before = FIXTURES / "index_name" / "index_none_named_today.py"
    other = f"{schema}_fixed"
    with schemas(url, schema):
        assert build(before, url, schema, work=tmp_path)["error"] is None
        _create_schema(url, other)
        assert build(before.with_name(before.stem + ".expected.py"), url, other, work=tmp_path)["error"] is None
        unfixed = _own(catalog(url, schema)["indexes"])
        fixed = catalog(url, other)["indexes"]
    assert unfixed == fixed


def test_long_names_fail_before_and_columns_keep_their_database_names(pg_schema: tuple[str, str], tmp_path: Path) -> None:
    url, schema = pg_schema
    folder = FIXTURES / "identifier_too_long"
    other = f"{schema}_fixed"
    with schemas(url, schema):
        result = build(folder / "long_constraint_names.py", url, schema, work=tmp_path)
        assert result["error"] is not None and result["error"].startswith("IdentifierError")
        assert build(folder / "long_column_names.py", url, schema, work=tmp_path)["error"] is None
        _create_schema(url, other)
        assert build(folder / "long_column_names.expected.py", url, other, work=tmp_path)["error"] is None
        unfixed = _own(catalog(url, schema)["columns"])
        fixed = catalog(url, other)["columns"]
    assert unfixed == fixed
    assert ("", "invitations", "invitation_recipient_primary_email_address_as_entered_by_the_in") in fixed


# -- helpers --------------------------------------------------------------------------------------


def _fix(path: Path, codemod: type, **config: object) -> tuple[str, list]:
    from dbfix.config import Config
    from dbfix.engine import fix_source
    from dbfix.index import build_index
    from dbfix.versions import TargetVersions

    source = path.read_text()
    index = build_index([(path, source.encode())], path.parent)
    versions = TargetVersions(python=(3, 12), sqlalchemy=(2, 1), sqlmodel=(0, 0, 50), pydantic=(2, 11))
    result = fix_source(source, path.name, (path.stem, False), index, Config(unsafe_fixes=True, **config), versions, [codemod])  # type: ignore[arg-type]
    assert result.error is None
    return result.new_source or source, result.findings


def _names_written(before: Path, after: Path) -> set[str]:
    """The `name="..."` strings the fix added."""
    import re

    def names(path: Path) -> list[str]:
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        return [n for f in files for n in re.findall(r'name="([^"]+)"', f.read_text())]

    written = names(after)
    for name in names(before):
        written.remove(name)
    return set(written)


def _own(rows: set[tuple[str, ...]]) -> set[tuple[str, ...]]:
    """Leave out what a second build (`<schema>_fixed`, `<schema>_conv`) put next to the first."""
    return {r for r in rows if not r[0].startswith(("fixed", "conv"))}


def _user_indexes(found: dict) -> set[tuple[str, str]]:
    return {
        (name, definition.replace('"', ""))
        for schema, table, name, definition in found["indexes"]
        if schema == "" and table == "users" and not name.endswith("_pkey")
    }


def _create_schema(url: str, name: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    engine.dispose()


def _execute(url: str, schema: str, statements: list[str]) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    with engine.begin() as connection:
        for statement in statements:
            connection.exec_driver_sql(statement)
    engine.dispose()


if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.argv[1]))))
