from __future__ import annotations

import os
from pathlib import Path

import pytest

from dbfix.config import Config
from dbfix.discovery import Skipped, discover, is_alembic_versions_file, project_files


def make(root: Path, *files: str, content: str = "") -> None:
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def rel(root: Path, paths: list[Path]) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths]


def run(root: Path, *paths: Path | str, config: Config | None = None) -> tuple[list[str], dict[str, str]]:
    found, skipped = discover([root / p for p in paths] or [root], root, config or Config(root=root))
    return rel(root, found), {s.path.relative_to(root).as_posix(): s.reason for s in skipped}


def test_expands_directories_to_sorted_absolute_py_files(tmp_path):
    make(tmp_path, "b.py", "a.py", "pkg/z.py", "pkg/sub/y.py", "stub.pyi", "notes.txt", "pkg/data.json")
    found, skipped = discover([tmp_path], tmp_path, Config())
    assert rel(tmp_path, found) == ["a.py", "b.py", "pkg/sub/y.py", "pkg/z.py"]
    assert all(p.is_absolute() for p in found)
    assert skipped == []


def test_relative_paths_come_back_absolute(tmp_path, monkeypatch):
    make(tmp_path, "pkg/a.py")
    monkeypatch.chdir(tmp_path)
    found, _ = discover([Path("pkg")], Path("."), Config())
    assert found == [tmp_path / "pkg" / "a.py"]


def test_deduplicates_overlapping_paths(tmp_path):
    make(tmp_path, "pkg/a.py", "pkg/sub/b.py")
    found, _ = run(tmp_path, "pkg", "pkg/sub", "pkg/a.py", "pkg/sub/b.py", ".")
    assert found == ["pkg/a.py", "pkg/sub/b.py"]


def test_skip_dirs(tmp_path):
    make(
        tmp_path,
        "app.py",
        ".venv/lib/x.py",
        "venv/x.py",
        "node_modules/x.py",
        "pkg/__pycache__/x.py",
        "build/lib/x.py",
        "dist/x.py",
        ".tox/x.py",
        "lib/site-packages/x.py",
        ".git/hooks/x.py",
    )
    found, skipped = run(tmp_path)
    assert found == ["app.py"]
    assert skipped == {}


def test_explicit_skip_dir_is_walked(tmp_path):
    make(tmp_path, "build/gen.py")
    assert run(tmp_path, "build")[0] == ["build/gen.py"]


def test_root_gitignore(tmp_path):
    make(tmp_path, "app.py", "gen/models.py", "scratch.py", "pkg/scratch.py", "pkg/ok.py")
    make(tmp_path, ".gitignore", content="gen/\nscratch.py\n# comment\n")
    found, skipped = run(tmp_path)
    assert found == ["app.py", "pkg/ok.py"]
    # a pruned directory is reported once, not file by file
    assert skipped == {"gen": "gitignored", "pkg/scratch.py": "gitignored", "scratch.py": "gitignored"}


def test_nested_gitignore_is_relative_to_its_directory(tmp_path):
    make(tmp_path, "a.py", "pkg/a.py", "pkg/inner/a.py", "other/a.py")
    make(tmp_path, "pkg/.gitignore", content="/a.py\n")
    assert run(tmp_path)[0] == ["a.py", "other/a.py", "pkg/inner/a.py"]


def test_negation_keeps_file(tmp_path):
    make(tmp_path, "gen/a.py", "gen/keep.py", "gen/b.py")
    make(tmp_path, ".gitignore", content="gen/*.py\n!keep.py\n")
    found, skipped = run(tmp_path)
    assert found == ["gen/keep.py"]
    assert skipped == {"gen/a.py": "gitignored", "gen/b.py": "gitignored"}


def test_nested_negation_overrides_root(tmp_path):
    make(tmp_path, "a/x.py", "a/keep.py", "b/keep.py")
    make(tmp_path, ".gitignore", content="*.py\n")
    make(tmp_path, "a/.gitignore", content="!keep.py\n")
    assert run(tmp_path)[0] == ["a/keep.py"]


def test_negation_cannot_reinclude_inside_ignored_directory(tmp_path):
    # as in git: "It is not possible to re-include a file if a parent directory of that file is excluded."
    make(tmp_path, "gen/keep.py")
    make(tmp_path, ".gitignore", content="gen/\n!gen/keep.py\n")
    assert run(tmp_path)[0] == []


def test_bracket_expression_holding_regex_text(tmp_path):
    # `[(?P<n>]` is a class of six characters to git; in the regex pathspec writes it stays a class
    make(tmp_path, "a/nx.py", "a/kx.py", "b/gen_a.py", "b/sub/kgen_a.py", "b/sub/zgen_a.py")
    make(tmp_path, "a/.gitignore", content="[(?P<n>]x.py\n")
    make(tmp_path, "b/.gitignore", content="*gen_*.py\n")
    make(tmp_path, "b/sub/.gitignore", content="![(?P<k>]gen_*.py\n")
    found, skipped = run(tmp_path)
    assert found == ["a/kx.py", "b/sub/kgen_a.py"]
    assert skipped == {"a/nx.py": "gitignored", "b/gen_a.py": "gitignored", "b/sub/zgen_a.py": "gitignored"}


