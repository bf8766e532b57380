"""A module's text with its function bodies left out: the index reads no function body, and parses this faster.

In a test module most of the text is function bodies, and `ast.parse` costs the same per byte wherever
the byte is. `skeleton` replaces the indented body of each `def` with `...`, line for line: every line
outside the bodies keeps its number and columns, so a fact read from the skeleton's tree (a class, a
column, a call at module level) is the fact the whole module's tree gives.

The cut follows indentation, which a string or a bracket spanning lines can fool. So a body is kept
whenever its text does not balance (brackets, triple quotes, a backslash at a line's end), and
`cuts_hold` checks in the parsed skeleton that every cut became the lone `...` of the `def` it was made
for. When either fails, the caller parses the whole text.
"""

from __future__ import annotations

import ast
import functools
import re

_DEF = re.compile(r"def[ \t]+\w")  # a `def` anywhere; the text before it on its line is checked apart
_HEADER_END = re.compile(r":[ \t]*(?:#[^\r\n]*)?\r?\n")  # the line that ends a `def` header
_BODY_ENDS: dict[str, re.Pattern[str]] = {}
_PAIRS = (("(", ")"), ("[", "]"), ("{", "}"))

Cut = tuple[int, int]  # (line of the `def`, line of the `...` that replaced its body)


def _body_end(indent: str) -> re.Pattern[str]:
    """The line break before the first line that is neither blank, a comment, nor deeper than `indent`."""
    pattern = _BODY_ENDS.get(indent)
    if pattern is None:
        pattern = _BODY_ENDS[indent] = re.compile(rf"\n(?!{re.escape(indent)}[ \t]|[ \t]*(?:#|\r?\n|\Z))")
    return pattern


def _indent_of_def(text: str, at: int) -> str | None:
    """The indentation of the line of the `def` at `at`, if only it (and `async`) precedes the `def`."""
    line_start = text.rfind("\n", 0, at) + 1
    before = text[line_start:at]
    indent = before[: len(before) - len(before.lstrip(" \t"))]
    rest = before[len(indent) :]
    if rest and not (rest.startswith("async") and rest[5:] and not rest[5:].strip(" \t")):
        return None
    return indent


def _header_closes(head: str) -> bool:
    """The header's brackets close on its last line, and every earlier line ends inside them."""
    if '"""' in head or "'''" in head:
        return False
    depth = 0
    lines = head.rstrip("\r\n").split("\n")
    for number, line in enumerate(lines, 1):
        depth += sum(line.count(o) - line.count(c) for o, c in _PAIRS)
        if depth < 0 or (depth == 0) != (number == len(lines)):
            return False
    return True


def _balanced(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] closes every bracket and triple quote it opens, with no line continued by `\\`."""
    count = text.count
    if count('"""', start, end) % 2 or count("'''", start, end) % 2 or count("\\\n", start, end) or count("\\\r\n", start, end):
        return False
    return all(count(o, start, end) == count(c, start, end) for o, c in _PAIRS)


def skeleton(text: str, keep: re.Pattern[str] | None = None, bare: bool = False) -> tuple[str, list[Cut]] | None:
    """`text` with the bodies of its functions replaced by `...`, and the cuts; None when nothing was cut.

    A body in which `keep` matches is kept (the functions inside it are still cut where it does not).
    With `bare`, a function whose body is cut also loses its parameters and return annotation when they
    are plain (`_plain_signature`): `def name():`, its line breaks kept. Only for a tree no rule reads,
    since parameters are what most of a test module's skeleton is.
    """
    if text.count("\r") != text.count("\r\n"):
        return None  # old Mac line ends: the patterns assume `\n`
    pieces: list[str] = []
    cuts: list[Cut] = []
    done = 0  # text[:done] is in `pieces`
    line, counted = 1, 0  # the line number at offset `counted`
    quoted, double, single = 0, 0, 0  # how many of each triple quote text[:quoted] holds
    for match in _DEF.finditer(text):
        start = match.start()
        if start < done:
            continue  # a function inside a body already cut
        double += text.count('"""', quoted, start)
        single += text.count("'''", quoted, start)
        quoted = start
        if double % 2 or single % 2:
            continue  # in a docstring's example
        indent = _indent_of_def(text, start)
        if indent is None:
            continue
        header = _HEADER_END.search(text, match.end())
        if header is None:
            break
        if not _header_closes(text[start : header.end()]):
            continue
        body_start = header.end()
        end = _body_end(indent).search(text, body_start - 1)
        body_end = end.end() if end is not None else len(text)
        if body_end == body_start or not _balanced(text, body_start, body_end):
            continue  # a one-line `def`, or a body that strings or brackets may hide the end of
        if keep is not None and keep.search(text, body_start, body_end):
            continue
        line += text.count("\n", counted, body_start)
        counted = body_start
        cuts.append((line - text.count("\n", start, body_start), line))
        signature = _plain_signature(text, match.end() - 1, body_start) if bare else None
        if signature is None:
            pieces.append(text[done:body_start])
        else:
            pieces += [text[done:signature], "():", "\n" * text.count("\n", signature, body_start)]
        pieces.append(indent + " ..." + "\n" * text.count("\n", body_start, body_end))
        done = body_end
    if not cuts:
        return None
    pieces.append(text[done:])
    return "".join(pieces), cuts


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


_SIGNATURE = re.compile(r"\w*[ \t]*\(")  # the rest of the name, then the parameters' parenthesis


def _plain_signature(text: str, name: int, end: int) -> int | None:
    """Where the parameters of the `def` whose name starts at `name` begin, if what follows up to `end`
    (the header's end) binds no name in the module and holds no call: no inner parenthesis, string,
    comment, backslash, walrus or lambda; else None."""
    found = _SIGNATURE.match(text, name)
    if found is None:
        return None
    rest = text[found.end() : end]
    if "(" in rest or any(mark in rest for mark in ('"', "'", "#", "\\", ":=", "lambda")):
        return None
    return found.end() - 1


def cuts_hold(tree: ast.Module, cuts: list[Cut]) -> bool:
    """Every cut is the whole body of the `def` on its line in `tree`: the skeleton kept the module's shape."""
    expected = dict(cuts)
    seen = 0
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.lineno in expected:
            body = node.body
            if not (
                len(body) == 1
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and body[0].value.value is Ellipsis
                and body[0].lineno == expected[node.lineno]
            ):
                return False
            seen += 1
            continue
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            block = getattr(node, name, None)
            if isinstance(block, list):
                stack.extend(block)
    return seen == len(cuts)


def parse_skeleton(text: str, keep: str | None = None, bare: bool = False) -> ast.Module | None:
    """The tree of `text` without its function bodies (but those the regex `keep` matches in), or None
    when nothing was cut, the skeleton does not parse, or a cut did not hold (then the caller parses the
    whole text)."""
    cut = skeleton(text, _compiled(keep) if keep is not None else None, bare)
    if cut is None:
        return None
    try:
        tree = ast.parse(cut[0])
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if not cuts_hold(tree, cut[1]):
        return None
    tree.dbfix_skeleton_size = len(cut[0])  # type: ignore[attr-defined]  # marks it as cut, and sizes what it holds
    return tree

