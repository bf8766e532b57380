from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import pytest
from packaging.version import Version

from dbfix.versions import TargetVersions, detect_versions

INSTALLED = {"sqlalchemy": "2.1.9", "sqlmodel": "0.0.50", "pydantic": "2.14.3"}


@pytest.fixture(autouse=True)
def installed(monkeypatch):
    """Pin what the running interpreter reports as installed, so tests do not depend on the venv."""
    packages = dict(INSTALLED)

    def version(name: str) -> str:
        if name not in packages:
            raise metadata.PackageNotFoundError(name)
        return packages[name]

    monkeypatch.setattr(metadata, "version", version)  # the module dbfix.versions imports on first use
    return packages


def write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def sources(result: TargetVersions) -> dict[str, str]:
    return dict(result.sources)


def test_nothing_declared_falls_back_to_installed_and_the_oldest_supported_python(tmp_path):
    result = detect_versions(tmp_path)
    assert result == TargetVersions(
        python=(3, 10),
        sqlalchemy=(2, 1, 9),
        sqlmodel=(0, 0, 50),
        pydantic=(2, 14, 3),
        sources=(("python", "default"), ("sqlalchemy", "installed"), ("sqlmodel", "installed"), ("pydantic", "installed")),
    )


def test_not_installed_and_not_declared_is_none(tmp_path, installed):
    del installed["sqlmodel"]
    result = detect_versions(tmp_path)
    assert result.sqlmodel is None
    assert "sqlmodel" not in sources(result)


def test_real_installed_lookup(tmp_path, monkeypatch):
    monkeypatch.undo()
    assert detect_versions(tmp_path).sqlalchemy == Version(metadata.version("sqlalchemy")).release


UV_LOCK = """
version = 1
requires-python = ">=3.10"

[[package]]
name = "sqlalchemy"
version = "2.0.36"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "sqlmodel"
version = "0.0.22"
source = { registry = "https://pypi.org/simple" }
dependencies = [{ name = "pydantic" }, { name = "sqlalchemy" }]

[[package]]
name = "pydantic"
version = "2.9.2"

[[package]]
name = "myapp"
source = { editable = "." }
"""


def test_uv_lock(tmp_path):
    write(tmp_path, "uv.lock", UV_LOCK)
    write(tmp_path, "pyproject.toml", '[project]\nname = "myapp"\ndependencies = ["sqlalchemy>=2.0"]\n')
    result = detect_versions(tmp_path)
    assert (result.sqlalchemy, result.sqlmodel, result.pydantic) == ((2, 0, 36), (0, 0, 22), (2, 9, 2))
    assert sources(result) == {
        "python": "default",
        "sqlalchemy": "uv.lock",
        "sqlmodel": "uv.lock",
        "pydantic": "uv.lock",
    }


def test_uv_lock_with_forked_versions_takes_lowest(tmp_path):
    write(
        tmp_path,
        "uv.lock",
        '[[package]]\nname = "SQLAlchemy"\nversion = "2.0.36"\n\n[[package]]\nname = "sqlalchemy"\nversion = "1.4.54"\n',
    )
    assert detect_versions(tmp_path).sqlalchemy == (1, 4, 54)


LOCK_TABLES = """
version = 1

[[package]]
name = "sqlalchemy"
version = "2.0.36"  # a comment
dependencies = [
    { name = "greenlet", marker = "python_version < '3.13'" },
]

[package.optional-dependencies]
asyncio = [
    { name = "greenlet" },
]

[[package]]
name = 'pydantic'
version = '2.9.2'

[[package]]
name = "myapp"
source = { editable = "." }
"""


@pytest.mark.parametrize(
    "text",
    [
        LOCK_TABLES,
        # quoted keys: the scan gives the file to tomllib
        LOCK_TABLES + '\n[[package]]\n"name" = "sqlmodel"\n"version" = "0.0.22"\n',
        # inline tables: the same
        'package = [{ name = "sqlalchemy", version = "2.0.36" }]\n',
    ],
)
def test_lock_scan_reads_what_tomllib_reads(tmp_path, text):
    from dbfix.versions import _lock_packages, tomllib

    path = tmp_path / "uv.lock"
    path.write_text(text)
    expected = [(p.get("name"), p.get("version")) for p in tomllib.loads(text)["package"]]
    assert _lock_packages(path) == expected


