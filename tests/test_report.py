from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dbfix import __version__
from dbfix.engine import RunResult
from dbfix.findings import (
    DatabaseChange,
    FileResult,
    Finding,
    Fix,
    Impact,
    Safety,
    Span,
)
from dbfix.report import Reporter, exit_code, plain_diff

ENUM = DatabaseChange(
    upgrade_sql=("CREATE TYPE status AS ENUM ('new', 'done');",),
    downgrade_sql=("DROP TYPE status;",),
    alembic_upgrade=("op.execute(\"CREATE TYPE status AS ENUM ('new', 'done')\")",),
    alembic_downgrade=('op.execute("DROP TYPE status")',),
    key="enum:status",
)
SAFE = Fix("use a native enum", Safety.SAFE, Impact.SCHEMA, (), database=ENUM)
UNSAFE = Fix("store aware datetimes", Safety.UNSAFE, Impact.DATA, ())
NOOP = Fix("use default_factory", Safety.SAFE, Impact.NONE, ())


def finding(path: str, line: int, code: str = "DBF001", fix: Fix | None = SAFE, notes: tuple[str, ...] = ()) -> Finding:
    return Finding(code, code.lower(), path, Span(line, 4, line, 12), f"problem [x] in {path}", fix, notes)


def fixed(path: str, *applied: Finding, remaining: tuple[Finding, ...] = (), written: bool = False) -> FileResult:
    return FileResult(
        path,
        findings=[*applied, *remaining],
        applied=list(applied),
        remaining=list(remaining),
        old_source="a = 1\nb = 2\n",
        new_source="a = 1\nb = 3\n",
        written=written,
    )


def report(run: RunResult, mode: str, **kwargs) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = Reporter(mode=mode, stdout=out, stderr=err, color=False, **kwargs).report(run)
    return code, out.getvalue(), err.getvalue()


# -- exit codes -----------------------------------------------------------------------------------

CLEAN = FileResult("ok.py", old_source="x = 1\n")
UNFIXABLE = finding("f.py", 1, fix=None)
UNCHANGED_FINDING = FileResult("f.py", findings=[UNFIXABLE], remaining=[UNFIXABLE])
CHANGED = fixed("c.py", finding("c.py", 2), written=True)
BROKEN = FileResult("bad.py", error="cannot parse: invalid syntax (line 1)")


@pytest.mark.parametrize(
    ("results", "mode", "expected"),
    [
        pytest.param([CLEAN], "check", 0, id="check_clean"),
        pytest.param([UNCHANGED_FINDING], "check", 1, id="check_finding"),
        pytest.param([CLEAN, BROKEN], "check", 2, id="check_error"),
        pytest.param([CLEAN], "dry-run", 0, id="dry_run_clean"),
        pytest.param([CHANGED], "dry-run", 1, id="dry_run_would_change"),
        pytest.param([UNCHANGED_FINDING], "dry-run", 1, id="dry_run_remaining"),
        pytest.param([CHANGED], "diff", 1, id="diff_would_change"),
        pytest.param([CLEAN], "diff", 0, id="diff_clean"),
        pytest.param([CHANGED], "apply", 0, id="apply_all_fixed"),
        pytest.param([UNCHANGED_FINDING], "apply", 1, id="apply_remaining"),
        pytest.param([CHANGED, BROKEN], "apply", 2, id="apply_error"),
    ],
)
def test_exit_code(results, mode, expected):
    run = RunResult(results=results)
    assert exit_code(run, mode) == expected
    assert report(run, mode)[0] == expected


def test_file_errors_go_to_stderr_in_every_format():
    for fmt in ("text", "json", "github"):
        code, out, err = report(RunResult([BROKEN]), "check", output_format=fmt)
        assert code == 2
        assert err == "bad.py: error: cannot parse: invalid syntax (line 1)\n"


def test_error_method():
    err = io.StringIO()
    Reporter(mode="check", stderr=err).error("unknown key 'fo' in [tool.dbfix]")
    assert err.getvalue() == "dbfix: error: unknown key 'fo' in [tool.dbfix]\n"


# -- plain diff -----------------------------------------------------------------------------------

GIT_ENV = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param("a\nb\nc\n", "a\nB\nc\n", id="plain"),
        pytest.param("a\nb\nc", "a\nB\nc", id="old_and_new_without_final_newline"),
        pytest.param("a\nb", "a\nb\n", id="newline_added"),
        pytest.param("a\nb\n", "a\nb", id="newline_removed"),
        pytest.param("a\r\nb\r\nc\r\n", "a\r\nB\r\nc\r\n", id="crlf"),
        pytest.param("a\r\nb\r\nc", "a\r\nB\r\nc", id="crlf_without_final_newline"),
        pytest.param("a\x0cb\nc\u2028d\ne\x1cf\n", "a\x0cb\nC\u2028d\ne\x1cf\n", id="splitlines_separators"),
        pytest.param("a\rb\rc\r", "a\rB\rc\r", id="lone_cr"),
    ],
)
def test_diff_applies_with_git(tmp_path, old, new):
    (tmp_path / "pkg").mkdir()
    target = tmp_path / "pkg" / "m.py"
    target.write_bytes(old.encode())
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True, env=GIT_ENV)
    result = FileResult("pkg/m.py", old_source=old, new_source=new)
    code, out, _ = report(RunResult([result]), "diff")
    assert code == 1
    assert out == plain_diff(old, new, "pkg/m.py")
    assert out.startswith("--- a/pkg/m.py\n+++ b/pkg/m.py\n@@ ")
    patch = tmp_path / "fix.patch"
    patch.write_bytes(out.encode())
    for args in (["--check"], []):
        subprocess.run(["git", "apply", *args, str(patch)], cwd=tmp_path, check=True, env=GIT_ENV, capture_output=True)
    assert target.read_bytes() == new.encode()


