from __future__ import annotations

from pathlib import Path

import pytest

from dbfix.config import (
    Config,
    ConfigError,
    find_project_root,
    load_config,
    parse_python_version,
)


def write(root: Path, text: str) -> Path:
    (root / "pyproject.toml").write_text(text)
    return root


def test_no_pyproject_gives_defaults(tmp_path):
    assert load_config(tmp_path) == Config(root=tmp_path)


def test_no_section_gives_defaults(tmp_path):
    write(tmp_path, "[tool.ruff]\nline-length = 100\n")
    assert load_config(tmp_path) == Config(root=tmp_path)


def test_all_keys(tmp_path):
    write(
        tmp_path,
        """
[tool.dbfix]
select = ["DBF001", "mutable-default"]
extend-select = ["DBF009"]
ignore = "DBF002, DBF003 ,"
unsafe-fixes = true
extend-safe-fixes = ["DBF004"]
exclude = ["generated/", "*_pb2.py"]
extend-exclude = ["legacy/*"]
target-python = "py311"
rename-metadata-to = "meta"
sqlmodel-enum-style = "sa_type"
constraint-names = "convention"
respect-gitignore = false
cache-dir = ".cache/dbfix"
""",
    )
    assert load_config(tmp_path) == Config(
        select=("DBF001", "mutable-default"),
        extend_select=("DBF009",),
        ignore=("DBF002", "DBF003"),
        unsafe_fixes=True,
        extend_safe_fixes=("DBF004",),
        exclude=("generated/", "*_pb2.py"),
        extend_exclude=("legacy/*",),
        target_python=(3, 11),
        rename_metadata_to="meta",
        sqlmodel_enum_style="sa_type",
        constraint_names="convention",
        respect_gitignore=False,
        cache_dir=".cache/dbfix",
        root=tmp_path,
    )


def test_comma_separated_select(tmp_path):
    write(tmp_path, '[tool.dbfix]\nselect = "DBF001,DBF002"\nextend-select = " DBF003 "\n')
    config = load_config(tmp_path)
    assert config.select == ("DBF001", "DBF002")
    assert config.extend_select == ("DBF003",)


def test_unknown_key(tmp_path):
    write(tmp_path, "[tool.dbfix]\nfoo = 1\n")
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path)
    message = str(e.value)
    assert "pyproject.toml: unknown key 'foo' in [tool.dbfix]; known keys: " in message
    assert "extend-select" in message and "rename-metadata-to" in message
    assert "\n" not in message


def test_unknown_snake_case_key_suggests_kebab(tmp_path):
    write(tmp_path, "[tool.dbfix]\nunsafe_fixes = true\n")
    with pytest.raises(ConfigError, match=r"unknown key 'unsafe_fixes'.*did you mean 'unsafe-fixes'"):
        load_config(tmp_path)


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("select = 1", r"select must be a list of strings or a comma-separated string, got 1"),
        ('select = ["A", 2]', r"select must be a list of strings"),
        ('exclude = "build"', r"exclude must be a list of strings, got 'build'"),
        ('unsafe-fixes = "yes"', r"unsafe-fixes must be true or false, got 'yes'"),
        ('sqlmodel-enum-style = "column"', r"sqlmodel-enum-style must be 'sa_column' or 'sa_type'"),
        ('constraint-names = "mysql"', r"constraint-names must be 'postgres' or 'convention'"),
        ("target-python = 3.10", r"target-python must be a string"),
        ('target-python = "2.7"', r"target-python: invalid Python version '2.7'"),
        ('rename-metadata-to = "metadata"', r"rename-metadata-to must be a name other than 'metadata'"),
        ('rename-metadata-to = "extra-metadata"', r"rename-metadata-to must be a Python identifier"),
        ('rename-metadata-to = "class"', r"rename-metadata-to must be a Python identifier"),
        ("cache-dir = false", r"cache-dir must be a string"),
        ('exclude = ["foo\\\\"]', r"exclude: invalid pattern"),
    ],
)
def test_bad_values(tmp_path, monkeypatch, line, match):
    write(tmp_path, f"[tool.dbfix]\n{line}\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=match) as e:
        load_config(tmp_path)
    assert str(e.value).startswith("pyproject.toml: [tool.dbfix] ")
    assert "\n" not in str(e.value)


def test_section_not_a_table(tmp_path):
    write(tmp_path, '[tool]\ndbfix = "on"\n')
    with pytest.raises(ConfigError, match=r"\[tool.dbfix\] must be a table"):
        load_config(tmp_path)


def test_invalid_toml_is_one_line(tmp_path):
    write(tmp_path, "[tool.dbfix\nselect = [\n")
    with pytest.raises(ConfigError, match=r"pyproject.toml: invalid TOML: .*line 1") as e:
        load_config(tmp_path)
    assert "\n" not in str(e.value)
    assert e.value.__cause__ is None and e.value.__suppress_context__


def test_error_names_file_outside_cwd_absolutely(tmp_path, monkeypatch):
    (tmp_path / "proj").mkdir()
    (tmp_path / "other").mkdir()
    write(tmp_path / "proj", "[tool.dbfix]\nbar = 1\n")
    monkeypatch.chdir(tmp_path / "other")
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path / "proj")
    assert str(e.value).startswith(f"{tmp_path / 'proj' / 'pyproject.toml'}: unknown key 'bar'")


