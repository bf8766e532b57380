from __future__ import annotations

import ast
import difflib
import re
import weakref
from collections.abc import Iterator

from dbfix.codemod import Codemod, FileContext
from dbfix.findings import Finding
from dbfix.fkgraph import FkGraph, graph_for
from dbfix.index import (
    RELATIONSHIP_CALLS,
    ColumnInfo,
    ModelInfo,
    ProjectIndex,
    _const,
    _kw,
    module_classes,
    unwrap_optional,
)

MAPPED = frozenset({"sqlalchemy.orm.Mapped", "sqlalchemy.orm.WriteOnlyMapped", "sqlalchemy.orm.DynamicMapped"})
COLLECTIONS = frozenset(
    {
        "builtins.list",
        "builtins.set",
        "builtins.frozenset",
        "typing.List",
        "typing.Set",
        "typing.FrozenSet",
        "typing.Sequence",
        "typing.Collection",
        "typing.Iterable",
        "collections.abc.Sequence",
        "collections.abc.Collection",
        "collections.abc.Iterable",
    }
)
# Any of these means the join is spelled out or goes through another table: nothing to prove.
EXPLICIT = ("primaryjoin", "secondary", "secondaryjoin", "link_model", "sa_relationship")


class RelationshipWithoutForeignKey(Codemod):
    """A `relationship()` between two tables that no foreign key links.

    ## What it does
    Finds `relationship("Organization")`, `relationship(Organization)`, `Mapped[list["User"]] =
    relationship()` and SQLModel `Relationship()` attributes whose two tables have no foreign key between
    them in either direction (looking at every model, `ForeignKeyConstraint` and `Table` of the same
    MetaData, across files), and no `primaryjoin=` or `secondary=`. A subclass without its own
    `__tablename__` (single-table inheritance) adds its columns and foreign keys to its parent's table:
    they link that table too. It names the columns that could carry the foreign key (`users.org_id`) and
    shows the `primaryjoin` that works without one.

    ## Why is this bad?
    The classes import and `create_all()` works, but the first ORM use (a query, an instance, or
    `configure_mappers()`) raises `NoForeignKeysError: Could not determine join condition between
    parent/child tables on relationship Organization.users - there are no foreign keys linking these
    tables.` From then on every mapper, even unrelated ones, fails with `InvalidRequestError: One or more
    mappers failed to initialize`. `foreign_keys=` alone does not help: it only chooses among existing
    foreign keys.

    ## Example
    ```python
    class Organization(Base):
        __tablename__ = "organizations"
        id: Mapped[int] = mapped_column(primary_key=True)
        users: Mapped[list["User"]] = relationship(back_populates="org")

    class User(Base):
        __tablename__ = "users"
        id: Mapped[int] = mapped_column(primary_key=True)
        org_id: Mapped[int | None]
        org: Mapped["Organization"] = relationship(back_populates="users")
    ```

    ## Use instead
    ```python
    class User(Base):
        __tablename__ = "users"
        org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    ```
    or, without a schema change:
    ```python
        org: Mapped["Organization"] = relationship(
            back_populates="users", primaryjoin="foreign(User.org_id) == Organization.id"
        )
    ```

    ## Fix safety
    There is no automatic fix. Adding the foreign key changes the schema and fails on existing orphan rows
    (add it `NOT VALID`, clean up, then `VALIDATE CONSTRAINT`); the `primaryjoin` changes nothing in the
    database but must name the right column.

    ## Database impact
    None: it is a diagnostic.
    """

    code = "DBF010"
    name = "relationship-without-foreign-key"
    fixable = False
    triggers = r"relationship|Relationship"  # words: see `dbfix.triggers`
    declarations_only = True
    schema_only = True

    def detect(self, ctx: FileContext) -> Iterator[Finding]:
        g = graph_for(ctx)
        for qualname, cls in module_classes(ctx.tree, ctx.names.module):
            model = ctx.index.models.get(qualname)
            if model is None:
                continue
            for stmt in cls.body:
                if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                    attr, value, annotation = stmt.targets[0].id, stmt.value, None
                elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
                    attr, value, annotation = stmt.target.id, stmt.value, stmt.annotation
                else:
                    continue
                if isinstance(value, ast.Call) and ctx.q(value.func) in RELATIONSHIP_CALLS:
                    finding = self._check(ctx, g, model, attr, value, annotation)
                    if finding is not None:
                        yield finding

    def _check(
        self, ctx: FileContext, g: FkGraph, model: ModelInfo, attr: str, call: ast.Call, annotation: ast.expr | None
    ) -> Finding | None:
        kwargs = _kw(call, "sa_relationship_kwargs")
        given = {k.arg for k in call.keywords if k.arg}
        if kwargs is not None:
            if not isinstance(kwargs, ast.Dict) or None in kwargs.keys:
                return None
            given |= {k for k in (_const(key, None) for key in kwargs.keys) if isinstance(k, str)}
        if given & set(EXPLICIT) or any(k.arg is None for k in call.keywords):
            return None
        found = _target(ctx, model, call, annotation)
        if found is None:
            return None
        target, many = found
        left, right = g.model_tables(model), g.model_tables(target)
        if not left or not right or {t.metadata for t in left + right} != {left[0].metadata}:
            return None
        if not all(g.complete(t) for t in left + right) or g.linked(left, right) is not False:
            return None
        where = f"`{model.cls.name}.{attr}` → `{target.cls.name}`"
        tables = f"`{model.table}` and `{target.table}`" if model.table != target.table else f"`{model.table}` and itself"
        message = (
            f"relationship {where}: no foreign key links {tables}; the first ORM use raises `NoForeignKeysError` "
            "and then every mapper fails to initialize"
        )
        if "foreign_keys" in given:
            message += " (`foreign_keys=` alone is not enough: it only chooses among existing foreign keys)"
        # many-to-one: the FK belongs on this model's table; one-to-many: on the target's; else try both
        sides = [(target, model)] if many is True else [(model, target)] if many is False else [(model, target), (target, model)]
        notes = []
        for child, parent in sides:
            hint = _hint(child, parent, model)
            if hint:
                notes.append(hint)
                break
        else:
            child, parent = sides[0]
            pk = _primary_key(parent)
            if pk is not None and parent.table:
                stem = _snake(parent.cls.name)
                notes.append(
                    f"add a column such as `{stem}_id` with `ForeignKey(\"{parent.table}.{pk.name}\")` to "
                    f"`{child.cls.name}` (a schema change), or give the relationship a `primaryjoin=` with `foreign()`"
                )
        return self.finding(ctx, call, message, notes=notes)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _primary_key(model: ModelInfo) -> ColumnInfo | None:
    keys = [c for c in model.columns.values() if c.primary_key]
    return keys[0] if len(keys) == 1 else None


