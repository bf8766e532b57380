"""The names dbfix spells out itself agree with the ones SQLAlchemy renders."""

from __future__ import annotations

import pytest

from dbfix.schema import _sa_rendered_name, sa_rendered_name

TABLES = ["users", "User", "my table", "a" * 30, "x" * 50, "Ünï"]
COLUMNS = [("email", "email"), ("key", "Email"), ("org id", "org id"), ("b", "b" * 40), ("c", "ç")]


CONVENTIONS = [
    None,
    {"ix": "ix_%(column_0_label)s"},
    {  # polar's
        "ix": "ix_%(column_0_N_label)s",
        "uq": "%(table_name)s_%(column_0_N_name)s_key",
        "ck": "%(table_name)s_%(constraint_name)s_check",
        "fk": "%(table_name)s_%(column_0_N_name)s_fkey",
        "pk": "%(table_name)s_pkey",
    },
    {  # Alembic's documented one, with referred tokens and joined names
        "ix": "ix_%(column_0N_label)s",
        "uq": "uq_%(table_name)s_%(column_0N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s_%(referred_column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    },
    {"uq": "uq_%(column_0_key)s", "ix": "%%_%(table_name)s_%(column_0_name)s"},  # a key token: SQLAlchemy's
]
KINDS = ["index", "unique", "foreign_key", "primary_key"]


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("schema", [None, "tenant"])
@pytest.mark.parametrize("convention", CONVENTIONS)
def test_names_spelled_without_sqlalchemy_match_it(table: str, schema: str | None, convention: dict[str, str] | None) -> None:
    for kind in KINDS:
        for columns in ([c] for c in COLUMNS) if kind == "index" else ([COLUMNS[0]], COLUMNS[:2], [COLUMNS[3], COLUMNS[0]]):
            referred = ("orgs", None, [(f"id{i}", f"id{i}") for i in range(len(columns))]) if kind == "foreign_key" else None
            assert sa_rendered_name(table, schema, columns, kind, convention, referred=referred) == _sa_rendered_name(
                table, schema, columns, kind, convention, referred=referred
            ), (table, schema, columns, kind, convention)


def test_rendered_names_are_plain_strings() -> None:
    # SQLAlchemy's str subclasses would make every cache and snapshot holding them import SQLAlchemy
    convention = {"ix": "%(table_name)s_%(column_0_name)s_idx", "uq": "%(table_name)s_%(column_0_name)s_key"}
    for kind in ("index", "unique"):
        name = sa_rendered_name("users", "tenant", [("email", "email")], kind, convention)
        assert name == f"users_email_{'idx' if kind == 'index' else 'key'}" and type(name) is str


def test_common_tokens_are_spelled_without_sqlalchemy() -> None:
    from dbfix.schema import _spelled

    polar = CONVENTIONS[2]
    assert _spelled("users", None, [("email", "email"), ("org", "org_id")], "unique", polar, None) == "users_email_org_id_key"
    assert _spelled("users", None, [("email", "email")], "index", polar, None) == "ix_users_email"
    assert _spelled("users", "tenant", [("email", "email")], "index", polar, None) is None  # a label with a schema
    assert _spelled("x" * 60, None, [("email", "email")], "unique", polar, None) is None  # SQLAlchemy truncates