def test_replace(tmp_path):
    config = Config(root=tmp_path)
    changed = config.replace(unsafe_fixes=True, select=("DBF001",))
    assert (changed.unsafe_fixes, changed.select, changed.root) == (True, ("DBF001",), tmp_path)
    assert config.unsafe_fixes is False
    with pytest.raises(AttributeError):
        config.unsafe_fixes = True  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("3.11", (3, 11)), ("py311", (3, 11)), ("311", (3, 11)), ("py39", (3, 9)), ("3.9", (3, 9)), (" 3.13 ", (3, 13))],
)
def test_parse_python_version(text, expected):
    assert parse_python_version(text) == expected


@pytest.mark.parametrize("text", ["", "python", "3", "2.7", "py27", "3.x", "3.11.2", "4.0"])
def test_parse_python_version_rejects_junk(text):
    with pytest.raises(ConfigError, match="invalid Python version"):
        parse_python_version(text)


class TestFindProjectRoot:
    def test_nearest_pyproject(self, tmp_path):
        (tmp_path / ".git").mkdir()
        project = tmp_path / "packages" / "app"
        (project / "src" / "app").mkdir(parents=True)
        (project / "pyproject.toml").write_text("")
        file = project / "src" / "app" / "models.py"
        file.write_text("")
        assert find_project_root([file]) == project
        assert find_project_root([project / "src"]) == project

    def test_common_ancestor_of_several_paths(self, tmp_path):
        (tmp_path / "pyproject.toml").write_text("")
        (tmp_path / "a").mkdir()
        (tmp_path / "b" / "c").mkdir(parents=True)
        (tmp_path / "b" / "pyproject.toml").write_text("")
        # b has its own pyproject, but a/ is outside it: the common ancestor decides
        assert find_project_root([tmp_path / "a", tmp_path / "b" / "c"]) == tmp_path

    def test_git_directory_marks_root(self, tmp_path):
        (tmp_path / ".git").mkdir()
        (tmp_path / "pkg").mkdir()
        assert find_project_root([tmp_path / "pkg"]) == tmp_path

    def test_no_marker_gives_common_parent(self, tmp_path):
        if any((d / "pyproject.toml").exists() or (d / ".git").exists() for d in tmp_path.parents):
            pytest.skip("a directory above tmp_path is itself a project root")
        (tmp_path / "x" / "y").mkdir(parents=True)
        (tmp_path / "x" / "z.py").write_text("")
        assert find_project_root([tmp_path / "x" / "y", tmp_path / "x" / "z.py"]) == tmp_path / "x"

    def test_no_paths_uses_cwd(self, tmp_path, monkeypatch):
        (tmp_path / "pyproject.toml").write_text("")
        (tmp_path / "sub").mkdir()
        monkeypatch.chdir(tmp_path / "sub")
        assert find_project_root([]) == tmp_path

    def test_relative_paths(self, tmp_path, monkeypatch):
        (tmp_path / "pyproject.toml").write_text("")
        (tmp_path / "pkg").mkdir()
        monkeypatch.chdir(tmp_path)
        assert find_project_root([Path("pkg")]) == tmp_path
