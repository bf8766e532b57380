"""The name a database has for an unnamed constraint: from the project's Alembic revisions, or PostgreSQL's.

dbfix predicts PostgreSQL's names (`dbfix.schema.PgNames`). Two things can make that prediction wrong:

- a revision script named the constraint (`op.create_foreign_key("team_captain_id", "teams", ...)`): every
  upgraded database has that name. Revision scripts are never fixed, but they are read here: the
  `upgrade()` bodies of every Alembic `versions/` folder under the project root, in revision order
  (`down_revision`), with each operation tagged by the databases it runs on when it sits under an
  `if url.startswith("mysql"):`-style test;
- the project does not run on PostgreSQL (`TargetVersions.databases`): MySQL chooses other names
  (`<table>_ibfk_<n>`, a unique key after its first column) and SQLite keeps none.

`claim()` weighs both and says which name a fix may write, if any.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dbfix.discovery import SKIP_DIRS, is_alembic_versions_file
from dbfix.index import ProjectIndex, canonical_name
from dbfix.names import ModuleNames
from dbfix.schema import ConstraintFact, TableView, constraint_from_call

DATABASES = frozenset({"postgresql", "mysql", "sqlite"})
DISPLAY = {"postgresql": "PostgreSQL", "mysql": "MySQL", "sqlite": "SQLite"}
# what a URL or dialect name starts with, per database (`url.startswith("postgres")`, `dialect.name == "mysql"`)
_SPELLINGS = {"postgresql": ("postgresql", "postgres"), "mysql": ("mysql", "mariadb"), "sqlite": ("sqlite",)}
_RENAME = re.compile(
    r'ALTER\s+TABLE\s+(?:ONLY\s+)?(?:"?(\w+)"?\.)?"?(\w+)"?\s+RENAME\s+CONSTRAINT\s+"?(\w+)"?\s+TO\s+"?(\w+)"?', re.IGNORECASE
)
Key = tuple[str | None, str, str, tuple[str, ...]]  # schema, table, kind, columns (a CHECK: its SQL, spaces collapsed)


@dataclass(frozen=True)
class Named:
    """A constraint name a revision script gave."""

    name: str
    revision: str  # the revision id, or the file name when it has none
    path: str
    line: int
    certain: bool = True  # False: under a condition dbfix cannot evaluate (`if has_column(...)`), or in a loop


@dataclass(frozen=True)
class _Event:
    what: str  # "create" | "drop" | "rename"
    schema: str | None
    table: str
    name: str
    databases: frozenset[str]
    line: int
    certain: bool
    kind: str = ""  # create: the constraint's kind and columns (a CHECK: its SQL)
    columns: tuple[str, ...] = ()
    new: str = ""  # rename: the new name


@dataclass
class _Script:
    path: Path
    revision: str
    down: tuple[str, ...]
    events: list[_Event] = field(default_factory=list)


class MigrationNames:
    """The constraint names the project's revision scripts leave in each database."""

    def __init__(self, scripts: Iterable[_Script] = ()) -> None:
        self.scripts = _in_revision_order(list(scripts))
        self.by_database: dict[str, dict[Key, Named]] = {db: {} for db in DATABASES}
        for script in self.scripts:
            for event in script.events:
                self._apply(script, event)

    def _apply(self, script: _Script, event: _Event) -> None:
        for db in event.databases:
            state = self.by_database[db]
            if event.what == "create":
                key = (event.schema, event.table, event.kind, event.columns)
                state[key] = Named(event.name, script.revision, str(script.path), event.line, event.certain)
                continue
            for key, named in list(state.items()):
                if key[:2] != (event.schema, event.table) or named.name != event.name:
                    continue
                if event.what == "drop" and event.certain:
                    del state[key]
                else:  # a rename, or a drop that may not have run: the name is no longer sure
                    new = event.new if event.what == "rename" else named.name
                    state[key] = Named(new, script.revision, str(script.path), event.line, event.certain and named.certain)

    def name(self, database: str, schema: str | None, table: str, kind: str, columns: Iterable[str]) -> Named | None:
        return self.by_database.get(database, {}).get((schema, table, kind, tuple(columns)))


# -- finding and reading the revision scripts ------------------------------------------------------

_CACHE: dict[frozenset[str], tuple[tuple, MigrationNames]] = {}
_LAST: list[tuple[ProjectIndex, MigrationNames]] = []


