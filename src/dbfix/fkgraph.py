"""The project-wide foreign-key graph: FK edges per MetaData, target diagnosis, cycles and the edges that break them.

Built on `dbfix.schema.SchemaView` (models, Core `Table`s, `__table_args__`, conventions). This module adds
what the FK rules need: which edges break every cycle, why a target does not resolve, whether every FK of a
table is visible (no `declared_attr`, no unknown base), and whether two tables are linked at all.
"""

from __future__ import annotations

import ast
import difflib
import itertools
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from dbfix import schema as sch
from dbfix.astwalk import tree_nodes
from dbfix.index import (
    DECLARATIVE_BASES,
    ModelInfo,
    ModuleFacts,
    ProjectIndex,
    _kw,
    module_classes,
)
from dbfix.names import ModuleNames
from dbfix.schema import (
    ColumnArg,
    ConstraintFact,
    ForeignKeyEdge,
    SchemaView,
    TableView,
)

KEY = "fkgraph"
SQLMODEL_METADATA = "sqlmodel.SQLModel"
SEARCH_BUDGET = 20000  # subsets tried for the smallest breaking set before falling back to a greedy choice

Resolver = Callable[[ast.AST], "str | None"]


# -- the index contributor: what schema.py does not record -----------------------------------------


@dataclass
class ModuleFkFacts:
    declared: dict[str, list[str]] = field(default_factory=dict)  # class -> its `@declared_attr` methods
    reflects: bool = False  # `metadata.reflect(...)` or `Table(..., autoload_with=...)`: tables we cannot see


def collect(tree: ast.Module, names: ModuleNames, q: Resolver, facts: ModuleFacts) -> None:
    """Index contributor: `declared_attr` methods (columns and FKs we cannot see) and reflected tables."""
    found = ModuleFkFacts()
    for qualname, cls in module_classes(tree, names.module):
        declared = [
            stmt.name
            for stmt in cls.body
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef))
            and any("declared_attr" in ast.unparse(d) for d in stmt.decorator_list)
        ]
        if declared:
            found.declared[qualname] = declared
    # `metadata.reflect()` is often inside a function: all calls, unless the text mentions neither word
    calls = tree_nodes(tree).of(ast.Call) if getattr(tree, "dbfix_mentions_reflect", True) else ()
    for node in calls:
        if (
            (isinstance(node.func, ast.Attribute) and node.func.attr == "reflect") or _kw(node, "autoload_with") is not None
        ):
            found.reflects = True
    if found != ModuleFkFacts():
        facts.extra[KEY] = found


