"""Golden fixtures: tests/fixtures/<codemod>/<case>.py -> <case>.expected.py (none: must stay unchanged).

A case that needs several files is a folder with `before/` and `after/` trees. A first-line comment
`# fixture: python=3.10 sqlmodel=0.0.44 unsafe` sets the target versions and allows unsafe fixes.
"""

from __future__ import annotations

import ast
import filecmp
import shutil
from pathlib import Path

import pytest

from dbfix.codemod import all_codemods
from dbfix.config import Config, load_config
from dbfix.engine import fix_source, run
from dbfix.index import build_index
from dbfix.versions import TargetVersions

FIXTURES = Path(__file__).parent / "fixtures"
CODEMODS = {c.__module__.rsplit(".", 1)[1]: c for c in all_codemods()}


def _single_cases() -> list[Path]:
    return sorted(p for p in FIXTURES.glob("*/*.py") if not p.name.endswith(".expected.py"))


def _tree_cases() -> list[Path]:
    return sorted(p for p in FIXTURES.glob("*/*") if (p / "before").is_dir())


def _options(text: str) -> tuple[TargetVersions, Config]:
    first = text.split("\n", 1)[0]
    opts: dict[str, str] = {}
    if first.startswith("# fixture:"):
        for item in first[len("# fixture:") :].split():
            key, _, value = item.partition("=")
            opts[key] = value
    version = lambda key: tuple(int(x) for x in opts[key].split(".")) if key in opts else None  # noqa: E731
    versions = TargetVersions(
        python=version("python") or (3, 12),  # type: ignore[arg-type]
        sqlalchemy=version("sqlalchemy") or (2, 0),
        sqlmodel=version("sqlmodel"),
        pydantic=version("pydantic") or (2, 11),
    )
    config = Config(unsafe_fixes="unsafe" in opts)
    return versions, config


def _fix(source: str, path: Path, codemod: type) -> tuple[str, list]:
    versions, config = _options(source)
    index = build_index([(path, source.encode())], path.parent)
    result = fix_source(source, path.name, (path.stem, False), index, config, versions, [codemod])
    assert result.error is None, result.error
    return (result.new_source if result.changed else source), result.remaining


@pytest.mark.parametrize("case", _single_cases(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_single_file(case: Path) -> None:
    codemod = CODEMODS[case.parent.name]
    source = case.read_text()
    expected_file = case.with_name(case.stem + ".expected.py")
    expected = expected_file.read_text() if expected_file.exists() else source
    ast.parse(expected)  # a golden file must itself be valid Python
    fixed, _ = _fix(source, case, codemod)
    assert fixed == expected
    again, _ = _fix(fixed, case, codemod)
    assert again == fixed, "a second pass must change nothing"


@pytest.mark.parametrize("case", _tree_cases(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_project_tree(case: Path, tmp_path: Path) -> None:
    work = tmp_path / "project"
    shutil.copytree(case / "before", work)
    (work / "pyproject.toml").touch(exist_ok=True)
    codemod = CODEMODS[case.parent.name]
    # a case's own pyproject.toml may set [tool.dbfix] options; the case decides the rule and unsafe fixes
    config = load_config(work).replace(root=work, select=(codemod.code,), unsafe_fixes=(case / "unsafe").exists())
    outcome = run([work], config, apply=True, write=True, jobs=1)
    assert [r.error for r in outcome.results if r.error] == []
    comparison = filecmp.dircmp(work, case / "after", ignore=["pyproject.toml", "__pycache__"])
    _assert_same(comparison)
    again = run([work], config, apply=True, write=True, jobs=1)
    assert not any(r.changed for r in again.results), "a second run must change nothing"


def _assert_same(comparison: filecmp.dircmp) -> None:
    assert not comparison.left_only and not comparison.right_only, (comparison.left_only, comparison.right_only)
    for name in comparison.common_files:
        left = Path(comparison.left, name).read_text()
        right = Path(comparison.right, name).read_text()
        assert left == right, f"{name} differs"
    for sub in comparison.subdirs.values():
        _assert_same(sub)


def test_every_codemod_has_fixing_and_noop_cases() -> None:
    for module, codemod in CODEMODS.items():
        folder = FIXTURES / module
        cases = [p for p in folder.glob("*.py") if not p.name.endswith(".expected.py")]
        fixing = [p for p in cases if p.with_name(p.stem + ".expected.py").exists()]
        fixing += [p for p in folder.iterdir() if (p / "before").is_dir()] if folder.is_dir() else []
        noop = [p for p in cases if not p.with_name(p.stem + ".expected.py").exists()]
        assert fixing or not codemod.fixable, f"{module}: no fixing case"
        assert noop, f"{module}: no no-op case"
