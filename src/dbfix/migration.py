"""`dbfix apply --emit-migration DIR`: one Alembic revision with the database changes of the applied fixes.

Autogenerate cannot see most of these (enum labels, index rebuilds, `USING` conversions: FACTS.md), so
dbfix writes them itself: the revision ids come from Alembic's `ScriptDirectory`, the file from the project's
own `script.py.mako`, and each operation is rendered by Alembic's renderer when it renders it losslessly.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dbfix.findings import DatabaseChange, Finding

BEGIN = "# ### commands emitted by dbfix for the applied fixes ###"
END = "# ### end dbfix commands ###"
# The roots an operation's arguments may name, and the import each needs beyond the template's `sa` and `op`.
ROOTS: dict[str, str | None] = {"sa": None, "op": None, "postgresql": "from sqlalchemy.dialects import postgresql", "sqlmodel": "import sqlmodel"}


class MigrationError(Exception):
    """Alembic is missing, DIR is not a versions folder, the history has several heads...: one line."""


def _alembic() -> Any:
    try:
        import alembic
    except ImportError:
        raise MigrationError("--emit-migration needs Alembic: pip install 'dbfix[verify]' (or alembic>=1.13)") from None
    return alembic


# -- which changes --------------------------------------------------------------------------------


def database_changes(findings: Iterable[Finding]) -> list[tuple[Finding, DatabaseChange]]:
    """The applied fixes' database changes in order, each key once (an enum type shared by two columns)."""
    seen: set[object] = set()
    found = []
    for finding in findings:
        change = finding.fix.database if finding.fix else None
        if change is None or not (change.upgrade_sql or change.alembic_upgrade):
            continue
        key = change.key or (change.upgrade_sql, change.alembic_upgrade)
        if key in seen:
            continue
        seen.add(key)
        found.append((finding, change))
    return found


# -- turning dbfix's operation lines into Alembic operation objects -------------------------------


class _Unsupported(Exception):
    pass


def _recorder() -> Any:
    from alembic.operations import Operations

    class Recorder(Operations):
        """`op.<operation>(...)` returns the operation object instead of running it."""

        def __init__(self) -> None:
            pass

        def invoke(self, operation: Any) -> Any:
            return operation

        def f(self, name: str) -> Any:
            from sqlalchemy.sql.elements import conv

            return conv(name)

    return Recorder()


def _root(node: ast.expr) -> Any:
    import sqlalchemy

    if isinstance(node, ast.Name):
        if node.id == "sa":
            return sqlalchemy
        if node.id == "postgresql":
            from sqlalchemy.dialects import postgresql

            return postgresql
        if node.id == "sqlmodel":
            import sqlmodel

            return sqlmodel
        raise _Unsupported(node.id)
    if isinstance(node, ast.Attribute):
        value = getattr(_root(node.value), node.attr, None)
        if value is None or node.attr.startswith("_"):
            raise _Unsupported(node.attr)
        return value
    raise _Unsupported(ast.dump(node))


def _value(node: ast.expr) -> Any:
    """A literal, or a SQLAlchemy type / `sa.text(...)` / `op.f(...)`: nothing else is evaluated."""
    from sqlalchemy import literal_column, text
    from sqlalchemy.sql.elements import conv
    from sqlalchemy.types import TypeEngine

    try:
        return ast.literal_eval(node)
    except ValueError:
        pass
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "f"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "op"
        and len(node.args) == 1
    ):
        return conv(_value(node.args[0]))
    target = _root(node.func if isinstance(node, ast.Call) else node)
    allowed = target in (text, literal_column) or (isinstance(target, type) and issubclass(target, TypeEngine))
    if not allowed:
        raise _Unsupported(ast.dump(node))
    if not isinstance(node, ast.Call):
        return target
    if any(k.arg is None for k in node.keywords) or any(isinstance(a, ast.Starred) for a in node.args):
        raise _Unsupported("*args")
    return target(*[_value(a) for a in node.args], **{str(k.arg): _value(k.value) for k in node.keywords})


