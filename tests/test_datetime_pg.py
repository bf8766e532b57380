"""The datetime fixes on a real PostgreSQL through asyncpg: the fixed defaults store the intended UTC instant."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
SESSION_ZONES = ["UTC", "America/New_York"]


def load(path: Path) -> ModuleType:
    name = f"fixture_{path.parent.name}_{path.stem.replace('.', '_')}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def insert_and_read(url: str, schema: str, model: type, zone: str) -> dict[str, datetime]:
    """Create the model's table, insert and update a row through its defaults, read the datetimes back as UTC."""
    pytest.importorskip("asyncpg")
    from sqlalchemy import inspect, select
    from sqlalchemy.ext.asyncio import create_async_engine

    async def go() -> dict[str, datetime]:
        engine = create_async_engine(
            url.replace("postgresql+psycopg2://", "postgresql+asyncpg://"),
            connect_args={"server_settings": {"timezone": zone}},
            execution_options={"schema_translate_map": {None: schema}},
        )
        table = model.__table__
        try:
            async with engine.begin() as conn:
                await conn.run_sync(table.create)
                await conn.execute(table.insert())  # Python-side defaults fill every column
                (pk,) = table.primary_key.columns
                await conn.execute(table.update().values({pk.name: pk}))  # and `onupdate` ones fire
                row = (await conn.execute(select(table))).mappings().one()
                await conn.run_sync(table.drop)
        finally:
            await engine.dispose()
        datetimes = {}
        for column in inspect(model).columns:
            value = row[column.name]
            if isinstance(value, datetime):
                datetimes[column.name] = value if value.tzinfo else value.replace(tzinfo=UTC)
        return datetimes

    return asyncio.run(go())


def assert_now(values: dict[str, datetime], columns: list[str]) -> None:
    now = datetime.now(UTC)
    for name in columns:
        assert name in values, f"{name} was not filled by its default"
        assert abs(values[name] - now) < timedelta(seconds=30), f"{name}: stored {values[name]}, expected ~{now}"


@pytest.mark.parametrize("zone", SESSION_ZONES)
def test_utcnow_fix_on_naive_columns_keeps_the_utc_value(pg_schema, zone: str) -> None:
    url, schema = pg_schema
    module = load(FIXTURES / "utcnow" / "called_and_callable.expected.py")
    assert_now(insert_and_read(url, schema, module.Event, zone), ["created_at", "updated_at"])


@pytest.mark.parametrize("zone", SESSION_ZONES)
def test_utcnow_fix_on_timestamptz_columns_stores_the_right_instant(pg_schema, zone: str) -> None:
    url, schema = pg_schema
    module = load(FIXTURES / "utcnow" / "timestamptz_column.expected.py")
    assert_now(insert_and_read(url, schema, module.Session, zone), ["started_at", "ended_at"])


def test_aware_default_on_naive_column_fails_with_asyncpg_before_the_fix(pg_schema) -> None:
    url, schema = pg_schema
    module = load(FIXTURES / "datetime_default_mismatch" / "aware_on_naive_column.py")
    with pytest.raises(Exception, match="can't subtract offset-naive and offset-aware datetimes"):
        insert_and_read(url, schema, module.Event, "UTC")


@pytest.mark.parametrize("zone", SESSION_ZONES)
def test_aware_default_on_naive_column_works_after_the_fix(pg_schema, zone: str) -> None:
    url, schema = pg_schema
    module = load(FIXTURES / "datetime_default_mismatch" / "aware_on_naive_column.expected.py")
    assert_now(insert_and_read(url, schema, module.Event, zone), ["created_at", "updated_at", "stamped_at"])


@pytest.mark.parametrize("zone", SESSION_ZONES)
def test_naive_default_on_timestamptz_column_is_aware_after_the_fix(pg_schema, zone: str) -> None:
    url, schema = pg_schema
    module = load(FIXTURES / "datetime_default_mismatch" / "naive_on_timestamptz_column.expected.py")
    assert_now(insert_and_read(url, schema, module.Visit, zone), ["seen_at", "left_at", "again_at"])
