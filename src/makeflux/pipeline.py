"""One run of the pipeline: settings → data → validate → render, all in memory.

Every command consumes the resulting Run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from makeflux import output, sync
from makeflux.boundary import Boundary, boundary_for
from makeflux.data import LoadedData, load_data
from makeflux.environment import JinjaSetup, build_environment
from makeflux.errors import Problem, SettingsError, display_path
from makeflux.lock import lock_path
from makeflux.manifest import journal_path, manifest_path, scratch_manifest_path
from makeflux.render import RenderedTree, render_tree
from makeflux.settings import Settings, load_settings

if TYPE_CHECKING:
    from makeflux.lint.findings import Finding


@dataclass(frozen=True)
class RunOptions:
    """What the command line says about this run."""

    cwd: Path = field(default_factory=Path.cwd)
    config: Path | None = None
    overrides: tuple[str, ...] = ()
    output: Path | None = None
    data_files: tuple[Path, ...] | None = None
    use_cache: bool = True  # False: --no-cache (Settings.cache_dir None)


@dataclass
class Run:
    """One run once its settings and data are loaded (and validated, by validate())."""

    options: RunOptions
    settings: Settings
    data: LoadedData


@dataclass
class RenderedRun(Run):
    """A run whose templates are rendered: what lint, plan and the sinks work on."""

    tree: RenderedTree = field(kw_only=True)
    setup: JinjaSetup = field(kw_only=True)  # the render's Jinja environment, reused by lint
    findings: list[Finding] | None = field(default=None, kw_only=True)  # None: lint did not run


def load(options: RunOptions) -> Run:
    """Settings and data, with --output / --data / --set applied."""
    settings = load_settings(options.cwd, options.config, use_cache=options.use_cache)
    if options.output is not None:
        output_dir = (options.cwd / options.output).resolve()
        if output_dir != settings.output.resolve():
            # Another directory gets its own manifest (kept outside it, in the user's cache),
            # so render/plan/check -o DIR agree with each other and never touch the record of
            # the configured output.
            manifest = scratch_manifest_path(output_dir, settings.cache_dir)
            settings = settings.with_overrides(
                output=output_dir, manifest=manifest, keep_manifest=manifest is not None
            )
    _check_output_is_a_directory(settings.output, options.output is not None)
    data_files = None
    if options.data_files is not None:
        data_files = tuple((options.cwd / p).resolve() for p in options.data_files)
        settings = settings.with_overrides(data=data_files)
    loaded = load_data(settings, options.overrides)
    output.files_in_use(settings, loaded.files)
    return Run(options=options, settings=settings, data=loaded)


def _check_output_is_a_directory(output_dir: Path, from_option: bool) -> None:
    """Stop before anything is rendered when the output (or a directory above it) is a file:
    writing would fail on the first file, after all the work."""
    here = output_dir
    while not here.exists() and here != here.parent:
        here = here.parent
    if here.is_dir():
        return
    where = "--output" if from_option else "'output' in the settings"
    if here == output_dir:
        message = f"the output is a file, not a directory; name a directory in {where}"
    else:
        message = (
            f"a file, where the output {display_path(output_dir)} needs a directory; "
            f"name another directory in {where}"
        )
    raise SettingsError(Problem(message, display_path(here)))


def validate(run: Run, *, thorough: bool = False) -> Run:
    """Check the data against the JSON Schema and apply its defaults (no schema: no-op).

    `thorough` also checks the schema itself when the data is valid (makeflux validate).
    """
    if run.settings.schema is None:
        return run
    # jsonschema is slow to import; only runs that validate pay for it.
    from makeflux.cluster_schema.validation import validate_data

    validate_data(run.settings, run.data, thorough=thorough)
    return run


def render(run: Run) -> RenderedRun:
    """Render every template in memory."""
    setup = build_environment(run.settings, run.data.values)
    tree = render_tree(run.settings, run.data.values, setup)
    return RenderedRun(run.options, run.settings, run.data, tree=tree, setup=setup)


def lint(run: RenderedRun, *, enabled: bool = True) -> RenderedRun:
    """Check the rendered tree and the templates.

    A makejinja.toml project lints only when asked (`makeflux lint`): a drop-in must not start
    failing pipelines that passed, and makejinja.toml has no place to declare lint externals.
    """
    if enabled and run.settings.flavor == "makeflux":
        from makeflux import lint as linting  # heavy: imported only by runs that lint

        run.findings = linting.run(run)
    return run


def build(options: RunOptions) -> RenderedRun:
    """The whole in-memory pipeline: load → validate → render."""
    return render(validate(load(options)))


def plan(
    run: RenderedRun,
    *,
    force: bool = False,
    ignore_guard: bool = False,
    boundary: Boundary | None = None,
) -> sync.Plan:
    """What writing the run's tree would do (sync.plan_for), within the Boundary of everything
    the run read (`boundary`, when the caller already has it)."""
    return sync.plan_for(
        run.tree,
        run.settings,
        force=force,
        ignore_guard=ignore_guard,
        boundary=boundary or run_boundary(run),
    )


def run_boundary(run: Run) -> Boundary:
    """The Boundary of a run: its settings, the data files it read and its plugins' sources."""
    settings = run.settings
    extra: dict[Path, str] = {}
    if settings.keep_manifest:
        manifest = manifest_path(settings)
        extra[manifest] = f"the manifest {display_path(manifest)}"
        extra[journal_path(manifest)] = "the manifest's journal"
        extra[lock_path(settings)] = "the lock file"
    plugins = run.setup.plugins if isinstance(run, RenderedRun) else ()
    return boundary_for(settings, run.data.files, plugins, extra)
