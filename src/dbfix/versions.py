"""Work out the Python, SQLAlchemy, SQLModel and Pydantic versions a project targets, and the databases its
drivers say it runs on, without running it."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib import metadata

    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version


def _import_packaging() -> None:
    """`packaging` and `importlib.metadata` on first use: a run whose versions are cached never needs them."""
    global metadata, InvalidRequirement, Requirement, InvalidSpecifier, SpecifierSet, canonicalize_name, InvalidVersion, Version
    from importlib import metadata

    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

PACKAGES = ("sqlalchemy", "sqlmodel", "pydantic")
LOCK_FILES = ("uv.lock", "poetry.lock", "Pipfile.lock", "pdm.lock")
OLDEST_PYTHON = (3, 10)  # the oldest Python dbfix supports: the target when a project declares none
DATABASES = ("postgresql", "mysql", "sqlite")
DRIVERS = {
    **dict.fromkeys(("psycopg2", "psycopg2-binary", "psycopg", "psycopg-binary", "asyncpg", "pg8000"), "postgresql"),
    **dict.fromkeys(("pymysql", "mysqlclient", "aiomysql", "asyncmy", "mysql-connector-python", "mariadb"), "mysql"),
    "aiosqlite": "sqlite",  # the stdlib sqlite3 driver is never a dependency
}
# SQLAlchemy's and SQLModel's extras that pull a driver in: `sqlalchemy[postgresql_asyncpg]`
DRIVER_EXTRAS = (("postgresql", "postgresql"), ("mysql", "mysql"), ("pymysql", "mysql"), ("mariadb", "mysql"),
                 ("aiomysql", "mysql"), ("asyncmy", "mysql"), ("aiosqlite", "sqlite"))

# (source, package, release, exact); sources listed first win, then exact pins, then the lowest version
_Candidate = tuple[str, str, tuple[int, ...], bool]


@dataclass(frozen=True)
class TargetVersions:
    python: tuple[int, int]
    sqlalchemy: tuple[int, ...] | None
    sqlmodel: tuple[int, ...] | None
    pydantic: tuple[int, ...] | None
    sources: tuple[tuple[str, str], ...] = ()
    databases: tuple[str, ...] = ()  # "postgresql", "mysql", "sqlite" from the drivers it depends on; () = unknown


def detect_versions(root: Path, target_python: tuple[int, int] | None = None) -> TargetVersions:
    """What the project at `root` targets: lock file, requirements, pyproject.toml, then what is installed."""
    _import_packaging()
    pyproject = _load_toml(root / "pyproject.toml") or {}
    # each TOML lock file's packages, read once for the versions and for the drivers
    locks = {name: _lock_packages(root / name) for name in LOCK_FILES if name != "Pipfile.lock" and (root / name).is_file()}
    best: dict[str, tuple[tuple[int, bool, tuple[int, ...]], str]] = {}
    for tier, (source, name, release, exact) in _candidates(root, pyproject, locks):
        key = (tier, not exact, release)
        if name in PACKAGES and (name not in best or key < best[name][0]):
            best[name] = (key, source)
    found = {name: (key[2], source) for name, (key, source) in best.items()}
    # sqlalchemy and pydantic come only from their own entries, never from sqlmodel's version,
    # which says nothing reliable about them
    for name in PACKAGES:
        if name not in found and (installed := _installed(name)) is not None:
            found[name] = (installed, "installed")

    python, python_source = _python(pyproject, target_python)
    databases, database_sources = _databases(root, pyproject, locks)
    return TargetVersions(
        python=python,
        sqlalchemy=found["sqlalchemy"][0] if "sqlalchemy" in found else None,
        sqlmodel=found["sqlmodel"][0] if "sqlmodel" in found else None,
        pydantic=found["pydantic"][0] if "pydantic" in found else None,
        sources=(
            ("python", python_source),
            *((n, found[n][1]) for n in PACKAGES if n in found),
            *((("databases", ", ".join(database_sources)),) if databases else ()),
        ),
        databases=databases,
    )


def _databases(root: Path, pyproject: dict, locks: dict[str, list[tuple[object, object]]]) -> tuple[tuple[str, ...], list[str]]:
    """The databases the project's drivers point to (every lock file, requirements file and pyproject
    table counts: a driver among the dev dependencies still means tests run on that database)."""
    found: set[str] = set()
    sources: list[str] = []
    for source, name, extras in _dependencies(root, pyproject, locks):
        databases = {DRIVERS[name]} if name in DRIVERS else set()
        if name in ("sqlalchemy", "sqlmodel"):
            databases |= {db for extra in extras for prefix, db in DRIVER_EXTRAS if extra.startswith(prefix)}
        if databases:
            found |= databases
            if source not in sources:
                sources.append(source)
    return tuple(db for db in DATABASES if db in found), sources


def _dependencies(
    root: Path, pyproject: dict, locks: dict[str, list[tuple[object, object]]]
) -> Iterator[tuple[str, str, frozenset[str]]]:
    """(source, canonical name, extras) of every dependency the project declares or locks."""
    for name in LOCK_FILES:
        path = root / name
        if not path.is_file():
            continue
        if name == "Pipfile.lock":
            data = _json(path)
            packages = [p for section in ("default", "develop") for p in _dict(_dict(data).get(section))]
        else:
            packages = [package for package, _ in locks[name]]
        for package in packages:
            if isinstance(package, str):
                yield name, canonicalize_name(package), frozenset()
    for path in _requirements_paths(root):
        for req in _requirement_lines(path):
            yield path.relative_to(root).as_posix(), canonicalize_name(req.name), frozenset(req.extras)
    for line in _pyproject_lines(pyproject):
        req = _requirement(line) if isinstance(line, str) else None
        if req is not None:
            yield "pyproject.toml", canonicalize_name(req.name), frozenset(req.extras)
    for table in _poetry_tables(pyproject):
        for name, constraint in _dict(table).items():
            extras = [e for c in (constraint if isinstance(constraint, list) else [constraint]) for e in _list(_dict(c).get("extras"))]
            yield "pyproject.toml", canonicalize_name(name), frozenset(e for e in extras if isinstance(e, str))


def _candidates(root: Path, pyproject: dict, locks: dict[str, list[tuple[object, object]]]) -> Iterator[tuple[int, _Candidate]]:
    for tier, name in enumerate(LOCK_FILES):
        path = root / name
        if path.is_file():
            for c in _pipfile_lock(path) if name == "Pipfile.lock" else _toml_lock(name, locks[name]):
                yield tier, c
    tier = len(LOCK_FILES)
    for path in _requirements_paths(root):
        for c in _requirements_file(path, path.relative_to(root).as_posix()):
            yield tier, c
    for c in _pyproject(pyproject):
        yield tier + 1, c


def _toml_lock(source: str, packages: list[tuple[object, object]]) -> Iterator[_Candidate]:
    for name, version in packages:
        if isinstance(name, str) and isinstance(version, str) and (release := _release(version)):
            yield source, canonicalize_name(name), release, True


_PACKAGE_TABLE = re.compile(r"^\[\[package\]\][ \t]*\r?$", re.MULTILINE)
_TABLE = re.compile(r"^\[", re.MULTILINE)  # the next table header (the tools write them at column 0)
_KEY = re.compile(r"""^(name|version)[ \t]*=[ \t]*(?:"([^"\\\n]*)"|'([^'\n]*)')[ \t]*(?:#.*)?\r?$""", re.MULTILINE)


