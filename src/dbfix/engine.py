"""Source + project index -> findings and fixed source; files in, files out, safely and in parallel."""

from __future__ import annotations

import ast
import codecs
import dataclasses
import io
import os
import sys
import tempfile
import tokenize
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dbfix import __version__
from dbfix.astwalk import release
from dbfix.cache import Cache, CacheEntry, digest, unchanged_content
from dbfix.codemod import (
    Codemod,
    FileContext,
    defines_schema,
    is_applicable,
    selected_codemods,
)
from dbfix.config import Config
from dbfix.discovery import ALEMBIC_REASON, Skipped, discover, project_files
from dbfix.findings import REPLACING, FileResult, Finding, Span
from dbfix.index import (
    ProjectIndex,
    TextTests,
    build_index,
    forget_trees,
    may_declare,
    module_name_for,
    parsed_tree,
    read_file,
)
from dbfix.names import ModuleNames
from dbfix.triggers import searcher
from dbfix.versions import TargetVersions, detect_versions
from dbfix.workers import Shards, shared

MAX_ROUNDS = 8
PARALLEL_THRESHOLD = 48  # below this many files a process pool costs more than it saves


class SourceError(Exception):
    """A file dbfix cannot read or parse; the message is one line and names the problem."""


# -- decoding -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str
    bom: bool