def literal(text: str) -> str:
    """A Python string literal in double quotes."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def suggest(word: str, candidates: set[str] | list[str]) -> str | None:
    """The closest candidate to a misspelt name (difflib), or None."""
    found = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=0.6)
    return found[0] if found else None


# -- the graph ---------------------------------------------------------------------------------------


@dataclass
class Edge:
    """One foreign key of one table (a mixin's FK is one edge per table that inherits it)."""

    fk: ForeignKeyEdge
    nullable: bool
    problem: str | None = None  # why the target does not exist (None: it resolves, or it is not provable)
    shared: bool = False  # declared once for several tables (a mixin): one name cannot fit them all

    @property
    def fact(self) -> ConstraintFact:
        return self.fk.fact

    @property
    def table(self) -> TableView:
        return self.fk.table

    @property
    def target(self) -> TableView | None:
        return self.fk.target

    @property
    def label(self) -> str:
        return f"{self.table.qualified}.{', '.join(self.fk.columns)}"

    @property
    def target_label(self) -> str:
        if self.target is None:
            return self.fk.target_text
        return f"{self.target.qualified}.{', '.join(self.fk.target_columns)}"

    @property
    def breaks_cycles(self) -> bool:
        return self.fact.use_alter


@dataclass
class Break:
    """An edge chosen to break FK cycles, and one cycle it breaks (qualified table names, first = last)."""

    edge: Edge
    cycle: list[str]


class FkGraph:
    """Every foreign key of the project, diagnosed, with the smallest set of edges breaking each cycle."""

    def __init__(self, view: SchemaView, broken: frozenset[tuple] = frozenset()) -> None:
        self.view = view
        self.broken = broken  # identities of FKs to count as `use_alter` already (fixed in other files)
        self.by_module: dict[str, list[tuple[ConstraintFact, list[Edge]]]] | None = None
        self.index: ProjectIndex = view.index
        found = [f for f in self.index.extra(KEY).values() if isinstance(f, ModuleFkFacts)]
        self.declared = {k: v for f in found for k, v in f.declared.items()}
        self.reflects = any(f.reflects for f in found)
        self.edges: list[Edge] = []
        self.by_fact: dict[int, list[Edge]] = defaultdict(list)
        for fk in view.foreign_keys():
            edge = Edge(fk, self._nullable(fk))
            self.edges.append(edge)
            self.by_fact[id(fk.fact)].append(edge)
        for edges in self.by_fact.values():
            if len(edges) > 1:
                for edge in edges:
                    edge.shared = True
        for edge in self.edges:
            edge.problem = self._diagnose(edge)
        self.breaks: dict[int, Break] = {}
        self._find_breaks()

    # facts about tables -----------------------------------------------------------------------------
    def _nullable(self, fk: ForeignKeyEdge) -> bool:
        if fk.nullable is not None:
            return fk.nullable
        infos = [fk.table.column(ColumnArg("name", c)) for c in fk.columns]
        return bool(infos) and all(i is not None and (i.nullable if i.nullable is not None else not i.primary_key) for i in infos)

    def _mro(self, model: ModelInfo) -> list:
        return self.index._mro(model.cls)

    def complete(self, table: TableView) -> bool:
        """Whether every column and FK of the table is visible: no unknown base, `declared_attr`, or dynamic args."""
        if table.table_args_dynamic or not table.schema_known:
            return False
        if table.model is None:
            return True
        # single-table-inheritance subclasses put their columns (and FKs) on this table too
        for model in (table.model, *table.members):
            for cls in self._mro(model):
                if cls.has_table_attr or any(d not in ("__tablename__", "__mapper_args__") for d in self.declared.get(cls.qualname, [])):
                    return False
                if not all(self._known_base(b) for b in cls.bases):
                    return False
        return True

    def _known_base(self, qualname: str) -> bool:
        return (
            qualname in self.index.classes
            or qualname in self.index.instances
            or qualname in DECLARATIVE_BASES
            or qualname in (SQLMODEL_METADATA, "builtins.object", "typing.Generic")
        )

    def _attributes(self, table: TableView) -> set[str]:
        if table.model is None:
            return set(table.columns)
        return {a for model in (table.model, *table.members) for cls in self._mro(model) for a in cls.attributes}

    def certain(self, metadata: str) -> bool:
        """Whether `metadata` is provably one MetaData object (not a base whose `metadata = x` we cannot follow)."""
        if metadata == SQLMODEL_METADATA:
            return True
        cls = self.index.classes.get(metadata)
        if cls is not None:
            return "metadata" not in cls.attributes or bool(cls.metadata_var)
        if metadata.endswith(".metadata"):
            return metadata[: -len(".metadata")] in self.index.classes
        return metadata in self.index.instances

    def closed(self, metadata: str) -> bool:
        """Whether every table of this MetaData is defined in the project (nothing reflected or external)."""
        return not self.reflects and self.certain(metadata)

    def model_tables(self, model: ModelInfo) -> list[TableView]:
        """The tables a model is mapped to: its own and those of its mapped ancestors (joined inheritance)."""
        found: dict[str, TableView] = {}
        for cls in self._mro(model):
            if cls.qualname in self.index.models:
                table = self.view.table_for(cls.qualname)
                if table is not None:
                    found.setdefault(table.key, table)
        return list(found.values())

    # targets ----------------------------------------------------------------------------------------
    def _diagnose(self, edge: Edge) -> str | None:
        """Why the FK's target does not exist, when that is provable from the project alone."""
        referred = edge.fact.referred
        if not referred or any(a.kind != "name" for a in referred):
            return None
        parsed = [a.value.split(".") for a in referred]
        if any(len(p) < 2 for p in parsed) or len({tuple(p[:-1]) for p in parsed}) != 1:
            return None
        metadata = edge.table.metadata
        schema = ".".join(parsed[0][:-2]) or self.view.default_schema(metadata)
        name = parsed[0][-2]
        written = ".".join(parsed[0][:-1])
        if edge.target is not None:
            return self._missing_column(edge.target, [p[-1] for p in parsed])
        same = [t for t in self.view.tables.values() if t.metadata == metadata and t.name == name]
        if any(not t.schema_known for t in same) or any(t.schema == schema for t in same):
            return None  # an unknown schema, or two tables of that name: not provable
        if same:
            where = ", ".join(sorted(f"`{t.qualified}`" for t in same))
            return f"no table `{written}` on this MetaData, but there is {where}: write the table's schema in the target"
        if not self.closed(metadata):
            return None
        elsewhere = sorted(
            (t for t in self.view.tables.values() if t.metadata != metadata and t.name == name), key=lambda t: t.key
        )
        if any(not self.certain(t.metadata) for t in elsewhere):
            return None
        if elsewhere:
            other = elsewhere[0]
            owner = f"model `{other.key}`" if other.model is not None else f"`Table({other.name!r})` (`{other.key}`)"
            return (
                f"`{other.qualified}` is defined by {owner} on a different MetaData (`{other.metadata}`), not on "
                f"`{metadata}`: a string target is looked up in the FK's own MetaData only; use one declarative base"
            )
        problem = f"no model or `Table` in the project defines table `{written}` on `{metadata}`"
        close = suggest(written, {t.qualified for t in self.view.tables.values() if t.metadata == metadata})
        if close:
            return f"{problem}; did you mean `{close}`?"
        return f"{problem}; if it is defined outside the project, import that module wherever the models are loaded"

    def _missing_column(self, target: TableView, columns: list[str]) -> str | None:
        missing = [c for c in columns if target.column(ColumnArg("name", c)) is None]
        # an attribute that is not a column we know (`column_property`, a method): it might make one
        unknown = self._attributes(target) - set(target.columns)
        if not missing or not self.complete(target) or set(missing) & unknown:
            return None
        problem = f"table `{target.qualified}` has no column `{missing[0]}`"
        renamed = target.columns.get(missing[0]) if target.model is not None else None
        if renamed is not None:
            return (
                f"{problem}: the attribute `{target.model.cls.name}.{missing[0]}` is the column `{renamed.name}`; "  # type: ignore[union-attr]
                f"write `{target.qualified}.{renamed.name}`"
            )
        close = suggest(missing[0], {c.name for c in target.columns.values()})
        return f"{problem}; did you mean `{target.qualified}.{close}`?" if close else problem

    def linked(self, left: list[TableView], right: list[TableView]) -> bool | None:
        """Whether a FK joins a table of `left` and one of `right` (None: some FK of them cannot be resolved)."""
        lkeys, rkeys = {t.key for t in left}, {t.key for t in right}
        unknown = False
        for edge in self.edges:
            if edge.table.key not in lkeys | rkeys:
                continue
            if edge.target is None:
                unknown = unknown or edge.problem is None  # a FK to a table that does not exist links nothing
                continue
            if (edge.table.key in lkeys and edge.target.key in rkeys) or (edge.table.key in rkeys and edge.target.key in lkeys):
                return True
        return None if unknown else False

    # names ------------------------------------------------------------------------------------------
    def fk_name(self, edge: Edge) -> tuple[str | None, bool]:
        """The name the FK has in the database today, and whether a naming convention gives it (None: unknown).

        Unnamed, PostgreSQL names it `<table>_<cols>_fkey`, unless another FK of the same schema already took
        that name: then the digit PostgreSQL appended depends on creation order, and the name is unknown.
        """
        if edge.fact.name is not None:
            return edge.fact.name, False
        if edge.fact.named:
            return None, False
        convention, known = self.view.convention(edge.table.metadata)
        if not known:
            return None, False
        if convention and convention.get("fk"):
            target = edge.target
            if target is None:
                return None, True
            infos = [edge.table.column(ColumnArg("name", c)) for c in edge.fk.columns]
            remote = [target.column(ColumnArg("name", c)) for c in edge.fk.target_columns]
            if any(i is None for i in infos + remote):
                return None, True
            return self.view.sa_name(edge.table, "foreign_key", infos, referred=(target, remote)), True  # type: ignore[arg-type]
        name = self.view.pg_names(edge.table).of(edge.fact)
        if name is None or self._name_clash(edge, name):
            return None, False
        return name, False

    def _name_clash(self, edge: Edge, name: str) -> bool:
        # ChooseConstraintName checks the whole schema, not only the table (verified on PostgreSQL 15)
        for other in self.edges:
            if other.fact is edge.fact or other.table.schema != edge.table.schema or other.table.metadata != edge.table.metadata:
                continue
            if (other.fact.name or sch.pg_foreign_key_name(other.table.name, list(other.fk.columns))) == name:
                return True
        return False

    # cycles -----------------------------------------------------------------------------------------
    def _find_breaks(self) -> None:
        candidates = [
            e
            for e in self.edges
            if e.target is not None
            and e.problem is None
            and e.target.key != e.table.key
            and not e.breaks_cycles
            and identity(e.fact) not in self.broken
        ]
        for component in strongly_connected(candidates):
            inside = [e for e in candidates if e.table.key in component and e.target.key in component]  # type: ignore[union-attr]
            for edge in min_breaking_set(inside):
                self.breaks.setdefault(id(edge.fact), Break(edge, cycle_through(edge, inside)))


# -- graph algorithms ------------------------------------------------------------------------------


def _ends(edge: Edge) -> tuple[str, str]:
    return edge.table.key, edge.target.key  # type: ignore[union-attr]


def strongly_connected(edges: list[Edge]) -> list[set[str]]:
    """Tarjan's strongly connected components of two or more tables, in a deterministic order."""
    graph: dict[str, list[str]] = defaultdict(list)
    for edge in edges:
        source, target = _ends(edge)
        graph[source].append(target)
        graph.setdefault(target, [])
    return sch.strongly_connected(graph)


def _acyclic(edges: list[Edge]) -> bool:
    indegree: dict[str, int] = defaultdict(int)
    out: dict[str, list[str]] = defaultdict(list)
    nodes: set[str] = set()
    for edge in edges:
        source, target = _ends(edge)
        out[source].append(target)
        indegree[target] += 1
        nodes.update((source, target))
    ready = [n for n in nodes if indegree[n] == 0]
    seen = 0
    while ready:
        node = ready.pop()
        seen += 1
        for succ in out[node]:
            indegree[succ] -= 1
            if indegree[succ] == 0:
                ready.append(succ)
    return seen == len(nodes)


def _preference(edge: Edge) -> tuple:
    # FKs we can rewrite first (not a mixin's), then nullable ones (a NOT NULL FK in a cycle needs deferred
    # inserts anyway, a nullable one is the natural place to insert NULL first), then a stable order.
    return (edge.shared, not edge.nullable, edge.table.qualified, edge.fk.columns, edge.target_label, edge.fact.pos)


def min_breaking_set(edges: list[Edge]) -> list[Edge]:
    """The smallest set of edges whose removal leaves no cycle; among equals the most preferred one."""
    ordered = sorted(edges, key=_preference)
    tried = 0
    for size in range(1, len(ordered) + 1):
        best: tuple | None = None
        for subset in itertools.combinations(range(len(ordered)), size):
            tried += 1
            if tried > SEARCH_BUDGET:
                return _greedy(ordered)
            chosen = set(subset)
            if _acyclic([e for i, e in enumerate(ordered) if i not in chosen]):
                cost = (sum(ordered[i].shared for i in subset), sum(not ordered[i].nullable for i in subset), subset)
                if best is None or cost < best:
                    best = cost
        if best is not None:
            return [ordered[i] for i in best[2]]
    return []


def _greedy(ordered: list[Edge]) -> list[Edge]:
    remaining = list(ordered)
    chosen: list[Edge] = []
    while not _acyclic(remaining):
        edge = next(e for e in remaining if cycle_through(e, remaining))  # the most preferred edge on a cycle
        remaining.remove(edge)
        chosen.append(edge)
    for edge in list(reversed(chosen)):  # drop choices that later ones made unnecessary
        if _acyclic([*remaining, edge]):
            remaining.append(edge)
            chosen.remove(edge)
    return sorted(chosen, key=_preference)


def cycle_through(edge: Edge, edges: list[Edge]) -> list[str]:
    """A shortest cycle that uses `edge`, as qualified table names [table, target, …, table]; [] if none."""
    out: dict[str, set[str]] = defaultdict(set)
    names: dict[str, str] = {}
    for e in edges:
        source, target = _ends(e)
        out[source].add(target)
        names[source], names[target] = e.table.qualified, e.target.qualified  # type: ignore[union-attr]
    goal, start = _ends(edge)
    previous: dict[str, str | None] = {start: None}
    queue = [start]
    while queue:
        node = queue.pop(0)
        if node == goal:
            path = [node]
            while previous[path[-1]] is not None:
                path.append(previous[path[-1]])  # type: ignore[arg-type]
            return [names[goal], *(names[n] for n in reversed(path))]
        for succ in sorted(out[node]):
            if succ not in previous:
                previous[succ] = node
                queue.append(succ)
    return []


# -- one graph per index, or per changed file ----------------------------------------------------------

def identity(fact: ConstraintFact) -> tuple:
    """A foreign key's identity that survives edits to its file (unlike its position)."""
    return (
        fact.module,
        fact.owner,
        fact.place,
        fact.column,
        tuple((a.kind, a.value, a.owner) for a in fact.columns),
        tuple((a.kind, a.value, a.owner) for a in fact.referred),
    )


_BASE: list[tuple[ProjectIndex, FkGraph]] = []
_LAST: list[tuple[ast.Module, ProjectIndex, FkGraph]] = []  # the three FK rules run on the same tree in turn


def graph_for(ctx: object) -> FkGraph:
    """The FK graph as the file being fixed now has it (its schema facts re-read from `ctx.tree`)."""
    index: ProjectIndex = ctx.index  # type: ignore[attr-defined]
    tree: ast.Module = ctx.tree  # type: ignore[attr-defined]
    if _LAST and _LAST[0][0] is tree and _LAST[0][1] is index:
        return _LAST[0][2]
    module = ctx.names.module  # type: ignore[attr-defined]
    current = sch.collect_module(tree, ctx.names, ctx.q)  # type: ignore[attr-defined]
    stored = index.modules.get(module)
    stored_schema = stored.extra.get(sch.KEY) if stored is not None else None
    if not _BASE or _BASE[0][0] is not index:
        _BASE[:] = [(index, FkGraph(sch._base_view(index)))]  # the view the other rules use: built once
    base = _BASE[0][1]
    if current == (stored_schema or sch.ModuleSchema(module)):
        found = base  # unchanged since indexing (the usual case): one graph serves every file of the run
    else:
        # A file a fix changed: its own FKs as they are now, and the edges the project-wide choice gave to
        # other files counted as fixed, so that a cycle is never broken twice (here and there).
        others = frozenset(identity(b.edge.fact) for b in base.breaks.values() if b.edge.fact.module != module)
        found = FkGraph(SchemaView(index, current), others)
    _LAST[:] = [(tree, index, found)]
    return found


def in_module(g: FkGraph, module: str) -> Iterator[tuple[ConstraintFact, list[Edge]]]:
    """Every foreign key written in `module`, with its edges (one per table that has it)."""
    if g.by_module is None:  # grouped once per graph: every file of a run asks
        g.by_module = {}
        for edges in g.by_fact.values():
            g.by_module.setdefault(edges[0].fact.module, []).append((edges[0].fact, edges))
    yield from g.by_module.get(module, ())