def migration_names(index: ProjectIndex) -> MigrationNames:
    """The names of every Alembic revision under the project root: read once per index, and again only
    when a script read before changed."""
    if _LAST and _LAST[0][0] is index:
        return _LAST[0][1]
    roots = frozenset(_roots(index))
    cached = _CACHE.get(roots)
    if cached is None or cached[0] != _stamps(p for p, *_ in cached[0]):
        found = sorted({p for root in roots for p in _version_files(Path(root))})
        cached = (_stamps(found), MigrationNames(s for s in (_read(p) for p in found) if s is not None))
        _CACHE[roots] = cached
    _LAST[:] = [(index, cached[1])]
    return cached[1]


def _stamps(paths: Iterable[Path]) -> tuple:
    out = []
    for path in sorted(paths):
        try:
            stat = path.stat()
        except OSError:
            continue
        out.append((path, stat.st_size, stat.st_mtime_ns))
    return tuple(out)


def _roots(index: ProjectIndex) -> set[str]:
    """The project roots the index's modules were named from (`app/models.py` as `app.models`)."""
    roots: set[str] = set()
    for facts in index.modules.values():
        path = Path(os.path.abspath(facts.path))
        up = len(facts.module.split(".")) - 1 + facts.is_package if facts.module else 0
        root = path.parents[up] if up < len(path.parents) else path.parent
        if root.name == "src":  # `src/app/models.py` is the module `app.models`
            root = root.parent
        roots.add(str(root))
    # a root inside another is the same project
    return {r for r in roots if not any(r != o and r.startswith(o.rstrip(os.sep) + os.sep) for o in roots)}


def _version_files(root: Path) -> Iterator[Path]:
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        if os.path.basename(directory) != "versions":
            continue
        for name in sorted(files):
            path = Path(directory, name)
            if is_alembic_versions_file(path):
                yield path


def _read(path: Path) -> _Script | None:
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    values = {
        t.id: stmt.value
        for stmt in tree.body
        if isinstance(stmt, (ast.Assign, ast.AnnAssign))
        for t in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target])
        if isinstance(t, ast.Name)
    }
    revision = _literal(values.get("revision"))
    down = _literal(values.get("down_revision"))
    script = _Script(
        path,
        revision if isinstance(revision, str) else path.stem,
        tuple(d for d in (down if isinstance(down, (tuple, list)) else [down]) if isinstance(d, str)),
    )
    names = ModuleNames(tree, path.stem, shallow=True)
    q = lambda node: canonical_name(names.qualname(node))  # noqa: E731
    for node in ast.walk(tree):
        for name, value in ast.iter_fields(node):
            # `op.f("name")` marks a name as final: it is the name
            if isinstance(value, ast.Call) and q(value.func) == "alembic.op.f" and len(value.args) == 1:
                setattr(node, name, value.args[0])
            elif isinstance(value, list):
                value[:] = [v.args[0] if isinstance(v, ast.Call) and len(v.args) == 1 and q(v.func) == "alembic.op.f" else v for v in value]
    reader = _Reader(script, q)
    for stmt in tree.body:
        # `upgrade()`, and the `upgrade_<engine>()` functions of Alembic's multidb template
        if isinstance(stmt, ast.FunctionDef) and (stmt.name == "upgrade" or stmt.name.startswith("upgrade_")):
            reader.body(stmt.body, DATABASES, {})
    return script


def _literal(node: ast.expr | None) -> object:
    try:
        return ast.literal_eval(node) if node is not None else None
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def _in_revision_order(scripts: list[_Script]) -> list[_Script]:
    """Parents before children (ties and anything the graph does not order: by file name)."""
    scripts = sorted(scripts, key=lambda s: s.path.name)
    by_revision = {s.revision: s for s in scripts}
    done: set[str] = set()
    ordered: list[_Script] = []
    pending = list(scripts)
    while pending:
        ready = [s for s in pending if all(d in done or d not in by_revision for d in s.down)]
        if not ready:  # a cycle or a broken graph: file order
            ready = pending[:1]
        for script in ready:
            ordered.append(script)
            done.add(script.revision)
            pending.remove(script)
    return ordered


