"""Read `[tool.dbfix]` from pyproject.toml into a frozen `Config`."""

from __future__ import annotations

import dataclasses
import difflib
import keyword
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


class ConfigError(Exception):
    """A user-facing, one-line configuration error."""


@dataclass(frozen=True)
class Config:
    select: tuple[str, ...] | None = None
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    unsafe_fixes: bool = False
    extend_safe_fixes: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    extend_exclude: tuple[str, ...] = ()
    target_python: tuple[int, int] | None = None
    rename_metadata_to: str = "extra_metadata"
    sqlmodel_enum_style: str = "sa_column"
    constraint_names: str = "postgres"
    respect_gitignore: bool = True
    cache_dir: str | None = None
    databases: tuple[str, ...] | None = None  # None: read from the project's database drivers
    root: Path | None = None

    def replace(self, **changes: Any) -> Config:
        """Return a copy with `changes` applied."""
        return dataclasses.replace(self, **changes)


_RULE_LISTS = ("select", "extend-select", "ignore", "extend-safe-fixes")
_PATTERN_LISTS = ("exclude", "extend-exclude")
_BOOLS = ("unsafe-fixes", "respect-gitignore")
_CHOICES = {
    "sqlmodel-enum-style": ("sa_column", "sa_type"),
    "constraint-names": ("postgres", "convention"),
}
KNOWN_KEYS = (
    *_RULE_LISTS,
    *_PATTERN_LISTS,
    *_BOOLS,
    *_CHOICES,
    "target-python",
    "rename-metadata-to",
    "cache-dir",
    "databases",
)
DATABASES = ("postgresql", "mysql", "sqlite")


def find_project_root(paths: Sequence[Path]) -> Path:
    """The nearest common ancestor of `paths` holding pyproject.toml or .git, else their common parent."""
    if not paths:
        common = Path.cwd()
    else:
        dirs = [p if p.is_dir() else p.parent for p in (Path(os.path.abspath(p)) for p in paths)]
        common = Path(os.path.commonpath(dirs))
    for directory in (common, *common.parents):
        if (directory / "pyproject.toml").is_file() or (directory / ".git").exists():
            return directory
    return common


def load_config(root: Path) -> Config:
    """Read `root/pyproject.toml` `[tool.dbfix]`; defaults when the file or section is missing."""
    path = root / "pyproject.toml"
    where = _display(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return Config(root=root)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where}: invalid TOML: {_one_line(e)}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{where}: cannot read: {_one_line(e)}") from None
    section = data.get("tool", {}).get("dbfix") if isinstance(data.get("tool"), dict) else None
    if section is None:
        return Config(root=root)
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: [tool.dbfix] must be a table")

    unknown = sorted(set(section) - set(KNOWN_KEYS))
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key.replace("_", "-"), KNOWN_KEYS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(
            f"{where}: unknown key '{key}' in [tool.dbfix]{hint}; known keys: {', '.join(KNOWN_KEYS)}"
        )

    values: dict[str, Any] = {"root": root}
    for key, value in section.items():
        values[key.replace("-", "_")] = _convert(key, value, where)
    return Config(**values)


def _convert(key: str, value: Any, where: str) -> Any:
    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{where}: [tool.dbfix] {key} must be {expected}, got {value!r}")

    if key in _RULE_LISTS:
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad("a list of strings or a comma-separated string")
        return tuple(v.strip() for v in value if v.strip())
    if key in _PATTERN_LISTS:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad("a list of strings")
        for pattern in value:
            try:
                import pathspec  # here: most projects configure no excludes

                pathspec.GitIgnoreSpec.from_lines([pattern])
            except ValueError:
                raise ConfigError(f"{where}: [tool.dbfix] {key}: invalid pattern {pattern!r}") from None
        return tuple(value)
    if key in _BOOLS:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if key in _CHOICES:
        if value not in _CHOICES[key]:
            raise bad(" or ".join(repr(c) for c in _CHOICES[key]))
        return value
    if key == "target-python":
        # a TOML float cannot tell 3.1 from 3.10
        if not isinstance(value, str):
            raise bad("a string such as \"3.11\" or \"py311\"")
        try:
            return parse_python_version(value)
        except ConfigError as e:
            raise ConfigError(f"{where}: [tool.dbfix] {key}: {e}") from None
    if key == "rename-metadata-to":
        if not isinstance(value, str) or not value.isidentifier() or keyword.iskeyword(value):
            raise bad("a Python identifier")
        if value == "metadata":
            raise bad("a name other than 'metadata' (reserved by SQLAlchemy's declarative base)")
        return value
    if key == "cache-dir":
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if key == "databases":
        if not isinstance(value, list) or not value or any(v not in DATABASES for v in value):
            raise bad(f"a non-empty list of {', '.join(repr(d) for d in DATABASES)}")
        return tuple(sorted(set(value)))
    raise AssertionError(key)


_VERSION = re.compile(r"(?:py)?(\d)\.?(\d{1,2})")


def parse_python_version(text: str) -> tuple[int, int]:
    """Parse "3.11", "py311" or "311" into (3, 11)."""
    m = _VERSION.fullmatch(text.strip().lower())
    if not m or m[1] != "3":
        raise ConfigError(f"invalid Python version {text!r}; expected e.g. \"3.11\" or \"py311\"")
    return (int(m[1]), int(m[2]))


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())