def _lock_packages(path: Path) -> list[tuple[object, object]]:
    """(name, version) of every `[[package]]` table of uv.lock, poetry.lock or pdm.lock.

    These tools write each table's `name` and `version` as plain strings on lines of their own, so a
    scan finds them in a fraction of a TOML parse (a large uv.lock took 0.1 s to parse). A table the
    scan cannot read sends the file to `tomllib`.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return []
    found: list[tuple[object, object]] = []
    for table in _PACKAGE_TABLE.finditer(text):
        end = _TABLE.search(text, table.end())
        keys = {m.group(1): m.group(2) if m.group(2) is not None else m.group(3)
                for m in _KEY.finditer(text, table.end(), end.start() if end else len(text))}
        if "name" not in keys:
            break
        found.append((keys["name"], keys.get("version")))
    else:
        if found:
            return found
    return [(_dict(p).get("name"), _dict(p).get("version")) for p in _list((_load_toml(path) or {}).get("package"))]


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _pipfile_lock(path: Path) -> Iterator[_Candidate]:
    data = _json(path)
    for section in ("default", "develop"):
        for name, info in _dict(_dict(data).get(section)).items():
            version = _dict(info).get("version")
            if isinstance(version, str) and (release := _release(version.lstrip("="))):
                yield path.name, canonicalize_name(name), release, True


def _requirements_paths(root: Path) -> list[Path]:
    return sorted(root.glob("requirements*.txt")) + sorted(root.glob("requirements/*.txt"))


def _requirement_lines(path: Path) -> Iterator[Requirement]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    for line in text.replace("\\\n", " ").splitlines():
        # drop comments and per-requirement options such as --hash
        line = re.split(r"(?:^|\s)#|\s--?[a-z]", line, maxsplit=1)[0].strip()
        if line and not line.startswith("-") and (req := _requirement(line)):
            yield req


def _requirements_file(path: Path, label: str) -> Iterator[_Candidate]:
    for req in _requirement_lines(path):
        if (pin := _exact_pin(req.specifier)) is not None:
            yield label, canonicalize_name(req.name), pin, True
        elif (bound := _lower_bound(req.specifier)) is not None:
            yield label, canonicalize_name(req.name), bound, False


def _pyproject_lines(pyproject: dict) -> list:
    project = _dict(pyproject.get("project"))
    lines = list(_list(project.get("dependencies")))
    for extra in _dict(project.get("optional-dependencies")).values():
        lines += _list(extra)
    for group in _dict(pyproject.get("dependency-groups")).values():
        lines += _list(group)  # {include-group = ...} tables are not strings and are skipped
    return lines


def _poetry_tables(pyproject: dict) -> list:
    poetry = _dict(_dict(pyproject.get("tool")).get("poetry"))
    tables = [poetry.get("dependencies"), poetry.get("dev-dependencies")]
    return tables + [_dict(group).get("dependencies") for group in _dict(poetry.get("group")).values()]


def _pyproject(pyproject: dict) -> Iterator[_Candidate]:
    for line in _pyproject_lines(pyproject):
        req = _requirement(line) if isinstance(line, str) else None
        if req is not None and (bound := _lower_bound(req.specifier)) is not None:
            yield "pyproject.toml", canonicalize_name(req.name), bound, False
    for table in _poetry_tables(pyproject):
        for name, constraint in _dict(table).items():
            if name != "python" and (bound := _poetry_lower_bound(constraint)) is not None:
                yield "pyproject.toml", canonicalize_name(name), bound, False


def _python(pyproject: dict, target: tuple[int, int] | None) -> tuple[tuple[int, int], str]:
    if target is not None:
        return target, "config"
    requires = _dict(pyproject.get("project")).get("requires-python")
    if isinstance(requires, str):
        try:
            bound = _lower_bound(SpecifierSet(requires))
        except InvalidSpecifier:
            bound = None
        if bound is not None:
            return _major_minor(bound), "pyproject.toml"
    poetry = _dict(_dict(_dict(pyproject.get("tool")).get("poetry")).get("dependencies"))
    if (bound := _poetry_lower_bound(poetry.get("python"))) is not None:
        return _major_minor(bound), "pyproject.toml"
    # not the running interpreter: a fix must not use what only a newer Python has (`datetime.UTC`)
    return OLDEST_PYTHON, "default"


_POETRY_TOKEN = re.compile(r"(\^|~=|~|===|==|>=|<=|!=|>|<|=)?\s*([0-9][^\s,|]*|\*)")


def _poetry_lower_bound(constraint: Any) -> tuple[int, ...] | None:
    # https://python-poetry.org/docs/dependency-specification/: "^2.0", "~2.0", "2.0.1", "2.*",
    # ">=2,<3", "^1.4 || ^2.0", a table with a version, or a list of such tables (one per marker)
    if isinstance(constraint, list):
        bounds = [_poetry_lower_bound(c) for c in constraint]
        return min(bounds) if bounds and None not in bounds else None  # type: ignore[type-var]
    if isinstance(constraint, dict):
        constraint = constraint.get("version")
    if not isinstance(constraint, str):
        return None
    bounds = []
    for alternative in constraint.split("||"):
        specs = []
        for op, version in _POETRY_TOKEN.findall(alternative):
            if version != "*":
                specs.append({"^": ">=", "~": ">=", "": "==", "=": "=="}.get(op, op) + version)
        try:
            bounds.append(_lower_bound(SpecifierSet(",".join(specs))))
        except InvalidSpecifier:
            return None
    return min(bounds) if None not in bounds else None  # type: ignore[type-var]


def _lower_bound(spec: SpecifierSet) -> tuple[int, ...] | None:
    # specifiers in a set are and-ed, so the highest lower bound is the one that holds
    bounds = [
        release
        for s in spec
        if s.operator in (">=", ">", "~=", "==", "===")
        and (release := _release(s.version.removesuffix(".*"))) is not None
    ]
    return max(bounds) if bounds else None


def _exact_pin(spec: SpecifierSet) -> tuple[int, ...] | None:
    for s in spec:
        if s.operator in ("==", "===") and not s.version.endswith(".*"):
            return _release(s.version)
    return None


def _installed(name: str) -> tuple[int, ...] | None:
    try:
        return _release(metadata.version(name))
    except metadata.PackageNotFoundError:
        return None


def _requirement(line: str) -> Requirement | None:
    try:
        return Requirement(line)
    except InvalidRequirement:
        return None


def _release(version: str) -> tuple[int, ...] | None:
    try:
        return Version(version).release
    except InvalidVersion:
        return None


def _major_minor(release: tuple[int, ...]) -> tuple[int, int]:
    return (release[0], release[1] if len(release) > 1 else 0)


def _load_toml(path: Path) -> dict | None:
    # a broken file is not this module's to report: detection falls through to the next source
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except (OSError, ValueError):
        return None


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []
