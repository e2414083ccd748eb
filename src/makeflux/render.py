"""Templates → RenderedTree (output path → bytes), all in memory; nothing here writes."""

from __future__ import annotations

import functools
import gc
import hashlib
import struct
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any

import jinja2

from makeflux import cache, output, parallel, reuse
from makeflux.environment import JinjaSetup, build_environment
from makeflux.errors import Problem, SettingsError, TemplateError
from makeflux.errors import display_path as _display
from makeflux.jinja_internals import render_in_place
from makeflux.manifest import digest_text
from makeflux.settings import Settings


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One file found in the inputs: where it is, and where its output goes.

    The path is made on demand from the input directory and the name: a tree of ten thousand
    templates would otherwise hold ten thousand Path objects (~0.5 KB each) for the whole run.
    """

    root: Path  # the input directory the name is relative to
    name: str  # template name: path relative to its input, '/'-separated
    output: str  # output path relative to settings.output, '/'-separated
    is_template: bool

    @property
    def path(self) -> Path:
        """Absolute path of the template or plain file."""
        return self.root / self.name


# One file's content as the tree holds it, in a single bytes object (a tuple of the three
# parts cost ~200 bytes more a file): its size and sha256, then the zlib-compressed content.
PackedContent = bytes
_HEAD = struct.Struct("<Q32s")


def pack_content(content: bytes) -> PackedContent:
    # Level 1: rendered YAML shrinks about 4x at ~150 MB/s, and reads back faster still.
    head = _HEAD.pack(len(content), hashlib.sha256(content).digest())
    return head + zlib.compress(content, 1)


class PackedFiles(MutableMapping[str, bytes]):
    """Relative path → content, held compressed: a large tree renders to tens of MB, which a
    run would otherwise hold in memory whole. Each file's size and sha256 are kept beside it,
    so comparing with the disk and recording the manifest need not unpack it."""

    def __init__(self) -> None:
        self._entries: dict[str, PackedContent] = {}

    def __getitem__(self, path: str) -> bytes:
        return zlib.decompress(memoryview(self._entries[path])[_HEAD.size :])

    def __setitem__(self, path: str, content: bytes) -> None:
        self._entries[path] = pack_content(content)

    def __delitem__(self, path: str) -> None:
        del self._entries[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, path: object) -> bool:
        return path in self._entries

    def set_packed(self, path: str, packed: PackedContent) -> None:
        self._entries[path] = packed

    def size(self, path: str) -> int:
        return _HEAD.unpack_from(self._entries[path])[0]

    def digest(self, path: str) -> str:
        """The content's hash in the manifest's form (as content_hash gives it)."""
        return digest_text(_HEAD.unpack_from(self._entries[path])[1])


@dataclass
class RenderedTree:
    """The whole output of one run, in memory: write, plan, check and lint all read this."""

    root: Path  # the output directory
    files: PackedFiles = field(default_factory=PackedFiles)  # relative posix path → content
    sources: dict[str, SourceFile] = field(default_factory=dict)  # relative path → its source
    copy_stat: set[str] = field(default_factory=set)  # paths whose mode/mtime follow the source
    skipped_empty: list[str] = field(default_factory=list)  # templates that rendered empty
    dirs: set[str] = field(default_factory=set)  # directories kept even when empty (keep_empty)


def discover_sources(
    settings: Settings, setup: JinjaSetup | None = None, *, with_partials: bool = False
) -> list[SourceFile]:
    """Every input file in makejinja's order; the first input wins for the same relative path.

    `with_partials` also lists excluded files as templates: they are never rendered on their
    own but reach the output through include/import, so whoever reads variables needs them.
    """
    path_filters = setup.path_filters if setup else []
    enforce_suffix = bool(settings.jinja_suffix)
    found: dict[str, SourceFile] = {}
    for input_path in settings.inputs:
        if input_path.is_file():
            name = input_path.name
            output = _output_name(settings, name)
            found.setdefault(output, SourceFile(input_path.parent, name, output, True))
            continue
        if not input_path.is_dir():
            continue
        # Per path, strings, not pathlib (relative_to, suffix, match): a few ms per 300 files.
        base = str(input_path).rstrip("/") + "/"
        base_parts = input_path.parts
        excluded = [path_matcher(p) for p in settings.exclude_patterns]
        for pattern in settings.include_patterns:
            for path in sorted(input_path.glob(pattern)):
                if not path.is_file():
                    continue
                # interned: the kept outputs' store (makeflux.reuse) names it too
                relative = sys.intern(str(path)[len(base) :])
                output = _output_name(settings, relative)
                if output in found:
                    continue
                is_template = not enforce_suffix or _suffix(relative) == settings.jinja_suffix
                parts = (*base_parts, *relative.split("/"))
                if any(match(parts) for match in excluded):
                    if with_partials:
                        found[output] = SourceFile(input_path, relative, output, True)
                    continue
                if any(not keep(path) for keep in path_filters):
                    continue
                found[output] = SourceFile(input_path, relative, output, is_template)
    return list(found.values())


def discover_dirs(settings: Settings) -> set[str]:
    """Input directories (relative), which makejinja keeps as empty dirs under keep_empty."""
    dirs: set[str] = set()
    excluded = [path_matcher(p) for p in settings.exclude_patterns]
    for input_path in settings.inputs:
        if not input_path.is_dir():
            continue
        for pattern in settings.include_patterns:
            for path in input_path.glob(pattern):
                if path.is_dir() and not any(match(path.parts) for match in excluded):
                    dirs.add(path.relative_to(input_path).as_posix())
    return dirs


def render_tree(
    settings: Settings,
    data: Mapping[str, Any],
    setup: JinjaSetup | None = None,
    *,
    reuse_outputs: bool = True,
) -> RenderedTree:
    """Render every template in memory. Raises TemplateError listing every failing template.

    With `reuse_outputs`, templates whose inputs did not change since the last run take their
    output from then (makeflux.reuse); without, every template renders."""
    setup = setup or build_environment(settings, data)
    scope = "\0".join(str(p.resolve()) for p in settings.inputs)
    if setup.env.bytecode_cache is None:
        # Attached once plugins are loaded: the cache key covers the filters and tests they add.
        # Duck-typed jinja2.BytecodeCache (see cache.CompiledTemplateCache for why).
        setup.env.bytecode_cache = cache.for_environment(settings.cache_dir, setup.env, scope)  # type: ignore[assignment]
    tree = RenderedTree(root=settings.output)
    problems: list[Problem] = []
    sources = discover_sources(settings, setup)
    _refuse_missing_inputs(settings, sources)
    try:
        outcomes = render_templates(
            setup.env,
            [s for s in sources if s.is_template],
            settings,
            scope if reuse_outputs else None,
        )
    finally:
        _finish_cache(setup.env)
    for source in sources:
        if not source.is_template:
            try:
                tree.files[source.output] = source.path.read_bytes()
            except OSError as exc:
                problems.append(Problem(f"cannot read: {exc.strerror}", _display(source.path)))
                continue
            tree.sources[source.output] = source
            tree.copy_stat.add(source.output)
            continue
        outcome = outcomes[source.output]
        if isinstance(outcome, Problem):
            problems.append(outcome)
            continue
        if outcome is None:
            tree.skipped_empty.append(source.output)
            continue
        tree.files.set_packed(source.output, outcome)
        tree.sources[source.output] = source
        if settings.copy_metadata:
            tree.copy_stat.add(source.output)
    if problems:
        raise TemplateError(problems)
    if settings.keep_empty:
        tree.dirs = discover_dirs(settings)
    return tree


def _refuse_missing_inputs(settings: Settings, sources: list[SourceFile]) -> None:
    """An input that does not exist, or inputs holding nothing to render, is a mistake: the
    empty tree it would render looks to the pruner like every feature turned off."""
    where = _display(settings.source) if settings.source else "settings"
    missing = [p for p in settings.inputs if not p.exists()]
    if missing:
        raise SettingsError(
            [
                Problem(
                    f"inputs: '{_display(p)}' does not exist; fix 'inputs' (relative to the "
                    "settings file)",
                    where,
                )
                for p in missing
            ]
        )
    if not sources:
        inputs = ", ".join(f"'{_display(p)}'" for p in settings.inputs) or "none"
        raise SettingsError(
            Problem(
                f"no templates found in the inputs ({inputs}); check 'inputs', "
                "'include_patterns' and 'exclude_patterns'",
                where,
            )
        )


# A loaded template is a reference cycle (its module's namespace holds the Template, whose
# functions hold the namespace), freed only by the garbage collector. On its own schedule, the
# collector had promoted some of them to its oldest generation before they were garbage, where
# they waited for a full collection: a warm render of the bench's 30x tree (4,422 templates
# rendered) peaked ~6 MB higher. Collecting the young generations every few templates frees
# them while they are young (no cost measurable above the noise on the 1x tree).
COLLECT_EVERY = 10


def render_templates(
    env: jinja2.Environment,
    templates: list[SourceFile],
    settings: Settings,
    scope: str | None = None,
) -> dict[str, PackedContent | Problem | None]:
    """Output path → rendered content (packed), None (rendered empty, skipped) or its Problem.

    With a `scope` (the project), a template whose inputs did not change since the last run
    takes its output from then (see makeflux.reuse). Uses both cores when the work is big
    enough to pay for a fork (see makeflux.parallel).
    """
    # Every template reads env.globals in place (no per-template copy of the whole data).
    context = env.globals
    rendered = 0

    def outcome(source: SourceFile) -> PackedContent | Problem | None:
        nonlocal rendered
        rendered += 1
        if rendered % COLLECT_EVERY == 0:
            gc.collect(1)
        try:
            text = render_one(env, source, settings, context)
        except _RenderFailure as failure:
            return failure.problem
        if not text.strip() and not settings.keep_empty:
            return None
        return pack_content(text.encode("utf-8"))  # packed here: in the workers, in parallel

    kept = reuse.for_run(env, settings, scope) if scope is not None else None

    # Results wait on disk while workers are alive (see parallel.fork_map): in the cache
    # directory, on a disk where the system's temporary one may be in memory. The file is
    # unlinked as it is made, so nothing is left there even when a run is killed.
    scratch = settings.cache_dir if settings.cache_dir and settings.cache_dir.is_dir() else None
    finish = functools.partial(_finish_cache, env)

    def render(indexes: list[int]) -> list[PackedContent | Problem | None]:
        chosen = [templates[i] for i in indexes]
        if kept is None:
            return parallel.map_adaptive(outcome, chosen, worker_finish=finish, spool_dir=scratch)
        # What compiling and loading showed reaches this process from forked workers through
        # a file each appends to after every chunk, not with the results: the results are all
        # held at once, and this keeps them as small as without reuse. This process writes
        # its own there too while workers are alive, and reads them all once they are gone.
        with tempfile.TemporaryDirectory(prefix="makeflux-records-") as records:
            results = parallel.map_adaptive(
                outcome,
                chosen,
                worker_finish=finish,
                report=lambda: reuse.dump(Path(records)),
                spool_dir=scratch,
            )
            kept.learn(reuse.drain())  # what this process rendered before any fork
            for recorded in reuse.dumped(Path(records)):
                kept.learn(recorded)
        return results

    if kept is not None:
        reuse.capture(env)
    try:
        results = reuse.render_reusing(
            kept,
            [source.name for source in templates],
            lambda name: _file_data(name, settings),
            render,
            failed=lambda result: isinstance(result, Problem),
        )
    finally:
        reuse.capture(env, on=False)
    if kept is not None:
        output.detail(
            f"makeflux: {len(templates) - kept.reused} template(s) rendered, {kept.reused} "
            "unchanged since the last run (their output reused)"
        )
    return {source.output: result for source, result in zip(templates, results, strict=True)}


def _finish_cache(env: jinja2.Environment) -> None:
    """Write what this process compiled to the persistent cache (see makeflux.cache)."""
    code_cache = env.bytecode_cache
    if isinstance(code_cache, cache.CompiledTemplateCache):
        code_cache.finish()


class _RenderFailure(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def render_one(
    env: jinja2.Environment,
    source: SourceFile,
    settings: Settings,
    context: Mapping[str, Any] | None = None,
) -> str:
    """Render one template to text, turning any failure into a one-line Problem.

    `context` (env.globals) is read in place instead of being copied for each template, which
    Template.render would do; the result is the same.
    """
    try:
        template = env.get_template(source.name)
        file_data = _file_data(source.name, settings)
        if context is None:
            return template.render(file_data)
        return render_in_place(template, context, file_data)
    except jinja2.TemplateSyntaxError as exc:
        path = exc.filename or str(source.path)
        raise _RenderFailure(
            Problem(f"template syntax error: {exc.message}", _display(Path(path)), exc.lineno)
        ) from None
    except jinja2.UndefinedError as exc:
        path, line = _template_location(exc.__traceback__, source)
        hint = _undefined_hint(settings)
        raise _RenderFailure(Problem(f"{exc.message}{hint}", path, line)) from None
    except UnicodeDecodeError:
        raise _RenderFailure(
            Problem("template is not UTF-8 text; save it as UTF-8", _display(source.path))
        ) from None
    except jinja2.TemplateNotFound as exc:
        path, line = _template_location(exc.__traceback__, source)
        raise _RenderFailure(
            Problem(f"template '{exc.name}' not found in the inputs", path, line)
        ) from None
    except RecursionError:
        raise _RenderFailure(
            Problem(
                "template recursion too deep (an include or macro calls itself?)",
                _display(source.path),
            )
        ) from None
    except Exception as exc:  # a filter, test or plugin function raised inside the template
        path, line = _template_location(exc.__traceback__, source)
        raise _RenderFailure(Problem(f"{type(exc).__name__}: {exc}", path, line)) from None


def _undefined_hint(settings: Settings) -> str:
    if settings.undefined == "strict":
        return "; define it in your data (e.g. cluster.yaml) or guard it with 'is defined'"
    return ""


def _template_location(tb: TracebackType | None, source: SourceFile) -> tuple[str, int | None]:
    """The innermost template frame of a render traceback: the file and line to show the user."""
    path, line = _display(source.path), None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename and not filename.endswith(".py") and Path(filename).is_file():
            path, line = _display(Path(filename)), tb.tb_lineno
        tb = tb.tb_next
    return path, line


def _output_name(settings: Settings, relative: str) -> str:
    suffix = settings.jinja_suffix
    if suffix and not settings.keep_jinja_suffix and _suffix(relative) == suffix:
        return relative[: -len(suffix)]
    return relative


def _suffix(relative: str) -> str:
    """PurePosixPath(relative).suffix, for a normalized '/'-separated path, without the Path."""
    name = relative[relative.rfind("/") + 1 :]
    i = name.rfind(".")
    return name[i:] if 0 < i < len(name) - 1 else ""


def path_matcher(pattern: str) -> Callable[[tuple[str, ...]], bool]:
    """PurePosixPath.match(pattern) on a path given as its parts, the pattern parsed once (pathlib
    parses it again for every path it matches)."""
    pattern_parts = PurePosixPath(pattern).parts
    anchored = pattern.startswith("/")

    def match(parts: tuple[str, ...]) -> bool:
        wanted = pattern_parts
        if not wanted:
            raise ValueError("empty pattern")  # as pathlib, when there is a path to match
        if anchored:
            if len(wanted) != len(parts) or wanted[0] != parts[0]:
                return False
            wanted = wanted[1:]
        elif len(wanted) > len(parts):
            return False
        # the path's last parts against the pattern's, right-anchored: the path may be longer
        tail = parts[len(parts) - len(wanted) :]
        return all(fnmatchcase(p, w) for p, w in zip(tail, wanted, strict=True))

    return match


def _file_data(name: str, settings: Settings) -> dict[str, Any]:
    """makejinja's per-template data files (file_data), merged in order."""
    from makeflux.data import DATA_LOADERS, load_file

    merged: dict[str, Any] = {}
    for path in settings.file_data.get(name, ()):
        if path.exists() and path.suffix in DATA_LOADERS:
            merged |= load_file(path, settings.cache_dir)
    return merged