class _Reader:
    """Collects the named-constraint operations of one `upgrade()` body."""

    def __init__(self, script: _Script, q: object) -> None:
        self.script = script
        self.q = q
        self.certain = True

    def event(self, what: str, schema: str | None, table: str, name: str, dbs: frozenset[str], line: int, **more: object) -> None:
        self.script.events.append(_Event(what, schema, table, name, dbs, line, self.certain, **more))  # type: ignore[arg-type]

    def maybe(self, body: list[ast.stmt], dbs: frozenset[str], batches: dict[str, tuple[str | None, str]]) -> None:
        """A body that may not run."""
        certain, self.certain = self.certain, False
        self.body(body, dbs, batches)
        self.certain = certain

    def body(self, body: list[ast.stmt], dbs: frozenset[str], batches: dict[str, tuple[str | None, str]]) -> None:
        for stmt in body:
            if isinstance(stmt, ast.If):
                true = _databases_where(stmt.test)
                if true is None:
                    self.maybe(stmt.body, dbs, batches)
                    self.maybe(stmt.orelse, dbs, batches)
                else:
                    self.body(stmt.body, dbs & true, batches)
                    self.body(stmt.orelse, dbs - true, batches)
            elif isinstance(stmt, (ast.With, ast.AsyncWith)):
                inner = dict(batches)
                for item in stmt.items:
                    call = item.context_expr
                    if isinstance(call, ast.Call) and self._op(call) == "batch_alter_table" and isinstance(item.optional_vars, ast.Name):
                        table = _string(_arg(call, 0, "table_name"))
                        if table is not None:
                            inner[item.optional_vars.id] = (_string(_arg(call, -1, "schema")), table)
                self.body(stmt.body, dbs, inner)
            elif isinstance(stmt, (ast.For, ast.AsyncFor, ast.While)):
                self.maybe(stmt.body, dbs, batches)
                self.maybe(stmt.orelse, dbs, batches)
            elif isinstance(stmt, ast.Try):
                for part in (stmt.body, stmt.finalbody):
                    self.body(part, dbs, batches)
                for part in (*(h.body for h in stmt.handlers), stmt.orelse):
                    self.maybe(part, dbs, batches)
            elif isinstance(stmt, (ast.Expr, ast.Assign, ast.AnnAssign)) and isinstance(stmt.value, ast.Call) and dbs:
                self.call(stmt.value, dbs, batches)

    def _op(self, call: ast.Call) -> str | None:
        """`op.create_foreign_key(...)` -> "create_foreign_key" (`op` being `alembic.op`)."""
        func = call.func
        if isinstance(func, ast.Attribute) and self.q(func.value) == "alembic.op":  # type: ignore[operator]
            return func.attr
        return None

    def call(self, call: ast.Call, dbs: frozenset[str], batches: dict[str, tuple[str | None, str]]) -> None:
        func = call.func
        if not isinstance(func, ast.Attribute):
            return
        table: str | None
        if isinstance(func.value, ast.Name) and func.value.id in batches:
            # a batch operation takes no table (it is the `batch_alter_table(...)`'s): one argument less
            (schema, table), method, shift = batches[func.value.id], func.attr, 1
        else:
            method, shift = self._op(call), 0
            schema, table = _string(_arg(call, -1, "schema", "source_schema")), None
        if method == "create_table" and not shift:
            self._create_table(call, dbs)
            return
        if method == "execute":
            for match in _RENAME.finditer(_string(_arg(call, 0, "sqltext")) or ""):
                self.event("rename", match[1], match[2], match[3], dbs, call.lineno, new=match[4])
            return
        name = _string(_arg(call, 0, "constraint_name", "name"))
        table = table or _string(_arg(call, 1, "table_name", "source_table", "source"))
        if name is None or table is None:
            return
        key: tuple[str, tuple[str, ...]] | None = None
        if method == "drop_constraint":
            self.event("drop", schema, table, name, dbs, call.lineno)
        elif method == "create_foreign_key":
            key = ("foreign_key", _strings(_arg(call, 3 - shift, "local_cols")))
        elif method == "create_unique_constraint":
            key = ("unique", _strings(_arg(call, 2 - shift, "columns", "local_cols")))
        elif method == "create_check_constraint":
            condition = _string(_arg(call, 2 - shift, "condition"))
            key = ("check", (_sql(condition),) if condition is not None else ())
        if key is not None and key[1]:
            self.event("create", schema, table, name, dbs, call.lineno, kind=key[0], columns=key[1])

    def _create_table(self, call: ast.Call, dbs: frozenset[str]) -> None:
        table = _string(_arg(call, 0, "table_name", "name"))
        if table is None:
            return
        schema = _string(_arg(call, -1, "schema"))
        for arg in call.args[1:]:
            if not isinstance(arg, ast.Call):
                continue
            if self.q(arg.func) == "sqlalchemy.Column":  # type: ignore[operator]
                column = _string(arg.args[0]) if arg.args else _string(_arg(arg, -1, "name"))
                for inner in arg.args:
                    fact = constraint_from_call(inner, self.q, "column", None, "") if isinstance(inner, ast.Call) else None  # type: ignore[arg-type]
                    if fact is not None and column is not None:
                        self._constraint(fact, schema, table, (column,), dbs)
                continue
            fact = constraint_from_call(arg, self.q, "table", None, "")  # type: ignore[arg-type]
            if fact is not None and all(a.kind == "name" for a in fact.columns):
                self._constraint(fact, schema, table, tuple(a.value for a in fact.columns), dbs)

    def _constraint(self, fact: ConstraintFact, schema: str | None, table: str, columns: tuple[str, ...], dbs: frozenset[str]) -> None:
        if fact.name is None or fact.kind not in ("foreign_key", "unique", "check"):
            return
        if fact.kind == "check":
            if fact.sqltext is None:
                return
            columns = (_sql(fact.sqltext),)
        self.event("create", schema, table, fact.name, dbs, fact.line, kind=fact.kind, columns=columns)


