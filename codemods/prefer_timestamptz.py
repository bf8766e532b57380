from __future__ import annotations

import ast
from collections.abc import Iterator

from dbfix.codemod import Codemod, FileContext
from dbfix.datetimes import _model_at, awareness, make_aware, utc_spelling
from dbfix.findings import DatabaseChange, Edit, Finding, Impact, Safety
from dbfix.index import (
    COLUMN_CALLS,
    DATETIME_TYPES,
    FIELD_CALLS,
    MAPPED_COLUMN_CALLS,
    _kw,
)

DEFAULTS = ("default", "onupdate", "insert_default", "default_factory")


class PreferTimestamptz(Codemod):
    """A naive `DateTime()` column: store `timestamptz` instead (opt-in).

    ## What it does
    Turns `DateTime()` / `TIMESTAMP()` columns without `timezone=True` into `DateTime(timezone=True)` and
    makes their Python defaults aware (`datetime.now(UTC)`). Select it explicitly: `--select DBF012`.

    ## Why is this bad?
    A `timestamp without time zone` holds a wall-clock time with no offset. Every reader must know which
    zone the writer meant, `server_default=func.now()` writes the *session's* local time, and aware values
    are rejected by asyncpg or shifted by psycopg. `timestamptz` stores an instant.

    ## Example
    ```python
    created_at = Column(DateTime, default=lambda: datetime.now(UTC).replace(tzinfo=None))
    ```

    ## Use instead
    ```python
    created_at = Column(DateTime(timezone=True), default=lambda: datetime.now(UTC))
    ```

    ## Fix safety
    Unsafe: values read back become aware, which changes comparisons with naive datetimes in the code.

    ## Database impact
    Schema: the column type changes, and the existing values must be read as UTC while converting:
    `ALTER TABLE t ALTER COLUMN c TYPE timestamptz USING c AT TIME ZONE 'UTC'` (a plain `ALTER ... TYPE`
    would read them in the session's time zone).
    """

    code = "DBF012"
    name = "prefer-timestamptz"
    safety = Safety.UNSAFE
    impact = Impact.SCHEMA
    default_enabled = False
    triggers = r"DateTime|TIMESTAMP|DATETIME"
    declarations_only = True
    parse_whole = True

    def detect(self, ctx: FileContext) -> Iterator[Finding]:
        for call in ctx.nodes(ast.Call):
            func = ctx.q(call.func)
            if func in COLUMN_CALLS or func in MAPPED_COLUMN_CALLS:
                type_node = self._type_argument(ctx, call)
            elif func in FIELD_CALLS:
                type_node = _kw(call, "sa_type")
            else:
                continue
            if type_node is None:
                continue
            type_call = type_node if isinstance(type_node, ast.Call) else None
            if ctx.q(type_call.func if type_call else type_node) not in DATETIME_TYPES:
                continue
            timezone = _kw(type_call, "timezone") if type_call else None
            if timezone is not None and not (isinstance(timezone, ast.Constant) and timezone.value is False):
                continue
            yield self._finding(ctx, call, type_node, type_call)

    @staticmethod
    def _type_argument(ctx: FileContext, call: ast.Call) -> ast.expr | None:
        explicit = _kw(call, "type_")
        if explicit is not None:
            return explicit
        args = [a for a in call.args if not (isinstance(a, ast.Constant) and isinstance(a.value, str))]
        return args[0] if args else None

    def _finding(self, ctx: FileContext, call: ast.Call, type_node: ast.expr, type_call: ast.Call | None) -> Finding:
        if type_call is None:
            edits = [Edit(ctx.span(type_node), "wrap", ("{}(timezone=True)",))]
        else:
            edits = [Edit(ctx.span(type_call), "set_kwarg", ("timezone", "True"))]
        imports: tuple = ()
        for keyword in call.keywords:
            if keyword.arg in DEFAULTS and awareness(ctx, keyword.value) == "naive":
                utc = utc_spelling(ctx, keyword.value)
                more = make_aware(ctx, keyword.value, utc) if utc else None
                if more is None:
                    return self.finding(ctx, type_node, self._message(ctx, call) + " (its default needs a manual change)")
                edits.extend(more)
                imports += utc.imports if utc else ()
        return self.finding(
            ctx,
            type_node,
            self._message(ctx, call),
            edits=edits,
            imports=imports,
            description="store timestamptz: `DateTime(timezone=True)`",
            database=self._database(ctx, call),
        )

    def _message(self, ctx: FileContext, call: ast.Call) -> str:
        return f"`{self._column(ctx, call)[1]}` stores a naive `timestamp`; prefer `DateTime(timezone=True)`"

    @staticmethod
    def _column(ctx: FileContext, call: ast.Call) -> tuple[str | None, str]:
        model = _model_at(ctx, call)
        statement = ctx.parent(call)
        if isinstance(statement, ast.keyword):
            statement = ctx.parent(ctx.parent(statement))  # Field(sa_column=Column(...))
        attr = "?"
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            attr = statement.target.id
        elif isinstance(statement, ast.Assign) and isinstance(statement.targets[0], ast.Name):
            attr = statement.targets[0].id
        name = attr
        if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
            name = call.args[0].value
        elif model is not None and attr in model.columns:
            name = model.columns[attr].name
        return (model.table if model else None), name

    def _database(self, ctx: FileContext, call: ast.Call) -> DatabaseChange | None:
        table, column = self._column(ctx, call)
        if table is None:
            return None
        using = f"{_quote(column)} AT TIME ZONE 'UTC'"
        return DatabaseChange(
            upgrade_sql=(f"ALTER TABLE {_quote(table)} ALTER COLUMN {_quote(column)} TYPE timestamptz USING {using}",),
            downgrade_sql=(f"ALTER TABLE {_quote(table)} ALTER COLUMN {_quote(column)} TYPE timestamp USING {using}",),
            alembic_upgrade=(
                f"op.alter_column({table!r}, {column!r}, type_=sa.DateTime(timezone=True), postgresql_using={using!r})",
            ),
            alembic_downgrade=(
                f"op.alter_column({table!r}, {column!r}, type_=sa.DateTime(), postgresql_using={using!r})",
            ),
            key=f"timestamptz:{table}.{column}",
        )


def _quote(identifier: str) -> str:
    if identifier.isidentifier() and identifier.islower():
        return identifier
    return '"' + identifier.replace('"', '""') + '"'
