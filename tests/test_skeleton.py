"""Function bodies left out for the index: the skeleton's tree has the whole module's shape, or is refused."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from dbfix.index import TextTests, _parse_skeleton, build_index
from dbfix.skeleton import cuts_hold, skeleton
from dbfix.versions import TargetVersions

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def whole_parses(monkeypatch) -> list[str]:
    """Every text detection parses whole (`engine.parse_any`), in order."""
    import dbfix.engine as engine

    used: list[str] = []
    real = engine.parse_any

    def spy(text: str, where: str):
        used.append(text)
        return real(text, where)

    monkeypatch.setattr(engine, "parse_any", spy)
    return used

MODULE = '''\
"""Docs with an example:

    def example():
        return 1
"""
import sqlalchemy as sa


@decorator(arg=1)
def plain(a, b=(1, 2)) -> int:
    x = compute(a)
    return x


async def spread(
    first: int,
    second: dict[str, int] = {},
) -> None:  # a comment
    await go()
# a comment at column 0 inside the body
    return None


def one_liner(): return 1


class Model(Base):
    __tablename__ = "models"
    id = sa.Column(sa.Integer, primary_key=True)

    def method(self):
        def inner():
            return 2
        return inner()

    @property
    def odd(self):
        return ")"

    name = sa.Column(sa.String)


def with_text():
    sql = """
