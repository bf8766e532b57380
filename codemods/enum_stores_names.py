from __future__ import annotations

import ast
from collections.abc import Iterator

from dbfix.codemod import Codemod, FileContext
from dbfix.enum_migration import (
    VALUES_CALLABLE,
    VarcharColumn,
    check_constraint_name,
    default_type_name,
    members,
    rename_type_values,
    sharing_notes,
    string_values,
    update_column_values,
)
from dbfix.findings import DatabaseChange, Edit, Finding, Impact, Safety
from dbfix.index import (
    COLUMN_CALLS,
    ENUM_TYPES,
    FIELD_CALLS,
    MAPPED_COLUMN_CALLS,
    ModelInfo,
    _const,
    _kw,
    column_from_call,
    mapped_inner,
    unwrap_optional,
)

Import = tuple[str, "str | None", "str | None"]
# Field arguments SQLModel refuses next to `sa_column` (sqlmodel/main.py, FieldInfo.__init__): they move into the Column.
MOVED = ("primary_key", "nullable", "foreign_key", "ondelete", "unique", "index", "sa_column_args", "sa_column_kwargs")


def _names_an_enum_class(call: ast.Call) -> bool:
    """`Enum(X)` and its keywords, without `values_callable`: one argument, not a literal (`Enum("a", "b")`
    lists its labels)."""
    if len(call.args) != 1 or isinstance(call.args[0], (ast.Starred, ast.Constant)):
        return False
    return _kw(call, "values_callable") is None


