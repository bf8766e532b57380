from __future__ import annotations

import ast
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from dbfix.codemod import Codemod, FileContext, defines_mapped_class, mentions_any
from dbfix.config import Config
from dbfix.findings import Edit, Finding
from dbfix.index import (
    COLUMN_CALLS,
    DECLARATIVE_BASES,
    FIELD_CALLS,
    MAPPED_COLUMN_CALLS,
    RELATIONSHIP_CALLS,
    ClassInfo,
    ProjectIndex,
    _kw,
    module_classes,
)
from dbfix.references import (
    CLASS,
    DML,
    EXTERNAL,
    INSTANCE,
    OPAQUE,
    QUERY,
    SELECT,
    Ref,
    infer,
    mro,
)
from dbfix.versions import TargetVersions

SQLMODEL = "sqlmodel.SQLModel"
COLUMNS = COLUMN_CALLS | MAPPED_COLUMN_CALLS
COLUMN_WRAPPERS = frozenset({"sqlalchemy.orm.deferred", "sqlalchemy.orm.column_property"})
# values that are mapped attributes without a column of their own: only the attribute is renamed
NO_COLUMN = RELATIONSHIP_CALLS | {
    "sqlalchemy.orm.synonym",
    "sqlalchemy.orm.query_expression",
    "sqlalchemy.orm.column_property",
    "sqlalchemy.ext.associationproxy.association_proxy",
}
# what only the MetaData has: `Model.metadata.create_all()` means the MetaData and works once renamed
METADATA_API = frozenset({"create_all", "drop_all", "tables", "sorted_tables", "reflect", "naming_convention", "clear", "remove"})
REGISTRY_API = frozenset({"configure", "mappers", "dispose", "map_imperatively", "mapped", "generate_base", "type_annotation_map"})
CORE_COLUMNS = frozenset({"c", "columns"})  # `Model.__table__.c.metadata` is keyed by the column name
SAFE_EXTERNAL = ("sqlalchemy.", "sqlmodel.", "flask_sqlalchemy.", "pydantic.", "importlib.")
CONFIG_CALLS = frozenset({"pydantic.ConfigDict", "pydantic.config.ConfigDict", "builtins.dict", "sqlmodel.main.SQLModelConfig"})
# pydantic.BaseModel's own `model_*` members (2.x): a field of that name breaks or shadows the model
BASEMODEL_MEMBERS = frozenset(
    {
        "model_config",
        "model_fields",
        "model_computed_fields",
        "model_extra",
        "model_fields_set",
        "model_construct",
        "model_copy",
        "model_dump",
        "model_dump_json",
        "model_json_schema",
        "model_parametrized_name",
        "model_post_init",
        "model_rebuild",
        "model_validate",
        "model_validate_json",
        "model_validate_strings",
        "model_private",
    }
)
DUNDER_COLUMNS = {"__table__": "table_", "__mapper__": "mapper_"}


def _declares_reserved(cls: ClassInfo) -> bool:
    attrs = cls.attributes
    return (
        bool(attrs & {"metadata", "registry", "__mapper__", "__table__"})
        or ("__tablename__" in attrs and cls.tablename is None)
        or any(a.startswith("model_") for a in attrs)
    )


_AFFECTED: weakref.WeakKeyDictionary[ProjectIndex, frozenset[str]] = weakref.WeakKeyDictionary()


def _affected_class_names(index: ProjectIndex) -> frozenset[str]:
    """The names of the project classes that have a reserved attribute, declared or inherited."""
    names = _AFFECTED.get(index)
    if names is None:
        declaring = {c.qualname for c in index.classes.values() if _declares_reserved(c) and index.is_model_or_mixin(c.qualname)}
        names = frozenset(c.name for c in index.classes.values() if any(a.qualname in declaring for a in index._mro(c)))
        _AFFECTED[index] = names
    return names


@dataclass(frozen=True)
class Rename:
    """`owner.attr` becomes `owner.new` on every mapped model that inherits it."""

    attr: str
    new: str
    requested: str
    owner: str
    models: tuple[str, ...]
    sqlmodel: bool
    alias: bool  # a SQLModel field that gets `alias=<attr>`: `Model(<attr>=...)` keeps working