def test_poetry_lock(tmp_path):
    write(
        tmp_path,
        "poetry.lock",
        """
[[package]]
name = "SQLAlchemy"
version = "2.0.30"
description = "Database Abstraction Library"
optional = false

[package.extras]
asyncio = ["greenlet (!=0.4.17)"]

[metadata]
lock-version = "2.0"
""",
    )
    write(tmp_path, "pyproject.toml", '[tool.poetry.dependencies]\npython = "^3.11"\nsqlalchemy = "^2.0"\n')
    result = detect_versions(tmp_path)
    assert result.sqlalchemy == (2, 0, 30)
    assert result.python == (3, 11)
    assert sources(result)["sqlalchemy"] == "poetry.lock"
    assert sources(result)["python"] == "pyproject.toml"


def test_pipfile_lock(tmp_path):
    data = {
        "_meta": {"hash": {}},
        "default": {"sqlalchemy": {"version": "==2.0.25", "hashes": []}},
        "develop": {"pydantic": {"version": "==2.5.0"}},
    }
    write(tmp_path, "Pipfile.lock", json.dumps(data))
    result = detect_versions(tmp_path)
    assert (result.sqlalchemy, result.pydantic) == ((2, 0, 25), (2, 5, 0))
    assert sources(result)["sqlalchemy"] == "Pipfile.lock"


def test_pdm_lock(tmp_path):
    write(tmp_path, "pdm.lock", '[metadata]\ngroups = ["default"]\n\n[[package]]\nname = "sqlmodel"\nversion = "0.0.21"\n')
    result = detect_versions(tmp_path)
    assert result.sqlmodel == (0, 0, 21)
    assert sources(result)["sqlmodel"] == "pdm.lock"


def test_uv_lock_preferred_over_poetry_lock(tmp_path):
    write(tmp_path, "uv.lock", '[[package]]\nname = "sqlalchemy"\nversion = "2.0.36"\n')
    write(tmp_path, "poetry.lock", '[[package]]\nname = "sqlalchemy"\nversion = "1.4.0"\n')
    assert detect_versions(tmp_path).sqlalchemy == (2, 0, 36)


def test_bad_lock_files_are_ignored(tmp_path):
    write(tmp_path, "uv.lock", "[[package]\nname = ")
    write(tmp_path, "poetry.lock", 'package = "not a list"\n')
    write(tmp_path, "Pipfile.lock", "{not json")
    write(tmp_path, "pdm.lock", '[[package]]\nname = "sqlalchemy"\nversion = "not-a-version"\n')
    write(tmp_path, "requirements.txt", "sqlalchemy==2.0.1\n")
    result = detect_versions(tmp_path)
    assert result.sqlalchemy == (2, 0, 1)
    assert sources(result)["sqlalchemy"] == "requirements.txt"


def test_requirements_pins_and_bounds(tmp_path):
    write(
        tmp_path,
        "requirements.txt",
        """
# production
-r requirements-base.txt
--index-url https://example.org/simple
SQLAlchemy[asyncio]==2.0.31 \\
    --hash=sha256:abc \\
    --hash=sha256:def
pydantic>=2.6,<3 ; python_version >= "3.8"  # comment
-e .
not a requirement !!
""",
    )
    result = detect_versions(tmp_path)
    assert (result.sqlalchemy, result.pydantic) == ((2, 0, 31), (2, 6))
    assert sources(result)["sqlalchemy"] == "requirements.txt"
    assert sources(result)["pydantic"] == "requirements.txt"


def test_requirements_pin_beats_lower_bound_in_another_file(tmp_path):
    write(tmp_path, "requirements-dev.txt", "sqlalchemy>=2.0\n")
    write(tmp_path, "requirements/prod.txt", "sqlalchemy==2.0.31\n")
    result = detect_versions(tmp_path)
    assert result.sqlalchemy == (2, 0, 31)
    assert sources(result)["sqlalchemy"] == "requirements/prod.txt"


def test_requirements_lowest_bound_wins(tmp_path):
    write(tmp_path, "requirements.txt", "sqlalchemy>=2.0.10\n")
    write(tmp_path, "requirements-old.txt", "sqlalchemy>=1.4\n")
    assert detect_versions(tmp_path).sqlalchemy == (1, 4)


def test_requirements_preferred_over_pyproject(tmp_path):
    write(tmp_path, "requirements.txt", "sqlalchemy==2.0.20\n")
    write(tmp_path, "pyproject.toml", '[project]\ndependencies = ["sqlalchemy>=2.0"]\n')
    assert detect_versions(tmp_path).sqlalchemy == (2, 0, 20)


def test_pyproject_lower_bounds(tmp_path):
    write(
        tmp_path,
        "pyproject.toml",
        """
[project]
requires-python = ">=3.10,<4"
dependencies = [
    "sqlalchemy[asyncio]>=2.0.14,<2.1; python_version >= '3.8'",
    "sqlmodel~=0.0.22",
    "requests",
]
[project.optional-dependencies]
old = ["sqlalchemy>=1.4,<2"]
""",
    )
    result = detect_versions(tmp_path)
    assert result.python == (3, 10)
    assert result.sqlalchemy == (1, 4)  # the lowest any declaration allows
    assert result.sqlmodel == (0, 0, 22)
    assert sources(result) == {
        "python": "pyproject.toml",
        "sqlalchemy": "pyproject.toml",
        "sqlmodel": "pyproject.toml",
        "pydantic": "installed",
    }


def test_dependency_groups(tmp_path):
    write(
        tmp_path,
        "pyproject.toml",
        '[dependency-groups]\ntest = ["pydantic>2.5", {include-group = "lint"}]\nlint = ["ruff"]\n',
    )
    assert detect_versions(tmp_path).pydantic == (2, 5)


def test_unbounded_declaration_falls_back_to_installed(tmp_path):
    write(tmp_path, "pyproject.toml", '[project]\ndependencies = ["sqlalchemy<3", "pydantic"]\n')
    result = detect_versions(tmp_path)
    assert (result.sqlalchemy, result.pydantic) == ((2, 1, 9), (2, 14, 3))
    assert sources(result)["sqlalchemy"] == "installed"


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [
        ('"^2.0"', (2, 0)),
        ('"~1.4.3"', (1, 4, 3)),
        ('"2.0.5"', (2, 0, 5)),
        ('"2.0.*"', (2, 0)),
        ('">= 1.4, < 3"', (1, 4)),
        ('"^1.4 || ^2.0"', (1, 4)),
        ('{ version = "^2.0", extras = ["asyncio"] }', (2, 0)),
        ('[{ version = "^1.4", python = "<3.8" }, { version = "^2.0", python = ">=3.8" }]', (1, 4)),
    ],
)
def test_poetry_constraints(tmp_path, constraint, expected):
    write(tmp_path, "pyproject.toml", f"[tool.poetry.dependencies]\nsqlalchemy = {constraint}\n")
    result = detect_versions(tmp_path)
    assert result.sqlalchemy == expected
    assert sources(result)["sqlalchemy"] == "pyproject.toml"


@pytest.mark.parametrize("constraint", ['"*"', '"<3"', '{ git = "https://github.com/sqlalchemy/sqlalchemy" }'])
def test_poetry_constraints_without_lower_bound(tmp_path, constraint):
    write(tmp_path, "pyproject.toml", f"[tool.poetry.dependencies]\nsqlalchemy = {constraint}\n")
    assert sources(detect_versions(tmp_path))["sqlalchemy"] == "installed"


def test_poetry_group_dependencies(tmp_path):
    write(tmp_path, "pyproject.toml", '[tool.poetry.group.test.dependencies]\npydantic = "^2.7"\n')
    assert detect_versions(tmp_path).pydantic == (2, 7)


def test_sqlmodel_does_not_imply_other_versions(tmp_path, installed):
    del installed["sqlalchemy"], installed["pydantic"]
    write(tmp_path, "pyproject.toml", '[project]\ndependencies = ["sqlmodel>=0.0.22"]\n')
    result = detect_versions(tmp_path)
    assert (result.sqlmodel, result.sqlalchemy, result.pydantic) == ((0, 0, 22), None, None)


@pytest.mark.parametrize(
    ("requires", "expected"),
    [(">=3.9", (3, 9)), ("~=3.11", (3, 11)), (">=3.8.1,<4.0", (3, 8)), ("==3.12.*", (3, 12)), (">=3", (3, 0))],
)
def test_requires_python(tmp_path, requires, expected):
    write(tmp_path, "pyproject.toml", f'[project]\nrequires-python = "{requires}"\n')
    assert detect_versions(tmp_path).python == expected


def test_requires_python_preferred_over_poetry_python(tmp_path):
    write(
        tmp_path,
        "pyproject.toml",
        '[project]\nrequires-python = ">=3.12"\n[tool.poetry.dependencies]\npython = "^3.9"\n',
    )
    assert detect_versions(tmp_path).python == (3, 12)


def test_requires_python_without_lower_bound_uses_the_oldest_supported_python(tmp_path):
    write(tmp_path, "pyproject.toml", '[project]\nrequires-python = "<4"\n')
    result = detect_versions(tmp_path)
    assert result.python == (3, 10)  # never the running interpreter: a 3.11 fix could break a 3.10 project
    assert sources(result)["python"] == "default"


def test_explicit_target_python_wins(tmp_path):
    write(tmp_path, "pyproject.toml", '[project]\nrequires-python = ">=3.9"\n')
    result = detect_versions(tmp_path, target_python=(3, 12))
    assert result.python == (3, 12)
    assert sources(result)["python"] == "config"


def test_bad_pyproject_is_ignored(tmp_path):
    write(tmp_path, "pyproject.toml", "[project\n")
    write(tmp_path, "requirements.txt", "sqlalchemy==2.0.2\n")
    result = detect_versions(tmp_path)
    assert result.sqlalchemy == (2, 0, 2)
    assert sources(result)["python"] == "default"


# -- databases ---------------------------------------------------------------------------------------


def test_no_driver_means_databases_unknown(tmp_path):
    write(tmp_path, "requirements.txt", "sqlalchemy==2.0.1\nrequests\n")
    result = detect_versions(tmp_path)
    assert result.databases == ()
    assert "databases" not in sources(result)


@pytest.mark.parametrize(
    ("requirement", "expected"),
    [
        ("psycopg2-binary==2.9.6", ("postgresql",)),
        ("psycopg[binary]>=3.1", ("postgresql",)),
        ("asyncpg", ("postgresql",)),
        ("pg8000", ("postgresql",)),
        ("PyMySQL[rsa]==1.1.1", ("mysql",)),
        ("mysqlclient", ("mysql",)),
        ("mysql-connector-python", ("mysql",)),
        ("mariadb", ("mysql",)),
        ("aiomysql", ("mysql",)),
        ("asyncmy", ("mysql",)),
        ("aiosqlite", ("sqlite",)),
        ("sqlalchemy[asyncio,postgresql_asyncpg]>=2.0", ("postgresql",)),
        ("sqlmodel[pymysql]", ("mysql",)),
    ],
)
def test_driver_in_requirements(tmp_path, requirement, expected):
    write(tmp_path, "requirements.txt", f"{requirement}\n")
    result = detect_versions(tmp_path)
    assert result.databases == expected
    assert sources(result)["databases"] == "requirements.txt"


def test_drivers_from_every_source_are_combined(tmp_path):
    """CTFd's layout: PyMySQL in the dependencies, psycopg2-binary among the dev dependencies, both locked."""
    write(tmp_path, "uv.lock", '[[package]]\nname = "PyMySQL"\nversion = "1.1.1"\n\n[[package]]\nname = "psycopg2-binary"\nversion = "2.9.6"\n')
    write(
        tmp_path,
        "pyproject.toml",
        '[project]\ndependencies = ["PyMySQL[rsa]==1.1.1"]\n[dependency-groups]\ndev = ["psycopg2-binary==2.9.6"]\n',
    )
    result = detect_versions(tmp_path)
    assert result.databases == ("postgresql", "mysql")
    assert sources(result)["databases"] == "uv.lock, pyproject.toml"


def test_driver_in_pyproject_and_poetry(tmp_path):
    write(tmp_path, "pyproject.toml", '[project.optional-dependencies]\nmysql = ["pymysql"]\n')
    assert detect_versions(tmp_path).databases == ("mysql",)
    write(tmp_path, "pyproject.toml", '[tool.poetry.dependencies]\npython = "^3.11"\nasyncpg = "^0.29"\n')
    assert detect_versions(tmp_path).databases == ("postgresql",)
    write(tmp_path, "pyproject.toml", '[tool.poetry.dependencies]\nsqlalchemy = { version = "^2.0", extras = ["aiosqlite"] }\n')
    assert detect_versions(tmp_path).databases == ("sqlite",)


def test_driver_in_pipfile_lock(tmp_path):
    write(tmp_path, "Pipfile.lock", json.dumps({"default": {"mysqlclient": {"version": "==2.2.0"}}}))
    assert detect_versions(tmp_path).databases == ("mysql",)
