"""Benchmark dbfix against ruff, libcst's codemod runner and the I/O floor on one tree.

    python bench/compare.py TREE [--repeat 5] [--libcst-repeat 1]

Runs every command as a subprocess, interleaved and repeated, and prints the median wall time, the ratio
to `ruff check --no-cache` (and of the cached dbfix run to cached ruff), and each command's peak memory.
Nothing is written to TREE except dbfix's and ruff's caches (`apply --dry-run` writes no source).
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLOOR = r"""
import os, re, sys
pattern = re.compile(rb"sqlalchemy|sqlmodel|utcnow|utcfromtimestamp")
hits = 0
for folder, dirs, files in os.walk(sys.argv[1]):
    dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
    for name in files:
        if name.endswith(".py"):
            with open(os.path.join(folder, name), "rb") as handle:
                hits += bool(pattern.search(handle.read()))
print(hits)
"""


def timed(command: list[str], cwd: Path, stdin: Path | None = None) -> tuple[float, int, int]:
    """(wall seconds, peak RSS in MB, exit code) of one run."""
    source = stdin.open("rb") if stdin else subprocess.DEVNULL
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdin=source, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if stdin:
        source.close()  # type: ignore[union-attr]
    elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    return elapsed, usage.ru_maxrss // 1024, process.returncode


def installed_python() -> str:
    """A venv in a temporary folder with this checkout installed the way users install it (not editable:
    an editable install adds an import hook to every start, and may leave the bytecode uncompiled)."""
    folder = Path(tempfile.mkdtemp(prefix="dbfix-bench-"))
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    python = str(folder / "bin" / "python")
    checkout = Path(__file__).resolve().parent.parent
    subprocess.run([python, "-m", "pip", "install", "-q", str(checkout)], check=True)
    site = subprocess.run([python, "-c", "import dbfix, os; print(os.path.dirname(dbfix.__file__))"], capture_output=True, text=True, check=True)
    compileall.compile_dir(site.stdout.strip(), quiet=1)  # as pip does unless told not to
    print(f"dbfix installed in {folder}", file=sys.stderr)
    return python


def models_file(tree: Path) -> Path | None:
    """The largest file under 16 KB that declares models: what an editor sends on save."""
    found = [
        p for p in tree.rglob("*.py")
        if ".venv" not in p.parts and p.stat().st_size < 16_000 and any(w in p.read_bytes() for w in (b"__tablename__", b"table=True"))
    ]
    return max(found, key=lambda p: p.stat().st_size, default=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tree", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--libcst-repeat", type=int, default=1, help="libcst's runner is slow: fewer rounds (0: skip it)")
    parser.add_argument("--stdin-file", type=Path, help="the file editor mode sends (default: the largest models file under 16 KB)")
    parser.add_argument(
        "--python", help="an interpreter with dbfix installed (default: a fresh venv with this checkout installed as users install it)"
    )
    args = parser.parse_args()
    tree = args.tree.resolve()
    editor_file = (tree / args.stdin_file) if args.stdin_file else models_file(tree)
    python = args.python or installed_python()
    dbfix = [python, "-m", "dbfix"]
    ruff = shutil.which("ruff")
    ruff = os.path.abspath(ruff) if ruff else None  # found through a relative PATH entry, it must still run in TREE
    commands: dict[str, list[str]] = {
        "floor (read + prefilter)": [python, "-c", FLOOR, str(tree)],
        "dbfix check (cold)": [*dbfix, "check", "--no-cache", "-q", "."],
        "dbfix check (cached)": [*dbfix, "check", "-q", "."],
        "dbfix apply --dry-run": [*dbfix, "apply", "--dry-run", "-q", "."],
    }
    stdins: dict[str, Path] = {}
    if editor_file is not None:
        name = "dbfix --stdin-filename (warm)"
        commands[name] = [*dbfix, "check", "--stdin-filename", str(editor_file.relative_to(tree))]
        stdins[name] = editor_file
    if ruff:
        commands["ruff --no-cache"] = [ruff, "check", "--no-cache", "--select", "DTZ001,DTZ003,DTZ005", "-q", "--exit-zero", "."]
        commands["ruff (cached)"] = [ruff, "check", "--select", "DTZ001,DTZ003,DTZ005", "-q", "--exit-zero", "."]
    else:
        print("ruff not found on PATH: no ratios to ruff (pip install ruff)", file=sys.stderr)
    libcst = [python, "-m", "libcst.tool", "codemod", "noop.NOOPCommand", "--no-format", "."]

    if editor_file is not None:
        print(f"editor mode file: {editor_file.relative_to(tree)} ({editor_file.stat().st_size} bytes)")
    files = sum(1 for _ in tree.rglob("*.py"))
    lines = sum(p.read_bytes().count(b"\n") for p in tree.rglob("*.py"))
    print(f"tree: {tree} ({files} files, {lines} lines), {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    for _ in range(2):  # warm the cache (the first run also makes the cache folder, so the second records)
        subprocess.run([*dbfix, "check", "-q", "."], cwd=tree, stdout=subprocess.DEVNULL)
    for name, path in stdins.items():
        timed(commands[name], tree, path)
    if ruff:
        subprocess.run(commands["ruff (cached)"], cwd=tree, stdout=subprocess.DEVNULL)

    times: dict[str, list[float]] = {name: [] for name in commands}
    peaks: dict[str, int] = dict.fromkeys(commands, 0)
    for _ in range(args.repeat):  # interleaved, so drift in machine load hits every command alike
        for name, command in commands.items():
            elapsed, peak, _ = timed(command, tree, stdins.get(name))
            times[name].append(elapsed)
            peaks[name] = max(peaks[name], peak)
    for _ in range(args.libcst_repeat):
        elapsed, peak, _ = timed(libcst, tree)
        times.setdefault("libcst.tool codemod (no-op)", []).append(elapsed)
        peaks["libcst.tool codemod (no-op)"] = max(peaks.get("libcst.tool codemod (no-op)", 0), peak)

    medians = {name: statistics.median(values) for name, values in times.items()}
    ruff_cold = medians.get("ruff --no-cache")
    ruff_warm = medians.get("ruff (cached)")
    print(f"\n{'command':32} {'median s':>9} {'runs':>5} {'vs ruff':>8} {'peak MB':>8}")
    for name, median in medians.items():
        base = ruff_warm if name == "dbfix check (cached)" else ruff_cold
        ratio = f"{median / base:7.1f}x" if base else "       -"
        print(f"{name:32} {median:9.3f} {len(times[name]):5d} {ratio:>8} {peaks[name]:8d}")
    cold = medians["dbfix check (cold)"]
    print()
    if ruff_cold:
        print(f"dbfix check cold / ruff --no-cache: {cold / ruff_cold:.1f}x (target <= 5x)")
    if ruff_warm:
        print(f"dbfix check cached / ruff cached:  {medians['dbfix check (cached)'] / ruff_warm:.1f}x (target <= 2x)")
    if "libcst.tool codemod (no-op)" in medians:
        libcst_time = medians["libcst.tool codemod (no-op)"]
        print(f"libcst no-op codemod / dbfix check cold: {libcst_time / cold:.1f}x faster (target >= 20x)")
    editor = medians.get("dbfix --stdin-filename (warm)")
    if editor is not None:
        print(f"dbfix --stdin-filename, warm: {editor:.2f} s (target <= 0.3 s)")
    print(f"peak memory of dbfix: {max(peaks[n] for n in commands if n.startswith('dbfix'))} MB (target <= 300 MB)")


if __name__ == "__main__":
    main()
