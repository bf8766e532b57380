"""The codemod base class, the per-file context every codemod detects in, and the registry."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import ClassVar

from dbfix.astwalk import tree_nodes
from dbfix.config import Config
from dbfix.findings import DatabaseChange, Edit, Finding, Fix, Impact, Safety, Span
from dbfix.index import ProjectIndex
from dbfix.names import ModuleNames
from dbfix.versions import TargetVersions

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_SUPPRESS = re.compile(r"#\s*dbfix:\s*ignore(?:\[([A-Za-z0-9_,\s-]+)\])?")
DOC_SECTIONS = ("What it does", "Why is this bad?", "Example", "Use instead", "Fix safety", "Database impact")


@dataclass
class FileContext:
    """One module as the codemods see it: its `ast`, its names, and the project around it."""

    path: str
    source: str
    tree: ast.Module
    names: ModuleNames
    index: ProjectIndex
    config: Config
    versions: TargetVersions
    _lines: list[str] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        # `str.split` where it gives the same lines, twice as fast as the regex (0.02 s over polar's detected files)
        self._lines = self.source.split("\n") if "\r" not in self.source else _LINE_BREAK.split(self.source)

    def q(self, node: ast.AST) -> str | None:
        """The canonical qualified name of a name or attribute chain, or None if not provable."""
        return self.index.resolve(self.names.qualname(node))

    def span(self, node: ast.AST) -> Span:
        return Span(
            node.lineno,  # type: ignore[attr-defined]
            self._char_col(node.lineno, node.col_offset),  # type: ignore[attr-defined]
            node.end_lineno,  # type: ignore[attr-defined]
            self._char_col(node.end_lineno, node.end_col_offset),  # type: ignore[attr-defined]
        )

    def _char_col(self, line: int, byte_col: int) -> int:
        text = self._lines[line - 1] if 0 < line <= len(self._lines) else ""
        if text.isascii():
            return byte_col
        return len(text.encode("utf-8")[:byte_col].decode("utf-8", "replace"))

    def code(self, node: ast.AST) -> str:
        line, end = getattr(node, "lineno", None), getattr(node, "end_lineno", None)
        if line is not None and line == end and 0 < line <= len(self._lines):
            # one line: sliced from the lines already split (get_source_segment splits the file each time)
            text, start, stop = self._lines[line - 1], node.col_offset, node.end_col_offset  # type: ignore[attr-defined]
            return text[start:stop] if text.isascii() else text.encode("utf-8")[start:stop].decode("utf-8", "replace")
        return ast.get_source_segment(self.source, node) or ast.unparse(node)

    def nodes(self, *types: type) -> list:
        """Every node of the given types; one walk of the tree serves every codemod (and the index)."""
        return tree_nodes(self.tree).of(*types)

    def parent(self, node: ast.AST) -> ast.AST | None:
        return tree_nodes(self.tree).parents.get(id(node))

    def enclosing_class(self, node: ast.AST) -> ast.ClassDef | None:
        current = self.parent(node)
        while current is not None and not isinstance(current, ast.ClassDef):
            if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                return None
            current = self.parent(current)
        return current

    def class_qualname(self, node: ast.ClassDef) -> str:
        parts = [node.name]
        current = self.parent(node)
        while current is not None:
            if isinstance(current, ast.ClassDef):
                parts.append(current.name)
            elif isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef)):
                parts.append(f"{current.name}.<locals>")
            current = self.parent(current)
        return ".".join([self.names.module, *reversed(parts)])

    def suppressed(self, span: Span, code: str, name: str) -> bool:
        for line in {span.line, span.end_line}:
            text = self._lines[line - 1] if 0 < line <= len(self._lines) else ""
            if "dbfix" not in text:
                continue
            match = _SUPPRESS.search(text)
            if match and (match.group(1) is None or {code, name} & {c.strip() for c in match.group(1).split(",")}):
                return True
        return False


class Codemod:
    """Base class: a codemod detects one pitfall on `ast` and describes its fix as edits.

    Subclasses set `code`, `name`, `safety` and `impact`, and write their user documentation in the
    docstring: a one-line summary, then the sections of `DOC_SECTIONS` as `## Heading` blocks.
    """

    code: ClassVar[str]
    name: ClassVar[str]
    safety: ClassVar[Safety] = Safety.SAFE
    impact: ClassVar[Impact] = Impact.NONE
    fixable: ClassVar[bool] = True
    default_enabled: ClassVar[bool] = True
    # A regex that any file with a finding must contain; files without a match are never parsed. It is
    # searched fastest as alternatives that each start with a word, or with a `(?#line>=N)` hint
    # (`dbfix.triggers`).
    triggers: ClassVar[str | None] = None
    # Finds only what the file itself declares (models, tables, columns): a file without any of the
    # index's prefilter words (`dbfix.index.PREFILTER_WORDS`) declares none and is not parsed for it.
    declarations_only: ClassVar[bool] = False
    # Finds only in models, their mixins and bases, `Table(...)`, or module-level `Index(...)` and
    # constraints: a file that defines none of them (by text, see `defines_schema`) is not parsed for it.
    schema_only: ClassVar[bool] = False
    # Whether `triggers` (with `declarations_only`) nearly decide alone that a file is detected: the
    # index then parses a file they match whole and keeps the tree for detection. It parses every other
    # file without function bodies (`dbfix.skeleton`), several times faster; detection parses such a
    # file again if a rule wants it (for DBF001, on in few projects; for the schema rules, whose
    # `schema_only` test needs the index).
    parse_whole: ClassVar[bool] = False
    # Whether a finding inside a function lies in a body where `triggers` match (the trigger is part of
    # the code judged, `.utcnow`, `.now(...)`), and what decides it is in the enclosing functions or
    # outside functions. Then the index keeps only the function bodies where they match, and detection
    # uses that tree when every rule it runs on the file is such a rule.
    local_triggers: ClassVar[bool] = False

    def detect(self, ctx: FileContext) -> Iterable[Finding]:
        raise NotImplementedError

    @classmethod
    def active(cls, index: ProjectIndex, config: Config, versions: TargetVersions) -> bool:
        """Whether the project can have a finding at all; when not, no file is parsed for this rule."""
        return True

    @classmethod
    def wanted(cls, source: str, index: ProjectIndex, config: Config, versions: TargetVersions) -> bool:
        """A finer per-file test than `triggers`, from what the index knows; False: the file is not parsed."""
        return True

    @classmethod
    def summary(cls) -> str:
        return (cls.__doc__ or "").strip().splitlines()[0]

    @classmethod
    def documentation(cls) -> str:
        import inspect

        return inspect.cleandoc(cls.__doc__ or "")

    def finding(
        self,
        ctx: FileContext,
        node: ast.AST,
        message: str,
        *,
        edits: Iterable[Edit] = (),
        description: str = "",
        safety: Safety | None = None,
        impact: Impact | None = None,
        imports: Iterable[tuple[str, str | None, str | None]] = (),
        database: DatabaseChange | None = None,
        notes: Iterable[str] = (),
    ) -> Finding:
        edits = tuple(edits)
        fix = None
        if edits:
            fix = Fix(
                description=description or message,
                safety=safety or self.safety,
                impact=impact or self.impact,
                edits=edits,
                imports=tuple(imports),
                database=database,
            )
        return Finding(self.code, self.name, ctx.path, ctx.span(node), message, fix, tuple(notes))


def mentions_any(source: str, names: frozenset[str]) -> bool:
    """Whether `source` holds one of `names` as a word (for `Codemod.wanted`)."""
    if not names.isdisjoint(_ascii_words(source)):
        return True
    # the ASCII words of a text hold each ASCII name in it (and some pieces of other words, which only
    # cost a parse); a name with other letters (`créé_le`) needs the text's words in full
    return not source.isascii() and any(not n.isascii() for n in names) and not names.isdisjoint(_words(source))


@lru_cache(maxsize=1)  # several rules ask about the same file in a row
def _ascii_words(source: str) -> frozenset[str]:
    return frozenset(_ASCII_WORD.findall(source))


@lru_cache(maxsize=1)
def _words(source: str) -> frozenset[str]:
    return frozenset(_WORD.findall(source))


_ASCII_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # scans several times faster than `_WORD`
_WORD = re.compile(r"[^\W\d]\w*")  # a Python identifier may hold any letter


@lru_cache(maxsize=1)
def defined_classes(source: str) -> frozenset[str]:
    """The names of the classes `source` defines (by text: `class Name` with only indentation before it)."""
    found = []
    for match in _CLASS.finditer(source):  # a literal first: several times faster than `^[ \t]*class`
        line_start = source.rfind("\n", 0, match.start()) + 1
        if not source[line_start : match.start()].strip(" \t"):
            found.append(match.group(1))
    return frozenset(found)


_CLASS = re.compile(r"class[ \t]+([^\W\d]\w*)")


def defines_schema(source: str, index: ProjectIndex) -> bool:
    """Whether `source` may define a table, a column, an index or a constraint (see `Codemod.schema_only`)."""
    return any(word in source for word in ("Table(", "Index(", "Constraint(")) or defines_mapped_class(source, index)


def defines_mapped_class(source: str, index: ProjectIndex) -> bool:
    """Whether `source` defines a class named like a model, or a mixin or base of one (by text)."""
    return not index.mapped_class_names().isdisjoint(defined_classes(source))


@cache
def all_codemods() -> tuple[type[Codemod], ...]:
    """Every codemod in `dbfix.codemods`, one per module, ordered by code."""
    package = importlib.import_module("dbfix.codemods")
    found: list[type[Codemod]] = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Codemod) and value.__module__ == module.__name__:
                found.append(value)
    codes = [c.code for c in found]
    duplicates = {c for c in codes if codes.count(c) > 1}
    if duplicates:
        raise RuntimeError(f"duplicate rule codes: {sorted(duplicates)}")
    return tuple(sorted(found, key=lambda c: c.code))


def lookup(selector: str) -> list[type[Codemod]]:
    """Codemods matching a code (`DBF003`), a code prefix (`DBF00`, `ALL`) or a name (`utcnow`)."""
    selector = selector.strip()
    if selector.upper() == "ALL":
        return list(all_codemods())
    return [c for c in all_codemods() if c.code.startswith(selector.upper()) or c.name == selector]


def selected_codemods(config: Config) -> list[type[Codemod]]:
    """The codemods a run uses: `select` (default: the default-enabled ones), + `extend-select`, - `ignore`."""
    unknown = [s for s in (*(config.select or ()), *config.extend_select, *config.ignore) if not lookup(s)]
    if unknown:
        from dbfix.config import ConfigError

        raise ConfigError(f"unknown rule selector {unknown[0]!r}; see `dbfix rules`")
    if config.select is None:
        chosen = {c for c in all_codemods() if c.default_enabled}
    else:
        chosen = {c for s in config.select for c in lookup(s)}
    chosen |= {c for s in config.extend_select for c in lookup(s)}
    chosen -= {c for s in config.ignore for c in lookup(s)}
    return sorted(chosen, key=lambda c: c.code)


def is_applicable(fix: Fix, code: str, name: str, config: Config) -> bool:
    """Safe fixes always apply; unsafe ones with `--unsafe-fixes` or when listed in `extend-safe-fixes`."""
    if fix.safety is Safety.SAFE or config.unsafe_fixes:
        return True
    return any(s.strip() and (code.startswith(s.strip().upper()) or s.strip() == name) for s in config.extend_safe_fixes)