def _arg(call: ast.Call, position: int, *keywords: str) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg in keywords:
            return keyword.value
    return call.args[position] if 0 <= position < len(call.args) else None


def _string(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Call) and len(node.args) == 1 and not node.keywords:
        return _string(node.args[0])  # `sa.text("...")`, `conv("name")`
    return None


def _strings(node: ast.expr | None) -> tuple[str, ...]:
    if isinstance(node, (ast.List, ast.Tuple)):
        found = tuple(_string(e) for e in node.elts)
        return found if all(found) else ()  # type: ignore[return-value]
    return ()


def _sql(text: str) -> str:
    return " ".join(text.split())


def _databases_where(test: ast.expr) -> frozenset[str] | None:
    """The databases for which an `if` test about the database is true; None: not such a test."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = _databases_where(test.operand)
        return DATABASES - inner if inner is not None else None
    if isinstance(test, ast.BoolOp):
        parts = [_databases_where(v) for v in test.values]
        if all(p is None for p in parts):
            return None
        known = [p for p in parts if p is not None]
        if isinstance(test.op, ast.And):
            result = DATABASES
            for p in known:
                result &= p
            return result
        return DATABASES if None in parts else frozenset().union(*known)
    if isinstance(test, ast.Call) and isinstance(test.func, ast.Attribute) and test.func.attr == "startswith" and test.args:
        prefixes = _literal(test.args[0])
        prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
        if isinstance(prefixes, tuple) and all(isinstance(p, str) for p in prefixes):
            return _matching(lambda spelling: any(spelling.startswith(p) or p.startswith(spelling) for p in prefixes))
        return None
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, op, right = test.left, test.ops[0], test.comparators[0]
        if isinstance(right, ast.Constant) and isinstance(right.value, bool) and isinstance(op, (ast.Is, ast.IsNot, ast.Eq, ast.NotEq)):
            inner = _databases_where(left)
            if inner is None:
                return None
            negate = right.value is not isinstance(op, (ast.Is, ast.Eq))
            return DATABASES - inner if negate else inner
        texts = _literal(right) if not isinstance(left, ast.Constant) else _literal(left)
        texts = (texts,) if isinstance(texts, str) else texts
        if not (isinstance(texts, (tuple, list, set, frozenset)) and texts and all(isinstance(t, str) for t in texts)):
            return None
        if isinstance(op, (ast.In, ast.NotIn)) and isinstance(left, ast.Constant):  # `"sqlite" in url`
            found = _matching(lambda spelling: any(t in spelling or spelling in t for t in texts))
        else:  # `dialect.name == "mysql"`, `name in ("mysql", "mariadb")`
            found = _matching(lambda spelling: any(t == spelling or t.startswith(spelling + "+") for t in texts))
        if found is None:
            return None
        return DATABASES - found if isinstance(op, (ast.NotEq, ast.NotIn, ast.IsNot)) else found
    return None


def _matching(test: object) -> frozenset[str] | None:
    found = frozenset(db for db, spellings in _SPELLINGS.items() if any(test(s) for s in spellings))  # type: ignore[operator]
    return found or None  # a string about something else (`name.startswith("tmp")`)


# -- what a fix may write ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """The name an unnamed constraint has in the project's databases, as far as it is known."""

    name: str | None  # None: not known for every database the project uses (see `note`)
    migration: Named | None = None  # the revision that gave the name
    unsafe: bool = False  # known for PostgreSQL, but another database of the project may have another name
    note: str | None = None