def test_diff_marks_missing_final_newline():
    out = plain_diff("a\nb", "a\nc", "m.py")
    assert out.endswith("-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n")


def test_diff_mode_is_plain_even_with_colour():
    out = io.StringIO()
    Reporter(mode="diff", stdout=out, stderr=io.StringIO(), color=True).report(RunResult([CHANGED, CLEAN]))
    assert "\x1b" not in out.getvalue()
    assert out.getvalue() == plain_diff(CHANGED.old_source, CHANGED.new_source, "c.py")  # type: ignore[arg-type]


# -- json -----------------------------------------------------------------------------------------


def test_json_schema():
    noted = finding("m.py", 3, notes=("see the docs",))
    unsafe = finding("m.py", 5, "DBF002", UNSAFE)
    run = RunResult([fixed("m.py", noted, remaining=(unsafe,)), BROKEN])
    code, out, _ = report(run, "dry-run", output_format="json")
    assert code == 2
    doc = json.loads(out)
    assert list(doc) == ["version", "mode", "files", "summary", "skipped"]
    assert (doc["version"], doc["mode"]) == (__version__, "dry-run")
    bad, good = doc["files"]
    assert bad == {
        "path": "bad.py",
        "changed": False,
        "written": False,
        "error": "cannot parse: invalid syntax (line 1)",
        "warning": None,
        "findings": [],
        "applied": [],
        "remaining": [],
    }
    assert list(good) == ["path", "changed", "written", "error", "warning", "findings", "applied", "remaining", "diff"]
    assert good["diff"] == plain_diff("a = 1\nb = 2\n", "a = 1\nb = 3\n", "m.py")
    assert good["applied"][0] == {
        "code": "DBF001",
        "name": "dbf001",
        "message": "problem [x] in m.py",
        "location": {"line": 3, "column": 5, "end_line": 3, "end_column": 13},
        "fix": {
            "description": "use a native enum",
            "safety": "safe",
            "impact": "schema",
            "database": {
                "upgrade_sql": ["CREATE TYPE status AS ENUM ('new', 'done');"],
                "downgrade_sql": ["DROP TYPE status;"],
                "alembic_upgrade": ["op.execute(\"CREATE TYPE status AS ENUM ('new', 'done')\")"],
                "alembic_downgrade": ['op.execute("DROP TYPE status")'],
            },
        },
        "notes": ["see the docs"],
    }
    assert good["remaining"][0]["fix"] == {
        "description": "store aware datetimes",
        "safety": "unsafe",
        "impact": "data",
        "database": None,
    }
    assert doc["summary"] == {
        "files": 2,
        "changed": 1,
        "fixes": {"DBF001": 1},
        "findings": 2,
        "remaining": 1,
        "errors": 1,
        "not_checked": 0,
        "unsafe_skipped": 1,
    }


def test_json_keeps_non_ascii():
    result = FileResult("ü.py", findings=[finding("ü.py", 1, fix=None)])
    _, out, _ = report(RunResult([result]), "check", output_format="json")
    assert "ü.py" in out
    assert "diff" not in json.loads(out)["files"][0]


def test_json_does_not_import_rich():
    code = (
        "import io, sys\n"
        "from dbfix.engine import RunResult\n"
        "from dbfix.findings import FileResult\n"
        "from dbfix.report import Reporter\n"
        "run = RunResult([FileResult('m.py', old_source='a\\n', new_source='b\\n')])\n"
        "for mode in ('check', 'dry-run', 'apply'):\n"
        "    Reporter(mode=mode, output_format='json', stdout=io.StringIO()).report(run)\n"
        "Reporter(mode='diff', stdout=io.StringIO()).report(run)\n"
        "Reporter(mode='check', output_format='github', stdout=io.StringIO()).report(run)\n"
        "assert 'rich' not in sys.modules, sorted(m for m in sys.modules if m.startswith('rich'))\n"
    )
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


# -- github ---------------------------------------------------------------------------------------


def test_github_annotations_are_escaped():
    f = Finding("DBF003", "enum-name", "a,b.py", Span(2, 0, 4, 7), "50% off\nnext line", None)
    _, out, _ = report(RunResult([FileResult("a,b.py", findings=[f], remaining=[f])]), "check", output_format="github")
    assert out == (
        "::error file=a%2Cb.py,line=2,col=1,endLine=4,endColumn=8,title=DBF003 enum-name::50%25 off%0Anext line\n"
    )


