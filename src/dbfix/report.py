"""Presents a run: text (rich), JSON, GitHub annotations or a plain patch, and decides the exit code."""

from __future__ import annotations

import difflib
import json
import os
import re
import sys
from collections import Counter
from typing import TYPE_CHECKING, Any, TextIO

from dbfix import __version__
from dbfix.findings import FileResult, Finding, Impact, Safety

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from dbfix.engine import RunResult

MODES = ("apply", "dry-run", "diff", "check")
FORMATS = ("text", "json", "github")
NO_NEWLINE = "\\ No newline at end of file\n"
# git splits lines on \n only: a lone \r (or \x0c, \u2028 that str.splitlines also breaks on) is line content
_LINE = re.compile(r"[^\n]*\n|[^\n]+\Z")


def exit_code(run: RunResult, mode: str) -> int:
    """2 if any file failed; 1 if the run leaves something to do for `mode`; else 0."""
    if any(r.error for r in run.results):
        return 2
    if mode == "check":
        return int(any(r.findings for r in run.results))
    if mode == "apply":
        return int(any(r.remaining for r in run.results))
    return int(any(r.changed or r.remaining for r in run.results))


def plain_diff(old: str, new: str, path: str) -> str:
    """A unified diff `git apply` accepts: newlines kept as they are, missing final newlines marked."""
    return "".join(_diff_lines(old, new, path))


def _diff_lines(old: str, new: str, path: str) -> list[str]:
    lines = difflib.unified_diff(_LINE.findall(old), _LINE.findall(new), f"a/{path}", f"b/{path}", n=3, lineterm="")
    out: list[str] = []
    for i, line in enumerate(lines):
        if i < 2 or line.startswith("@@"):  # headers carry no terminator with lineterm=""
            out.append(line + "\n")
        elif line.endswith("\n"):
            out.append(line)
        else:  # difflib leaves the last line of a file without newline unmarked
            out.extend((line + "\n", NO_NEWLINE))
    return out


def _plural(n: int, word: str, words: str = "") -> str:
    return f"{n} {word if n == 1 else words or word + 's'}"


def _escape(value: str, prop: bool = False) -> str:
    # https://github.com/actions/toolkit/blob/main/packages/core/src/command.ts (escapeData, escapeProperty)
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return value.replace(":", "%3A").replace(",", "%2C") if prop else value


