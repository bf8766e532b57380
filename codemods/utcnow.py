from __future__ import annotations

import ast
from collections.abc import Iterator

from dbfix.codemod import Codemod, FileContext
from dbfix.datetimes import DATETIME, consumer, utc_spelling
from dbfix.findings import Edit, Finding


class Utcnow(Codemod):
    """`datetime.utcnow()` / `utcfromtimestamp()` are deprecated and return naive values.

    ## What it does
    Finds `datetime.utcnow()` and `datetime.utcfromtimestamp(ts)` in any spelling (`dt.datetime.utcnow()`,
    `from datetime import datetime`), called or passed as a callable (`default=datetime.utcnow`,
    `Field(default_factory=datetime.utcnow)`), and replaces them with `datetime.now(UTC)`.

    ## Why is this bad?
    Both are deprecated since Python 3.12 (`DeprecationWarning`, an error under `-W error`), and they return
    a naive datetime that only a convention says is UTC. Written into a `timestamptz` column through
    psycopg, a naive value is read in the session's time zone: under `America/New_York` the stored instant
    is five hours off.

    ## Example
    ```python
    created_at = Column(DateTime, default=datetime.utcnow)
    updated_at = Column(DateTime(timezone=True), default=datetime.utcnow)
    ```

    ## Use instead
    ```python
    created_at = Column(DateTime, default=lambda: datetime.now(UTC).replace(tzinfo=None))
    updated_at = Column(DateTime(timezone=True), default=lambda: datetime.now(UTC))
    ```

    ## Fix safety
    Safe. The fix keeps the exact value: a naive UTC datetime (`datetime.now(UTC).replace(tzinfo=None)`),
    except where the value feeds a `DateTime(timezone=True)` column (also one declared in another file, or
    a SQLModel `datetime` field on SQLModel >= 0.0.45), where it becomes the aware `datetime.now(UTC)` that
    the column stores correctly with every driver. On Python < 3.11 `timezone.utc` is used instead of `UTC`.

    ## Database impact
    None. The stored values stay the same; on `timestamptz` columns written through psycopg under a
    non-UTC session they become correct (rows written before keep their offset).
    """

    code = "DBF003"
    name = "utcnow"
    triggers = r"utcnow|utcfromtimestamp"
    local_triggers = True

    def detect(self, ctx: FileContext) -> Iterator[Finding]:
        for node in ctx.nodes(ast.Attribute):
            if node.attr not in ("utcnow", "utcfromtimestamp"):
                continue
            if ctx.q(node) != f"{DATETIME}.{node.attr}":
                continue
            parent = ctx.parent(node)
            called = isinstance(parent, ast.Call) and parent.func is node
            value = parent if called else node
            target = consumer(ctx, value)
            aware = target is not None and target.timezone is True
            message = f"`datetime.{node.attr}()` is deprecated and returns a naive datetime"
            if target is not None and target.timezone is True:
                message += f"; it feeds the timestamptz column `{target.column}`"
            edits = self._edits(ctx, node, value, called, aware)
            utc = utc_spelling(ctx, node)
            if edits is None or utc is None:
                yield self.finding(ctx, value, message)
                continue
            method = f"now({utc.code})" if node.attr == "utcnow" else f"fromtimestamp(..., {utc.code})"
            replacement = f"{ctx.code(node.value)}.{method}" + ("" if aware else ".replace(tzinfo=None)")
            yield self.finding(
                ctx,
                value,
                message,
                edits=[Edit(e.span, e.action, tuple(a.replace("{UTC}", utc.code) if isinstance(a, str) else a for a in e.args)) for e in edits],
                imports=utc.imports,
                description=f"use `{replacement}`" + (" (an aware value for a timestamptz column)" if aware else ""),
            )

    def _edits(self, ctx: FileContext, node: ast.Attribute, value: ast.AST, called: bool, aware: bool) -> list[Edit] | None:
        naive = "" if aware else ".replace(tzinfo=None)"
        rename = Edit(ctx.span(node), "rename_attr", ("now" if node.attr == "utcnow" else "fromtimestamp",))
        if called:
            assert isinstance(value, ast.Call)
            if node.attr == "utcnow" and not value.args and not value.keywords:
                insert = Edit(ctx.span(value), "insert_arg", (0, "{UTC}"))
            elif node.attr == "utcfromtimestamp" and len(value.args) == 1 and not value.keywords:
                insert = Edit(ctx.span(value), "insert_arg", (1, "{UTC}"))
            else:
                return None
            edits = [rename, insert]
            if naive:
                edits.append(Edit(ctx.span(value), "wrap", ("{}" + naive,)))
            return edits
        if node.attr == "utcnow":
            template = "lambda: {}({UTC})" + naive
        else:
            template = "lambda timestamp: {}(timestamp, {UTC})" + naive
        return [rename, Edit(ctx.span(node), "wrap", (template,))]
