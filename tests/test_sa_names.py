"""The names dbfix spells out itself agree with the ones SQLAlchemy renders."""

from __future__ import annotations

import pytest

from dbfix.schema import _sa_rendered_name, sa_rendered_name

TABLES = ["users", "User", "my table", "a" * 30, "x" * 50, "Ünï"]
COLUMNS = [("email", "email"), ("key", "Email"), ("org id", "org id"), ("b", "b" * 40), ("c", "ç")]


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("schema", [None, "tenant"])
@pytest.mark.parametrize("convention", [None, {"ix": "ix_%(column_0_label)s"}])
def test_index_true_names_match_sqlalchemy(table: str, schema: str | None, convention: dict[str, str] | None) -> None:
    for column in COLUMNS:
        assert sa_rendered_name(table, schema, [column], "index", convention) == _sa_rendered_name(
            table, schema, [column], "index", convention
        )


def test_rendered_names_are_plain_strings() -> None:
    # SQLAlchemy's str subclasses would make every cache and snapshot holding them import SQLAlchemy
    convention = {"ix": "%(table_name)s_%(column_0_name)s_idx", "uq": "%(table_name)s_%(column_0_name)s_key"}
    for kind in ("index", "unique"):
        name = sa_rendered_name("users", "tenant", [("email", "email")], kind, convention)
        assert name == f"users_email_{'idx' if kind == 'index' else 'key'}" and type(name) is str
