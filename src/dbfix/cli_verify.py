"""The `dbfix verify` command: parses its options, runs `dbfix.verify`, prints the result, sets the exit code."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("verify", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--models",
    required=True,
    metavar="MODULE[:ATTR]",
    help="The models to import, e.g. app.models or app.models:Base (a DeclarativeBase, declarative_base(), "
    "SQLModel or a MetaData); without :ATTR the module's one MetaData is used.",
)
@click.option(
    "--database-url",
    metavar="URL",
    help="Also run the online checks on this PostgreSQL server, in a throw-away schema that is rolled back.",
)
@click.option(
    "--against",
    metavar="REV",
    is_flag=False,
    flag_value="HEAD",
    help="Print the schema diff from the models at git revision REV (default HEAD) to the working tree.",
)
@click.option(
    "--root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The directory put on sys.path to import MODULE (default: the project root above the current directory).",
)
@click.option("--output-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def verify(models: str, database_url: str | None, against: str | None, root: Path | None, output_format: str) -> None:
    """Import the models and prove their schema on PostgreSQL.

    The only dbfix command that imports and runs project code (in a child process). Offline it configures
    the mappers, compiles the PostgreSQL DDL and checks names, foreign-key cycles, enum labels and datetime
    defaults; with --database-url it creates, fills, reads and drops the schema on a real server.

    Exit status: 0 all checks pass, 1 a check fails, 2 an error (bad module path, no server, bad revision).
    """
    from dbfix.config import find_project_root
    from dbfix.verify import VerifyError, render_json, render_text
    from dbfix.verify import verify as run_verify

    root = (root or find_project_root([Path.cwd()])).resolve()
    try:
        result = run_verify(models, root, database_url=database_url, against=against)
    except VerifyError as exc:
        click.echo(f"dbfix: error: {exc}", err=True)
        sys.exit(2)
    click.echo(render_json(result) if output_format == "json" else render_text(result))
    sys.exit(0 if result.ok else 1)
