from __future__ import annotations

import ast
from collections.abc import Iterator

from dbfix.codemod import Codemod, FileContext
from dbfix.dbnames import DISPLAY
from dbfix.findings import DatabaseChange, Edit, Finding, Impact, Safety
from dbfix.index import COLUMN_CALLS, FIELD_CALLS, MAPPED_COLUMN_CALLS, _kw
from dbfix.schema import (
    MAX_IDENTIFIER,
    ConstraintFact,
    SchemaView,
    TableView,
    TakenNames,
    alembic_create_index,
    alembic_drop_index,
    calls_by_pos,
    create_index_sql,
    drop_index_sql,
    in_module,
    literal,
    pg_identifier,
    qualified,
    quote,
    unique_name,
    view_for,
)

KIND_NAMES = {"index": "index", "unique": "unique constraint", "check": "check constraint", "foreign_key": "foreign key", "primary_key": "primary key"}
NAME_POSITION = {"sqlalchemy.Index": 0, "sqlalchemy.CheckConstraint": 1, "sqlalchemy.ForeignKeyConstraint": 2}
ALEMBIC_TYPE = {"unique": "unique", "check": "check", "foreign_key": "foreignkey", "primary_key": "primary"}


class IdentifierTooLong(Codemod):
    """An index, constraint, table or column name longer than PostgreSQL's 63 bytes.

    ## What it does
    Finds explicit index and constraint names (`Index("...")`, `UniqueConstraint(..., name=...)`,
    `ForeignKey(..., name=...)`, ...) over 63 characters and shortens them the way SQLAlchemy's naming
    conventions do: the first 55 characters, `_`, and 4 hex characters of the name's md5
    (`ix_organization_membership_invitations_invited_by_user__3bae`), unique across the project.
    Finds column names over 63 bytes and writes the name PostgreSQL actually gave the column (its first
    63 bytes), keeping the Python attribute (and a Core column's `key`). Reports table names over 63
    bytes.

    ## Why is this bad?
    SQLAlchemy refuses an explicit name over 63 characters only when the DDL runs:
    `IdentifierError: Identifier '...' exceeds maximum length of 63 characters`, so `create_all` and
    every migration that creates the object fail. A long column name is worse: SQLAlchemy does not check
    it, PostgreSQL silently truncates it (a `NOTICE` nobody sees), and Alembic autogenerate then
    proposes to add the long column and drop the truncated one: data loss if applied.

    ## Example
    ```python
    __table_args__ = (UniqueConstraint("department_id", "email", name="uq_organization_membership_invitations_department_id_email"),)
    invitation_recipient_primary_email_address_as_entered_by_the_inviter = Column(String)
    ```

    ## Use instead
    ```python
    __table_args__ = (UniqueConstraint("department_id", "email", name="uq_organization_membership_invitations_department_id_e_5d3c"),)
    invitation_recipient_primary_email_address_as_entered_by_the_inviter = Column("invitation_recipient_primary_email_address_as_entered_by_the_in", String)
    ```

    ## Fix safety
    Shortening an index or constraint name is unsafe: code and migrations that name the object
    (`on_conflict_do_update(constraint=...)`, `op.drop_constraint(...)`) must follow. Writing a long
    column's truncated name is safe: it is the name the database already has and the attribute stays.
    A project whose drivers are only MySQL's or SQLite's gets no column fix: its database does not
    truncate the name the way PostgreSQL does.

    ## Database impact
    Columns: none. Index and constraint names: schema. SQLAlchemy never created the object under its
    long name, so the migration creates it under the new one (the finding carries the SQL and the
    Alembic operation); where raw SQL created it, PostgreSQL truncated the name and a rename is enough.
    """

    code = "DBF007"
    name = "identifier-too-long"
    safety = Safety.UNSAFE
    impact = Impact.SCHEMA
    # a run of 64 name characters, searched only in lines that long (see `dbfix.triggers`); the
    # look-behind tries each run once, not from each of its characters
    triggers = r"(?#line>=64)(?<![^\s\"'.,()\[\]{}=:#])[^\s\"'.,()\[\]{}=:#]{64,}"
    declarations_only = True
    schema_only = True

    def detect(self, ctx: FileContext) -> Iterator[Finding]:
        view = view_for(ctx)
        calls = calls_by_pos(ctx)
        module = ctx.names.module
        taken = TakenNames(view.taken_names())
        for table, fact in in_module(view, module):
            call = calls.get(fact.pos)
            if call is not None and fact.name is not None and _too_long(fact.name):
                finding = self._named(ctx, view, table, fact, call, taken)
                if finding is not None:
                    yield finding
        seen: set[tuple[int, str]] = set()
        for table in view._memo("too_long", lambda: _too_long_tables(view)):  # once per run, not per file
            if _too_long(table.name) and table.module == module:
                node = _table_site(ctx, table)
                if node is not None:
                    yield self.finding(ctx, node, f"table name `{table.name}` is {_length(table.name)}: SQLAlchemy raises `IdentifierError` when it creates the table", notes=[f"PostgreSQL would keep only `{pg_identifier(table.name)}`; choose a name of at most 63 bytes"])
            for attr, info in table.columns.items():
                if _too_long(info.name):
                    yield from self._column(ctx, view, table, attr, seen)

    def _named(self, ctx: FileContext, view: SchemaView, table: TableView, fact: ConstraintFact, call: ast.Call, taken: TakenNames) -> Finding | None:
        template, known = view.convention_template(table, fact.kind)
        if not known or (template and "%(constraint_name)s" in template and fact.kind != "index"):
            return None  # the convention wraps the name and SQLAlchemy truncates the result itself
        name = fact.name or ""
        kind = KIND_NAMES[fact.kind]
        message = f"{kind} name `{name}` is {_length(name)}: SQLAlchemy raises `IdentifierError` when it creates the {kind}"
        node = _name_node(ctx, call)
        if node is None or len(name) <= MAX_IDENTIFIER:
            return self.finding(ctx, call, message, notes=["use a name of at most 63 bytes"])
        new = unique_name(name, taken.excluding(name))
        taken.add(new)
        database, notes = self._database(view, table, fact, name, new)
        return self.finding(
            ctx,
            call,
            message,
            edits=[Edit(ctx.span(node), "replace", (literal(new),))],
            description=f"shorten it to `{new}`",
            database=database,
            notes=notes,
        )

    def _database(self, view: SchemaView, table: TableView, fact: ConstraintFact, old: str, new: str) -> tuple[DatabaseChange | None, list[str]]:
        target = qualified(table.name, table.schema)
        truncated = pg_identifier(old)
        rename = f"ALTER INDEX {qualified(truncated, table.schema)} RENAME TO {quote(new)}" if fact.kind == "index" else f"ALTER TABLE {target} RENAME CONSTRAINT {quote(truncated)} TO {quote(new)}"
        notes = [
            f"a database created by raw SQL has it as `{truncated}` (PostgreSQL truncates): run `{rename}` instead",
            "code and migrations that name it must use the new name",
        ]
        schema_kw = f", schema={table.schema!r}" if table.schema else ""
        columns = table.column_names(fact.columns) if fact.place not in ("column", "field") else [table.columns[fact.column].name] if fact.column in table.columns else None
        up: tuple[str, ...] = ()
        alembic_up: tuple[str, ...] = ()
        if fact.kind == "index" and columns:
            up, alembic_up = (create_index_sql(new, table, columns, fact.unique),), (alembic_create_index(new, table, columns, fact.unique),)
            down, alembic_down = (drop_index_sql(new, table),), (alembic_drop_index(new, table),)
            return DatabaseChange(up, down, alembic_up, alembic_down, key=f"index:{table.key}:{new}"), notes
        if fact.kind == "unique" and columns:
            up = (f"ALTER TABLE {target} ADD CONSTRAINT {quote(new)} UNIQUE ({', '.join(quote(c) for c in columns)})",)
            alembic_up = (f"op.create_unique_constraint({new!r}, {table.name!r}, {columns!r}{schema_kw})",)
        elif fact.kind == "check" and fact.sqltext is not None:
            up = (f"ALTER TABLE {target} ADD CONSTRAINT {quote(new)} CHECK ({fact.sqltext})",)
            alembic_up = (f"op.create_check_constraint({new!r}, {table.name!r}, {fact.sqltext!r}{schema_kw})",)
        elif fact.kind == "foreign_key":
            edge = next((e for e in view.foreign_keys() if e.fact is fact), None)
            if edge is not None and edge.target is not None:
                refs = qualified(edge.target.name, edge.target.schema)
                up = (f"ALTER TABLE {target} ADD CONSTRAINT {quote(new)} FOREIGN KEY ({', '.join(quote(c) for c in edge.columns)}) REFERENCES {refs} ({', '.join(quote(c) for c in edge.target_columns)})",)
                schemas = (f", source_schema={table.schema!r}" if table.schema else "") + (f", referent_schema={edge.target.schema!r}" if edge.target.schema else "")
                alembic_up = (f"op.create_foreign_key({new!r}, {table.name!r}, {edge.target.name!r}, {edge.columns!r}, {edge.target_columns!r}{schemas})",)
        if not up:
            return None, notes
        down = (f"ALTER TABLE {target} DROP CONSTRAINT {quote(new)}",)
        alembic_down = (f"op.drop_constraint({new!r}, {table.name!r}, type_={ALEMBIC_TYPE[fact.kind]!r}{schema_kw})",)
        return DatabaseChange(up, down, alembic_up, alembic_down, key=f"constraint:{target}:{new}"), notes

    def _column(self, ctx: FileContext, view: SchemaView, table: TableView, attr: str, seen: set[tuple[int, str]]) -> Iterator[Finding]:
        info = table.columns[attr]
        short = pg_identifier(info.name)
        message = f"column name `{info.name}` is {_length(info.name)}: PostgreSQL silently keeps `{short}`, and Alembic autogenerate proposes to drop that column and add the long one"
        site = _column_site(ctx, table, attr)
        if site is None or (site.lineno, attr) in seen:
            return
        seen.add((site.lineno, attr))
        databases = ctx.versions.databases
        if databases and "postgresql" not in databases:
            used = ", ".join(DISPLAY[db] for db in databases if db in DISPLAY)
            yield self.finding(ctx, site, f"column name `{info.name}` is {_length(info.name)}: over PostgreSQL's 63 bytes", notes=[
                f"the project uses {used} (by its drivers), not PostgreSQL: MySQL refuses a column name over 64 "
                "characters and SQLite keeps it whole, so its database does not have PostgreSQL's truncated name"
            ])
            return
        if isinstance(site, ast.Call):
            edits, imports = self._column_edits(ctx, table, info.name, short, site), []
        else:
            edits, imports = self._annotation_edits(ctx, table, info.style, short, site)
        if edits is None:
            yield self.finding(ctx, site, message, notes=[f"name the column `{short}`, the name it has in the database"])
            return
        refs = self._string_references(ctx, view, table, info.name)
        if refs is None:
            yield self.finding(ctx, site, message, notes=[f"name the column `{short}` and update the constraints that name it in other files"])
            return
        yield self.finding(
            ctx,
            site,
            message,
            edits=[*edits, *refs],
            imports=imports,
            description=f"name the column `{short}`, as the database has it",
            safety=Safety.SAFE,
            impact=Impact.NONE,
        )

    @staticmethod
    def _column_edits(ctx: FileContext, table: TableView, name: str, short: str, call: ast.Call) -> list[Edit] | None:
        func = ctx.q(call.func)
        if func in FIELD_CALLS:
            sa_column = _kw(call, "sa_column")
            if isinstance(sa_column, ast.Call):
                call, func = sa_column, ctx.q(sa_column.func)
            elif _kw(call, "sa_column_kwargs") is None:
                return [Edit(ctx.span(call), "add_kwarg", ("sa_column_kwargs", f"{{\"name\": {literal(short)}}}"))]
            else:
                return None
        first = call.args[0] if call.args else None
        edits: list[Edit]
        if isinstance(first, ast.Constant) and first.value == name:
            edits = [Edit(ctx.span(first), "replace", (literal(short),))]
        elif isinstance(_kw(call, "name"), ast.Constant):
            edits = [Edit(ctx.span(_kw(call, "name")), "replace", (literal(short),))]  # type: ignore[arg-type]
        else:
            edits = [Edit(ctx.span(call), "insert_arg", (0, literal(short)))]
        if table.model is None and _kw(call, "key") is None:
            # a Core column's key defaults to its name: keep `users.c.<long name>` working
            edits.append(Edit(ctx.span(call), "add_kwarg", ("key", literal(name))))
        return edits

    @staticmethod
    def _annotation_edits(ctx: FileContext, table: TableView, style: str, short: str, stmt: ast.AST) -> tuple[list[Edit] | None, list]:
        """`name: Mapped[str]` -> `name: Mapped[str] = mapped_column("<short>")` (SQLModel: `Field(...)`)."""
        if not (isinstance(stmt, ast.AnnAssign) and stmt.value is None):
            return None, []
        if style == "annotation":
            spelling = _spelling(ctx, "sqlalchemy.orm", "mapped_column", stmt)
            code = f"{{}}({literal(short)})"
        elif style == "field":
            spelling = _spelling(ctx, "sqlmodel", "Field", stmt)
            code = f"{{}}(sa_column_kwargs={{{{\"name\": {literal(short)}}}}})"
        else:
            return None, []
        if spelling is None:
            return None, []
        return [Edit(ctx.span(stmt), "set_value", (code.format(spelling[0]),))], spelling[1]

    @staticmethod
    def _string_references(ctx: FileContext, view: SchemaView, table: TableView, name: str) -> list[Edit] | None:
        """Declarative string references (`UniqueConstraint("<long name>")`) follow the new name."""
        if table.model is None:
            return []
        edits: list[Edit] = []
        calls = calls_by_pos(ctx)
        for fact in table.constraints:
            if not any(a.kind == "name" and a.value == name for a in fact.columns):
                continue
            call = calls.get(fact.pos)
            if fact.module != ctx.names.module or call is None:
                return None
            for node in ast.walk(call):
                if isinstance(node, ast.Constant) and node.value == name:
                    edits.append(Edit(ctx.span(node), "replace", (literal(pg_identifier(name)),)))
        return edits