def _candidates(child: ModelInfo, parent: ModelInfo) -> list[ColumnInfo]:
    """Columns of `child` whose name says they hold the id of a `parent` (`org_id` for `Organization`)."""
    words = {parent.cls.name.lower(), _snake(parent.cls.name), parent.table or ""} - {""}
    words |= {w[:-1] for w in words if w.endswith("s")}
    found = []
    for column in child.columns.values():
        if column.primary_key or column.foreign_keys:
            continue
        name = column.name.lower()
        stem = name[:-3] if name.endswith("_id") else name[:-2] if name.endswith("id") else ""
        stem = stem.rstrip("_")
        if len(stem) < 2:
            continue
        # `org_id`, `organization_id`, `billing_contact_id` (a role + the target), `organisation_id`
        if any(
            w.startswith(stem) or stem.startswith(w) or stem.endswith(f"_{w}") or difflib.SequenceMatcher(None, stem, w).ratio() >= 0.8
            for w in words
        ):
            found.append(column)
    return found


def _hint(child: ModelInfo, parent: ModelInfo, model: ModelInfo) -> str | None:
    pk = _primary_key(parent)
    columns = _candidates(child, parent)
    if pk is None or not columns or not parent.table or not child.table:
        return None
    column = columns[0]
    local = f"foreign({child.cls.name}.{column.attr})"
    remote = f"{parent.cls.name}.{pk.attr}"
    join = f"{local} == {remote}" if child is model else f"{remote} == {local}"
    others = "".join(f", `{child.table}.{c.name}`" for c in columns[1:])
    target = f"{parent.table}.{pk.name}"
    if model.style == "sqlmodel":
        fk = f'`Field(foreign_key="{target}")`'
        kwarg = f'`sa_relationship_kwargs={{"primaryjoin": "{join}"}}`'
    else:
        fk = f'`ForeignKey("{target}")`'
        kwarg = f'`primaryjoin="{join}"`'
    return (
        f"`{child.table}.{column.name}`{others} could carry the foreign key: {fk} (a schema change: add it "
        f"`NOT VALID`, clean up orphan rows, then `VALIDATE CONSTRAINT`); without a schema change: {kwarg}"
    )