_SQLITE_ANY = ""  # SQLite keeps an unnamed constraint without a name: any name fits an existing database


def claim(
    index: ProjectIndex,
    databases: tuple[str, ...],
    table: TableView,
    kind: str,
    columns: Iterable[str] | None,
    postgres: str | None,
    *,
    sqltext: str | None = None,
) -> Claim:
    """The name a fix may write for an unnamed constraint: a revision's name wins, then PostgreSQL's
    (`postgres`, None when unknown); unknown databases count as PostgreSQL, as dbfix always assumed."""
    dbs = [db for db in databases if db in DATABASES] or ["postgresql"]
    key = (_sql(sqltext),) if kind == "check" and sqltext is not None else tuple(columns or ())
    migrations = migration_names(index) if key else MigrationNames()
    named = {db: migrations.name(db, table.schema, table.name, kind, key) for db in dbs}
    per_db: dict[str, str | None] = {}
    doubt: str | None = None
    for db in dbs:
        found = named[db]
        if found is not None and not found.certain:
            per_db[db] = None
            doubt = (
                f"no automatic name: revision `{found.revision}` names it `{found.name}` under a condition dbfix cannot "
                "evaluate; check which name the database has"
            )
        elif found is not None:
            per_db[db] = found.name
        elif db == "postgresql":
            per_db[db] = postgres
        else:
            per_db[db] = _SQLITE_ANY if db == "sqlite" else None
    if "postgresql" in per_db:
        name = per_db["postgresql"]
        if name is None:
            return Claim(None, named["postgresql"], note=doubt)
        others = [db for db, n in per_db.items() if db != "postgresql" and n not in (name, _SQLITE_ANY)]
        if not others:
            built = f"a database built by `create_all()` rather than the migrations has `{postgres}`" if postgres not in (None, name) else None
            return Claim(name, named["postgresql"], note=built)
        other = others[0]
        has = f"`{per_db[other]}` (revision `{named[other].revision}`)" if named[other] else f"the name {DISPLAY[other]} gave it{_lookup(other, table)}"  # type: ignore[union-attr]
        return Claim(name, named["postgresql"], unsafe=True, note=(
            f"the project also runs on {DISPLAY[other]} (a driver among its dependencies), where the constraint "
            f"has {has}: `{name}` is right for PostgreSQL databases only"
        ))
    concrete = {n for n in per_db.values() if n != _SQLITE_ANY}
    if len(concrete) == 1 and None not in concrete:
        name = concrete.pop()
        return Claim(name, next(n for n in named.values() if n is not None))
    used = ", ".join(DISPLAY[db] for db in dbs)
    if doubt is not None:
        return Claim(None, note=doubt)
    if not concrete:  # SQLite only
        return Claim(None, note=(
            f"no automatic name: the project uses {used} (by its drivers), which keeps an unnamed constraint "
            "without a name; choose one, and recreate the constraint with it (Alembic batch mode)"
        ))
    other = next((db for db in dbs if per_db[db] is None), dbs[0])
    return Claim(None, note=(
        f"no automatic name: the project uses {used} (by its drivers), not PostgreSQL; the name to write is "
        f"the one {DISPLAY[other]} gave the constraint{_lookup(other, table)}"
    ))


def _lookup(db: str, table: TableView) -> str:
    return f" (read it with `SHOW CREATE TABLE {table.name}`)" if db == "mysql" else ""


def describe(found: Claim) -> str:
    """Who gave the name: "the migration `b5551cd26764`", or "PostgreSQL"."""
    if found.migration is not None:
        return f"the migration `{found.migration.revision}`"
    return "PostgreSQL"
