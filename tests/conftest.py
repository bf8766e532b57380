"""Shared fixtures: the real PostgreSQL the database tests run against."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def database_url() -> str:
    return os.environ.get("DBFIX_TEST_DATABASE_URL", DEFAULT_URL)


def _unreachable(reason: str) -> None:
    # Under CI a missing server is a failure, never a silent skip (issue #6).
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required under CI=true: {reason}")
    pytest.skip(f"no PostgreSQL at {database_url()} ({reason}); set DBFIX_TEST_DATABASE_URL")


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A reachable PostgreSQL URL (psycopg2 driver), or a skip (a failure under CI=true)."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    url = database_url().replace("postgresql://", "postgresql+psycopg2://", 1)
    try:
        engine = sqlalchemy.create_engine(url)
        with engine.connect() as connection:
            connection.exec_driver_sql("select 1")
        engine.dispose()
    except Exception as exc:  # any failure to connect means: no server for these tests
        _unreachable(str(exc).splitlines()[0])
    return url


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[tuple[str, str]]:
    """A throw-away schema: (url, schema name); dropped with everything in it afterwards."""
    import sqlalchemy

    name = f"dbfix_test_{uuid.uuid4().hex[:10]}"
    engine = sqlalchemy.create_engine(pg_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    try:
        yield pg_url, name
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
        engine.dispose()