@dataclass
class Plans:
    renames: dict[tuple[str, str], Rename] = field(default_factory=dict)  # (owner, attr) -> rename
    above: dict[str, set[str]] = field(default_factory=dict)  # attr -> every class an affected model inherits

    def attrs(self) -> set[str]:
        return {attr for _, attr in self.renames}

    def lookup(self, index: ProjectIndex, qualname: str, attr: str) -> Rename | None:
        """The rename `qualname.attr` is subject to: the first class of its MRO that assigns `attr` decides."""
        for name in mro(index, qualname):
            cls = index.classes.get(name)
            if cls is not None and attr in cls.attributes:
                return self.renames.get((name, attr))
        return None

    def judge(self, index: ProjectIndex, ref: Ref | None, attr: str) -> Rename | str:
        """The rename for `<ref>.attr`, "skip" when it is provably something else, "unknown" otherwise."""
        if ref is None or ref.kind == OPAQUE:
            return "unknown"
        if ref.kind not in (CLASS, INSTANCE):
            return "skip"
        rename = self.lookup(index, ref.cls, attr)
        if rename is not None:
            return rename
        if (ref.kind == INSTANCE or not ref.exact) and ref.cls in self.above.get(attr, ()):
            return "unknown"  # an instance of a base class: it may be the model
        return "skip"


def _owner(index: ProjectIndex, model: str, base: str, attr: str) -> str | None:
    for name in mro(index, model):
        cls = index.classes.get(name)
        if cls is None or attr not in cls.attributes:
            continue
        if name == base or any(b in DECLARATIVE_BASES and b != "flask_sqlalchemy.Model" for b in cls.bases):
            return None  # the declarative base: its `metadata`/`registry` is the real one
        if attr == "metadata" and cls.metadata_var:
            return None
        return name
    return None


@lru_cache(maxsize=8)
def plans_for(index: ProjectIndex, metadata_to: str, registry: bool) -> Plans:
    """Which classes define a reserved attribute, and the free name each one gets (the same in every file)."""
    plans = Plans()
    wanted = {"metadata": metadata_to} | ({"registry": "registry_"} if registry else {})
    affected: dict[tuple[str, str], list[str]] = {}
    for model in index.models.values():
        for attr in wanted:
            if attr == "registry" and model.style == "sqlmodel":
                continue
            owner = _owner(index, model.qualname, model.base, attr)
            if owner is not None:
                affected.setdefault((owner, attr), []).append(model.qualname)
                plans.above.setdefault(attr, set()).update(mro(index, model.qualname))
    for (owner, attr), models in sorted(affected.items()):
        taken: set[str] = set()
        for name, cls in index.classes.items():
            if owner in mro(index, name) or any(name in mro(index, m) for m in models):
                taken |= cls.attributes
        requested = wanted[attr]
        candidates = [requested, f"{attr}_", *(f"{requested}_{i}" for i in range(2, 100))]
        new = next(c for c in candidates if c not in taken and c != attr)
        sqlmodel = SQLMODEL in mro(index, owner)
        alias = sqlmodel and attr in index.classes[owner].columns
        plans.renames[(owner, attr)] = Rename(attr, new, requested, owner, tuple(sorted(models)), sqlmodel, alias)
    return plans


def _short(qualname: str) -> str:
    return qualname.rsplit(".", 1)[-1]


def _has_init(index: ProjectIndex, qualname: str) -> bool:
    return any("__init__" in c.attributes for c in (index.classes.get(n) for n in mro(index, qualname)) if c)