def decode(data: bytes) -> Decoded:
    """Bytes -> text, honouring a BOM and a coding cookie; newlines are left exactly as they are."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        raise SourceError(f"cannot decode: {exc.msg}") from None
    bom = data.startswith(codecs.BOM_UTF8)
    if bom:
        data = data[len(codecs.BOM_UTF8) :]
        encoding = "utf-8"
    try:
        return Decoded(data.decode(encoding), "utf-8" if encoding == "utf-8-sig" else encoding, bom)
    except (UnicodeDecodeError, LookupError) as exc:
        raise SourceError(f"cannot decode as {encoding}: {exc}") from None


def encode(text: str, decoded: Decoded) -> bytes:
    data = text.encode(decoded.encoding)
    return codecs.BOM_UTF8 + data if decoded.bom else data


# -- the pure core --------------------------------------------------------------------------------


def parse(source: str, path: str) -> ast.Module:
    try:
        return ast.parse(source, filename=path)
    except SyntaxError as exc:
        raise SourceError(f"cannot parse: {exc.msg} (line {exc.lineno})") from None
    except (ValueError, MemoryError, RecursionError) as exc:
        raise SourceError(f"cannot parse: {exc}") from None


def detect(
    source: str,
    path: str,
    module: tuple[str, bool],
    index: ProjectIndex,
    config: Config,
    versions: TargetVersions,
    codemods: Sequence[type[Codemod]],
    parsed: tuple[ast.Module, frozenset[int], ModuleNames, bool] | None = None,
) -> list[Finding]:
    """Every unsuppressed finding of the given codemods in `source` (`parsed`: `parse_any`'s answer, if known)."""
    declares = may_declare(source)
    schema = declares and defines_schema(source, index)
    codemods = [
        c for c in codemods
        if (declares or not c.declarations_only) and (schema or not c.schema_only)
        and c.wanted(source, index, config, versions) and (c.triggers is None or searcher(c.triggers, False)(source))
    ]  # the cheap text tests first: a trigger regex scans the whole file
    if not codemods:
        if parsed is not None:
            release(parsed[0])
        return []
    names = None
    cut = parsed is not None and parsed[3]  # some function bodies were left out of the index's tree
    if cut and not all(c.local_triggers for c in codemods):
        release(parsed[0])  # type: ignore[index]
        parsed, cut = None, False  # and a rule may look into them
    if parsed is not None:
        tree, translated, names, _ = parsed
    else:
        tree = _local_skeleton(source, codemods)
        cut = tree is not None
        if tree is None:
            tree, translated = parse_any(source, path)
        else:
            translated = frozenset()
    ctx = FileContext(path, source, tree, None, index, config, versions)  # type: ignore[arg-type]
    if names is None or (names.module, names.is_package) != module:
        names = ModuleNames(tree, module[0], module[1], parent_of=ctx.parent)
    names.parent_of = ctx.parent  # the index's names, function bodies walked on demand from now on
    ctx.names = names
    findings: list[Finding] = []
    try:
        for codemod in codemods:
            for finding in codemod().detect(ctx):
                if ctx.suppressed(finding.span, finding.code, finding.name):
                    continue
                if translated and _touches(finding, translated):
                    continue  # its columns may have moved with the translation of that line
                findings.append(finding)
    finally:
        release(tree)  # no rule reads this tree again: break its cycles, so that it is freed now
        names.parent_of = None
    if cut and findings:
        # the bodies left out must parse too: a file that does not is reported as one, not fixed
        translated = parse_any(source, path)[1]
        findings = [f for f in findings if not (translated and _touches(f, translated))]
    return sorted(set(findings), key=lambda f: f.sort_key)


def _local_skeleton(source: str, codemods: Sequence[type[Codemod]]) -> ast.Module | None:
    """When every rule to run has `local_triggers`: the tree without the function bodies none of their
    triggers match in (a test module that calls `datetime.now()` in three tests of fifty), or None."""
    if not all(c.local_triggers for c in codemods):
        return None
    from dbfix.skeleton import parse_skeleton

    return parse_skeleton(source, "|".join(_any_trigger(codemods)))


def parse_any(source: str, path: str) -> tuple[ast.Module, frozenset[int]]:
    """The `ast` of `source`; for syntax newer than this Python's, of its line-for-line older translation.

    Returns the tree and the lines the translation changed (none for code this Python parses).
    """
    try:
        return parse(source, path), frozenset()
    except SourceError:
        from dbfix.downgrade import downgrade

        older = downgrade(source)
        if older is None:
            raise
        return older[0], frozenset(older[1])


def _touches(finding: Finding, lines: frozenset[int]) -> bool:
    spans = [finding.span, *(e.span for e in (finding.fix.edits if finding.fix else ()))]
    return any(line in lines for s in spans for line in range(s.line, s.end_line + 1))


def _newer_syntax(source: str) -> bool:
    """Valid Python for a newer interpreter (libcst knows up to 3.14's grammar) though not for this one."""
    import libcst

    from dbfix.collector import collect_cycles

    collect_cycles()
    try:
        libcst.parse_module(source)
    except Exception:  # libcst raises ParserSyntaxError and, on odd input, others
        return False
    return True


def _choose(findings: list[Finding], config: Config) -> list[Finding]:
    """The fixes to apply in one round: applicable, and none replacing code another one edits."""
    chosen: list[Finding] = []
    taken: list[tuple[Span, bool]] = []
    for finding in findings:
        fix = finding.fix
        if fix is None or not is_applicable(fix, finding.code, finding.name, config):
            continue
        spans = [(e.span, e.action in REPLACING) for e in fix.edits]
        if any(_conflict(s, r, t, tr) for s, r in spans for t, tr in taken):
            continue
        chosen.append(finding)
        taken.extend(spans)
    return chosen


def _conflict(a: Span, a_replaces: bool, b: Span, b_replaces: bool) -> bool:
    overlap = (a.line, a.col) < (b.end_line, b.end_col) and (b.line, b.col) < (a.end_line, a.end_col)
    return overlap and (a_replaces or b_replaces) and a != b or (a == b and a_replaces and b_replaces)


def fix_source(
    source: str,
    path: str,
    module: tuple[str, bool],
    index: ProjectIndex,
    config: Config,
    versions: TargetVersions,
    codemods: Sequence[type[Codemod]],
    *,
    apply: bool = True,
    parsed: tuple[ast.Module, frozenset[int], ModuleNames, bool] | None = None,
) -> FileResult:
    """Detect, then (if `apply`) fix until nothing changes; the result never holds code that fails to parse."""
    result = FileResult(path=path, old_source=source)
    try:
        findings = detect(source, path, module, index, config, versions, codemods, parsed)
    except SourceError as exc:
        if _newer_syntax(source):
            result.notice = (
                f"not checked: it uses syntax that Python {sys.version_info.major}.{sys.version_info.minor}'s "
                "parser does not know (run dbfix under a newer Python to check it)"
            )
        else:
            result.error = str(exc)
        return result
    result.findings = findings
    result.remaining = findings
    if not apply or not any(f.fix for f in findings):
        return result
    from dbfix.cstedit import (  # libcst only for files that get a fix
        EditError,
        apply_edits,
    )

    current, current_findings = source, findings
    seen: set[str] = {source}
    for _ in range(MAX_ROUNDS):
        chosen = _choose(current_findings, config)
        if not chosen:
            break
        edits = [e for f in chosen for e in f.fix.edits]  # type: ignore[union-attr]
        imports = [i for f in chosen for i in f.fix.imports]  # type: ignore[union-attr]
        try:
            new = apply_edits(current, edits, imports)
        except EditError as exc:
            result.error = f"internal error, fix not applied ({chosen[0].code}): {exc}"
            return result
        except Exception as exc:  # libcst rejecting a replacement: a codemod bug, never the user's
            result.error = f"internal error, fix not applied ({chosen[0].code}): {type(exc).__name__}: {exc}"
            return result
        try:
            parse_any(new, path)  # always, even when no rule's trigger is left in the new text
            next_findings = detect(new, path, module, index, config, versions, codemods)
        except SourceError as exc:
            result.error = f"internal error, a fix produced invalid code ({chosen[0].code}): {exc}"
            return result
        result.applied.extend(chosen)
        if new in seen:
            result.error = f"fixes did not converge ({', '.join(sorted({f.code for f in chosen}))})"
            return result
        seen.add(new)
        current, current_findings = new, next_findings
    else:
        result.error = f"fixes did not converge within {MAX_ROUNDS} rounds"
        return result
    result.new_source = current
    result.remaining = current_findings
    return result


# -- files ----------------------------------------------------------------------------------------


@dataclass
class Job:
    """What every worker needs: the same for every file of a run."""

    index: ProjectIndex
    config: Config
    versions: TargetVersions
    codes: tuple[str, ...]
    root: Path
    apply: bool
    write: bool
    run_key: str = ""
    cached: dict[str, CacheEntry] = field(default_factory=dict)
    stamps: dict[str, tuple[tuple[int, int], str, bool]] = field(default_factory=dict)
    # a sub-project's own pyproject.toml or lock file decides its files' targets (monorepos)
    nested_versions: dict[str, TargetVersions] = field(default_factory=dict)


def active_codemods(config: Config, index: ProjectIndex, versions: TargetVersions) -> list[type[Codemod]]:
    """The selected codemods that can find anything in this project (see `Codemod.active`)."""
    return [c for c in selected_codemods(config) if c.active(index, config, versions)]


def _codemods(codes: Sequence[str]) -> list[type[Codemod]]:
    from dbfix.codemod import all_codemods

    return [c for c in all_codemods() if c.code in codes]


def process_file(path: Path, job: Job, data: bytes | None = None) -> FileResult:
    """Read, fix and (if asked) write one file; every failure becomes `FileResult.error`."""
    shown = _display(path)
    hit = job.cached.get(str(path)) if job.run_key else None
    if data is None:
        unread = cached_unread(path, job)
        if unread is not None:
            return unread
    try:
        if data is None:
            data = path.read_bytes()
        stat = path.stat() if job.write else None
    except OSError as exc:
        return FileResult(path=shown, error=f"cannot read: {exc.strerror or exc}")
    key = digest(job.run_key, digest(data)) if job.run_key else None
    if hit is not None and key is not None:
        cached = _nothing_to_fix(shown, key, hit, job)
        if cached is not None:
            return cached
    try:
        decoded = decode(data)
    except SourceError as exc:
        return FileResult(path=shown, error=str(exc))
    result = _fixed_from_cache(shown, key, hit, decoded.text) if job.apply else None
    if result is None:
        module = module_name_for(path, job.root) if _under(path, job.root) else (path.stem, False)
        try:
            result = fix_source(
                decoded.text, shown, module, job.index, job.config, _versions_of(path, job), _codemods(job.codes), apply=job.apply,
                parsed=parsed_tree(str(path), data),  # the index's tree of this content, when this process kept it
            )
        except Exception as exc:  # a codemod bug must not stop the run or touch the file
            return FileResult(path=shown, error=f"internal error: {type(exc).__name__}: {exc}")
        if key is not None and result.error is None:
            # what this content gives, fixed or not: a later check, dry run or apply starts from it
            fixed = (result.new_source, result.applied, result.remaining) if result.changed else None
            result.cache_entry = (key, result.findings, fixed, result.notice)
    if not result.changed:
        result.old_source = None  # only diffs need it: a check does not carry every file's text back
    if job.write and result.changed and result.error is None:
        try:
            new_data = encode(result.new_source, decoded)  # type: ignore[arg-type]
            write_atomic(path, new_data, data, stat)  # type: ignore[arg-type]
            result.written = True
            if job.run_key:
                result.cache_entry = (digest(job.run_key, digest(new_data)), result.remaining, None, None)
        except (OSError, SourceError) as exc:
            result.error = f"cannot write: {exc}"
    return result


VERSION_FILES = ("pyproject.toml", "uv.lock", "poetry.lock", "Pipfile.lock", "pdm.lock", "requirements.txt")


def _versions_of(path: Path, job: Job) -> TargetVersions:
    if job.nested_versions:
        for parent in path.parents:
            found = job.nested_versions.get(str(parent))
            if found is not None:
                return found
    return job.versions


def versions_of(folder: Path, config: Config, cache: Cache | None = None) -> TargetVersions:
    """`detect_versions` for one folder, from the cache while its version files are unchanged."""
    stamp = []
    for name in (*VERSION_FILES, "setup.cfg", "Pipfile", "requirements-dev.txt"):
        try:
            stat = (folder / name).stat()
            stamp.append((name, stat.st_size, stat.st_mtime_ns))
        except OSError:
            continue
    key = (tuple(stamp), config.target_python)
    if cache is not None:
        known = cache.versions.get(str(folder))
        if known is not None and known[0] == key:
            return known[1]  # type: ignore[return-value]
    found = detect_versions(folder, config.target_python)
    if cache is not None and found.sources and all(source != "installed" for _, source in found.sources):
        cache.versions[str(folder)] = (key, found)  # the installed packages may change unseen: not cached
        cache.dirty = True
    if config.databases is not None:  # `[tool.dbfix] databases` says what the drivers do not
        sources = tuple((n, s) for n, s in found.sources if n != "databases") + (("databases", "config"),)
        found = dataclasses.replace(found, databases=config.databases, sources=sources)
    return found


def nested_versions(
    files: Sequence[Path], root: Path, config: Config, cache: Cache | None = None
) -> dict[str, TargetVersions]:
    """Target versions of every sub-project below `root` (a folder with its own pyproject or lock file)."""
    found: dict[str, TargetVersions] = {}
    top = str(root)
    checked: set[str] = {top}
    for folder in {os.path.dirname(str(p)) for p in files}:
        while folder not in checked and folder.startswith(top + os.sep):
            checked.add(folder)
            if any(os.path.isfile(os.path.join(folder, name)) for name in VERSION_FILES):
                found[folder] = versions_of(Path(folder), config, cache)
            folder = os.path.dirname(folder)
    return found


def cached_unread(path: Path, job: Job) -> FileResult | None:
    """The cached result of a file whose size and mtime are unchanged and that has nothing to fix."""
    hit = job.cached.get(str(path)) if job.run_key else None
    known = unchanged_content(job.stamps, path) if hit is not None else None
    if known is None:
        return None
    return _nothing_to_fix(_display(path), digest(job.run_key, known[0]), hit, job)  # type: ignore[arg-type]


def _nothing_to_fix(shown: str, key: str, hit: CacheEntry, job: Job) -> FileResult | None:
    """The cached findings, unless they are stale or this run would apply one of their fixes."""
    if hit[0] != key:
        return None
    findings = hit[1]
    if job.apply and any(f.fix and is_applicable(f.fix, f.code, f.name, job.config) for f in findings):
        return None
    return FileResult(path=shown, findings=findings, remaining=findings, notice=hit[3], cached=True)


def _fixed_from_cache(shown: str, key: str | None, hit: CacheEntry | None, source: str) -> FileResult | None:
    """The fixed source a previous run computed for exactly this content and these settings."""
    if key is None or hit is None or hit[0] != key or hit[2] is None:
        return None
    new_source, applied, remaining = hit[2]
    return FileResult(
        path=shown, findings=hit[1], applied=applied, remaining=remaining, old_source=source, new_source=new_source, cached=True
    )


def write_atomic(path: Path, data: bytes, original: bytes, original_stat: os.stat_result) -> None:
    """Write through a temporary file and a rename, keeping the mode; refuse if the file changed meanwhile."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".dbfix", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, original_stat.st_mode & 0o7777)
        if path.read_bytes() != original:
            raise SourceError("the file changed while dbfix was running; left as it is")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _under(path: Path, root: Path) -> bool:
    text, top = os.fspath(path), os.fspath(root)
    return text == top or text.startswith(os.path.join(top, ""))


def _display(path: Path) -> str:
    text, cwd = str(path), os.getcwd() + os.sep
    return text[len(cwd) :] if text.startswith(cwd) else text


@dataclass
class RunResult:
    results: list[FileResult] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    versions: TargetVersions | None = None


def _migrations_stamp(skipped: Sequence[Skipped]) -> list[tuple[str, int, int]]:
    """Size and mtime of the Alembic scripts: rules read constraint names from them (`dbfix.dbnames`)."""
    stamps = []
    for item in skipped:
        if item.reason == ALEMBIC_REASON:
            try:
                stat = item.path.stat()
            except OSError:
                continue
            stamps.append((str(item.path), stat.st_size, stat.st_mtime_ns))
    return sorted(stamps)


def _worker_imports() -> None:
    """The rules and the index's contributors, imported before the workers fork rather than in each."""
    from dbfix.codemod import all_codemods
    from dbfix.index import _contributors

    all_codemods()
    _contributors()


def _process_in_worker(path: Path) -> FileResult:
    """In a worker (or in-process): one file, with the job its phase was started with."""
    return process_file(path, shared())


def load_index(
    root: Path,
    config: Config,
    override: tuple[Path, bytes] | None = None,
    cache: Cache | None = None,
    paths: Sequence[Path] | None = None,
    pool: Shards | None = None,
    silent: dict[str, tuple[str, frozenset[str]]] | None = None,
) -> ProjectIndex:
    """Index every Python file of the project (`override` gives one file's bytes: stdin mode)."""
    entries: dict[Path, bytes | None] = dict.fromkeys(paths if paths is not None else project_files(root, config))
    if override is not None:
        entries[override[0]] = override[1]
    return build_index(entries.items(), root, cache, pool, text_tests(selected_codemods(config)), silent)


def text_tests(codemods: Sequence[type[Codemod]]) -> TextTests:
    """The codemods' triggers, as the index uses them (see `TextTests`)."""
    always = [c for c in codemods if not _sometimes_active(c)]
    return TextTests(
        whole=_any_trigger([c for c in codemods if c.parse_whole]),
        keep=_any_trigger([c for c in codemods if c.local_triggers]),
        anywhere=_any_trigger([c for c in always if not c.declarations_only]),
        declaring=_any_trigger([c for c in always if c.declarations_only]),
        sometimes=tuple((c.code, _grouped_trigger(c), c.declarations_only) for c in codemods if _sometimes_active(c)),
    )


def _sometimes_active(codemod: type[Codemod]) -> bool:
    """Whether the codemod has its own `active` test (DBF001: only where a model declares a reserved name)."""
    return codemod.active.__func__ is not Codemod.active.__func__  # type: ignore[attr-defined]


def _any_trigger(codemods: Sequence[type[Codemod]]) -> tuple[str, ...]:
    """The codemods' triggers, each once; a repeated run (`{64,}`) scans slowest and comes last."""
    triggers = dict.fromkeys(_grouped_trigger(c) for c in codemods)
    return tuple(sorted(triggers, key=lambda t: "{" in t))


def _grouped_trigger(codemod: type[Codemod]) -> str:
    """The codemod's trigger in a group of its own, to join with others by `|`."""
    return f"(?:{codemod.triggers or ''})"


def run(
    paths: Sequence[Path],
    config: Config,
    *,
    apply: bool,
    write: bool,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    cache_dir: Path | None = None,
) -> RunResult:
    """Discover the files, index the project, and process every file (in parallel when it pays).

    With `cache_dir`, index facts and findings of unchanged files come from the cache; findings are
    keyed by the whole index too, so an edit to a model elsewhere re-checks every file.
    """
    root = config.root or Path.cwd()
    files, skipped = discover(paths, root, config)
    # the whole project is the common case: then one walk of the tree serves both
    project = files if [Path(p) for p in paths] == [root] else project_files(root, config)
    cache = Cache.load(cache_dir)
    versions = versions_of(root, config, cache)
    jobs = jobs or os.cpu_count() or 1
    silent: dict[str, tuple[str, frozenset[str]]] = {}
    try:
        with Shards(jobs, preload=_worker_imports) as pool:
            index = load_index(root, config, cache=cache, paths=project, pool=pool if jobs > 1 else None, silent=silent)
            return _run_files(
                files, skipped, root, config, versions, index, cache, cache_dir, apply, write, jobs, pool, progress, silent
            )
    finally:
        forget_trees()


def _run_files(
    files: list[Path],
    skipped: list[Skipped],
    root: Path,
    config: Config,
    versions: TargetVersions,
    index: ProjectIndex,
    cache: Cache,
    cache_dir: Path | None,
    apply: bool,
    write: bool,
    jobs: int,
    pool: Shards,
    progress: Callable[[int, int], None] | None,
    silent: dict[str, tuple[str, frozenset[str]]],
) -> RunResult:
    codes = tuple(c.code for c in active_codemods(config, index, versions))
    nested = nested_versions(files, root, config, cache)
    settings = repr((config, versions, sorted(nested.items()), _migrations_stamp(skipped)))
    run_key = digest(__version__, settings, ",".join(codes), index.digest) if cache_dir else ""
    job = Job(index, config, versions, codes, root, apply, write, run_key, cache.findings, cache.stamps, nested_versions=nested)
    outcome = RunResult(skipped=skipped, versions=versions)
    results: dict[Path, FileResult] = {}
    for path in files:  # unchanged files with nothing to fix need neither a read nor a worker
        unread = cached_unread(path, job)
        if unread is not None:
            results[path] = unread
        elif str(path) in silent and silent[str(path)][1].isdisjoint(codes):
            # the index read it: no active rule's trigger is in it
            key = digest(run_key, silent[str(path)][0]) if run_key else None
            results[path] = FileResult(path=_display(path), cache_entry=(key, [], None, None) if key else None)
    pending = [p for p in files if p not in results]
    done = len(results)
    if jobs > 1 and len(pending) >= PARALLEL_THRESHOLD:
        # each file in the worker that parsed it for the index; the job reaches each worker once
        tasks = [(str(p), p) for p in pending]
        for path, result in zip(pending, pool.map(_process_in_worker, tasks, state=job)):
            results[path] = result
        if progress:
            progress(len(files), len(files))
    else:
        for path in pending:
            results[path] = process_file(path, job)
            done += 1
            if progress:
                progress(done, len(files))
    outcome.results = [results[p] for p in files]
    if cache_dir is not None:
        for path, result in zip(files, outcome.results):
            if result.cache_entry is not None:
                cache.findings[str(path)] = result.cache_entry
                cache.dirty = True
        cache.save()
    return outcome


def run_source(path: Path, data: bytes, config: Config, *, apply: bool, cache_dir: Path | None = None) -> RunResult:
    """Editor mode: check or fix one file's content given as bytes (stdin); nothing is written.

    The rest of the project is indexed from disk (and the cache), so cross-file facts still count;
    the result for exactly this content is cached too, so saving the same buffer again is instant.
    """
    from dbfix import snapshot

    root = config.root or path.parent
    known = snapshot.load(cache_dir, root, config) if cache_dir is not None else None
    if known is not None and known.fits(path, data, root):
        # nothing changed since the index was built, and it holds this very buffer: no walk, no cache
        outcome = _check_source(path, data, config, root, known.index, known.versions, Cache(None), None, apply)
        snapshot.refresh(cache_dir, root, config, known)  # type: ignore[arg-type]
        return outcome
    cache = Cache.load(cache_dir)
    versions = versions_of(root, config, cache)
    if cache_dir is None:
        index = load_index(root, config, override=(path, data), cache=cache)
        return _check_source(path, data, config, root, index, versions, cache, cache_dir, apply)
    with snapshot.recording(cache_dir) as recorder:
        index = load_index(root, config, override=(path, data), cache=cache)
    outcome = _check_source(path, data, config, root, index, versions, cache, cache_dir, apply)
    if read_file(path) == data:  # the index is the project's as it is on disk: worth keeping
        snapshot.save(cache_dir, root, config, recorder, index, versions)  # after the check: its names too
    return outcome


def _check_source(
    path: Path, data: bytes, config: Config, root: Path, index: ProjectIndex, versions: TargetVersions,
    cache: Cache, cache_dir: Path | None, apply: bool,
) -> RunResult:
    codes = tuple(c.code for c in active_codemods(config, index, versions))
    nested = nested_versions([path], root, config)
    settings = repr((config, versions, sorted(nested.items())))
    run_key = digest(__version__, settings, ",".join(codes), index.digest) if cache_dir else ""
    name = f"{path}\0stdin"  # the buffer is not the file on disk: its own cache entry
    cached = {str(path): cache.findings[name]} if name in cache.findings else {}
    job = Job(index, config, versions, codes, root, apply, False, run_key, cached, nested_versions=nested)
    try:
        result = process_file(path, job, data)
    finally:
        forget_trees()
    if cache_dir is not None:
        if result.cache_entry is not None:
            cache.findings[name] = result.cache_entry
            cache.dirty = True
        cache.save()
    return RunResult(results=[result], versions=versions)
