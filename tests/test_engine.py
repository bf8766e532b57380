"""The engine's guarantees, with throw-away codemods: invalid output is refused, fixes must converge."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from dbfix.codemod import Codemod, FileContext
from dbfix.config import Config
from dbfix.engine import fix_source
from dbfix.findings import Edit, Finding
from dbfix.index import ProjectIndex
from dbfix.versions import TargetVersions

VERSIONS = TargetVersions((3, 12), (2, 0), None, None)
SOURCE = "value = compute(1)\n"


def run(codemod: type[Codemod], source: str = SOURCE):
    return fix_source(source, "m.py", ("m", False), ProjectIndex(), Config(), VERSIONS, [codemod])


class BreaksCode(Codemod):
    """Replaces a call with code libcst accepts but Python's parser rejects."""

    code, name = "TST001", "breaks-code"

    def detect(self, ctx: FileContext) -> Iterator[Finding]:
        for call in ctx.nodes(ast.Call):
            yield self.finding(ctx, call, "m", edits=[Edit(ctx.span(call), "replace", ("[*a for a in b]",))])


class NeverDone(Codemod):
    """Renames `compute` to `again` and back, forever."""

    code, name = "TST002", "never-done"

    def detect(self, ctx: FileContext) -> Iterator[Finding]:
        for name in ctx.nodes(ast.Name):
            if name.id in ("compute", "again"):
                new = "again" if name.id == "compute" else "compute"
                yield self.finding(ctx, name, "m", edits=[Edit(ctx.span(name), "rename_name", (new,))])


class AddsKeyword(Codemod):
    """Adds `flag=True` once."""

    code, name = "TST003", "adds-keyword"

    def detect(self, ctx: FileContext) -> Iterator[Finding]:
        for call in ctx.nodes(ast.Call):
            if not any(k.arg == "flag" for k in call.keywords):
                yield self.finding(ctx, call, "m", edits=[Edit(ctx.span(call), "add_kwarg", ("flag", "True"))])


def test_output_that_does_not_parse_is_refused() -> None:
    result = run(BreaksCode)
    assert result.error is not None and "invalid code" in result.error
    assert result.new_source is None and not result.changed


def test_fixes_that_do_not_converge_are_reported_not_applied() -> None:
    result = run(NeverDone)
    assert result.error is not None and "did not converge" in result.error
    assert not result.changed


def test_a_fix_is_applied_once_and_the_result_is_stable() -> None:
    result = run(AddsKeyword)
    assert result.error is None
    assert result.new_source == "value = compute(1, flag=True)\n"
    assert result.remaining == []
    again = run(AddsKeyword, result.new_source)
    assert again.findings == [] and not again.changed


def test_multiline_call_layout_is_kept() -> None:
    source = "value = compute(\n    1,\n    2,\n)\n"
    result = run(AddsKeyword, source)
    assert result.new_source == "value = compute(\n    1,\n    2,\n    flag=True,\n)\n"