class ReservedAttribute(Codemod):
    """A model attribute named `metadata` (or another name the declarative API reserves).

    ## What it does
    Finds mapped models (classic `Column` with `declarative_base()`, `DeclarativeBase` with
    `mapped_column`, SQLModel `table=True`, Flask-SQLAlchemy `db.Model`, and the mixins they inherit) with an
    attribute named `metadata`, renames it to `extra_metadata` (`[tool.dbfix] rename-metadata-to`; when that
    name is taken, a free one such as `metadata_`, and the finding says so) and keeps the database column
    name: `Column(JSONB)` becomes `Column("metadata", JSONB)`, `mapped_column(...)` likewise, SQLModel
    `sa_column=Column("metadata", ...)` or `sa_column_kwargs={"name": "metadata"}` plus `alias="metadata"`.

    Then it renames the references in every file of the project: `Model.metadata` where `Model` resolves
    to that model, `obj.metadata` where `obj` provably is one (an annotation, `obj = Model(...)`,
    `session.get(Model, ...)`, `for obj in session.scalars(select(Model))`, `self` in the model's methods,
    `cls` in its classmethods), and the keywords `Model(metadata=...)`, `filter_by(metadata=...)` on a
    `select(Model)` or `session.query(Model)`, `insert/update(Model).values(metadata=...)`. An access it
    cannot prove (`obj.metadata` on an object of unknown type) is reported with its location, unchanged.
    `Base.metadata`, `SQLModel.metadata`, `db.metadata`, `MetaData()` objects, tables, dict keys and
    classes that are not models are never touched.

    It also reports the other reserved names: `registry` (renamed to `registry_` the same way when the
    project targets SQLAlchemy 2.1, which warns about it), `__table__` and `__mapper__` declared as
    columns (renamed to `table_`/`mapper_`, column name kept), `__tablename__` declared as a column, and
    SQLModel fields that collide with pydantic: `model_config`, `model_fields` and the other `BaseModel`
    members (reported), fields starting with `model_validate`/`model_dump`, and on pydantic < 2.10 every
    field starting with `model_`, which get `model_config = ConfigDict(protected_namespaces=())`.

    ## Why is this bad?
    `metadata` is where the declarative class keeps its `MetaData`. SQLAlchemy 2.0 refuses the class
    (`InvalidRequestError: Attribute name 'metadata' is reserved when using the Declarative API.`).
    SQLAlchemy 2.1 builds it with a `SAWarning` (an error under `-W error`) but `Model.metadata` is then
    the column, so `Model.metadata.create_all()` fails. A SQLModel table model builds, yet
    `Model(metadata=...)` raises `'metadata' is a ClassVar of ...`. After a rename that forgets the
    callers, `Model(metadata=...)` and `filter_by(metadata=...)` silently set or compare the MetaData
    instead (`filter_by(metadata=None)` compiles to `WHERE false`).

    ## Example
    ```python
    class Document(Base):
        __tablename__ = "documents"
        id = Column(Integer, primary_key=True)
        metadata = Column(JSONB)

    doc = session.get(Document, 1)
    print(doc.metadata)
    ```

    ## Use instead
    ```python
    class Document(Base):
        __tablename__ = "documents"
        id = Column(Integer, primary_key=True)
        extra_metadata = Column("metadata", JSONB)

    doc = session.get(Document, 1)
    print(doc.extra_metadata)
    ```

    ## Fix safety
    Safe: the code being fixed cannot work as it stands. The rename still changes a public attribute, so
    the dry run lists every renamed reference, and every access it could not prove, per file; check those
    and the places dbfix cannot see: strings (`getattr` with a computed name, `relationship(order_by=
    "Model.metadata")`), dict keys of ORM bulk `insert(Model)` parameter lists, and code outside the
    project. For SQLModel the field gets `alias="metadata"`: `Model(metadata=...)`,
    `Model.model_validate({"metadata": ...})` and `model_dump(by_alias=True)` (what FastAPI's
    `response_model` uses by default) keep the key `metadata`, so constructor keywords are left as they
    are; a plain `model_dump()` now says `extra_metadata`. A model with its own `__init__` keeps its
    constructor keywords and they are reported.

    ## Database impact
    None: the column keeps its name (`Column("metadata", ...)`), Alembic autogenerate sees no change, and
    no migration is needed.
    """

    code = "DBF001"
    name = "reserved-attribute"
    triggers = r"metadata|registry|__table__|__mapper__|__tablename__|model_"

    @classmethod
    def active(cls, index: ProjectIndex, config: Config, versions: TargetVersions) -> bool:
        # every finding starts from a model, mixin or SQLModel base that declares a reserved name
        return any(_declares_reserved(c) for c in index.classes.values() if index.is_model_or_mixin(c.qualname))

    @classmethod
    def wanted(cls, source: str, index: ProjectIndex, config: Config, versions: TargetVersions) -> bool:
        # Declarations are in the files that define models, mixins or bases. A reference to rename
        # names the attribute, and is proven from a class name (references.py follows no function
        # results): a file that names no affected class, or no attribute to rename, is not parsed.
        if defines_mapped_class(source, index):
            return True
        sa = versions.sqlalchemy
        attrs = plans_for(index, config.rename_metadata_to, sa is not None and tuple(sa) >= (2, 1)).attrs()
        if not any(attr in source for attr in attrs):
            return False
        return mentions_any(source, _affected_class_names(index))

    def detect(self, ctx: FileContext) -> Iterator[Finding]:
        sa = ctx.versions.sqlalchemy
        plans = plans_for(ctx.index, ctx.config.rename_metadata_to, sa is not None and tuple(sa) >= (2, 1))
        for qualname, node in module_classes(ctx.tree, ctx.names.module):
            yield from self._class(ctx, plans, node, qualname)
        attrs = {attr for attr in plans.attrs() if attr in ctx.source}
        if not attrs:
            return
        for node in ctx.nodes(ast.Attribute, ast.Call, ast.Name):
            if isinstance(node, ast.Attribute):
                if node.attr in attrs:
                    yield from self._attribute(ctx, plans, node)
            elif isinstance(node, ast.Call):
                yield from self._call(ctx, plans, node)
            elif node.id in attrs and isinstance(node.ctx, ast.Load):
                yield from self._class_body_name(ctx, plans, node)

    # -- definitions ------------------------------------------------------------------------------

    def _class(self, ctx: FileContext, plans: Plans, node: ast.ClassDef, qualname: str) -> Iterator[Finding]:
        if qualname not in ctx.index.classes:
            return
        for attr in plans.attrs():
            rename = plans.renames.get((qualname, attr))
            if rename is None:
                continue
            for stmt in node.body:
                if _defines(stmt, attr):
                    yield self._definition(ctx, stmt, rename)
        model = ctx.index.model(qualname)
        if model is not None:
            yield from self._dunders(ctx, node, qualname, model.style)
        if SQLMODEL in mro(ctx.index, qualname):
            yield from self._pydantic_names(ctx, node, qualname)

    def _definition(self, ctx: FileContext, stmt: ast.stmt, rename: Rename) -> Finding:
        attr, new = rename.attr, rename.new
        models = ", ".join(f"`{_short(m)}`" for m in rename.models)
        message = f"`{_short(rename.owner)}.{attr}`: `{attr}` is reserved by SQLAlchemy's declarative API"
        if rename.models != (rename.owner,):
            message += f" (inherited by {models})"
        notes = []
        if new != rename.requested:
            notes.append(f"`{rename.requested}` is already taken on `{_short(rename.owner)}`: using `{new}`")
        edits = _value_edits(ctx, stmt, attr, rename.sqlmodel)
        if edits is None or isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            notes.append(f"rename it by hand (to `{new}`), keeping the column name \"{attr}\"")
            return self.finding(ctx, stmt, message, notes=notes)
        target = stmt.targets[0] if isinstance(stmt, ast.Assign) else stmt.target  # type: ignore[attr-defined]
        column_edits, imports = edits
        info = ctx.index.classes.get(rename.owner)
        column = info.columns.get(attr) if info is not None else None
        description = f"rename `{attr}` to `{new}`"
        if column is not None:
            description += f", keeping the column name \"{column.name}\""
        if rename.alias:
            description += f" and the key `{attr}` (alias)"
        return self.finding(
            ctx,
            stmt,
            message,
            edits=[Edit(ctx.span(target), "rename_name", (new,)), *column_edits],
            imports=imports,
            description=description,
            notes=notes,
        )

    def _dunders(self, ctx: FileContext, node: ast.ClassDef, qualname: str, style: str) -> Iterator[Finding]:
        for stmt in node.body:
            for attr in ("__table__", "__mapper__", "__tablename__"):
                if not _defines(stmt, attr) or isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                value = stmt.value  # type: ignore[attr-defined]
                call = _column_call(ctx, value)
                if call is None:
                    continue
                message = f"`{attr}` is reserved by SQLAlchemy's declarative API and cannot be a column"
                if attr == "__tablename__" or style == "sqlmodel":
                    yield self.finding(ctx, stmt, message, notes=[f"rename the column attribute by hand, keeping the column name \"{attr}\""])
                    continue
                info = ctx.index.classes.get(qualname)
                taken = info.attributes if info else set()
                new = next(c for c in (DUNDER_COLUMNS[attr], *(f"{DUNDER_COLUMNS[attr]}{i}" for i in range(2, 100))) if c not in taken)
                target = stmt.targets[0] if isinstance(stmt, ast.Assign) else stmt.target  # type: ignore[attr-defined]
                edits = [Edit(ctx.span(target), "rename_name", (new,))]
                if not _explicit_name(call):
                    edits.append(Edit(ctx.span(call), "insert_arg", (0, f'"{attr}"')))
                yield self.finding(
                    ctx,
                    stmt,
                    message,
                    edits=edits,
                    description=f"rename `{attr}` to `{new}`, keeping the column name \"{attr}\"",
                    notes=[f"`Model.{attr}` elsewhere keeps meaning the {'Table' if attr == '__table__' else 'Mapper'}: references are not renamed"],
                )

    def _pydantic_names(self, ctx: FileContext, node: ast.ClassDef, qualname: str) -> Iterator[Finding]:
        old_pydantic = ctx.versions.pydantic is not None and tuple(ctx.versions.pydantic) < (2, 10)
        protected: list[ast.AnnAssign] = []
        config: ast.stmt | None = None
        for stmt in node.body:
            if _defines(stmt, "model_config") and not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                config = stmt
                continue
            if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
                continue
            name = stmt.target.id
            if name in BASEMODEL_MEMBERS:
                message = f"the field `{name}` collides with pydantic's `BaseModel.{name}`"
                yield self.finding(ctx, stmt, message, notes=["rename the field; keep the column name with `sa_column_kwargs={\"name\": ...}` and the key with `alias=`"])
            elif name.startswith(("model_validate", "model_dump")) or (old_pydantic and name.startswith("model_")):
                protected.append(stmt)
        if not protected:
            return
        names = ", ".join(f"`{s.target.id}`" for s in protected)  # type: ignore[union-attr]
        message = f"{names} conflict{'s' if len(protected) == 1 else ''} with pydantic's protected namespace `model_`"
        fix = self._protected_namespaces(ctx, node, qualname, config)
        if fix is None:
            yield self.finding(ctx, protected[0], message, notes=["set `model_config = ConfigDict(protected_namespaces=())` on the class"])
            return
        edits, imports = fix
        yield self.finding(
            ctx, protected[0], message, edits=edits, imports=imports, description="set `protected_namespaces=()` in `model_config`"
        )

    def _protected_namespaces(
        self, ctx: FileContext, node: ast.ClassDef, qualname: str, config: ast.stmt | None
    ) -> tuple[list[Edit], list[tuple[str, str | None, str | None]]] | None:
        if config is not None:
            value = config.value  # type: ignore[attr-defined]
            if isinstance(value, ast.Call) and ctx.q(value.func) in CONFIG_CALLS and not value.args:
                if _kw(value, "protected_namespaces") is not None:
                    return None
                return [Edit(ctx.span(value), "add_kwarg", ("protected_namespaces", "()"))], []
            return None
        for name in mro(ctx.index, qualname)[1:]:
            parent = ctx.index.classes.get(name)
            if parent is not None and "model_config" in parent.attributes:
                return None  # an inherited config we cannot see into
        spelled = _spelling(ctx, node, "pydantic.ConfigDict", "ConfigDict")
        if spelled is None:
            return None
        code, imports = spelled
        return [Edit(ctx.span(node), "add_class_statement", (f"model_config = {code}(protected_namespaces=())",))], imports

    # -- references -------------------------------------------------------------------------------

    def _attribute(self, ctx: FileContext, plans: Plans, node: ast.Attribute) -> Iterator[Finding]:
        attr = node.attr
        parent = ctx.parent(node)
        api = METADATA_API if attr == "metadata" else REGISTRY_API
        if isinstance(parent, ast.Attribute) and parent.value is node and parent.attr in api:
            return  # `Model.metadata.create_all()` meant the MetaData, which it is again after the rename
        receiver = node.value
        if isinstance(receiver, ast.Attribute) and receiver.attr in CORE_COLUMNS:
            return
        ref = infer(ctx, receiver)
        if ref is not None and ref.kind == EXTERNAL:
            # an imported name is a class, a function or a module, never a model instance; an attribute
            # of one (`g.item`, `request.state.item`) can hold anything
            if not (isinstance(receiver, ast.Name) or ref.cls.startswith(SAFE_EXTERNAL)):
                yield self._unproven(ctx, plans, node, attr, ctx.code(receiver))
            return
        verdict = plans.judge(ctx.index, ref, attr)
        if isinstance(verdict, Rename) and ref is not None and ref.kind == CLASS and _bare(ctx, node):
            why = f"`{ctx.code(node)}` alone may mean the MetaData (`target_metadata = Base.metadata`)"
            yield self._unproven(ctx, plans, node, attr, ctx.code(receiver), why=why, note="check it: if it means the column, use")
        elif isinstance(verdict, Rename):
            yield self._renamed(ctx, node, verdict, Edit(ctx.span(node), "rename_attr", (verdict.new,)))
        elif verdict == "unknown":
            yield self._unproven(ctx, plans, node, attr, ctx.code(receiver))

    def _call(self, ctx: FileContext, plans: Plans, call: ast.Call) -> Iterator[Finding]:
        func = call.func
        attrs = plans.attrs()
        if ctx.q(func) in ("builtins.getattr", "builtins.setattr", "builtins.hasattr") and len(call.args) >= 2:
            name = call.args[1]
            if isinstance(name, ast.Constant) and name.value in attrs:
                yield from self._getattr(ctx, plans, call, name)
            return
        for keyword in call.keywords:
            attr = keyword.arg
            if attr not in attrs:
                continue
            if isinstance(func, ast.Attribute) and func.attr in ("filter_by", "values"):
                yield from self._statement_keyword(ctx, plans, call, func, attr)
                continue
            ref = infer(ctx, func)
            if ref is None or ref.kind != CLASS:
                continue  # `field(metadata=...)`, `Table(..., metadata=...)`: not a model
            shown = f"{ctx.code(func)}({attr}=...)"
            rename = plans.lookup(ctx.index, ref.cls, attr)
            if rename is None:
                if not ref.exact and ref.cls in plans.above.get(attr, ()):
                    yield self._unproven(ctx, plans, call, attr, ctx.code(func), shown)
            elif rename.alias:
                continue  # the alias keeps `Model(metadata=...)` working
            elif _has_init(ctx.index, ref.cls):
                yield self._unproven(ctx, plans, call, attr, ctx.code(func), shown, why="it has its own `__init__`")
            else:
                yield self._renamed(ctx, call, rename, Edit(ctx.span(call), "rename_kwarg", (attr, rename.new)), shown)

    def _statement_keyword(
        self, ctx: FileContext, plans: Plans, call: ast.Call, func: ast.Attribute, attr: str
    ) -> Iterator[Finding]:
        receiver = ctx.code(func.value)
        shown = f"{func.attr}({attr}=...)"
        ref = infer(ctx, func.value)
        if ref is None or ref.kind not in (QUERY, SELECT, DML):
            if func.attr == "filter_by" or ref is None or ref.kind == OPAQUE:
                yield self._unproven(ctx, plans, call, attr, receiver, shown)
            return
        rename = plans.lookup(ctx.index, ref.cls, attr)
        if rename is None:
            return
        if ref.kind != DML and not ref.plain:
            why = "after a join, `filter_by` filters the last joined entity"
            yield self._unproven(ctx, plans, call, attr, receiver, shown, why=why, note="check it: if that entity is one of them, use")
            return
        yield self._renamed(ctx, call, rename, Edit(ctx.span(call), "rename_kwarg", (attr, rename.new)), shown)

    def _getattr(self, ctx: FileContext, plans: Plans, call: ast.Call, name: ast.Constant) -> Iterator[Finding]:
        attr = str(name.value)
        verdict = plans.judge(ctx.index, infer(ctx, call.args[0]), attr)
        if isinstance(verdict, Rename):
            code = ctx.code(name)
            edit = Edit(ctx.span(name), "replace", (code.replace(attr, verdict.new, 1),))
            yield self._renamed(ctx, call, verdict, edit)
        elif verdict == "unknown":
            yield self._unproven(ctx, plans, call, attr, ctx.code(call.args[0]))

    def _class_body_name(self, ctx: FileContext, plans: Plans, node: ast.Name) -> Iterator[Finding]:
        cls = ctx.enclosing_class(node)
        if cls is None:
            return
        rename = plans.renames.get((ctx.class_qualname(cls), node.id))
        if rename is not None:
            yield self._renamed(ctx, node, rename, Edit(ctx.span(node), "rename_name", (rename.new,)))

    def _renamed(self, ctx: FileContext, node: ast.AST, rename: Rename, edit: Edit, shown: str | None = None) -> Finding:
        shown = shown or ctx.code(node)
        message = f"`{shown}` refers to `{_short(rename.owner)}.{rename.attr}`, renamed to `{rename.new}`"
        after = _renamed_text(shown, rename.attr, rename.new)
        return self.finding(ctx, node, message, edits=[edit], description=f"`{shown}` becomes `{after}`")

    def _unproven(
        self,
        ctx: FileContext,
        plans: Plans,
        node: ast.AST,
        attr: str,
        receiver: str,
        shown: str | None = None,
        why: str = "",
        note: str = "",
    ) -> Finding:
        renames = [r for r in plans.renames.values() if r.attr == attr]
        models = ", ".join(f"`{m}`" for m in sorted({_short(m) for r in renames for m in r.models}))
        new = " or ".join(f"`{n}`" for n in sorted({r.new for r in renames}))
        why = why or f"dbfix cannot prove what `{receiver}` is"
        message = f"`{shown or ctx.code(node)}` may be the reserved `{attr}` of {models}, renamed to {new}: {why}"
        note = f"{note} {new}" if note else f"check it: if `{receiver}` is (an instance of) {models.replace(', ', ' or ')}, use {new}"
        return self.finding(ctx, node, message, notes=[f"{note}; if not, add `# dbfix: ignore[DBF001]`"])