class EnumStoresNames(Codemod):
    """An enum column stores the members' names (`'ADMIN'`), not their values (`'admin'`).

    ## What it does
    Finds every column that SQLAlchemy or SQLModel maps to an `Enum` of a Python enum class whose member
    names differ from their values: `Column(Enum(Role))`, `mapped_column(sa.Enum(Role, name="role"))`,
    `Enum(Role)` in a `Table(...)` or in `sa_type=`, `Mapped[Role]` / `Mapped[Role | None]` without a type
    (SQLAlchemy infers `Enum(Role)`), and SQLModel fields annotated `Role` / `Optional[Role]`. The enum may
    live in another module. It adds `values_callable=lambda obj: [e.value for e in obj]` to the existing
    `Enum(...)`, keeping its other arguments (`name=`, `native_enum=`, `create_type=`...). A bare
    `Mapped[Role]` gets `mapped_column(SAEnum(Role, values_callable=...))` (nullability still follows the
    annotation). A SQLModel field gets `sa_column=Column(SAEnum(Role, values_callable=...), nullable=...,
    default=..., index=..., unique=...)`: the `Field` arguments SQLModel refuses next to `sa_column` move
    into the `Column`, and the Python default stays on `Field`. `SAEnum` is SQLAlchemy's `Enum` under the
    name the module already uses for it, else imported as `SAEnum` (never clashing with `enum.Enum`). With `[tool.dbfix] sqlmodel-enum-style = "sa_type"` SQLModel fields get
    `sa_type=SAEnum(Role, values_callable=...)` instead, which keeps every `Field` argument where it is;
    fields of a non-table base class always get `sa_type` (one `sa_column` cannot serve two tables).

    Left alone: enums whose names equal their values, `Enum(...)` that already passes `values_callable`,
    string-literal enums (`Enum("a", "b", name="ab")`), and enums whose values are not all strings
    (`IntEnum`: a PostgreSQL enum holds text labels, and `values_callable` returning ints fails at import
    with `TypeError: object of type 'int' has no len()`).

    ## Why is this bad?
    `Enum(Role)` persists `Role.ADMIN` as `'ADMIN'` and creates `CREATE TYPE role AS ENUM ('ADMIN', 'USER')`.
    The API, the frontend, raw SQL and other services speak `'admin'`: an insert of `'admin'` fails with
    `invalid input value for enum role: "admin"`, and reading `'admin'` written by another tool raises
    `LookupError: 'admin' is not among the defined enum values`. Alembic renders whatever labels the model
    has, but it does not notice when they change.

    ## Example
    ```python
    class Role(str, enum.Enum):
        ADMIN = "admin"
        USER = "user"

    class User(Base):
        role: Mapped[Role]
        kind = Column(Enum(Role, name="user_role"))

    class Member(SQLModel, table=True):
        role: Role = Field(default=Role.USER, index=True)
    ```

    ## Use instead
    ```python
    class User(Base):
        role: Mapped[Role] = mapped_column(Enum(Role, values_callable=lambda obj: [e.value for e in obj]))
        kind = Column(Enum(Role, name="user_role", values_callable=lambda obj: [e.value for e in obj]))

    class Member(SQLModel, table=True):
        role: Role = Field(
            default=Role.USER,
            sa_column=Column(
                Enum(Role, values_callable=lambda obj: [e.value for e in obj]),
                nullable=False,
                default=Role.USER,
                index=True,
            ),
        )
    ```

    ## Fix safety
    Unsafe: on an existing database the stored labels change meaning. Until the migration below has run,
    every row written before reads back as `LookupError: 'ADMIN' is not among the defined enum values`.

    ## Database impact
    Data. For a native PostgreSQL enum, rename the labels in place (no row is rewritten, it works inside a
    transaction): `ALTER TYPE role RENAME VALUE 'ADMIN' TO 'admin'` per member whose name differs, once per
    type even when several columns share it. For `native_enum=False` (a VARCHAR): `UPDATE t SET c = CASE c
    WHEN 'ADMIN' THEN 'admin' ... END`, after widening the VARCHAR when a value is longer than every name, and
    with the CHECK constraint rebuilt on the values when `create_constraint=True`. The report prints the SQL
    and the `op.execute(...)` lines for an Alembic migration: `alembic revision --autogenerate` produces an
    empty migration for this change. Two enums that share one type name with different labels are reported:
    SQLAlchemy silently creates only the first.
    """

    code = "DBF002"
    name = "enum-stores-names"
    safety = Safety.UNSAFE
    impact = Impact.DATA
    # an Enum type, a `Mapped[X]` annotation or a SQLModel table: enum columns are only found there
    triggers = r"Enum|ENUM|Mapped|table\s*=\s*True"
    declarations_only = True
    parse_whole = True

    def detect(self, ctx: FileContext) -> Iterator[Finding]:
        for call in ctx.nodes(ast.Call):
            # the shape first: naming a call's function may walk the scopes of the function it is in
            if _names_an_enum_class(call) and ctx.q(call.func) in ENUM_TYPES:
                finding = self._explicit(ctx, call)
                if finding is not None:
                    yield finding
        for cls in ctx.nodes(ast.ClassDef):
            annotated = [s for s in cls.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)]
            models = list(ctx.index.models_using(ctx.class_qualname(cls))) if annotated else []
            for stmt in annotated if models else ():
                finding = self._implicit(ctx, cls, stmt, models)
                if finding is not None:
                    yield finding

    # `Enum(X, ...)` written out ------------------------------------------------------------------
    def _explicit(self, ctx: FileContext, call: ast.Call) -> Finding | None:
        enum = ctx.q(call.args[0])
        pairs = _pairs(ctx, enum)
        if enum is None or pairs is None:
            return None
        edits = [Edit(ctx.span(call), "add_kwarg", ("values_callable", VALUES_CALLABLE))]
        notes: list[str] = []
        length = _const(_kw(call, "length"), None)
        longest = max(len(v) for _, v in pairs)
        if isinstance(length, int) and not isinstance(length, bool) and length < longest:
            edits.append(Edit(ctx.span(call), "set_kwarg", ("length", str(longest))))  # else SQLAlchemy raises
        name = _const(_kw(call, "name"), None)
        schema = _const(_kw(call, "schema"), None)
        type_name = name if isinstance(name, str) else default_type_name(enum) if name is None else None
        native = _const(_kw(call, "native_enum"), True)
        database: DatabaseChange | None = None
        if native not in (True, False):
            notes.append("`native_enum` is not a literal: migrate the stored names to values by hand")
        elif native is True:
            if type_name is None or not isinstance(schema, (str, type(None))):
                notes.append("the type name is not a literal: rename its labels with `ALTER TYPE ... RENAME VALUE` by hand")
            else:
                database = rename_type_values(type_name, schema, pairs)
                notes.extend(sharing_notes(ctx.index, database.key.partition(":")[2], tuple(v for _, v in pairs)))
        else:
            columns = self._varchar_columns(ctx, call, type_name, pairs, length)
            if columns:
                database = update_column_values(columns, pairs)
            else:
                notes.append("cannot tell which table and column store it: update the stored names to values by hand")
        return self.finding(
            ctx,
            call,
            _message(f"`{ctx.code(call.func)}({ctx.code(call.args[0])})`", pairs),
            edits=edits,
            description="store the values: add `values_callable`",
            database=database,
            notes=notes,
        )

    def _varchar_columns(
        self, ctx: FileContext, call: ast.Call, type_name: str | None, pairs: list[tuple[str, str]], length: object
    ) -> list[VarcharColumn]:
        holder = ctx.parent(call)
        keyword = None
        if isinstance(holder, ast.keyword):
            keyword, holder = holder.arg, ctx.parent(holder)
        if not isinstance(holder, ast.Call):
            return []
        func = ctx.q(holder.func)
        if func in FIELD_CALLS and keyword == "sa_type":
            explicit = None
        elif func in COLUMN_CALLS | MAPPED_COLUMN_CALLS and keyword in (None, "type_"):
            info = column_from_call("?", holder, ctx.q)
            explicit = info.name if info is not None and info.explicit_name else None
        else:
            return []
        statement = ctx.parent(holder)
        if isinstance(statement, ast.keyword) and statement.arg == "sa_column":
            field = ctx.parent(statement)
            statement = ctx.parent(field) if field is not None else None
        sites: list[tuple[str, str, dict[str, str] | None]] = []
        if isinstance(statement, ast.Call) and ctx.q(statement.func) == "sqlalchemy.Table":
            table = _const(statement.args[0], None) if statement.args else None
            metadata = ctx.q(statement.args[1]) if len(statement.args) > 1 else None
            instance = ctx.index.instances.get(metadata or "")
            if isinstance(table, str) and explicit:
                sites.append((table, explicit, instance.naming_convention if instance else None))
        else:
            attr = _target(statement)
            cls = ctx.enclosing_class(holder)
            if attr is None or cls is None:
                return []
            for model in ctx.index.models_using(ctx.class_qualname(cls)):
                known = model.columns.get(attr)
                name = explicit or (known.name if known is not None else attr)
                if model.table:
                    sites.append((model.table, name, _convention(ctx, model)))
        create_constraint = _const(_kw(call, "create_constraint"), False) is True
        old = max(len(n) for n, _ in pairs)
        new = max(len(v) for _, v in pairs)
        widen = length is None and new > old
        result = []
        for table, column, convention in sites:
            constraint = check_constraint_name(type_name, table, column, convention) if create_constraint else None
            if create_constraint and constraint is None:
                return []
            result.append(VarcharColumn(table, column, old if widen else None, new if widen else None, constraint))
        return result

    # `Mapped[X]` and SQLModel `x: X` ---------------------------------------------------------------
    def _implicit(self, ctx: FileContext, cls: ast.ClassDef, stmt: ast.AnnAssign, models: list[ModelInfo]) -> Finding | None:
        style = models[0].style
        inner = mapped_inner(stmt.annotation, ctx.q)
        if style == "sqlmodel":
            if inner is not None:
                return None
            node, optional = unwrap_optional(stmt.annotation, ctx.q)
        else:
            if inner is None:
                return None
            node, optional = unwrap_optional(inner, ctx.q)
        enum = ctx.q(node)
        if enum is None or enum not in ctx.index.enums:
            return None
        if style != "sqlmodel" and any(
            ctx.index.base_annotation_type(m, enum) is not None or ctx.index.base_annotation_type(m, "enum.Enum") is not None
            for m in models
        ):
            return None  # the base's `type_annotation_map` decides the type; its `Enum(...)` is fixed there
        pairs = _pairs(ctx, enum)
        if pairs is None:
            return None
        value = stmt.value
        if style == "sqlmodel":
            field = value if isinstance(value, ast.Call) and ctx.q(value.func) in FIELD_CALLS else None
            if field is not None and (_kw(field, "sa_type") is not None or _kw(field, "sa_column") is not None):
                return None
            if isinstance(value, ast.Call) and field is None and ctx.q(value.func) in COLUMN_CALLS | MAPPED_COLUMN_CALLS:
                return None
        elif value is not None:
            if not (isinstance(value, ast.Call) and ctx.q(value.func) in MAPPED_COLUMN_CALLS):
                return None
            column = column_from_call(stmt.target.id, value, ctx.q)  # type: ignore[union-attr]
            if column is None or column.type_name is not None or column.foreign_keys:
                return None
            if any(isinstance(a, ast.Starred) for a in value.args) or any(k.arg is None for k in value.keywords):
                return None
        type_name = default_type_name(enum)
        database = rename_type_values(type_name, None, pairs)
        notes = sharing_notes(ctx.index, type_name, tuple(v for _, v in pairs))
        message = _message(f"`{stmt.target.id}: {ctx.code(stmt.annotation)}` maps to an `Enum` that", pairs)  # type: ignore[union-attr]
        fix = self._implicit_fix(ctx, cls, stmt, node, enum, optional, style)
        if fix is None:
            return self.finding(ctx, stmt, message, notes=notes)
        edits, imports, description = fix
        return self.finding(
            ctx, stmt, message, edits=edits, imports=imports, description=description, database=database, notes=notes
        )

    def _implicit_fix(
        self, ctx: FileContext, cls: ast.ClassDef, stmt: ast.AnnAssign, node: ast.expr, enum: str, optional: bool, style: str
    ) -> tuple[list[Edit], list[Import], str] | None:
        defined = ctx.index.enums[enum]
        if defined.module == ctx.names.module and defined.line >= stmt.lineno:
            return None  # a forward reference: the class does not exist yet when the column is built
        enum_name = _spelling(ctx, stmt, "sqlalchemy.Enum", "sqlalchemy", "Enum", ("SAEnum", "SQLAEnum", "SqlaEnum"))
        if enum_name is None:
            return None
        imports = list(enum_name[1])
        enum_type = f"{enum_name[0]}({ast.unparse(node)}, values_callable={VALUES_CALLABLE})"
        if style != "sqlmodel":
            return self._mapped_fix(ctx, stmt, enum_type, imports)
        return self._field_fix(ctx, cls, stmt, enum_type, optional, imports)

    def _mapped_fix(
        self, ctx: FileContext, stmt: ast.AnnAssign, enum_type: str, imports: list[Import]
    ) -> tuple[list[Edit], list[Import], str] | None:
        value = stmt.value
        if isinstance(value, ast.Call):
            named = bool(value.args) and isinstance(value.args[0], ast.Constant) and isinstance(value.args[0].value, str)
            edit = Edit(ctx.span(value), "insert_arg", (1 if named else 0, enum_type))
            return [edit], imports, "store the values: give `mapped_column` an `Enum` with `values_callable`"
        mapped = _spelling(ctx, stmt, "sqlalchemy.orm.mapped_column", "sqlalchemy.orm", "mapped_column", ("mapped_column",))
        if mapped is None:
            return None
        edit = Edit(ctx.span(stmt), "set_value", (f"{mapped[0]}({enum_type})",))
        return [edit], [*imports, *mapped[1]], "store the values: `mapped_column(Enum(..., values_callable=...))`"

    def _field_fix(
        self, ctx: FileContext, cls: ast.ClassDef, stmt: ast.AnnAssign, enum_type: str, optional: bool, imports: list[Import]
    ) -> tuple[list[Edit], list[Import], str] | None:
        value = stmt.value
        field = value if isinstance(value, ast.Call) and ctx.q(value.func) in FIELD_CALLS else None
        use_sa_type = ctx.config.sqlmodel_enum_style == "sa_type" or ctx.class_qualname(cls) not in ctx.index.models
        column: tuple[str, list[Import]] | None = None
        if not use_sa_type:
            column = self._column_code(ctx, stmt, field, enum_type, optional)
            use_sa_type = column is None
        keyword, code = ("sa_type", enum_type) if use_sa_type else ("sa_column", column[0])  # type: ignore[index]
        imports = [*imports, *(column[1] if column and not use_sa_type else ())]
        description = f"store the values: `Field({keyword}=...)` with `values_callable`"
        if field is not None:
            # add before removing: removing the last argument of a multi-line call loses the closing layout
            edits = [Edit(ctx.span(field), "add_kwarg", (keyword, code))]
            if not use_sa_type:
                edits += [Edit(ctx.span(field), "remove_kwarg", (k.arg,)) for k in field.keywords if k.arg in MOVED]
            return edits, imports, description
        field_name = _spelling(ctx, stmt, "sqlmodel.Field", "sqlmodel", "Field", ("Field",))
        if field_name is None:
            return None
        imports.extend(field_name[1])
        if value is None:
            return [Edit(ctx.span(stmt), "set_value", (f"{field_name[0]}({keyword}={code})",))], imports, description
        new = f"{field_name[0]}(default={ctx.code(value)}, {keyword}={code})"
        return [Edit(ctx.span(value), "replace", (new,))], imports, description

    def _column_code(
        self, ctx: FileContext, stmt: ast.AnnAssign, field: ast.Call | None, enum_type: str, optional: bool
    ) -> tuple[str, list[Import]] | None:
        """`Column(SAEnum(...), ...)` carrying what SQLModel would have put in the column; None if it cannot."""
        column_name = _spelling(ctx, stmt, "sqlalchemy.Column", "sqlalchemy", "Column", ("Column", "SAColumn"))
        if column_name is None:
            return None
        imports = list(column_name[1])
        kw = {k.arg: k.value for k in field.keywords if k.arg} if field is not None else {}
        if field is not None and any(k.arg is None for k in field.keywords):
            return None
        args = [enum_type]
        if "foreign_key" in kw:
            fk = _spelling(ctx, stmt, "sqlalchemy.ForeignKey", "sqlalchemy", "ForeignKey", ("ForeignKey",))
            if fk is None:
                return None
            imports.extend(fk[1])
            ondelete = f", ondelete={ctx.code(kw['ondelete'])}" if "ondelete" in kw else ""
            args.append(f"{fk[0]}({ctx.code(kw['foreign_key'])}{ondelete})")
        extra = kw.get("sa_column_args")
        if extra is not None:
            args.extend(ctx.code(e) for e in extra.elts) if isinstance(extra, (ast.List, ast.Tuple)) else args.append(f"*{ctx.code(extra)}")
        kwargs: dict[str, str] = {}
        if "primary_key" in kw:
            kwargs["primary_key"] = ctx.code(kw["primary_key"])
        if "nullable" in kw:
            kwargs["nullable"] = ctx.code(kw["nullable"])
        elif _const(kw.get("primary_key"), False) is not True:
            kwargs["nullable"] = str(optional)
        default = self._default(ctx, stmt, field)
        if default is not None:
            kwargs["default"] = default
        for key in ("index", "unique"):
            if key in kw:
                kwargs[key] = ctx.code(kw[key])
        more = kw.get("sa_column_kwargs")
        if more is not None:
            if not isinstance(more, ast.Dict) or not all(isinstance(_const(k, None), str) for k in more.keys):
                return None  # `**kwargs` could repeat a keyword: `sa_type` keeps SQLModel's own merge
            for k, v in zip(more.keys, more.values):
                kwargs[str(_const(k))] = ctx.code(v)
        body = ", ".join([*args, *(f"{k}={v}" for k, v in kwargs.items())])
        return f"{column_name[0]}({body})", imports

    @staticmethod
    def _default(ctx: FileContext, stmt: ast.AnnAssign, field: ast.Call | None) -> str | None:
        """SQLModel gives the Column the field's default (or default_factory); `sa_column` must say it itself."""
        if field is None:
            value = stmt.value
        else:
            value = field.args[0] if field.args else _kw(field, "default")
            factory = _kw(field, "default_factory")
            if value is None and factory is not None:
                return ctx.code(factory)
        if value is None or (isinstance(value, ast.Constant) and (value.value is None or value.value is Ellipsis)):
            return None
        return ctx.code(value)


