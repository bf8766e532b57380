"""Newer syntax made readable to this Python's `ast`, line for line, so such files are still checked.

`ast` knows only the running interpreter's grammar; libcst knows up to Python 3.14's. PEP 695 type
aliases and type parameters and PEP 758 unparenthesized `except A, B:` are rewritten into their older
equivalents on the same lines. Findings on a rewritten line are dropped, since their columns may have
moved; every other line is byte for byte the user's.
"""

from __future__ import annotations

import ast
import re

# The same translations as line rewrites: exact for the usual one-line forms, and a hundred times cheaper
# than a libcst round trip, which stays the fallback.
_PARAMS = r"\[(?:[^\[\]]|\[(?:[^\[\]]|\[[^\[\]]*\])*\])*\]"  # `[T: Bound[Any]]`: brackets nested two deep
# Each rule with the word a line it rewrites holds: the regex runs only on such lines.
_LINE_RULES = (
    ("type", re.compile(rf"^(\s*)type\s+(\w+)\s*(?:{_PARAMS})?\s*="), r"\1\2 ="),
    ("def", re.compile(rf"^(\s*(?:async\s+)?def\s+\w+)\s*{_PARAMS}\s*\("), r"\1("),
    ("class", re.compile(rf"^(\s*class\s+\w+)\s*{_PARAMS}"), r"\1"),
    ("except", re.compile(r"^(\s*except\*?)\s+([^:()\[\]]+,[^:()\[\]]+?)\s*:"), r"\1 (\2):"),
)


def downgrade(source: str) -> tuple[ast.Module, set[int]] | None:
    """(the `ast` of an equivalent older-syntax text, the 1-based lines that differ), or None."""
    for translate in (_by_lines, _by_libcst):
        if translate is _by_libcst and not _FOR_LIBCST.search(source):
            break  # libcst would change nothing: f-strings of 3.12 and t-strings stay unreadable
        older = translate(source)
        if older is None:
            continue
        try:
            tree = ast.parse(older)
        except (SyntaxError, ValueError):
            continue
        old_lines, new_lines = source.splitlines(), older.splitlines()
        if len(old_lines) == len(new_lines):
            return tree, {i for i, (a, b) in enumerate(zip(old_lines, new_lines), 1) if a != b}
    return None


# a `def` or `class` whose type parameters open a bracket its line does not close
_OPEN_PARAMS = re.compile(r"^([ \t]*(?:(?:async[ \t]+)?def|class)[ \t]+\w+)[ \t]*\[(?=[^\]\n]*$)", re.MULTILINE)
# what libcst may still translate when the line rules did not: type parameters or a generic type alias
_FOR_LIBCST = re.compile(r"^[ \t]*(?:(?:async[ \t]+)?def|class|type)[ \t]+\w+[ \t]*\[", re.MULTILINE)


def _params_over_lines(source: str) -> str:
    """`class C[\n    T: A,\n](Base):` -> `class C(\n\nBase):`: the parameters' line breaks move into the
    parentheses, so every line keeps its number."""
    pieces: list[str] = []
    done = 0
    for match in _OPEN_PARAMS.finditer(source):
        if match.start() < done:
            continue
        depth, at = 1, match.end()
        while depth and at < len(source):
            depth += {"[": 1, "]": -1}.get(source[at], 0)
            at += 1
        if depth:
            break
        rest = re.match(r"[ \t]*(\(?)", source[at:])
        breaks = "\n" * source.count("\n", match.end(), at)
        after = at + rest.end()  # type: ignore[union-attr]
        pieces += [source[done : match.start()], match.group(1), "(", breaks, "" if rest.group(1) else ")"]  # type: ignore[union-attr]
        done = after
    return "".join(pieces) + source[done:] if pieces else source


def _by_lines(source: str) -> str | None:
    source_in = source
    source = _params_over_lines(source)
    lines = source.splitlines(keepends=True)
    changed = source != source_in
    for i, line in enumerate(lines):
        for word, pattern, replacement in _LINE_RULES:
            if word not in line:
                continue
            new = pattern.sub(replacement, line, count=1)
            if new != line:
                lines[i], line, changed = new, new, True
    return "".join(lines) if changed else None


def _by_libcst(source: str) -> str | None:
    import libcst as cst  # only for what the line rules cannot translate

    from dbfix.collector import collect_cycles

    collect_cycles()

    class _Older(cst.CSTTransformer):
        def leave_TypeAlias(self, original: cst.TypeAlias, updated: cst.TypeAlias) -> cst.Assign:
            return cst.Assign(targets=[cst.AssignTarget(updated.name)], value=updated.value)

        def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
            return updated.with_changes(type_parameters=None) if updated.type_parameters else updated

        def leave_ClassDef(self, original: cst.ClassDef, updated: cst.ClassDef) -> cst.ClassDef:
            return updated.with_changes(type_parameters=None) if updated.type_parameters else updated

        def leave_ExceptHandler(self, original: cst.ExceptHandler, updated: cst.ExceptHandler) -> cst.ExceptHandler:
            kind = updated.type
            if isinstance(kind, cst.Tuple) and not kind.lpar:
                return updated.with_changes(type=kind.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()]))
            return updated

    try:
        return cst.parse_module(source).visit(_Older()).code
    except Exception:  # libcst's ParserSyntaxError, or syntax this cannot translate (t-strings, ...)
        return None