# -- the value edits of a definition ------------------------------------------------------------------


Imports = list[tuple[str, "str | None", "str | None"]]


def _bare(ctx: FileContext, node: ast.Attribute) -> bool:
    """`x = Model.metadata`, `configure(target_metadata=Model.metadata)`: not visibly used as a column."""
    parent = ctx.parent(node)
    if isinstance(parent, (ast.Assign, ast.AnnAssign)) and parent.value is node:
        return True
    return isinstance(parent, ast.keyword) and parent.arg is not None and "metadata" in parent.arg


def _renamed_text(shown: str, attr: str, new: str) -> str:
    """`doc.metadata` -> `doc.extra_metadata`, `Doc(metadata=...)` -> `Doc(extra_metadata=...)`."""
    for old, fresh in ((f".{attr}", f".{new}"), (f"{attr}=", f"{new}="), (f'"{attr}"', f'"{new}"'), (f"'{attr}'", f"'{new}'")):
        if shown.endswith(old) or f"{old}..." in shown or (old.startswith(("'", '"')) and old in shown):
            head, _, tail = shown.rpartition(old)
            return head + fresh + tail
    return new if shown == attr else shown


def _defines(stmt: ast.stmt, attr: str) -> bool:
    if isinstance(stmt, ast.Assign):
        return len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name) and stmt.targets[0].id == attr
    if isinstance(stmt, ast.AnnAssign):
        return isinstance(stmt.target, ast.Name) and stmt.target.id == attr
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return stmt.name == attr
    return False