def _spelling(ctx: FileContext, module: str, name: str, at: ast.AST) -> tuple[str, list] | None:
    """How to write `module.name` here: a name bound to it, `alias.name`, or `name` with a new import."""
    wanted = f"{module}.{name}"
    for bound, qualname in ctx.names.module_bindings():
        if (ctx.index.resolve(qualname) or qualname) == wanted:
            return bound, []
    for bound, qualname in ctx.names.module_bindings():
        if qualname == module:
            return f"{bound}.{name}", []
    if not ctx.names.is_bound(name, at):
        return name, [(module, name, None)]
    return None


def _too_long_tables(view: SchemaView) -> list[TableView]:
    """The tables with a name, or a column name, over 63 bytes."""
    return [t for t in view.tables.values() if _too_long(t.name) or any(_too_long(c.name) for c in t.columns.values())]


def _too_long(name: str) -> bool:
    return len(name.encode()) > MAX_IDENTIFIER


def _length(name: str) -> str:
    size = len(name.encode())
    return f"{size} bytes long" if size != len(name) else f"{size} characters long"


def _name_node(ctx: FileContext, call: ast.Call) -> ast.expr | None:
    node = _kw(call, "name")
    position = NAME_POSITION.get(ctx.q(call.func) or "")
    if node is None and position is not None and len(call.args) > position:
        node = call.args[position]
    return node if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _table_site(ctx: FileContext, table: TableView) -> ast.AST | None:
    if table.model is not None:
        for node in ctx.nodes(ast.ClassDef):
            if ctx.class_qualname(node) == table.key:
                for stmt in node.body:
                    if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__tablename__" for t in stmt.targets):
                        return stmt.value
                return node
        return None
    for node in ctx.nodes(ast.Call):
        if ctx.q(node.func) == "sqlalchemy.Table" and node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value == table.name:
            return node
    return None


