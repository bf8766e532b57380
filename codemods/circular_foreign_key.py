from __future__ import annotations

import ast
from collections.abc import Iterator

from dbfix.codemod import Codemod, FileContext
from dbfix.dbnames import Claim, claim, describe
from dbfix.findings import Edit, Finding, Safety
from dbfix.fkgraph import Break, Edge, FkGraph, graph_for, in_module, literal
from dbfix.index import _const, _kw
from dbfix.schema import ConstraintFact, calls_by_pos

ALEMBIC_326 = (
    "Alembic autogenerate renders `use_alter=True` FKs inside `op.create_table(...)` and then creates no FK at "
    "all (sqlalchemy/alembic#326): a migration that creates these tables needs"
)


class CircularForeignKey(Codemod):
    """Foreign keys that form a cycle between tables need `use_alter=True` and a name.

    ## What it does
    Builds the foreign-key graph of every model and `Table` of the project, per MetaData and across files
    (`ForeignKey("table.col")`, `ForeignKey(Model.col)`, `ForeignKeyConstraint`, SQLModel
    `Field(foreign_key=...)`, schemas), finds its cycles, and chooses the smallest set of foreign keys that
    breaks all of them (nullable columns first, then a stable order). On each it adds `use_alter=True` and
    the name the database already gave the constraint: the one a revision of the project's Alembic
    migrations gave it (`op.create_foreign_key("team_captain_id", ...)`), else PostgreSQL's
    (`<table>_<column>_fkey`). A project whose drivers are only MySQL's or SQLite's gets no fix unless
    the code or a revision names the FK (MySQL's `<table>_ibfk_<n>` depends on creation order). A SQLModel
    `Field(foreign_key=...)` cannot carry either, so it becomes
    `Field(..., sa_column_args=(ForeignKey(..., use_alter=True, name=...),))`, keeping its other arguments.
    A foreign key to its own table is not a cycle. A `use_alter=True` foreign key without a name gets one.

    ## Why is this bad?
    `metadata.create_all()` copes with the cycle, but `drop_all()` fails with `CircularDependencyError: Can't
    sort tables for DROP; an unresolvable foreign key dependency exists between tables: organizations, users.`
    unless the foreign keys are named, and `use_alter=True` without a name fails with `CompileError: Can't emit
    DROP CONSTRAINT ... it has no name`. Without `use_alter`, an Alembic migration that creates the tables
    fails with `relation "users" does not exist`.

    ## Example
    ```python
    class User(Base):
        __tablename__ = "users"
        org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))

    class Organization(Base):
        __tablename__ = "organizations"
        owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    ```

    ## Use instead
    ```python
    class User(Base):
        __tablename__ = "users"
        org_id: Mapped[int | None] = mapped_column(
            ForeignKey("organizations.id", use_alter=True, name="users_org_id_fkey")
        )
    ```

    ## Fix safety
    Safe. `use_alter=True` only moves the constraint into an `ALTER TABLE ... ADD CONSTRAINT` after the
    `CREATE TABLE`s. But Alembic autogenerate silently omits `use_alter` foreign keys from `create_table`
    (alembic#326): the finding prints the `op.create_foreign_key(...)` line a new migration needs. Where the
    MetaData has a naming convention for `fk`, only `use_alter=True` is added and the convention names it.

    ## Database impact
    None: the name is the one the database gave the unnamed constraint, so an existing database already has
    it and autogenerate sees no difference. With both PostgreSQL and MySQL drivers, PostgreSQL's name is
    written and the fix is unsafe: a MySQL database has another name.
    """

    code = "DBF008"
    name = "circular-foreign-key"
    triggers = r"ForeignKey|foreign_key"
    declarations_only = True
    schema_only = True

    def detect(self, ctx: FileContext) -> Iterator[Finding]:
        g = graph_for(ctx)
        calls = calls_by_pos(ctx)
        for fact, edges in in_module(g, ctx.names.module):
            call = calls.get(fact.pos)
            if call is None:
                continue
            found = g.breaks.get(id(fact))
            if found is not None:
                yield self._cycle(ctx, g, call, found)
            elif fact.use_alter and not fact.named and fact.place != "field":
                finding = self._unnamed_use_alter(ctx, g, call, edges[0])
                if finding is not None:
                    yield finding

    def _cycle(self, ctx: FileContext, g: FkGraph, call: ast.Call, found: Break) -> Finding:
        edge = found.edge
        message = f"foreign key `{edge.label}` → `{edge.target_label}` closes the cycle {' → '.join(found.cycle)}"
        if edge.shared:
            return self.finding(
                ctx,
                call,
                f"{message}; it is declared once for several tables (a mixin): give each table its own foreign key "
                "with `use_alter=True` and a name",
            )
        name, by_convention, found = _name(ctx, g, edge)
        if name is None:
            if found is not None and found.note:
                return self.finding(ctx, call, f"{message}; add `use_alter=True` and a name", notes=[found.note])
            return self.finding(ctx, call, f"{message}; add `use_alter=True` and a name ({_unknown_name(g, edge, by_convention)})")
        add_name = None if by_convention or edge.fact.named else name
        edits, imports = _edits(ctx, call, edge.fact, add_name)
        if edits is None:
            return self.finding(ctx, call, f'{message}; add `use_alter=True` and `name="{name}"`')
        parts = ["`use_alter=True`"] + ([f'`name="{add_name}"`'] if add_name else [])
        description = f"add {' and '.join(parts)}"
        if edge.fact.place == "field":
            description += " through `sa_column_args=(ForeignKey(...),)`"
        op = _create_op(edge, name, by_convention, call)
        description += f"; Alembic autogenerate omits this FK from `create_table` (alembic#326): add `{op}`"
        if add_name and found is not None and found.migration is not None:
            description = description.replace(f'`name="{add_name}"`', f'`name="{add_name}"` (from {describe(found)})')
        return self.finding(
            ctx,
            call,
            f"{message}: `drop_all()` fails with CircularDependencyError and Alembic cannot order the `create_table`s",
            edits=edits,
            imports=imports,
            description=description,
            safety=Safety.UNSAFE if found is not None and found.unsafe else None,
            # No DatabaseChange: a database that has the tables has this FK under this name already, and an
            # emitted `op.create_foreign_key` would fail there (DuplicateObject). The op is advice for the
            # migration that creates the tables.
            notes=(f"{ALEMBIC_326} `{op}` after both `op.create_table(...)` calls", *([found.note] if found and found.note else [])),
        )

    def _unnamed_use_alter(self, ctx: FileContext, g: FkGraph, call: ast.Call, edge: Edge) -> Finding | None:
        name, by_convention, found = _name(ctx, g, edge)
        if by_convention:
            return None
        message = (
            f"foreign key `{edge.label}` has `use_alter=True` but no name: `drop_all()` fails with "
            "`CompileError: Can't emit DROP CONSTRAINT ... it has no name`"
        )
        notes = [found.note] if found is not None and found.note else []
        if name is None or edge.shared:
            return self.finding(ctx, call, message, notes=notes)
        return self.finding(
            ctx,
            call,
            message,
            edits=[Edit(ctx.span(call), "add_kwarg", ("name", literal(name)))],
            description=f"add `name={literal(name)}` (the name {describe(found) if found else 'PostgreSQL'} gave it)",
            safety=Safety.UNSAFE if found is not None and found.unsafe else None,
            notes=notes,
        )