def test_git_info_exclude(tmp_path):
    make(tmp_path, "a.py", "local.py")
    make(tmp_path, ".git/info/exclude", content="local.py\n")
    assert run(tmp_path) == (["a.py"], {"local.py": "gitignored"})


def test_gitignore_above_project_root_inside_repository(tmp_path):
    make(tmp_path, ".git/HEAD", ".gitignore", content="")
    (tmp_path / ".gitignore").write_text("*_generated.py\n")
    project = tmp_path / "services" / "api"
    make(project, "pyproject.toml", "app.py", "models_generated.py")
    found, skipped = discover([project], project, Config(root=project))
    assert rel(project, found) == ["app.py"]
    assert [s.reason for s in skipped] == ["gitignored"]


def test_gitignore_outside_repository_is_not_read_above_root(tmp_path):
    make(tmp_path, ".gitignore", content="*.py\n")
    project = tmp_path / "proj"
    make(project, "app.py")
    assert run(project)[0] == ["app.py"]


def test_gitignore_of_ancestors_applies_to_explicit_subdirectory(tmp_path):
    make(tmp_path, "pkg/sub/a.py", "pkg/sub/tmp_x.py")
    make(tmp_path, ".gitignore", content="tmp_*.py\n")
    assert run(tmp_path, "pkg/sub")[0] == ["pkg/sub/a.py"]


def test_respect_gitignore_false(tmp_path):
    make(tmp_path, "a.py", "gen/b.py")
    make(tmp_path, ".gitignore", content="gen/\na.py\n")
    found, skipped = run(tmp_path, config=Config(respect_gitignore=False))
    assert found == ["a.py", "gen/b.py"]
    assert skipped == {}


def test_malformed_gitignore_line_is_skipped(tmp_path):
    make(tmp_path, "a.py", "b.py")
    make(tmp_path, ".gitignore", content="!\na.py\n")
    assert run(tmp_path)[0] == ["b.py"]


def test_exclude_and_extend_exclude(tmp_path):
    make(tmp_path, "app.py", "generated/x.py", "legacy/old.py", "legacy/sub/older.py", "pkg/proto_pb2.py")
    config = Config(exclude=("generated/", "*_pb2.py"), extend_exclude=("legacy/*",))
    found, skipped = run(tmp_path, config=config)
    assert found == ["app.py"]
    assert skipped == {
        "generated": "excluded by 'generated/'",
        "legacy/old.py": "excluded by 'legacy/*'",
        "legacy/sub": "excluded by 'legacy/*'",
        "pkg/proto_pb2.py": "excluded by '*_pb2.py'",
    }


def test_exclude_is_relative_to_root_not_to_the_path_given(tmp_path):
    make(tmp_path, "src/models.py", "models.py")
    config = Config(exclude=("/models.py",))
    assert run(tmp_path, "src", config=config)[0] == ["src/models.py"]
    assert run(tmp_path, config=config)[0] == ["src/models.py"]


def test_exclude_negation(tmp_path):
    make(tmp_path, "gen/a.py", "gen/keep.py")
    assert run(tmp_path, config=Config(exclude=("gen/*.py", "!gen/keep.py")))[0] == ["gen/keep.py"]


def test_explicit_file_is_always_included(tmp_path):
    make(tmp_path, "gen/models.py", "build/x.py", "script")
    make(tmp_path, ".gitignore", content="gen/\n")
    config = Config(exclude=("build/",))
    found, skipped = run(tmp_path, "gen/models.py", "build/x.py", "script", config=config)
    assert found == ["build/x.py", "gen/models.py", "script"]
    assert skipped == {}


def test_explicit_file_also_reached_by_walk_is_not_reported_skipped(tmp_path):
    make(tmp_path, "gen/models.py")
    make(tmp_path, ".gitignore", content="gen/models.py\n")
    assert run(tmp_path, ".", "gen/models.py") == (["gen/models.py"], {})


def test_missing_path_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.py: no such file or directory"):
        discover([tmp_path / "nope.py"], tmp_path, Config())


ALEMBIC = ("migrations/env.py", "migrations/script.py.mako", "migrations/versions/0001_init.py")


def test_alembic_versions_skipped_with_reason(tmp_path):
    make(tmp_path, *ALEMBIC, "migrations/versions/sub/0002.py", "app.py")
    found, skipped = run(tmp_path)
    assert found == ["app.py", "migrations/env.py"]
    assert skipped == {
        "migrations/versions/0001_init.py": "Alembic migration script",
        "migrations/versions/sub/0002.py": "Alembic migration script",
    }


def test_alembic_versions_explicit_file_and_directory(tmp_path):
    make(tmp_path, *ALEMBIC)
    found, skipped = run(tmp_path, "migrations/versions/0001_init.py")
    assert (found, skipped) == ([], {"migrations/versions/0001_init.py": "Alembic migration script"})
    found, skipped = run(tmp_path, "migrations/versions")
    assert (found, skipped) == ([], {"migrations/versions/0001_init.py": "Alembic migration script"})