# -- text -----------------------------------------------------------------------------------------


def test_check_lists_findings_sorted_with_markers():
    a = FileResult("a.py", findings=[finding("a.py", 9, "DBF002", UNSAFE), finding("a.py", 2, fix=None)])
    b = FileResult("b.py", findings=[finding("b.py", 1, notes=("hint: use sa.Enum",))])
    code, out, _ = report(RunResult([b, a]), "check")
    assert code == 1
    assert out.splitlines() == [
        "a.py:2:5: DBF001 problem [x] in a.py",
        "a.py:9:5: DBF002 problem [x] in a.py (unsafe fix available: --unsafe-fixes)",
        "b.py:1:5: DBF001 problem [x] in b.py [*]",
        "    hint: use sa.Enum",
        "Found 3 findings (1 fixable with `dbfix apply`, 1 more with `--unsafe-fixes`).",
    ]


def test_unsafe_fixes_flag_marks_unsafe_fixes_fixable():
    a = FileResult("a.py", findings=[finding("a.py", 9, "DBF002", UNSAFE)])
    _, out, _ = report(RunResult([a]), "check", unsafe_fixes=True)
    assert out.splitlines() == [
        "a.py:9:5: DBF002 problem [x] in a.py [*]",
        "Found 1 finding (1 fixable with `dbfix apply`).",
    ]


def test_check_without_findings():
    assert report(RunResult([CLEAN]), "check")[1] == "All checked: no findings.\n"


def test_quiet():
    b = FileResult("b.py", findings=[finding("b.py", 1, notes=("a note",))])
    assert report(RunResult([b]), "check", quiet=True)[1] == "b.py:1:5: DBF001 problem [x] in b.py [*]\n"
    run = RunResult([fixed("m.py", finding("m.py", 2), remaining=(finding("m.py", 4, "DBF002", UNSAFE),)), BROKEN])
    code, out, err = report(run, "dry-run", quiet=True)
    assert (code, out) == (2, "")
    assert "bad.py: error:" in err
    assert report(RunResult([CLEAN]), "apply", quiet=True)[1] == ""


def test_nothing_to_fix():
    for mode in ("dry-run", "apply"):
        assert report(RunResult([CLEAN]), mode)[1] == "All checked: nothing to fix.\n"


def test_dry_run_shows_diff_fixes_and_hint():
    run = RunResult([fixed("m.py", finding("m.py", 2), remaining=(finding("m.py", 4, "DBF002", UNSAFE),))])
    code, out, _ = report(run, "dry-run")
    assert code == 1
    assert "--- a/m.py\n+++ b/m.py\n@@ -1,2 +1,2 @@\n a = 1\n-b = 2\n+b = 3\n" in out
    assert "  2:5 DBF001 use a native enum (database: schema)\n" in out
    assert "m.py:4:5: DBF002 problem [x] in m.py (unsafe fix available: --unsafe-fixes)\n" in out
    assert out.endswith(
        "1 file would be rewritten; run `dbfix apply` to write them."
        " `dbfix apply --unsafe-fixes` would also apply 1 unsafe fix.\n"
    )


def test_apply_lists_fixes_without_diff():
    run = RunResult([fixed("m.py", finding("m.py", 2, "DBF004", UNSAFE), written=True)])
    code, out, _ = report(run, "apply")
    assert code == 0
    assert "@@" not in out
    assert "  2:5 DBF004 store aware datetimes [unsafe] (database: data)\n" in out
    assert out.endswith("1 file rewritten.\n")


def test_database_sql_printed_once_per_key():
    other = DatabaseChange(upgrade_sql=("ALTER TABLE t ALTER COLUMN c SET DEFAULT now();",))
    default = Fix("server default", Safety.SAFE, Impact.SCHEMA, (), database=other)
    run = RunResult(
        [
            fixed("a.py", finding("a.py", 2), finding("a.py", 3, "DBF005", default), written=True),
            fixed("b.py", finding("b.py", 7), finding("b.py", 3, "DBF005", default), finding("b.py", 9, fix=NOOP),
                  written=True),
        ]
    )
    _, out, _ = report(run, "apply")
    assert out.count("Database changes") == 1
    assert out.count("CREATE TYPE status AS ENUM ('new', 'done');") == 1
    assert out.count("op.execute(\"CREATE TYPE status AS ENUM ('new', 'done')\")") == 1
    assert out.count("SET DEFAULT now()") == 2  # no key: every fix needs its own statement


def test_colour_is_forced_or_disabled():
    out = io.StringIO()
    Reporter(mode="check", stdout=out, color=True).report(RunResult([UNCHANGED_FINDING]))
    assert "\x1b[" in out.getvalue()
    assert "\x1b[" not in report(RunResult([UNCHANGED_FINDING]), "check")[1]


def test_rejects_unknown_mode_and_format():
    with pytest.raises(ValueError):
        Reporter(mode="fix")
    with pytest.raises(ValueError):
        Reporter(mode="check", output_format="sarif")