def _target(ctx: FileContext, model: ModelInfo, call: ast.Call, annotation: ast.expr | None) -> tuple[ModelInfo, bool | None] | None:
    """The related model and whether the attribute holds many of them (None: not said)."""
    uselist = _const(_kw(call, "uselist"), None)
    argument = call.args[0] if call.args else _kw(call, "argument")
    many = _many(ctx, annotation)
    if uselist is True:
        many = True
    elif uselist is False:
        many = None  # one-to-one: the FK can be on either side
    if argument is not None:
        if isinstance(argument, ast.Lambda):
            argument = argument.body
        found = _model(ctx, model, argument)
        return (found, many) if found is not None else None
    if annotation is None:
        return None
    inner = _element(ctx, annotation)
    found = _model(ctx, model, inner) if inner is not None else None
    return (found, many) if found is not None else None


def _parse(node: ast.expr) -> ast.expr:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            return ast.parse(node.value, mode="eval").body
        except SyntaxError:
            return node
    return node


def _unwrap(ctx: FileContext, annotation: ast.expr) -> tuple[ast.expr, bool | None]:
    """`Mapped[list["User"]]` -> (`"User"`, True); `Optional["Org"]` -> (`"Org"`, False)."""
    node = _parse(annotation)
    if isinstance(node, ast.Subscript) and ctx.q(node.value) in MAPPED:
        node = _parse(node.slice)
    node, _ = unwrap_optional(node, ctx.q)
    node = _parse(node)
    if isinstance(node, ast.Subscript):
        if ctx.q(node.value) in COLLECTIONS:
            return _parse(node.slice), True
        return node, None
    return node, False


def _many(ctx: FileContext, annotation: ast.expr | None) -> bool | None:
    return _unwrap(ctx, annotation)[1] if annotation is not None else None


def _element(ctx: FileContext, annotation: ast.expr) -> ast.expr | None:
    node, _ = _unwrap(ctx, annotation)
    return None if isinstance(node, ast.Subscript) else node


_BY_NAME: weakref.WeakKeyDictionary[ProjectIndex, dict[tuple[str, str], list[ModelInfo]]] = weakref.WeakKeyDictionary()


def _models_named(index: ProjectIndex) -> dict[tuple[str, str], list[ModelInfo]]:
    """(class name, declarative base) -> models: the registry a string `relationship("Name")` resolves in."""
    found = _BY_NAME.get(index)
    if found is None:
        found = {}
        for m in index.models.values():
            found.setdefault((m.cls.name, m.base), []).append(m)
        _BY_NAME[index] = found
    return found


def _model(ctx: FileContext, model: ModelInfo, node: ast.expr) -> ModelInfo | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        name = node.value.strip()
        if "." in name:
            return ctx.index.models.get(ctx.index.resolve(name) or "")
        # string names are looked up in the class registry of the model's own declarative base
        same = _models_named(ctx.index).get((name, model.base), [])
        return same[0] if len(same) == 1 else None
    if isinstance(node, (ast.Name, ast.Attribute)):
        qualname = ctx.q(node)
        if qualname is None and isinstance(node, ast.Name):  # a string annotation: the registry resolves it
            return _model(ctx, model, ast.Constant(node.id))
        return ctx.index.models.get(qualname or "")
    return None
