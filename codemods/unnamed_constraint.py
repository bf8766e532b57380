from __future__ import annotations

import ast
from collections.abc import Iterator

from dbfix.codemod import Codemod, FileContext
from dbfix.dbnames import claim, describe
from dbfix.findings import DatabaseChange, Edit, Finding, Impact, Safety
from dbfix.schema import (
    ConstraintFact,
    SchemaView,
    TableView,
    TakenNames,
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
    own truncation to 63 bytes and its `1`, `2`... suffixes on a clash. Where one of the project's Alembic
    revisions named the constraint (`op.create_foreign_key("team_captain_id", "teams", ...)`, a `name=`
    inside `op.create_table(...)`, later renames and drops in revision order), it writes that name: every
    upgraded database has it. Where the table's `MetaData` has a `naming_convention` for the kind, the
    convention names the constraint and nothing is reported.

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
    Safe: the name is the one the database has, so nothing changes. No fix where the name depends on the
    order in which constraints are created (an earlier one whose name cannot be told may have taken it),
    where a mixin's constraint lands on several tables, or where a check's SQL is not a literal. The
    project's database drivers decide whose names count: with only MySQL or SQLite drivers (PyMySQL,
    mysqlclient, aiosqlite...) there is no fix unless a revision gave the name (MySQL names constraints
    `<table>_ibfk_<n>` and unique keys after their first column; SQLite keeps no name); with PostgreSQL's
    and MySQL's, PostgreSQL's name is written but the fix is unsafe. With `[tool.dbfix] constraint-names = "convention"`
    the fix writes SQLAlchemy's recommended convention names instead (`uq_users_org_id_email`); that
    renames the constraint in the database and is unsafe.

    ## Database impact
    None with the default `constraint-names = "postgres"`. With `"convention"`: schema, an
    `ALTER TABLE ... RENAME CONSTRAINT` per constraint (Alembic autogenerate does not see renames).
    """

    code = "DBF006"
    name = "unnamed-constraint"
    triggers = r"Constraint|ForeignKey|foreign_key"
    declarations_only = True
    schema_only = True

    def detect(self, ctx: FileContext) -> Iterator[Finding]:
        view = view_for(ctx)
        calls = calls_by_pos(ctx)
        cyclic = {id(edge.fact): edge for edge in view.cyclic_foreign_keys()}
        taken = TakenNames(view.taken_names())
        for table, fact in in_module(view, ctx.names.module):
            if fact.kind not in KINDS or fact.named:
                continue
            if fact.place in ("column", "field") and fact.kind == "foreign_key" and id(fact) not in cyclic:
                continue
            call = calls.get(fact.pos)
            if call is not None:
                yield from self._constraint(ctx, view, table, fact, call, id(fact) in cyclic, taken)

    def _constraint(
        self, ctx: FileContext, view: SchemaView, table: TableView, fact: ConstraintFact, call: ast.Call, cyclic: bool, taken: TakenNames
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
        subject = f"the foreign key on `{table.name}.{fact.column}`" if fact.place == "column" and fact.kind == "foreign_key" else what
        message = f"{subject} has no name" + (" and lies on a foreign-key cycle: `drop_all` cannot drop it" if cyclic else "")
        if id(fact) in pg.duplicates:
            yield self.finding(ctx, call, f"{what} repeats the unique constraint of line {pg.duplicates[id(fact)]}: PostgreSQL keeps only one", notes=["remove one of them"])
            return
        name = pg.of(fact)
        reason = _reason(table, fact, pg.reasons.get(id(fact), ""))
        clashes = [u for u in view.names_in(table.schema).get(name, []) if not (u.table == table.key and u.fact is fact)] if name else []
        if clashes:
            name, reason = None, f"`{name}` is also PostgreSQL's choice for a constraint on `{clashes[0].table}`, so the name depends on the order of creation"
        found = claim(ctx.index, ctx.versions.databases, table, fact.kind, _columns(table, fact), name, sqltext=fact.sqltext)
        if found.name is None:
            yield self.finding(ctx, call, message, notes=[found.note or f"no automatic name: {reason}"])
            return
        name, given = found.name, describe(found)
        notes = [found.note] if found.note else []
        new = self._convention_name(view, table, fact, taken) if ctx.config.constraint_names == "convention" else name
        if new is None or new == name:
            yield self.finding(
                ctx,
                call,
                f"{message}; {given} named it `{name}`",
                edits=[Edit(ctx.span(call), "add_kwarg", ("name", literal(name)))],
                description=f"write the name {given} gave it: `{name}`",
                safety=Safety.UNSAFE if found.unsafe else None,
                notes=notes,
            )
            return
        rename = rename_constraint_sql(table, name, new)
        back = rename_constraint_sql(table, new, name)
        yield self.finding(
            ctx,
            call,
            f"{message}; {given} named it `{name}`, the convention says `{new}`",
            edits=[Edit(ctx.span(call), "add_kwarg", ("name", literal(new)))],
            description=f"name it `{new}` and rename the constraint in the database",
            safety=Safety.UNSAFE,
            impact=Impact.SCHEMA,
            database=DatabaseChange((rename,), (back,), (f"op.execute({rename!r})",), (f"op.execute({back!r})",), key=f"constraint:{qualified(table.name, table.schema)}:{name}"),
            notes=notes,
        )

    @staticmethod
    def _convention_name(view: SchemaView, table: TableView, fact: ConstraintFact, taken: TakenNames) -> str | None:
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


def _reason(table: TableView, fact: ConstraintFact, reason: str) -> str:
    """Why PostgreSQL's name for the constraint cannot be told (`PgNames.reasons`)."""
    if reason == "sql":
        return "its SQL is not a string literal"
    if reason.startswith("columns:"):
        return f"`{reason[len('columns:'):]}` is not a column dbfix can see on `{table.name}`"
    return "an earlier constraint of the table whose name dbfix cannot tell may have taken PostgreSQL's name for it, so the name depends on the order of creation"


def _columns(table: TableView, fact: ConstraintFact) -> list[str] | None:
    """The database names of the constrained columns (the referencing ones for a foreign key)."""
    if fact.place in ("column", "field"):
        info = table.columns.get(fact.column or "")
        return [info.name] if info is not None else None
    return table.column_names(fact.columns)


def _short(code: str) -> str:
    code = " ".join(code.split())
    return code if len(code) <= 60 else code[:57] + "..."
