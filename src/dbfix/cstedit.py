"""Applies the codemods' edits to a module through libcst, keeping every other byte as it was."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor
from libcst.metadata import MetadataWrapper, PositionProvider

from dbfix.collector import collect_cycles
from dbfix.findings import Edit, Span

# Which libcst node an action applies to (several nodes can share one span: an Expr and its Call).
_TARGET: dict[str, type[cst.CSTNode]] = {
    "replace": cst.BaseExpression,
    "wrap": cst.BaseExpression,
    "add_kwarg": cst.Call,
    "set_kwarg": cst.Call,
    "remove_kwarg": cst.Call,
    "rename_kwarg": cst.Call,
    "insert_arg": cst.Call,
    "rename_attr": cst.Attribute,
    "rename_name": cst.Name,
    "add_class_statement": cst.ClassDef,
    "set_value": cst.AnnAssign,
}


class EditError(Exception):
    """An edit that does not fit the code it was meant for (the engine reports it, the file stays)."""


def _span_of(position: object) -> Span:
    start, end = position.start, position.end  # type: ignore[attr-defined]
    return Span(start.line, start.column, end.line, end.column)


class _Applier(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, module: cst.Module, edits: Iterable[Edit]) -> None:
        super().__init__()
        self.module = module
        self.pending: dict[Span, list[Edit]] = defaultdict(list)
        for edit in edits:
            if edit.action not in _TARGET:
                raise EditError(f"unknown edit action {edit.action!r}")
            self.pending[edit.span].append(edit)
        self.done: set[int] = set()

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> cst.CSTNode:  # type: ignore[override]
        position = self.get_metadata(PositionProvider, original_node, None)
        if position is None:
            return updated_node
        span = _span_of(position)
        edits = self.pending.get(span)
        if not edits:
            return updated_node
        for i, edit in enumerate(edits):
            if id(edit) in self.done or not isinstance(original_node, _TARGET[edit.action]):
                continue
            self.done.add(id(edit))
            updated_node = getattr(self, f"_{edit.action}")(original_node, updated_node, *edit.args)
        return updated_node

    # actions --------------------------------------------------------------------------------------
    def _replace(self, original: cst.BaseExpression, updated: cst.BaseExpression, code: str) -> cst.BaseExpression:
        new = cst.parse_expression(code)
        return _keep_parens(updated, new)

    def _wrap(self, original: cst.BaseExpression, updated: cst.BaseExpression, template: str) -> cst.BaseExpression:
        inner = self.module.code_for_node(updated.with_changes(lpar=(), rpar=()))
        new = cst.parse_expression(template.replace("{}", inner))
        return _keep_parens(updated, new)

    def _add_kwarg(self, original: cst.Call, updated: cst.Call, name: str, code: str) -> cst.Call:
        if any(a.keyword is not None and a.keyword.value == name for a in updated.args):
            return updated
        return updated.with_changes(args=_append(updated, _kwarg(name, code)))

    def _set_kwarg(self, original: cst.Call, updated: cst.Call, name: str, code: str) -> cst.Call:
        args = list(updated.args)
        for i, arg in enumerate(args):
            if arg.keyword is not None and arg.keyword.value == name:
                args[i] = arg.with_changes(value=cst.parse_expression(code))
                return updated.with_changes(args=args)
        return updated.with_changes(args=_append(updated, _kwarg(name, code)))

    def _remove_kwarg(self, original: cst.Call, updated: cst.Call, name: str) -> cst.Call:
        args = [a for a in updated.args if not (a.keyword is not None and a.keyword.value == name)]
        if args and len(args) < len(updated.args) and updated.args[-1].comma is cst.MaybeSentinel.DEFAULT:
            args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return updated.with_changes(args=args)

    def _rename_kwarg(self, original: cst.Call, updated: cst.Call, old: str, new: str) -> cst.Call:
        args = [
            a.with_changes(keyword=cst.Name(new)) if a.keyword is not None and a.keyword.value == old else a
            for a in updated.args
        ]
        return updated.with_changes(args=args)

    def _insert_arg(self, original: cst.Call, updated: cst.Call, index: int, code: str) -> cst.Call:
        new_arg = cst.Arg(cst.parse_expression(code))
        if index >= len(updated.args):
            return updated.with_changes(args=_append(updated, new_arg))
        args = list(updated.args)
        args.insert(index, new_arg.with_changes(comma=cst.Comma(whitespace_after=_between(updated))))
        return updated.with_changes(args=args)

    def _rename_attr(self, original: cst.Attribute, updated: cst.Attribute, new: str) -> cst.Attribute:
        return updated.with_changes(attr=updated.attr.with_changes(value=new))

    def _rename_name(self, original: cst.Name, updated: cst.Name, new: str) -> cst.Name:
        return updated.with_changes(value=new)

    def _add_class_statement(self, original: cst.ClassDef, updated: cst.ClassDef, code: str) -> cst.ClassDef:
        body = updated.body
        if not isinstance(body, cst.IndentedBlock):
            raise EditError("cannot add a statement to a one-line class body")
        statement = cst.parse_statement(code)
        statements = list(body.body)
        position = 1 if statements and _is_docstring(statements[0]) else 0
        statements.insert(position, statement)
        return updated.with_changes(body=body.with_changes(body=statements))

    def _set_value(self, original: cst.AnnAssign, updated: cst.AnnAssign, code: str) -> cst.AnnAssign:
        equal = updated.equal if isinstance(updated.equal, cst.AssignEqual) else cst.AssignEqual()
        return updated.with_changes(value=cst.parse_expression(code), equal=equal)


def _is_docstring(statement: cst.BaseStatement) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


def _keep_parens(old: cst.BaseExpression, new: cst.BaseExpression) -> cst.BaseExpression:
    if old.lpar and hasattr(new, "lpar"):
        return new.with_changes(lpar=old.lpar, rpar=old.rpar)
    return new


def _kwarg(name: str, code: str) -> cst.Arg:
    return cst.Arg(
        keyword=cst.Name(name),
        value=cst.parse_expression(code),
        equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")),
    )


def _between(call: cst.Call) -> cst.BaseParenthesizableWhitespace:
    """The whitespace the call puts between arguments (a newline and indent in a multi-line call)."""
    for arg in call.args[:-1]:
        if isinstance(arg.comma, cst.Comma):
            return arg.comma.whitespace_after
    if isinstance(call.whitespace_before_args, cst.ParenthesizedWhitespace):
        return call.whitespace_before_args
    return cst.SimpleWhitespace(" ")


def _append(call: cst.Call, new: cst.Arg) -> list[cst.Arg]:
    """Append an argument in the call's own layout, keeping a trailing comma if it has one."""
    args = list(call.args)
    if not args:
        return [new]
    last = args[-1]
    between = cst.Comma(whitespace_after=_between(call))
    if isinstance(last.comma, cst.Comma):
        args[-1] = last.with_changes(comma=between)
        return [*args, new.with_changes(comma=last.comma)]
    args[-1] = last.with_changes(comma=between, whitespace_after_arg=cst.SimpleWhitespace(""))
    return [*args, new.with_changes(whitespace_after_arg=last.whitespace_after_arg)]


def apply_edits(source: str, edits: Iterable[Edit], imports: Iterable[tuple[str, str | None, str | None]] = ()) -> str:
    """Apply edits (and add imports) to `source`; raise EditError if an edit finds no node to act on."""
    collect_cycles()
    edits = list(edits)
    module = cst.parse_module(source)
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    applier = _Applier(module, edits)
    new_module = wrapper.visit(applier)
    missed = [e for e in edits if id(e) not in applier.done]
    if missed:
        raise EditError(f"no {_TARGET[missed[0].action].__name__} at line {missed[0].span.line} for {missed[0].action}")
    imports = list(dict.fromkeys(imports))
    if imports:
        context = CodemodContext()
        for module_name, obj, alias in imports:
            AddImportsVisitor.add_needed_import(context, module_name, obj, alias)
        new_module = AddImportsVisitor(context).transform_module(new_module)
    return new_module.code
