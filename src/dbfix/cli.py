"""The `dbfix` command line: parses options, runs the engine, hands the results to the report."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click

from dbfix import __version__, replay
from dbfix.config import Config, ConfigError, find_project_root, load_config

FORMATS = click.Choice(["text", "json", "github"])


def _split(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


def _options(func: Callable) -> Callable:
    for decorator in reversed(
        [
            click.argument("paths", nargs=-1, type=click.Path(path_type=Path)),
            click.option("--select", multiple=True, help="Only these rule codes or names (comma-separated)."),
            click.option("--extend-select", multiple=True, help="Add rules to the selection (e.g. DBF012)."),
            click.option("--ignore", multiple=True, help="Leave out these rule codes or names."),
            click.option("--unsafe-fixes/--no-unsafe-fixes", default=None, help="Also apply fixes marked unsafe."),
            click.option("--stdin-filename", type=click.Path(path_type=Path), help="Read the source from stdin; P decides config and rules."),
            click.option("--jobs", "-j", type=click.IntRange(min=1), help="Worker processes (default: CPU count)."),
            click.option("--output-format", type=FORMATS, default="text", show_default=True),
            click.option("--quiet", "-q", is_flag=True, help="Print only findings and errors."),
            click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Use this pyproject.toml."),
            click.option("--no-cache", is_flag=True, help="Neither read nor write the cache."),
            click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), help="Cache directory (default: .dbfix_cache at the project root)."),
        ]
    ):
        func = decorator(func)
    return func


def _config(paths: tuple[Path, ...], config_file: Path | None, select, extend_select, ignore, unsafe_fixes) -> Config:
    root = config_file.resolve().parent if config_file else find_project_root([p.resolve() for p in paths] or [Path.cwd()])
    config = load_config(root)
    changes: dict = {}
    if select:
        changes["select"] = _split(select)
    if extend_select:
        changes["extend_select"] = config.extend_select + _split(extend_select)
    if ignore:
        changes["ignore"] = config.ignore + _split(ignore)
    if unsafe_fixes is not None:
        changes["unsafe_fixes"] = unsafe_fixes
    config = config.replace(root=root, **changes)
    from dbfix.codemod import selected_codemods

    selected_codemods(config)  # unknown selectors are a configuration error, before any work
    return config


def _fail(message: str) -> None:
    click.echo(f"dbfix: error: {message}", err=True)
    sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dbfix")
def main() -> None:
    """Fix SQLAlchemy and SQLModel database pitfalls, and say what each fix does to the database."""


@main.command()
@_options
@click.option("--dry-run", is_flag=True, help="Show the diffs, write nothing; exit 1 if anything would change.")
@click.option("--diff", "plain_diff", is_flag=True, help="Print a unified diff that `git apply` accepts; write nothing.")
@click.option(
    "--emit-migration",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write one Alembic revision with the database changes of the applied fixes into this versions/ folder.",
)
def apply(dry_run: bool, plain_diff: bool, emit_migration: Path | None, **options) -> None:
    """Rewrite files (default path: .)."""
    mode = "diff" if plain_diff else "dry-run" if dry_run else "apply"
    if emit_migration is not None and mode != "apply":
        _fail("--emit-migration writes a revision for fixes that are applied: it cannot go with --dry-run or --diff")
    if emit_migration is not None and options.get("stdin_filename"):
        _fail("--emit-migration cannot go with --stdin-filename")
    _run(mode, emit_migration=emit_migration, **options)


@main.command()
@_options
def check(**options) -> None:
    """Report every finding, fixable or not; exit 1 if there is any."""
    _run("check", **options)


def _run(
    mode: str,
    paths: tuple[Path, ...],
    select,
    extend_select,
    ignore,
    unsafe_fixes,
    stdin_filename: Path | None,
    jobs: int | None,
    output_format: str,
    quiet: bool,
    config_file: Path | None,
    no_cache: bool,
    cache_dir: Path | None,
    emit_migration: Path | None = None,
) -> None:
    from dbfix.report import Reporter

    anchor = (stdin_filename,) if stdin_filename else paths
    try:
        config = _config(anchor, config_file, select, extend_select, ignore, unsafe_fixes)
    except ConfigError as exc:
        _fail(str(exc))
    cache = None if no_cache else _cache_dir(config, cache_dir)
    if replay.RECORDER is not None and cache is not None:
        replay.RECORDER.cache_dir, replay.RECORDER.root = str(cache), str(config.root)
        if config_file is not None:
            replay.note_file(str(config_file.resolve()))
    if stdin_filename is not None:
        sys.exit(_run_stdin(mode, stdin_filename, config, output_format, quiet, cache))
    from dbfix.engine import run

    reporter = Reporter(mode=mode, output_format=output_format, quiet=quiet, unsafe_fixes=config.unsafe_fixes)
    try:
        with _progress(quiet or output_format != "text") as progress:
            outcome = run(
                [p.resolve() for p in paths] or [Path.cwd()],
                config,
                apply=mode != "check",
                write=mode == "apply",
                jobs=jobs,
                progress=progress,
                cache_dir=cache,
            )
    except FileNotFoundError as exc:
        _fail(str(exc))
    except ConfigError as exc:
        _fail(str(exc))
    code = reporter.report(outcome)
    if emit_migration is not None:
        code = max(code, _emit_migration(emit_migration, outcome))
    sys.exit(code)


def _emit_migration(versions: Path, outcome) -> int:
    """Write the Alembic revision the applied fixes need; 0 when written or not needed, 2 on failure."""
    from dbfix.migration import MigrationError, write_revision

    applied = [f for r in outcome.results if r.written for f in r.applied]
    try:
        path = write_revision(versions, applied, "dbfix fixes")
    except MigrationError as exc:
        click.echo(f"dbfix: error: {exc}", err=True)
        return 2
    if path is None:
        click.echo("No database changes to migrate: no revision written.", err=True)
    else:
        click.echo(f"Wrote the migration {path}", err=True)
    return 0


def _cache_dir(config: Config, option: Path | None) -> Path:
    from dbfix.cache import CACHE_DIR

    root = config.root or Path.cwd()
    if option is not None:
        return option.resolve()
    return (root / config.cache_dir).resolve() if config.cache_dir else root / CACHE_DIR


def _run_stdin(mode: str, filename: Path, config: Config, output_format: str, quiet: bool, cache_dir: Path | None) -> int:
    """Editor mode: source on stdin; `apply` prints the fixed source, the others report as usual."""
    from dbfix.engine import SourceError, decode, encode, run_source
    from dbfix.report import Reporter

    data = sys.stdin.buffer.read()
    outcome = run_source(filename.resolve(), data, config, apply=mode != "check", cache_dir=cache_dir)
    (result,) = outcome.results
    if mode != "apply":
        reporter = Reporter(mode=mode, output_format=output_format, quiet=quiet, unsafe_fixes=config.unsafe_fixes)
        return reporter.report(outcome)
    if result.error:
        click.echo(f"{result.path}: error: {result.error}", err=True)
    fixed = data
    if result.changed and not result.error:
        try:
            fixed = encode(result.new_source, decode(data))  # type: ignore[arg-type]
        except SourceError:
            fixed = data
    sys.stdout.buffer.write(fixed)
    sys.stdout.flush()
    remaining = result.remaining if result.changed else result.findings
    for finding in remaining:
        click.echo(f"{result.path}:{finding.span.line}:{finding.span.col + 1}: {finding.code} {finding.message}", err=True)
    return 2 if result.error else 1 if remaining else 0


class _progress:
    """A rich progress bar on stderr for long runs on a terminal; a no-op otherwise."""

    def __init__(self, disabled: bool) -> None:
        self.enabled = not disabled and sys.stderr.isatty()
        self.bar = None
        self.task = None

    def __enter__(self) -> Callable[[int, int], None] | None:
        if not self.enabled:
            return None
        return self.update

    def update(self, done: int, total: int) -> None:
        if total < 200:
            return
        if self.bar is None:
            replay.disable()  # a transient bar is no output to print again
            from rich.console import Console
            from rich.progress import Progress

            self.bar = Progress(console=Console(stderr=True), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("dbfix", total=total)
        self.bar.update(self.task, completed=done)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


@main.command()
@click.option("--output-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def rules(output_format: str) -> None:
    """List the rules: code, name, fix safety, database impact, summary."""
    from dbfix.codemod import all_codemods

    codemods = all_codemods()
    if output_format == "json":
        import json

        rows = [
            {
                "code": c.code,
                "name": c.name,
                "safety": c.safety.value,
                "impact": c.impact.value,
                "fixable": c.fixable,
                "default": c.default_enabled,
                "summary": c.summary(),
            }
            for c in codemods
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("code", "name", "fix", "database", "summary", box=None)
    for c in codemods:
        fix = c.safety.value if c.fixable else "-"
        table.add_row(c.code, c.name + ("" if c.default_enabled else " (opt-in)"), fix, c.impact.value, c.summary())
    Console(highlight=False, soft_wrap=True).print(table)


@main.command()
@click.argument("rule")
def explain(rule: str) -> None:
    """Show a rule's documentation (by code or name)."""
    from dbfix.codemod import lookup

    found = [c for c in lookup(rule) if c.code == rule.upper() or c.name == rule]
    if not found:
        _fail(f"unknown rule {rule!r}; see `dbfix rules`")
    codemod = found[0]
    from rich.console import Console
    from rich.markdown import Markdown

    header = f"# {codemod.code} {codemod.name}\n\nFix: {codemod.safety.value if codemod.fixable else 'none'}. Database impact: {codemod.impact.value}.\n\n"
    console = Console(soft_wrap=False)
    if console.is_terminal:
        console.print(Markdown(header + codemod.documentation()))
    else:
        click.echo(header + codemod.documentation())


def _register_verify() -> None:
    from dbfix.cli_verify import verify

    main.add_command(verify)


_register_verify()
