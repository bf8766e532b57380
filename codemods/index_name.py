from __future__ import annotations

import ast
from collections.abc import Iterator

from dbfix.codemod import Codemod, FileContext
from dbfix.findings import DatabaseChange, Edit, Finding, Impact, Safety
from dbfix.index import COLUMN_CALLS, FIELD_CALLS, MAPPED_COLUMN_CALLS
from dbfix.schema import (
    CONCURRENTLY_NOTE,
    ColumnArg,
    ConstraintFact,
    NameUse,
    SchemaView,
    TableView,
    TakenNames,
    alembic_create_index,
    alembic_drop_index,
    built_name,
    calls_by_pos,
    create_index_sql,
    drop_index_sql,
    in_module,
    index_name_today,
    literal,
    unique_name,
    view_for,
)


class IndexName(Codemod):
    """`Index(...)` without a name string: a misbuilt index, or a generated name that collides.

    ## What it does
    Finds `Index(User.org_id, User.email)` (module level, `__table_args__`, `Table(...)`, SQLModel
    models alike), where the first argument is a column although `Index` takes the index *name* first,
    and `Index("org_id", "email")` whose "name" is a column of the table. It inserts the name
    `ix_<table>_<column>_<column>...` and keeps every column. It also names `Index(None, ...)` with the
    name SQLAlchemy generates for it today, or, when that name collides with another index of the same
    schema (typically `index=True` on the first column), with the full-column name. It reports
    explicit index names and `index=True` names that another index of the schema already takes.

    ## Why is this bad?
    `Index(User.org_id, User.email)` raises nothing: SQLAlchemy turns the first column into the name,
    and builds `CREATE INDEX "User.org_id" ON users (email)`, an index on `email` only, under a name
    nobody will recognise. `Index(None, ...)` is named after its first column only
    (`ix_users_org_id`), exactly like `index=True` on that column: `create_all` then fails with
    `relation "ix_users_org_id" already exists`. PostgreSQL index names are unique per schema (SQLite's
    per database); a project whose only drivers are MySQL's is checked per table, as MySQL names them.

    ## Example
    ```python
    Index(User.org_id, User.email)

    class Membership(Base):
        __table_args__ = (Index(None, "user_id", "role"),)
    ```

    ## Use instead
    ```python
    Index("ix_users_org_id_email", User.org_id, User.email)

    class Membership(Base):
        __table_args__ = (Index("ix_memberships_user_id", "user_id", "role"),)
    ```

    ## Fix safety
    Naming `Index(None, ...)` as it is named today is safe. Repairing a misbuilt index, or renaming a
    colliding one, is unsafe: the database needs a migration. Generated names stay within PostgreSQL's
    63 characters the way SQLAlchemy's naming conventions do (`_` + 4 hex characters of an md5), and are
    unique across the project.

    ## Database impact
    None for `Index(None, ...)` without a collision. Schema otherwise: the migration drops the misbuilt
    index (`DROP INDEX "User.org_id"`) and creates the intended one (`CREATE INDEX ix_users_org_id_email
    ON users (org_id, email)`); the finding carries the SQL and the Alembic operations.
    """

    code = "DBF005"
    name = "index-name"
    safety = Safety.UNSAFE
    impact = Impact.SCHEMA
    triggers = r"Index|index\s*="
    declarations_only = True
    schema_only = True

    def detect(self, ctx: FileContext) -> Iterator[Finding]:
        view = view_for(ctx)
        calls = calls_by_pos(ctx)
        module = ctx.names.module
        taken = TakenNames(view.taken_names())
        for table, fact in in_module(view, module):
            call = calls.get(fact.pos)
            if fact.kind != "index" or call is None:
                continue
            finding = self._index(ctx, view, table, fact, call, taken)
            if finding is not None:
                yield finding
        for fact in view.orphans:
            call = calls.get(fact.pos)
            if fact.module == module and fact.first is not None and call is not None:
                yield self.finding(
                    ctx, call, f"`{ctx.code(call)}`: the first argument of `Index` is its name, not a column", notes=[
                        "give the index a name string first: `Index(\"ix_<table>_<columns>\", ...)`"
                    ],
                )
        yield from self._column_collisions(ctx, view, module)

    def _index(self, ctx: FileContext, view: SchemaView, table: TableView, fact: ConstraintFact, call: ast.Call, taken: TakenNames) -> Finding | None:
        shared = len(view.owners_sharing(fact)) > 1
        if fact.first is not None or self._name_is_a_column(table, fact):
            return self._misbuilt(ctx, view, table, fact, call, taken, shared)
        if fact.name is not None:
            others = self._others(view, table, fact, fact.name, per_table=_per_table(ctx))
            if others:
                return self.finding(ctx, call, f"index name `{fact.name}` is also taken by {_describe(view, others[0])}; PostgreSQL refuses the second one (`relation \"{fact.name}\" already exists`)")
            return None
        if fact.named or shared:
            return None
        return self._unnamed(ctx, view, table, fact, call, taken)

    @staticmethod
    def _name_is_a_column(table: TableView, fact: ConstraintFact) -> bool:
        # `Index("org_id", "email")`: the author listed two columns; SQLAlchemy took the first as the name
        if fact.name is None or table.column_names([_name_arg(fact.name)]) is None:
            return False
        return fact.name not in (table.column_names(fact.columns) or [])

    def _misbuilt(self, ctx: FileContext, view: SchemaView, table: TableView, fact: ConstraintFact, call: ast.Call, taken: TakenNames, shared: bool) -> Finding:
        first = fact.first or _name_arg(fact.name or "")
        old = fact.name if fact.first is None else built_name(view, first)
        built = table.column_names(fact.columns) or []
        intended = table.column_names([first, *fact.columns])
        shown = f"\"{old}\"" if old else "an index"
        message = f"`Index` takes its name first: this builds {shown} on ({', '.join(built)}) only" if built else f"`Index` takes its name first: `{ctx.code(call)}` builds no index"
        if intended is None or shared or any(a.kind == "expr" for a in fact.columns):
            return self.finding(ctx, call, message, notes=["give the index a name string as its first argument"])
        new = unique_name(f"ix_{table.name}_{'_'.join(intended)}", taken)
        taken.add(new)
        upgrade, downgrade = [create_index_sql(new, table, intended, fact.unique)], [drop_index_sql(new, table)]
        alembic_up, alembic_down = [alembic_create_index(new, table, intended, fact.unique)], [alembic_drop_index(new, table)]
        if built and old:
            upgrade.insert(0, drop_index_sql(old, table))
            downgrade.append(create_index_sql(old, table, built, fact.unique))
            alembic_up.insert(0, alembic_drop_index(old, table))
            alembic_down.append(alembic_create_index(old, table, built, fact.unique))
        notes = [CONCURRENTLY_NOTE]
        if fact.options:
            notes.append(f"the SQL above leaves out {', '.join(fact.options)}: add them to the CREATE INDEX")
        return self.finding(
            ctx,
            call,
            message,
            edits=[Edit(ctx.span(call), "insert_arg", (0, literal(new)))],
            description=f"name the index `{new}` on ({', '.join(intended)})",
            database=DatabaseChange(tuple(upgrade), tuple(downgrade), tuple(alembic_up), tuple(alembic_down), key=f"index:{table.key}:{new}"),
            notes=notes,
        )

    def _unnamed(self, ctx: FileContext, view: SchemaView, table: TableView, fact: ConstraintFact, call: ast.Call, taken: TakenNames) -> Finding | None:
        today = index_name_today(view, table, fact)
        columns = table.column_names(fact.columns)
        if today is None or columns is None:
            return None
        others = self._others(view, table, fact, today, per_table=_per_table(ctx))
        convention, _ = view.convention(table.metadata)
        if not others:
            if convention and "ix" in convention:
                return None  # the project's own convention names it; nothing collides
            return self.finding(
                ctx,
                call,
                f"`Index` without a name: SQLAlchemy names it `{today}` after its first column only",
                edits=[self._name_edit(ctx, call, today)],
                description=f"write the name it has today: `{today}`",
                safety=Safety.SAFE,
                impact=Impact.NONE,
            )
        message = f"`Index` without a name gets `{today}`, also taken by {_describe(view, others[0])}: `create_all` fails with `relation \"{today}\" already exists`"
        if len(columns) < 2:
            return self.finding(ctx, call, message, notes=["the two indexes cover the same column: remove one"])
        new = unique_name(f"ix_{table.name}_{'_'.join(columns)}", taken)
        taken.add(new)
        return self.finding(
            ctx,
            call,
            message,
            edits=[self._name_edit(ctx, call, new)],
            description=f"name the index `{new}` after all its columns",
            database=DatabaseChange(
                (create_index_sql(new, table, columns, fact.unique),),
                (drop_index_sql(new, table),),
                (alembic_create_index(new, table, columns, fact.unique),),
                (alembic_drop_index(new, table),),
                key=f"index:{table.key}:{new}",
            ),
            notes=[
                (
                    f"if the database already has `{today}` on ({', '.join(columns)}), rename it instead: "
                    f"`ALTER INDEX {today} RENAME TO {new}`"
                ),
                CONCURRENTLY_NOTE,
            ],
        )

    @staticmethod
    def _name_edit(ctx: FileContext, call: ast.Call, name: str) -> Edit:
        if call.args and isinstance(call.args[0], ast.Constant) and call.args[0].value is None:
            return Edit(ctx.span(call.args[0]), "replace", (literal(name),))
        if any(k.arg == "name" for k in call.keywords):
            return Edit(ctx.span(call), "set_kwarg", ("name", literal(name)))
        return Edit(ctx.span(call), "insert_arg", (0, literal(name)))

    @staticmethod
    def _others(view: SchemaView, table: TableView, fact: ConstraintFact | None, name: str, column: str | None = None, *, per_table: bool = False) -> list[NameUse]:
        uses = view.names_in(table.schema, relation=True).get(name, [])
        if per_table:
            uses = [u for u in uses if u.table == table.key]
        return [u for u in uses if not (u.table == table.key and ((fact is not None and u.fact is fact) or (column is not None and u.column == column)))]

    def _column_collisions(self, ctx: FileContext, view: SchemaView, module: str) -> Iterator[Finding]:
        """`index=True` whose generated name another table's index takes (a convention without the table)."""
        for table in view.tables_in(module):
            for attr, info in table.columns.items():
                if not info.index or info.module not in ("", module):
                    continue
                name = view.sa_name(table, "index", [info])
                if name is None:
                    continue
                others = self._others(view, table, None, name, attr, per_table=_per_table(ctx))
                node = _column_call(ctx, table, attr)
                if not others or node is None or any(u.fact is not None for u in others):
                    continue  # a clash with an `Index(...)` is reported at the Index
                if min((u.table, u.column or "") for u in others) < (table.key, attr):
                    continue  # report the later one only
                template = view.convention_template(table, "index")[0] or ""
                note = "include the table in the index convention: `\"ix\": \"ix_%(column_0_label)s\"`" if "table_name" not in template and "column_0_label" not in template else "give one of them an explicit `Index(...)` name"
                yield self.finding(ctx, node, f"`index=True` on `{attr}` is named `{name}`, also taken by {_describe(view, others[0])}", notes=[note])


def _per_table(ctx: FileContext) -> bool:
    """MySQL names indexes per table; PostgreSQL (per schema) and SQLite (per database) do not."""
    return set(ctx.versions.databases) == {"mysql"}


def _name_arg(name: str) -> ColumnArg:
    return ColumnArg("name", name)


def _describe(view: SchemaView, use: NameUse) -> str:
    table = view.tables.get(use.table)
    where = table.qualified if table else use.table
    if use.kind == "table":
        return f"the table `{where}`"
    if use.column:
        return f"`index=True` on `{where}.{use.column}`" if use.kind == "index" else f"`unique=True` on `{where}.{use.column}`"
    line = f" (line {use.fact.line} of {use.fact.module})" if use.fact else ""
    kind = use.kind.replace("_", " ")
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} on `{where}`{line}"


def _column_call(ctx: FileContext, table: TableView, attr: str) -> ast.AST | None:
    """The call (or the annotated name) that declares a column in this file."""
    info = table.columns[attr]
    for node in ctx.nodes(ast.Call):
        if node.lineno == info.line and ctx.q(node.func) in (*COLUMN_CALLS, *MAPPED_COLUMN_CALLS, *FIELD_CALLS):
            return node
    return None