def _pairs(ctx: FileContext, enum: str | None) -> list[tuple[str, str]] | None:
    """(name, value) of the enum's members when they are strings and at least one name differs from its value."""
    found = members(ctx.index, enum)
    pairs = string_values(found) if found else None
    if not pairs or all(n == v for n, v in pairs):
        return None
    return pairs


def _message(subject: str, pairs: list[tuple[str, str]]) -> str:
    more = ", ..." if len(pairs) > 3 else ""
    names = ", ".join(repr(n) for n, _ in pairs[:3]) + more
    values = ", ".join(repr(v) for _, v in pairs[:3]) + more
    return f"{subject} stores the member names ({names}), not their values ({values})"


def _target(statement: ast.AST | None) -> str | None:
    if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
        return statement.target.id
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(statement.targets[0], ast.Name):
        return statement.targets[0].id
    return None


def _convention(ctx: FileContext, model: ModelInfo) -> dict[str, str] | None:
    instance = ctx.index.instances.get(model.metadata)
    return instance.naming_convention if instance is not None else None


def _spelling(
    ctx: FileContext, at: ast.AST, qualname: str, module: str, name: str, fresh: tuple[str, ...]
) -> tuple[str, tuple[Import, ...]] | None:
    """How to write `qualname` at `at`: a name already bound to it, `<module alias>.<name>`, or a new import."""
    names = ctx.names
    scope = names.scope_at(at)
    bound = [b for b, _ in names.module_bindings()]
    for b in bound:
        if ctx.index.resolve(names.lookup(b, scope)) == qualname:
            return b, ()
    for b in bound:
        target = names.lookup(b, scope)
        if target is None or not (target.split(".")[0] == "sqlalchemy" or target in ctx.index.instances):
            continue  # `import sqlalchemy as sa`, or Flask-SQLAlchemy's `db`
        if ctx.index.resolve(f"{target}.{name}") == qualname:
            return f"{b}.{name}", ()
    for candidate in fresh:
        if not names.is_bound(candidate, at):
            return candidate, ((module, name, None if candidate == name else candidate),)
    return None