def _explicit_name(call: ast.Call) -> bool:
    first = call.args[0] if call.args else None
    return (isinstance(first, ast.Constant) and isinstance(first.value, str)) or _kw(call, "name") is not None


def _column_call(ctx: FileContext, value: ast.expr | None) -> ast.Call | None:
    if not isinstance(value, ast.Call):
        return None
    func = ctx.q(value.func)
    if func in COLUMNS:
        return value
    if func in COLUMN_WRAPPERS and value.args and isinstance(value.args[0], ast.Call) and ctx.q(value.args[0].func) in COLUMNS:
        return value.args[0]
    return None


def _value_edits(ctx: FileContext, stmt: ast.stmt, attr: str, sqlmodel: bool) -> tuple[list[Edit], Imports] | None:
    """What keeps the column name (and for SQLModel the key) once the attribute is renamed; None: no fix."""
    if not isinstance(stmt, (ast.Assign, ast.AnnAssign)):
        return None
    value = stmt.value
    name = f'"{attr}"'
    column = _column_call(ctx, value)
    if column is not None:
        return ([] if _explicit_name(column) else [Edit(ctx.span(column), "insert_arg", (0, name))]), []
    if isinstance(value, ast.Call) and ctx.q(value.func) in FIELD_CALLS:
        return _field_edits(ctx, value, attr)
    if isinstance(value, ast.Call) and ctx.q(value.func) in NO_COLUMN:
        return [], []
    if not isinstance(stmt, ast.AnnAssign):
        return None
    if sqlmodel:
        spelled = _spelling(ctx, stmt, "sqlmodel.Field", "Field")
        if spelled is None:
            return None
        code, imports = spelled
        kwargs = f'alias={name}, sa_column_kwargs={{"name": {name}}}'
        if value is None:
            return [Edit(ctx.span(stmt), "set_value", (f"{code}({kwargs})",))], imports
        return [Edit(ctx.span(value), "replace", (f"{code}(default={ctx.code(value)}, {kwargs})",))], imports
    annotation = stmt.annotation
    if value is None and isinstance(annotation, ast.Subscript) and ctx.q(annotation.value) == "sqlalchemy.orm.Mapped":
        spelled = _spelling(ctx, stmt, "sqlalchemy.orm.mapped_column", "mapped_column")
        if spelled is None:
            return None
        code, imports = spelled
        return [Edit(ctx.span(stmt), "set_value", (f"{code}({name})",))], imports
    return None