def _name(ctx: FileContext, g: FkGraph, edge: Edge) -> tuple[str | None, bool, Claim | None]:
    """The FK's name in the database, whether a naming convention gives it, and, for an unnamed FK, what
    is known of the name in the project's databases (a revision's name, PostgreSQL's, or none)."""
    name, by_convention = g.fk_name(edge)
    if by_convention or edge.fact.named:
        return name, by_convention, None
    found = claim(ctx.index, ctx.versions.databases, edge.table, "foreign_key", edge.fk.columns, name)
    return found.name, False, found


def _unknown_name(g: FkGraph, edge: Edge, by_convention: bool) -> str:
    if edge.fact.named:
        return "its `name=` is not a literal"
    if not g.view.convention(edge.table.metadata)[1]:
        return "the MetaData's naming convention cannot be read"
    if by_convention:
        return "the naming convention's name cannot be rendered"
    return (
        "another foreign key of the schema has the same PostgreSQL name, so PostgreSQL added a digit to one of "
        f"them: look it up with `\\d {edge.table.qualified}` in psql"
    )


def _edits(ctx: FileContext, call: ast.Call, fact: ConstraintFact, name: str | None) -> tuple[list[Edit] | None, list]:
    span = ctx.span(call)
    if fact.place != "field":
        action = "set_kwarg" if _kw(call, "use_alter") is not None else "add_kwarg"
        edits = [Edit(span, action, ("use_alter", "True"))]
        if name is not None:
            edits.append(Edit(span, "add_kwarg", ("name", literal(name))))
        return edits, []
    # SQLModel's Field(foreign_key=...) has no use_alter/name: the FK moves into sa_column_args
    target = _kw(call, "foreign_key")
    if target is None or _kw(call, "sa_column_args") is not None or _kw(call, "sa_column") is not None:
        return None, []
    bound = ctx.names.lookup("ForeignKey", ctx.names.scope_at(call))
    if (bound is not None and ctx.index.resolve(bound) != "sqlalchemy.ForeignKey") or (bound is None and ctx.names.is_bound("ForeignKey", call)):
        return None, []
    args = [ctx.code(target)]
    ondelete = _kw(call, "ondelete")
    if ondelete is not None:
        args.append(f"ondelete={ctx.code(ondelete)}")
    args.append("use_alter=True")
    if name is not None:
        args.append(f"name={literal(name)}")
    edits = [Edit(span, "remove_kwarg", ("foreign_key",))]
    if ondelete is not None:
        edits.append(Edit(span, "remove_kwarg", ("ondelete",)))
    edits.append(Edit(span, "add_kwarg", ("sa_column_args", f"(ForeignKey({', '.join(args)}),)")))
    return edits, ([] if bound is not None else [("sqlmodel", "ForeignKey", None)])


def _schema(schema: str | None, keyword: str) -> str:
    return f", {keyword}={schema!r}" if schema else ""


def _spell(name: str, by_convention: bool) -> str:
    return f"op.f({name!r})" if by_convention else repr(name)


def _create_op(edge: Edge, name: str, by_convention: bool, call: ast.Call) -> str:
    target = edge.target
    assert target is not None
    extra = _schema(edge.table.schema, "source_schema") + _schema(target.schema, "referent_schema")
    ondelete = _const(_kw(call, "ondelete"), None)
    if isinstance(ondelete, str):
        extra += f", ondelete={ondelete!r}"
    return (
        f"op.create_foreign_key({_spell(name, by_convention)}, {edge.table.name!r}, {target.name!r}, "
        f"{list(edge.fk.columns)!r}, {list(edge.fk.target_columns)!r}{extra})"
    )