def _column_site(ctx: FileContext, table: TableView, attr: str) -> ast.AST | None:
    """The `Column(...)` / `mapped_column(...)` / `Field(...)` call that declares a column in this file,
    or the annotated name when there is no call."""
    info = table.columns[attr]
    if table.model is None:
        site = _table_site(ctx, table) if table.module == ctx.names.module else None
        for arg in getattr(site, "args", [])[2:]:
            if isinstance(arg, ast.Call) and ctx.q(arg.func) in COLUMN_CALLS and arg.args and isinstance(arg.args[0], ast.Constant) and arg.args[0].value == info.name:
                return arg
        return None
    # single-table-inheritance subclasses declare columns of this table too
    classes = {c.qualname for model in (table.model, *table.members) for c in ctx.index._mro(model.cls)}
    for node in ctx.nodes(ast.ClassDef):
        if ctx.class_qualname(node) not in classes:
            continue
        for stmt in node.body:
            target = stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else getattr(stmt, "target", None)
            if not (isinstance(target, ast.Name) and target.id == attr):
                continue
            value = getattr(stmt, "value", None)
            if isinstance(value, ast.Call) and ctx.q(value.func) in (*COLUMN_CALLS, *MAPPED_COLUMN_CALLS, *FIELD_CALLS):
                return value
            return stmt
    return None