def _field_edits(ctx: FileContext, call: ast.Call, attr: str) -> tuple[list[Edit], Imports] | None:
    name = f'"{attr}"'
    edits: list[Edit] = []
    sa_column = _kw(call, "sa_column")
    if sa_column is not None:
        column = _column_call(ctx, sa_column)
        if column is None:
            return None
        if not _explicit_name(column):
            edits.append(Edit(ctx.span(column), "insert_arg", (0, name)))
    else:
        kwargs = _kw(call, "sa_column_kwargs")
        if kwargs is None:
            edits.append(Edit(ctx.span(call), "add_kwarg", ("sa_column_kwargs", f'{{"name": {name}}}')))
        elif isinstance(kwargs, ast.Dict):
            keys = [k.value for k in kwargs.keys if isinstance(k, ast.Constant)]
            if "name" not in keys:
                code = ctx.code(kwargs)
                inner = code[1:].lstrip()
                new = f'{{"name": {name}}}' if inner == "}" else f'{{"name": {name}, {inner}'
                edits.append(Edit(ctx.span(kwargs), "replace", (new,)))
        else:
            return None
    if not any(_kw(call, k) is not None for k in ("alias", "validation_alias", "serialization_alias")):
        edits.append(Edit(ctx.span(call), "add_kwarg", ("alias", name)))
    return edits, []


def _spelling(ctx: FileContext, at: ast.AST, qualname: str, name: str) -> tuple[str, Imports] | None:
    """How to write `qualname` at `at`: a name already bound to it, or `name` with a new import."""
    names = ctx.names
    scope = names.scope_at(at)
    for bound, _ in names.module_bindings():
        if ctx.index.resolve(names.lookup(bound, scope)) == qualname:
            return bound, []
    if names.is_bound(name, at):
        return None
    module = qualname.rsplit(".", 1)[0]
    return name, [(module, name, None)]
