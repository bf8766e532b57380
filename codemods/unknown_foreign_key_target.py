from __future__ import annotations

import ast
from collections.abc import Iterator

from dbfix.codemod import Codemod, FileContext
from dbfix.findings import Finding
from dbfix.fkgraph import Edge, graph_for, in_module
from dbfix.index import _kw
from dbfix.schema import calls_by_pos


class UnknownForeignKeyTarget(Codemod):
    """A foreign key names a table or column that no model of its MetaData defines.

    ## What it does
    Resolves every `ForeignKey("table.column")`, `ForeignKeyConstraint(..., ["table.column"])` and SQLModel
    `Field(foreign_key="table.column")` against the tables that the project's models and `Table(...)`
    objects define on the same MetaData, across files. When the table or the column does not exist, it
    says why: the closest existing name (a typo), a table of that name on a different declarative base or
    MetaData, or in another schema.

    ## Why is this bad?
    The models import fine, and even `configure_mappers()` passes; the first `metadata.create_all()` (or
    anything that sorts the tables) fails with `NoReferencedTableError: Foreign key associated with column
    'users.org_id' could not find table 'organizations' with which to generate a foreign key to target column
    'id'`. The cause is never a circular foreign key: it is a misspelt table, a model on another `Base`, a
    schema that is missing from the string, or a model module that is never imported.

    ## Example
    ```python
    class User(Base):
        __tablename__ = "users"
        org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))

    class Organization(Base):
        __tablename__ = "organizations"
    ```

    ## Use instead
    ```python
    class User(Base):
        __tablename__ = "users"
        org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    ```

    ## Fix safety
    There is no automatic fix: only the author knows which table was meant.

    ## Database impact
    None: it is a diagnostic.
    """

    code = "DBF009"
    name = "unknown-foreign-key-target"
    fixable = False
    triggers = r"ForeignKey|foreign_key"
    declarations_only = True
    schema_only = True

    def detect(self, ctx: FileContext) -> Iterator[Finding]:
        g = graph_for(ctx)
        calls = calls_by_pos(ctx)
        for fact, edges in in_module(g, ctx.names.module):
            call = calls.get(fact.pos)
            # a mixin's FK counts as broken only if it is broken for every table that has it
            if call is None or any(e.problem is None for e in edges):
                continue
            edge = edges[0]
            yield self.finding(
                ctx,
                _target_node(call, fact.place) or call,
                f"foreign key `{edge.label}` → `{edge.fk.target_text}`: {edge.problem}",
                notes=(f"`metadata.create_all()` (anything that sorts the tables) raises `{_error(edge)}`",),
            )


def _error(edge: Edge) -> str:
    """SQLAlchemy's own message for this FK (as SQLAlchemy 2.1 words it)."""
    spec = edge.fact.referred[0].value
    parts = spec.split(".")
    column = f"{edge.table.name}.{edge.fk.columns[0]}"
    if edge.target is not None:
        return (
            f"NoReferencedColumnError: Could not initialize target column for ForeignKey '{spec}' on "
            f"table '{edge.table.name}': table '{edge.target.name}' has no column named '{parts[-1]}'"
        )
    return (
        f"NoReferencedTableError: Foreign key associated with column '{column}' could not find table "
        f"'{'.'.join(parts[:-1])}' with which to generate a foreign key to target column '{parts[-1]}'"
    )


def _target_node(call: ast.Call, place: str) -> ast.expr | None:
    if place == "field":
        return _kw(call, "foreign_key")
    if place in ("table_args", "table"):
        return call.args[1] if len(call.args) > 1 else _kw(call, "refcolumns")
    return call.args[0] if call.args else _kw(call, "column")