SELECT 1
"""
    return sql


def last():
    return 3'''


def _outside(tree: ast.Module) -> list[str]:
    """Every statement outside function bodies, with its position; a `def` without its body."""
    found: list[str] = []
    stack: list[ast.AST] = list(reversed(tree.body))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.append(f"def {node.name} {node.lineno}:{node.col_offset} {ast.dump(node.args)} "
                         f"{[ast.dump(d) for d in node.decorator_list]} {ast.dump(node.returns) if node.returns else ''}")
        elif isinstance(node, ast.ClassDef):
            found.append(f"class {node.name} {node.lineno} {[ast.dump(b) for b in node.bases]}")
            stack.extend(reversed(node.body))
        else:
            found.append(ast.dump(node, include_attributes=True))
    return found


def test_bodies_are_cut_and_everything_else_keeps_its_place():
    text, cuts = skeleton(MODULE)  # type: ignore[misc]
    full, cut = ast.parse(MODULE), ast.parse(text)
    assert cuts_hold(cut, cuts)
    assert _outside(cut) == _outside(full)
    assert text.count("\n") == MODULE.count("\n")
    bodies = {n.name: n.body for n in ast.walk(cut) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for name in ("plain", "spread", "method", "last"):
        assert ast.dump(bodies[name][0]) == ast.dump(ast.Expr(ast.Constant(Ellipsis))), name
    assert "inner" not in bodies  # inside a body that was cut
    assert isinstance(bodies["one_liner"][0], ast.Return)  # nothing below it to cut
    assert isinstance(bodies["odd"][0], ast.Return)  # a bracket in a string: the body is kept
    assert isinstance(bodies["with_text"][0], ast.Assign)  # a string's line at column 0: kept, the text cut would not balance
    assert "example" not in bodies  # the `def` in the docstring is text


def test_windows_line_ends():
    source = MODULE.replace("\n", "\r\n")
    text, cuts = skeleton(source)  # type: ignore[misc]
    assert cuts == skeleton(MODULE)[1]  # type: ignore[index]  # the same bodies as with `\n`
    assert cuts_hold(ast.parse(text), cuts)
    assert _outside(ast.parse(text)) == _outside(ast.parse(source))


def test_bare_skeleton_drops_plain_parameters_and_keeps_every_line():
    """For the index alone: plain parameters go (names, annotations, defaults, over several lines), and
    those with a call, a string or a comment stay; every statement outside the functions keeps its place."""
    module = MODULE + (
        "\n\n\nclass Service:\n    @staticmethod\n    async def spread_plain(\n        first: int,\n"
        "        second: dict[str, int] = {},\n    ) -> list[int] | None:\n        return None\n"
    )
    text, cuts = skeleton(module, bare=True)  # type: ignore[misc]
    assert cuts == skeleton(module)[1]  # type: ignore[index]
    tree = ast.parse(text)
    assert cuts_hold(tree, cuts)
    functions = {n.name: n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    assert functions["spread_plain"].args.args == [] and functions["spread_plain"].returns is None
    assert functions["method"].args.args == [] and functions["last"].args.args == []
    assert [a.arg for a in functions["plain"].args.args] == ["a", "b"]  # `(1, 2)`: an inner parenthesis
    assert [a.arg for a in functions["spread"].args.args] == ["first", "second"]  # a comment after the colon
    assert [d.id for d in functions["spread_plain"].decorator_list] == ["staticmethod"]  # decorators stay
    whole = {n.name: n for n in ast.walk(ast.parse(module)) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    assert all(functions[name].lineno == whole[name].lineno for name in functions)
    assert [line for line in _outside(tree) if not line.startswith("def ")] == [
        line for line in _outside(ast.parse(module)) if not line.startswith("def ")
    ]


@pytest.mark.parametrize(
    "source",
    [
        # a `def` inside a string the quote count misreads: the cut parses, but no function holds it
        "y = '\"\"\"'\nx = \"\"\"\ndef f():\n    return 1\n\"\"\"\n",
        # a body whose end a continuation line hides
        "def f():\n    return 1 + \\\n2\nclass C:\n    pass\n",
    ],
)
def test_a_cut_that_does_not_hold_is_refused(source: str):
    found = skeleton(source)
    if found is not None:
        text, cuts = found
        try:
            tree = ast.parse(text)
        except SyntaxError:
            tree = None
        assert tree is None or not cuts_hold(tree, cuts)
    assert _parse_skeleton(source.encode()) is None


def test_the_index_reads_the_same_facts_from_skeletons(tmp_path: Path):
    """Every fixture module, indexed from skeletons and from whole trees, gives equal facts."""
    files = [(p, None) for p in sorted(FIXTURES.rglob("*.py"))]
    cut = build_index(files, FIXTURES)  # no `whole`: every module that has a function body to cut
    whole = build_index(files, FIXTURES, tests=TextTests(whole=("",)))  # an empty pattern matches every file
    assert cut.modules.keys() == whole.modules.keys()
    for name, facts in whole.modules.items():
        assert cut.modules[name] == facts, name
    assert sum(1 for p, _ in files if _parse_skeleton(p.read_bytes()) is not None) > 20  # the test cut some


def test_bodies_where_a_trigger_matches_are_kept():
    import re

    text, cuts = skeleton(MODULE, keep=re.compile(r"compute|inner"))  # type: ignore[misc]
    tree = ast.parse(text)
    assert cuts_hold(tree, cuts)
    bodies = {n.name: n.body for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    assert isinstance(bodies["plain"][0], ast.Assign)  # `compute(a)`: kept
    assert isinstance(bodies["method"][-1], ast.Return)  # `inner()`: kept, and `inner` in it ...
    assert isinstance(bodies["inner"][0], ast.Expr)  # ... is cut: no trigger in its own body
    assert isinstance(bodies["last"][0], ast.Expr)


def test_detection_on_a_tree_with_only_the_bodies_its_rules_need(tmp_path: Path, whole_parses: list[str]):
    """DBF003 finds `utcnow` in the one function that has it, from the index's partly cut tree, and the
    same as from a whole parse; with a rule that may look anywhere, the file is parsed whole."""
    from dbfix.codemod import all_codemods
    from dbfix.config import Config
    from dbfix.engine import detect
    from dbfix.index import forget_trees, parsed_tree
    from dbfix.versions import TargetVersions

    source = (
        "import datetime\nfrom sqlalchemy import Enum\n\n"
        "def unrelated():\n    return [1, 2, 3]\n\n"
        "def stamp():\n    return datetime.datetime.utcnow()\n"
    )
    path = tmp_path / "mod.py"
    path.write_bytes(source.encode())
    codemods = [c for c in all_codemods() if c.code == "DBF003"]
    index = build_index([(path, None)], tmp_path, tests=TextTests(keep=(codemods[0].triggers,)))
    parsed = parsed_tree(str(path), source.encode())
    assert parsed is not None and parsed[3]  # some bodies were cut ...
    bodies = {n.name: n.body for n in ast.walk(parsed[0]) if isinstance(n, ast.FunctionDef)}
    assert isinstance(bodies["unrelated"][0], ast.Expr) and isinstance(bodies["stamp"][0], ast.Return)
    versions = TargetVersions(python=(3, 12), sqlalchemy=(2, 0), sqlmodel=None, pydantic=None)
    module = ("mod", False)
    from_cut = detect(source, str(path), module, index, Config(), versions, codemods, parsed)
    whole = detect(source, str(path), module, index, Config(), versions, codemods, None)
    assert [f.span for f in from_cut] == [f.span for f in whole] and len(whole) == 1
    forget_trees()
    build_index([(path, None)], tmp_path, tests=TextTests(keep=(codemods[0].triggers,)))
    parsed = parsed_tree(str(path), source.encode())
    whole_parses.clear()
    detect(source, str(path), module, index, Config(), versions, list(all_codemods()), parsed)
    assert whole_parses == [source]  # DBF002 (`Enum`) may look into any function: the file was parsed whole
    forget_trees()


def test_detection_cuts_a_file_the_index_did_not_parse(tmp_path: Path, whole_parses: list[str]):
    """A module no model lives in (the index skips it) that only DBF004 runs on: detection parses it
    without the bodies `.now(` is not in, and meets no finding, so never parses it whole."""
    from dbfix.codemod import all_codemods
    from dbfix.config import Config
    from dbfix.engine import detect

    (tmp_path / "models.py").write_text(
        "from datetime import datetime\n"
        "from sqlalchemy import DateTime\n"
        "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column\n\n"
        "class Base(DeclarativeBase):\n    pass\n\n"
        "class Event(Base):\n    __tablename__ = 'event'\n    id: Mapped[int] = mapped_column(primary_key=True)\n"
        "    created_at: Mapped[datetime] = mapped_column(DateTime)\n"
    )
    index = build_index([(tmp_path / "models.py", None)], tmp_path)
    source = (
        "from datetime import datetime\nfrom models import Event\n\n"
        "def unrelated():\n    return [1, 2, 3]\n\n"
        "def make():\n    return Event(created_at=datetime.now())\n"  # naive, as its column: no finding
    )
    codemods = [c for c in all_codemods() if c.code == "DBF004"]
    versions = TargetVersions(python=(3, 12), sqlalchemy=(2, 0), sqlmodel=None, pydantic=None)
    assert codemods[0].wanted(source, index, Config(), versions)
    assert detect(source, "use.py", ("use", False), index, Config(), versions, codemods) == []
    assert whole_parses == []
    aware = source.replace("datetime.now()", "datetime.now(timezone.utc)").replace("import datetime", "import datetime, timezone")
    found = detect(aware, "use.py", ("use", False), index, Config(), versions, codemods)
    assert len(found) == 1 and found[0].span.line == 8  # the cut tree still finds in the body it kept
    assert whole_parses == [aware]  # and then the whole file is parsed, to prove it parses


@pytest.mark.parametrize("imports", ["import datetime\nimport sqlalchemy\n", "import datetime\n"], ids=["indexed", "not-indexed"])
def test_a_syntax_error_in_a_body_left_out_is_still_reported(tmp_path: Path, imports: str):
    """The cut tree finds DBF003, but the file does not parse: it is reported as such, not fixed (the cut
    tree is the index's, or, for a module the index skips, detection's own)."""
    from dbfix.config import Config
    from dbfix.engine import run

    source = imports + "\ndef broken():\n    x = = 1\n\ndef stamp():\n    return datetime.datetime.utcnow()\n"
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\n')
    (tmp_path / "mod.py").write_text(source)
    for apply in (False, True):
        outcome = run([tmp_path], Config(root=tmp_path), apply=apply, write=apply, jobs=1)
        (result,) = outcome.results
        assert result.error is not None and result.error.startswith("cannot parse"), result.error
        assert not result.findings
    assert (tmp_path / "mod.py").read_text() == source