def operation(code: str) -> Any:
    """`op.alter_column('t', 'c', type_=sa.DateTime(timezone=True))` -> AlterColumnOp, or None."""
    from alembic.operations import ops

    try:
        call = ast.parse(code.strip(), mode="eval").body
    except SyntaxError:
        return None
    if not (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and isinstance(call.func.value, ast.Name)
        and call.func.value.id == "op"
        and not call.func.attr.startswith("_")
    ):
        return None
    try:
        args = [_value(a) for a in call.args]
        kwargs = {k.arg: _value(k.value) for k in call.keywords if k.arg is not None}
        if len(kwargs) != len(call.keywords):
            return None
        result = getattr(_recorder(), call.func.attr)(*args, **kwargs)
    except Exception:  # noqa: BLE001 - not an Alembic operation, or arguments it refuses
        return None
    return result if isinstance(result, ops.MigrateOperation) else None


def _signature(value: Any) -> Any:
    from alembic.operations import ops
    from sqlalchemy.sql import ClauseElement
    from sqlalchemy.types import TypeEngine

    if isinstance(value, ops.MigrateOperation):
        return (type(value).__name__, _signature(vars(value)))
    if isinstance(value, dict):
        return tuple(sorted((str(k), _signature(v)) for k, v in value.items() if not str(k).startswith("_")))
    if isinstance(value, (list, tuple)):
        return tuple(_signature(v) for v in value)
    if isinstance(value, TypeEngine):
        return repr(value)
    if isinstance(value, ClauseElement):
        return str(value)
    return repr(value)


def _canonical(code: str) -> str:
    return ast.unparse(ast.parse(code.strip(), mode="eval"))


def _imports_of(code: str) -> set[str]:
    names = {n.id for n in ast.walk(ast.parse(code, mode="eval")) if isinstance(n, ast.Name)}
    return {line for n in names if (line := ROOTS.get(n))}


# -- rendering ------------------------------------------------------------------------------------


def _autogen_context() -> Any:
    from alembic.autogenerate.api import AutogenContext
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.dialects import postgresql

    opts = {
        "sqlalchemy_module_prefix": "sa.",
        "alembic_module_prefix": "op.",
        "render_item": None,
        "render_as_batch": False,
        "user_module_prefix": None,
    }
    context = AutogenContext(MigrationContext.configure(dialect=postgresql.dialect(), opts=opts), opts=opts)
    context.imports = set()
    return context


def render_operations(codes: tuple[str, ...], sql: tuple[str, ...], context: Any, imports: set[str]) -> list[str]:
    """Python lines for one side of a change: Alembic's rendering, dbfix's own line where that would lose
    an argument (`postgresql_using`), or `op.execute(...)` of the raw SQL when the lines are not operations."""
    from alembic.autogenerate.render import render_op_text
    from alembic.operations import ops

    operations = [operation(code) for code in codes]
    if codes and all(op is not None for op in operations):
        lines = []
        for code, op in zip(codes, operations):
            rendered = render_op_text(context, op)
            again = operation(rendered)
            if again is None or _signature(again) != _signature(op):
                rendered = _canonical(code)  # Alembic's renderer would drop an argument of this operation
                imports |= _imports_of(rendered)
            lines.extend(rendered.splitlines())
        return lines
    if sql:
        return [render_op_text(context, ops.ExecuteSQLOp(statement)) for statement in sql]
    lines = []
    for code in codes:
        try:
            canonical = _canonical(code)
        except SyntaxError:
            raise MigrationError(f"not an Alembic operation: {code!r}") from None
        if not canonical.startswith("op."):
            raise MigrationError(f"not an Alembic operation: {code!r}")
        imports |= _imports_of(canonical)
        lines.append(canonical)
    return lines


