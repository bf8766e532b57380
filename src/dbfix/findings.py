"""Plain, picklable result types shared by the engine, the codemods and the report."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Safety(str, enum.Enum):
    SAFE = "safe"
    UNSAFE = "unsafe"


class Impact(str, enum.Enum):
    """What a fix does to a live database."""

    NONE = "none"
    SCHEMA = "schema"
    DATA = "data"


@dataclass(frozen=True, order=True)
class Span:
    """A source range: 1-based lines, 0-based columns counted in characters (as libcst does)."""

    line: int
    col: int
    end_line: int
    end_col: int


# Edit actions that replace the node's code: two of them on overlapping code cannot both apply.
REPLACING = frozenset({"replace", "wrap"})


@dataclass(frozen=True)
class Edit:
    """One change to the node at `span`; `action` names an operation of `dbfix.cstedit`."""

    span: Span
    action: str
    args: tuple = ()


@dataclass(frozen=True)
class DatabaseChange:
    """What a live database needs after a fix: raw SQL and the Alembic operations."""

    upgrade_sql: tuple[str, ...] = ()
    downgrade_sql: tuple[str, ...] = ()
    alembic_upgrade: tuple[str, ...] = ()
    alembic_downgrade: tuple[str, ...] = ()
    key: str = ""  # findings sharing a key need the statements once (an enum type used twice)


@dataclass(frozen=True)
class Fix:
    description: str
    safety: Safety
    impact: Impact
    edits: tuple[Edit, ...]
    # (module, name or None, alias or None), scheduled through libcst's AddImportsVisitor
    imports: tuple[tuple[str, str | None, str | None], ...] = ()
    database: DatabaseChange | None = None


@dataclass(frozen=True)
class Finding:
    code: str
    name: str
    path: str
    span: Span
    message: str
    fix: Fix | None = None
    notes: tuple[str, ...] = ()

    @property
    def sort_key(self) -> tuple:
        return (self.path, self.span, self.code)


@dataclass
class FileResult:
    """What happened to one file: the findings, the new source if any, and errors."""

    path: str
    findings: list[Finding] = field(default_factory=list)  # every finding in the original source
    applied: list[Finding] = field(default_factory=list)  # findings whose fix is in `new_source`
    remaining: list[Finding] = field(default_factory=list)  # findings still present after fixing
    old_source: str | None = None
    new_source: str | None = None
    error: str | None = None
    notice: str | None = None  # a file dbfix could not check, without that being an error
    written: bool = False
    cache_entry: tuple | None = None  # what the cache should remember of this file (engine.CacheEntry)
    cached: bool = False

    @property
    def changed(self) -> bool:
        return self.new_source is not None and self.new_source != self.old_source