class Reporter:
    """Prints a `RunResult` in one output format and returns the exit code."""

    def __init__(
        self,
        *,
        mode: str,
        output_format: str = "text",
        quiet: bool = False,
        unsafe_fixes: bool = False,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        color: bool | None = None,
        show_skipped: bool = False,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        if output_format not in FORMATS:
            raise ValueError(f"unknown output format {output_format!r}")
        self.mode = mode
        self.output_format = output_format
        self.quiet = quiet
        self.unsafe_fixes = unsafe_fixes
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.color = color
        self.show_skipped = show_skipped

    def error(self, message: str) -> None:
        """One line `dbfix: error: ...` on stderr."""
        self.stderr.write(f"dbfix: error: {message}\n")

    def report(self, run: RunResult) -> int:
        """Print everything about `run`; return the exit code."""
        results = sorted(run.results, key=lambda r: r.path)
        for r in results:
            if r.error:
                self.stderr.write(f"{r.path}: error: {r.error}\n")
            elif r.notice:
                self.stderr.write(f"{r.path}: warning: {r.notice}\n")
        if self.show_skipped:
            for s in run.skipped:
                self.stderr.write(f"{s.path}: skipped: {s.reason}\n")
        if self.output_format == "json":
            self._json(run, results)
        elif self.output_format == "github":
            self._github(results)
        elif self.mode == "diff":
            for r in self._changed(results):
                self.stdout.write(plain_diff(r.old_source or "", r.new_source or "", r.path))
        elif self.mode == "check":
            self._check(results)
        else:
            self._fixes(run, results)
        return exit_code(run, self.mode)

    # -- what counts -------------------------------------------------------------------------------

    def _changed(self, results: list[FileResult]) -> list[FileResult]:
        if self.mode == "apply":
            return [r for r in results if r.written]
        return [r for r in results if r.changed and not r.error]

    def _remaining(self, r: FileResult) -> list[Finding]:
        if self.mode == "check":
            return r.findings
        # after an error nothing was written: the original findings are what the file still has
        return r.findings if r.error else r.remaining

    def _fixable(self, f: Finding) -> bool:
        return f.fix is not None and (f.fix.safety is Safety.SAFE or self.unsafe_fixes)

    def _unsafe_hidden(self, f: Finding) -> bool:
        return f.fix is not None and not self._fixable(f)

    # -- machine formats ---------------------------------------------------------------------------

    def _json(self, run: RunResult, results: list[FileResult]) -> None:
        changed = self._changed(results)
        files = []
        for r in results:
            entry: dict[str, Any] = {
                "path": r.path,
                "changed": r.changed,
                "written": r.written,
                "error": r.error,
                "warning": r.notice,
                "findings": [_finding_json(f) for f in r.findings],
                "applied": [_finding_json(f) for f in _applied(r)],
                "remaining": [_finding_json(f) for f in r.remaining],
            }
            if self.mode in ("dry-run", "diff") and r in changed:
                entry["diff"] = plain_diff(r.old_source or "", r.new_source or "", r.path)
            files.append(entry)
        fixes = Counter(f.code for r in changed for f in _applied(r))
        doc = {
            "version": __version__,
            "mode": self.mode,
            "files": files,
            "summary": {
                "files": len(results),
                "changed": len(changed),
                "fixes": dict(sorted(fixes.items())),
                "findings": sum(len(r.findings) for r in results),
                "remaining": sum(len(r.remaining) for r in results),
                "errors": sum(1 for r in results if r.error),
                "not_checked": sum(1 for r in results if r.notice),
                "unsafe_skipped": sum(self._unsafe_hidden(f) for r in results for f in self._remaining(r)),
            },
            "skipped": [{"path": _relative(s.path), "reason": s.reason} for s in run.skipped],
        }
        json.dump(doc, self.stdout, indent=2, ensure_ascii=False)
        self.stdout.write("\n")

    def _github(self, results: list[FileResult]) -> None:
        for r in results:
            if r.error:
                self.stdout.write(f"::error file={_escape(r.path, True)}::{_escape(r.error)}\n")
            for f in r.findings if self.mode != "apply" else self._remaining(r):
                s = f.span
                props = f"file={_escape(r.path, True)},line={s.line},col={s.col + 1},endLine={s.end_line}"
                title = _escape(f"{f.code} {f.name}", True)
                self.stdout.write(f"::error {props},endColumn={s.end_col + 1},title={title}::{_escape(f.message)}\n")

    # -- text --------------------------------------------------------------------------------------

    def _console(self) -> Console:
        from rich.console import (
            Console,  # imported here so the machine formats never pay for rich
        )

        if self.color is None:
            return Console(file=self.stdout, highlight=False, soft_wrap=True)
        if self.color:
            return Console(file=self.stdout, highlight=False, soft_wrap=True, force_terminal=True)
        return Console(file=self.stdout, highlight=False, soft_wrap=True, color_system=None)

    def _finding_line(self, path: str, f: Finding) -> Text:
        from rich.text import Text

        s = f.span
        line = Text.assemble((path, "bold"), f":{s.line}:{s.col + 1}: ", (f.code, "bold red"), f" {f.message}")
        if self._fixable(f):
            line.append(" [*]", style="cyan")
        elif self._unsafe_hidden(f):
            line.append(" (unsafe fix available: --unsafe-fixes)", style="dim")
        return line

    def _print_findings(self, console: Console, items: list[tuple[str, Finding]]) -> None:
        plain = console.color_system is None  # a pipe or a file: plain lines, without rich's per-line cost
        for path, f in sorted(items, key=lambda pf: (pf[0], pf[1].span, pf[1].code)):
            line = self._finding_line(path, f)
            if plain:
                self.stdout.write(line.plain + "\n")
            else:
                console.print(line)
            if not self.quiet:
                for note in f.notes:
                    if plain:
                        self.stdout.write(f"    {note}\n")
                    else:
                        console.print(f"    {note}", markup=False)

    def _check(self, results: list[FileResult]) -> None:
        console = self._console()
        items = [(r.path, f) for r in results for f in r.findings]
        self._print_findings(console, items)
        if self.quiet:
            return
        errors = sum(1 for r in results if r.error)
        unchecked = sum(1 for r in results if r.notice)
        tail = f" {_plural(errors, 'file')} could not be checked." if errors else ""
        if unchecked:
            tail += f" {_plural(unchecked, 'file')} not checked: newer Python syntax (see the warnings)."
        if not items:
            console.print(f"No findings.{tail}" if tail else "All checked: no findings.", markup=False)
            return
        fixable = sum(self._fixable(f) for _, f in items)
        hidden = sum(self._unsafe_hidden(f) for _, f in items)
        parts = [f"{fixable} fixable with `dbfix apply`"] if fixable else []
        if hidden:
            parts.append(f"{hidden} more with `--unsafe-fixes`")
        detail = f" ({', '.join(parts)})" if parts else ""
        console.print(f"Found {_plural(len(items), 'finding')}{detail}.{tail}", markup=False)

    def _fixes(self, run: RunResult, results: list[FileResult]) -> None:
        if self.quiet:
            return
        from rich.syntax import Syntax
        from rich.text import Text

        console = self._console()
        changed = self._changed(results)
        remaining = [(r.path, f) for r in results for f in self._remaining(r)]
        errors = sum(1 for r in results if r.error)
        unchecked = sum(1 for r in results if r.notice)
        if not changed and not remaining and not errors:
            if unchecked:
                console.print(f"Nothing to fix; {_plural(unchecked, 'file')} not checked: newer Python syntax (see the warnings).")
            else:
                console.print("All checked: nothing to fix.")
            return
        for r in changed:
            console.print(Text(r.path, style="bold underline"))
            if self.mode == "dry-run":
                for i, line in enumerate(_diff_lines(r.old_source or "", r.new_source or "", r.path)):
                    style = _diff_style(i, line)
                    console.print(Text(line.rstrip("\n").rstrip("\r"), style=style))
            for text in dict.fromkeys(_applied_line(f) for f in _applied(r)):
                console.print(text, markup=False)
        applied = [f for r in changed for f in _applied(r)]
        seen: set[str] = set()
        for f in applied:
            fix = f.fix
            if fix is None or fix.database is None or fix.impact is Impact.NONE:
                continue
            db = fix.database
            if db.key and db.key in seen:
                continue
            if not seen:
                console.print(Text("\nDatabase changes", style="bold"))
            seen.add(db.key)
            console.print(Text.assemble((f.code, "bold red"), f" {f.path}:{f.span.line} {fix.description}"))
            if db.upgrade_sql:
                console.print(Syntax("\n".join(db.upgrade_sql), "sql", theme="ansi_dark", background_color="default"))
            for op in db.alembic_upgrade:
                console.print(f"  {op}", markup=False)
        if remaining:
            console.print()
            self._print_findings(console, remaining)
        console.print()
        console.print(self._summary(run, results, changed, applied, remaining))
        hidden = sum(self._unsafe_hidden(f) for _, f in remaining)
        if self.mode == "apply":
            console.print(f"{_plural(len(changed), 'file')} rewritten.", markup=False)
        elif changed or hidden:
            line = f"{_plural(len(changed), 'file')} would be rewritten; run `dbfix apply` to write them."
            if hidden:
                extra = _plural(hidden, "unsafe fix", "unsafe fixes")
                line += f" `dbfix apply --unsafe-fixes` would also apply {extra}."
            console.print(line, markup=False)

    def _summary(
        self,
        run: RunResult,
        results: list[FileResult],
        changed: list[FileResult],
        applied: list[Finding],
        remaining: list[tuple[str, Finding]],
    ) -> Table:
        from rich.table import Table

        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold")
        table.add_column()
        would = "" if self.mode == "apply" else " that would be"
        table.add_row("Files scanned", str(len(results)))
        table.add_row("Files rewritten" if self.mode == "apply" else "Files that would change", str(len(changed)))
        names = {f.code: f.name for f in applied}
        counts = Counter(f.code for f in applied)
        table.add_row(f"Fixes{would} applied", str(len(applied)))
        for code in sorted(counts):
            table.add_row(f"  {code} {names[code]}", str(counts[code]))
        hidden = sum(self._unsafe_hidden(f) for _, f in remaining)
        if hidden:
            table.add_row("Unsafe fixes not applied", str(hidden))
        impacts = Counter(f.fix.impact for f in applied if f.fix)
        table.add_row("Database impact", "  ".join(f"{i.value} {impacts[i]}" for i in Impact))
        table.add_row("Findings remaining", str(len(remaining)))
        table.add_row("Errors", str(sum(1 for r in results if r.error)))
        unchecked = sum(1 for r in results if r.notice)
        if unchecked:
            table.add_row("Not checked (newer syntax)", str(unchecked))
        if run.versions is not None:
            table.add_row("Target versions", _versions(run.versions))
        if run.skipped:
            table.add_row("Files skipped", str(len(run.skipped)))
        return table


def _relative(path: object) -> str:
    text, cwd = str(path), os.getcwd() + os.sep
    return text[len(cwd) :] if text.startswith(cwd) else text


def _versions(versions: object) -> str:
    """`python 3.11 (pyproject.toml), sqlmodel 0.0.45 (uv.lock)`: what the fixes were chosen for."""
    sources = dict(getattr(versions, "sources", ()))
    parts = []
    for name in ("python", "sqlalchemy", "sqlmodel", "pydantic"):
        value = getattr(versions, name, None)
        if value is not None:
            parts.append(f"{name} {'.'.join(map(str, value))} ({sources.get(name, '?')})")
    databases = getattr(versions, "databases", ())
    if databases:
        parts.append(f"databases {'+'.join(databases)} ({sources.get('databases', '?')})")
    return ", ".join(parts)


def _applied(r: FileResult) -> list[Finding]:
    return list(dict.fromkeys(r.applied))


def _diff_style(index: int, line: str) -> str:
    if index < 2:
        return "bold"
    return {"@": "cyan", "+": "green", "-": "red", "\\": "dim"}.get(line[:1], "")


def _applied_line(f: Finding) -> str:
    text = f"  {f.span.line}:{f.span.col + 1} {f.code} {f.fix.description if f.fix else f.message}"
    if f.fix and f.fix.safety is Safety.UNSAFE:
        text += " [unsafe]"
    if f.fix and f.fix.impact is not Impact.NONE:
        text += f" (database: {f.fix.impact.value})"
    return text


def _finding_json(f: Finding) -> dict[str, Any]:
    s = f.span
    fix = None
    if f.fix is not None:
        db = f.fix.database
        fix = {
            "description": f.fix.description,
            "safety": f.fix.safety.value,
            "impact": f.fix.impact.value,
            "database": None
            if db is None
            else {
                "upgrade_sql": list(db.upgrade_sql),
                "downgrade_sql": list(db.downgrade_sql),
                "alembic_upgrade": list(db.alembic_upgrade),
                "alembic_downgrade": list(db.alembic_downgrade),
            },
        }
    return {
        "code": f.code,
        "name": f.name,
        "message": f.message,
        "location": {"line": s.line, "column": s.col + 1, "end_line": s.end_line, "end_column": s.end_col + 1},
        "fix": fix,
        "notes": list(f.notes),
    }