def render(changes: list[tuple[Finding, DatabaseChange]]) -> tuple[str, str, list[str]]:
    """(upgrade body, downgrade body, imports) for the revision template."""
    context = _autogen_context()
    imports: set[str] = set()
    up, down = [BEGIN], [BEGIN]
    for finding, change in changes:
        up.append(_header(finding))
        up.extend(render_operations(change.alembic_upgrade, change.upgrade_sql, context, imports))
    for finding, change in reversed(changes):
        down.append(_header(finding))
        lines = render_operations(change.alembic_downgrade, change.downgrade_sql, context, imports)
        down.extend(lines or [f"# {finding.code} gave no downgrade for this change"])
    up.append(END)
    down.append(END)
    imports |= set(context.imports)
    return _indent(up), _indent(down), sorted(imports)


def _header(finding: Finding) -> str:
    description = finding.fix.description if finding.fix else finding.message
    return f"# {finding.code} {finding.name} ({finding.path}:{finding.span.line}): {description}".replace("\n", " ")


def _indent(lines: list[str]) -> str:
    # The template places the body after four spaces; every further line needs them too.
    return "\n".join(("    " + line) if line else line for line in lines).strip()


# -- the revision file ----------------------------------------------------------------------------


def script_directory(versions_dir: Path) -> Any:
    """Alembic's ScriptDirectory for a versions folder: from alembic.ini when it names this folder, else
    from the folder's parent (its `script.py.mako`), else Alembic's generic template."""
    alembic = _alembic()
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    versions_dir = versions_dir.resolve()
    if not versions_dir.is_dir():
        raise MigrationError(f"--emit-migration {versions_dir}: not a directory")
    quiet: Any = {"quiet": True}  # alembic's MessagingOptions
    for ini in (versions_dir.parent.parent / "alembic.ini", versions_dir.parent / "alembic.ini", Path.cwd() / "alembic.ini"):
        if not ini.is_file():
            continue
        try:
            config = Config(str(ini))
            location = config.get_main_option("script_location")
            if not location:
                continue
            # Alembic reads a relative script_location from the working directory; it is run next to its ini.
            path = Path(location) if Path(location).is_absolute() else ini.parent / location
            config.set_main_option("script_location", str(path).replace("%", "%%"))
            script = ScriptDirectory.from_config(config)
        except Exception:  # noqa: BLE001, S112 - an ini Alembic cannot read: look for the next one
            continue
        locations = [Path(p).resolve() for p in getattr(script, "_version_locations", ())]
        if versions_dir in locations:
            script.messaging_opts = quiet
            return script
    parent = versions_dir.parent
    template = parent if (parent / "script.py.mako").is_file() else Path(alembic.__file__).parent / "templates" / "generic"
    return ScriptDirectory(str(template), version_locations=[str(versions_dir)], messaging_opts=quiet)


def write_revision(versions_dir: Path, findings: list[Finding], message: str) -> Path | None:
    """Write one Alembic revision into `versions_dir` with the applied fixes' database changes; None if none."""
    changes = database_changes(findings)
    if not changes:
        return None
    alembic = _alembic()
    from alembic.util import CommandError

    script = script_directory(versions_dir)
    upgrades, downgrades, imports = render(changes)
    try:
        revision = script.generate_revision(
            alembic.util.rev_id(),
            message,
            version_path=str(versions_dir.resolve()),
            upgrades=upgrades,
            downgrades=downgrades,
            imports="\n".join(imports),
        )
    except CommandError as exc:
        raise MigrationError(f"--emit-migration {versions_dir}: {str(exc).splitlines()[0]}") from None
    if revision is None:
        raise MigrationError(f"--emit-migration {versions_dir}: Alembic wrote no revision")
    path = Path(revision.path)
    if BEGIN not in path.read_text():
        path.unlink()
        raise MigrationError(f"{script.dir}/script.py.mako does not render ${{upgrades}}; no revision written")
    return path