@pytest.mark.parametrize("marker", ["env.py", "script.py.mako", "alembic.ini"])
def test_is_alembic_versions_file(tmp_path, marker):
    make(tmp_path, f"alembic/{marker}", "alembic/versions/abc.py", "alembic/versions/deep/er.py")
    assert is_alembic_versions_file(tmp_path / "alembic" / "versions" / "abc.py")
    assert is_alembic_versions_file(tmp_path / "alembic" / "versions" / "deep" / "er.py")
    assert not is_alembic_versions_file(tmp_path / "alembic" / marker)


def test_versions_package_without_alembic_is_code(tmp_path):
    make(tmp_path, "app/versions/v1.py", "app/models.py")
    assert not is_alembic_versions_file(tmp_path / "app" / "versions" / "v1.py")
    assert run(tmp_path)[0] == ["app/models.py", "app/versions/v1.py"]


def test_project_files_uses_same_rules(tmp_path):
    make(tmp_path, *ALEMBIC, "app/models.py", "gen/x.py", ".venv/y.py", "old/z.py")
    make(tmp_path, ".gitignore", content="gen/\n")
    config = Config(exclude=("old/",), root=tmp_path)
    assert rel(tmp_path, project_files(tmp_path, config)) == ["app/models.py", "migrations/env.py"]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_symlinked_directory_loop_is_not_followed(tmp_path):
    make(tmp_path, "pkg/a.py")
    try:
        os.symlink(tmp_path / "pkg", tmp_path / "pkg" / "loop", target_is_directory=True)
    except OSError:
        pytest.skip("cannot create symlinks here")
    assert run(tmp_path)[0] == ["pkg/a.py"]


def test_deterministic_regardless_of_argument_order(tmp_path):
    make(tmp_path, *(f"p{i}/m{j}.py" for i in range(5) for j in range(5)), "p3/.gitignore", "skip/x.py")
    (tmp_path / "p3" / ".gitignore").write_text("m1.py\n")
    config = Config(exclude=("skip/",))
    first = discover([tmp_path / "p4", tmp_path / "p0", tmp_path], tmp_path, config)
    second = discover([tmp_path, tmp_path / "p0", tmp_path / "p4"], tmp_path, config)
    assert first == second
    assert first[1] == [
        Skipped(tmp_path / "p3" / "m1.py", "gitignored"),
        Skipped(tmp_path / "skip", "excluded by 'skip/'"),
    ]
    assert len(first[0]) == 24


GITIGNORE_LINES = [
    "*.py[cod]", "__pycache__/", "/build", "dist/", "!dist/keep.py", "docs/**/*.py", "**/gen_*.py",
    "a?c.py", "[ab]*.py", "!b_kept.py", "foo/bar/", "#comment", "", "\\#literal.py", "trailing\\ ",
    "*.egg-info/", "logs/*", "!logs/.keep", "sub/**", "x/**/y/", "Ünïcode.py", "(?P<n>x).py",
]
PATHS = [
    "a.py", "abc.py", "aXc.py", "b_kept.py", "bz.py", "build/", "build/x.py", "src/build/x.py", "dist/keep.py",
    "dist/other.py", "dist/", "docs/a/b.py", "docs/b.py", "pkg/gen_x.py", "gen_y.py", "foo/bar/", "foo/bar/z.py",
    "foo/bar", "#literal.py", "#comment", "trailing ", "m.egg-info/", "logs/x.py", "logs/.keep", "sub/a/b.py",
    "x/q/y/", "x/y/", "x/q/y/z.py", "Ünïcode.py", "pkg/Ünïcode.py", "(?P<n>x).py", "nx.py", "zz/yy.py", "__pycache__/",
    "Px.py", "(x.py", "foo/a", "foo/<", "./abc.py", "/dist/", "./pkg/gen_x.py",
]


def test_combined_gitignore_regex_answers_as_pathspec_does():
    """The one-regex shortcut says "no pattern matches" exactly where pathspec finds no pattern."""
    import pathspec

    from dbfix.discovery import _ignore

    # pathspec writes `*` as an unanchored `.`, and a class may hold the text `(?P<`: no shortcut for them
    no_shortcut = (["*"], ["[(?P<n>]x.py"], ["a.py", "foo/[(?P<a>]"])
    for lines in (GITIGNORE_LINES, GITIGNORE_LINES[::-1], GITIGNORE_LINES[:5], ["!x.py"], *no_shortcut):
        spec = pathspec.GitIgnoreSpec.from_lines(lines)
        ignore = _ignore(spec)
        assert (ignore.any_pattern is None) == (lines in no_shortcut)
        for path in PATHS:
            expected = spec.check_file(path)
            got = ignore.check(path)
            if got is None:
                assert expected.include is None, (lines, path)
            else:
                assert (got.include, got.index) == (expected.include, expected.index)
        if ignore.any_pattern is not None:
            shortcut = sum(ignore.check(p) is None for p in PATHS)
            assert shortcut == sum(spec.check_file(p).include is None for p in PATHS)
