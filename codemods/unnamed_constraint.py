from __future__ import annotations

import ast
from collections.abc import Iterator

from dbfix.codemod import Codemod, FileContext
from dbfix.findings import DatabaseChange, Edit, Finding, Impact, Safety
from dbfix.schema import (
    ConstraintFact,
    SchemaView,
    TableView,
    calls_by_pos,
    check_columns,
    in_module,
    literal,
    qualified,
    rename_constraint_sql,
    unique_name,
    view_for,
)

KINDS = {"unique": "UniqueConstraint", "check": "CheckConstraint", "foreign_key": "ForeignKeyConstraint"}


class UnnamedConstraint(Codemod):
    """A unique, check or foreign-key constraint without a name.

    ## What it does
    Finds `UniqueConstraint(...)`, `CheckConstraint(...)` and `ForeignKeyConstraint(...)` without
    `name=` (in `__table_args__`, in `Table(...)`, or a `CheckConstraint` inside a column), and
    `ForeignKey(...)` without a name on a foreign-key cycle between tables, and writes the name
    PostgreSQL already gave the constraint: `<table>_<columns>_key`, `<table>_<column>_check` when the
    expression references one column (else `<table>_check`), `<table>_<columns>_fkey`, with PostgreSQL's
    own truncation to 63 bytes and its `1`, `2`... suffixes on a clash. Where the table's `MetaData` has a
    `naming_convention` for the kind, the convention names the constraint and nothing is reported.

    ## Why is this bad?
    An unnamed constraint can't be dropped or altered by name from SQLAlchemy: `drop_all` fails on a
    foreign-key cycle (`CircularDependencyError ... ensure that the ForeignKey and ForeignKeyConstraint
    objects involved in the cycle have names`), and migrations have to guess the name the database chose.
    SQLite test databases choose other names than PostgreSQL.

    ## Example
    ```python
    class User(Base):
        __tablename__ = "users"
        __table_args__ = (UniqueConstraint("org_id", "email"), CheckConstraint("age >= 0"))
    ```

    ## Use instead
    ```python
    class User(Base):
        __tablename__ = "users"
        __table_args__ = (
            UniqueConstraint("org_id", "email", name="users_org_id_email_key"),
            CheckConstraint("age >= 0", name="users_age_check"),
        )
    ```

    ## Fix safety
    Safe: the name is the one PostgreSQL gave the constraint, so nothing changes. No fix where the name
    depends on the order in which tables are created, where a mixin's constraint lands on several
    tables, or where a check's SQL is not a literal. With `[tool.dbfix] constraint-names = "convention"`
    the fix writes SQLAlchemy's recommended convention names instead (`uq_users_org_id_email`); that
    renames the constraint in the database and is unsafe.

    ## Database impact
    None with the default `constraint-names = "postgres"`. With `"convention"`: schema, an
    `ALTER TABLE ... RENAME CONSTRAINT` per constraint (Alembic autogenerate does not see renames).
    """

    code = "DBF006"
    name = "unnamed-constraint"
    triggers = r"Constraint|ForeignKey|foreign_key"

    def detect(self, ctx: FileContext) -> Iterator[Finding]:
        view = view_for(ctx)
        calls = calls_by_pos(ctx)
        cyclic = {id(edge.fact): edge for edge in view.cyclic_foreign_keys()}
        taken = set(view.taken_names())
        for table, fact in in_module(view, ctx.names.module):
            if fact.kind not in KINDS or fact.named:
                continue
            if fact.place in ("column", "field") and fact.kind == "foreign_key" and id(fact) not in cyclic:
                continue
            call = calls.get(fact.pos)
            if call is not None:
                yield from self._constraint(ctx, view, table, fact, call, id(fact) in cyclic, taken)

    def _constraint(
        self, ctx: FileContext, view: SchemaView, table: TableView, fact: ConstraintFact, call: ast.Call, cyclic: bool, taken: set[str]
    ) -> Iterator[Finding]:
        what = f"`{_short(ctx.code(call))}`"
        owners = view.owners_sharing(fact)
        if len(owners) > 1:
            tables = ", ".join(t.name for t in owners)
            yield self.finding(ctx, call, f"{what} has no name and lands on {len(owners)} tables ({tables}), each naming it differently", notes=[
                "add a `naming_convention` to the MetaData, or build the constraint per table in a `declared_attr` `__table_args__`"
            ])
            return
        template, known = view.convention_template(table, fact.kind)
        if not known:
            return
        if template is not None:
            if "%(constraint_name)s" in template:
                yield self.finding(ctx, call, f"{what} has no name, but the naming convention `{template}` needs one: SQLAlchemy raises `InvalidRequestError` when the table is defined")
            return
        if fact.place == "field":
            yield self.finding(ctx, call, f"the foreign key on `{table.name}.{fact.column}` is on a cycle and has no name; `Field(foreign_key=...)` cannot carry one", notes=[
                "DBF008 (circular-foreign-key) moves it to `sa_column_args=(ForeignKey(..., name=...),)`"
            ])
            return
        pg = view.pg_names(table)
        name = pg.of(fact)
        subject = f"the foreign key on `{table.name}.{fact.column}`" if fact.place == "column" and fact.kind == "foreign_key" else what
        message = f"{subject} has no name" + (" and lies on a foreign-key cycle: `drop_all` cannot drop it" if cyclic else "")
        if id(fact) in pg.duplicates:
            yield self.finding(ctx, call, f"{what} repeats the unique constraint of line {pg.duplicates[id(fact)]}: PostgreSQL keeps only one", notes=["remove one of them"])
            return
        if name is None:
            reason = "its SQL is not a string literal" if fact.kind == "check" and fact.sqltext is None else "the name PostgreSQL chose depends on the order of creation"
            yield self.finding(ctx, call, message, notes=[f"no automatic name: {reason}"])
            return
        clashes = [u for u in view.names_in(table.schema).get(name, []) if not (u.table == table.key and u.fact is fact)]
        if clashes:
            yield self.finding(ctx, call, message, notes=[f"no automatic name: `{name}` is also PostgreSQL's choice for a constraint on `{clashes[0].table}`, so the name depends on the order of creation"])
            return
        new = self._convention_name(view, table, fact, taken) if ctx.config.constraint_names == "convention" else name
        if new is None or new == name:
            yield self.finding(
                ctx,
                call,
                f"{message}; PostgreSQL named it `{name}`",
                edits=[Edit(ctx.span(call), "add_kwarg", ("name", literal(name)))],
                description=f"write the name PostgreSQL gave it: `{name}`",
            )
            return
        rename = rename_constraint_sql(table, name, new)
        back = rename_constraint_sql(table, new, name)
        yield self.finding(
            ctx,
            call,
            f"{message}; PostgreSQL named it `{name}`, the convention says `{new}`",
            edits=[Edit(ctx.span(call), "add_kwarg", ("name", literal(new)))],
            description=f"name it `{new}` and rename the constraint in the database",
            safety=Safety.UNSAFE,
            impact=Impact.SCHEMA,
            database=DatabaseChange((rename,), (back,), (f"op.execute({rename!r})",), (f"op.execute({back!r})",), key=f"constraint:{qualified(table.name, table.schema)}:{name}"),
        )

    @staticmethod
    def _convention_name(view: SchemaView, table: TableView, fact: ConstraintFact, taken: set[str]) -> str | None:
        """SQLAlchemy's documented convention: `uq_%(table_name)s_%(column_0_N_name)s`, `ck_<table>_<column>`,
        `fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s`."""
        if fact.kind == "check":
            refs = check_columns(fact.sqltext or "", [c.name for c in table.columns.values()]) or set()
            base = f"ck_{table.name}_{refs.pop()}" if len(refs) == 1 else f"ck_{table.name}"
        elif fact.kind == "unique":
            columns = table.column_names(fact.columns)
            if columns is None:
                return None
            base = f"uq_{table.name}_{'_'.join(columns)}"
        else:
            edge = next((e for e in view.foreign_keys() if e.fact is fact), None)
            if edge is None or edge.target is None:
                return None
            base = f"fk_{table.name}_{'_'.join(edge.columns)}_{edge.target.name}"
        name = unique_name(base, taken)
        taken.add(name)
        return name


def _short(code: str) -> str:
    code = " ".join(code.split())
    return code if len(code) <= 60 else code[:57] + "..."
