"""Cross-file checks over a rendered Flux tree: the families of rules that lint.rules declares
(one module each), run on the tree parsed once.

findings = lint.run(run)             # after pipeline.build(); templates checked too
findings = lint.lint_tree(files, config)
print(lint.format_findings(findings, "text"))
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from makeflux.cluster_schema.reading import schema_variables
from makeflux.errors import MakefluxError, Problem, display_path
from makeflux.lint.config import LintConfig, lint_config
from makeflux.lint.findings import ERROR, FORMATS, WARNING, Finding, exit_status, format_findings
from makeflux.lint.kustomize import kustomize_inputs
from makeflux.lint.placement import is_manifest_file, place
from makeflux.lint.rules import RULES, TreeContext, TreeFamily, families, load_family
from makeflux.lint.templates import TemplateSource, check_templates
from makeflux.lint.yamldocs import KUSTOMIZATION_NAMES, YAML_SUFFIXES, parse_tree

if TYPE_CHECKING:
    from makeflux.environment import JinjaSetup
    from makeflux.pipeline import RenderedRun
    from makeflux.settings import Settings

__all__ = [
    "ERROR",
    "FORMATS",
    "RULES",
    "WARNING",
    "Finding",
    "LintConfig",
    "config_from_settings",
    "exit_status",
    "format_findings",
    "lint_templates",
    "lint_tree",
    "read_directory",
    "run",
]


def lint_tree(files: Mapping[str, bytes], config: LintConfig | None = None) -> list[Finding]:
    """Every finding for a tree (relative posix path → content), sorted; templates excluded."""
    config = config or LintConfig()
    context = tree_context(files, config)
    findings = [found for family in tree_families() for found in family(context)]
    return _finish(_one_per_problem(findings), config)


def tree_context(files: Mapping[str, bytes], config: LintConfig) -> TreeContext:
    """What every tree family is given: the tree parsed once, its manifests, where objects land."""
    tree = parse_tree(files)
    not_resources = kustomize_inputs(tree)
    manifests = {
        p for p in tree.yaml_files if is_manifest_file(p, config) and p not in not_resources
    }
    return TreeContext(tree, manifests, config, place(tree, config))


def tree_families() -> list[TreeFamily]:
    """The functions behind the registry's tree rules, each once, in declaration order."""
    return [load_family(family) for family in families("tree")]


def run(pipeline_run: RenderedRun) -> list[Finding]:
    """Lint a built run: its rendered tree and its templates against the schema."""
    config = config_from_settings(pipeline_run.settings)
    # Tree paths are relative to the output; show them as the user finds them (from cwd).
    prefix = display_path(pipeline_run.tree.root)
    findings = [
        f if prefix == "." else replace(f, path=f"{prefix}/{f.path}")
        for f in name_templates(pipeline_run, lint_tree(pipeline_run.tree.files, config))
    ]
    findings += lint_templates(
        pipeline_run.settings, pipeline_run.data.values, config, setup=pipeline_run.setup
    )
    return _finish(findings, config)


def name_templates(pipeline_run: RenderedRun, findings: list[Finding]) -> list[Finding]:
    """Each finding in a rendered file, with the template and line that produced its line;
    a copied file's source is named at the same line."""
    tree, settings = pipeline_run.tree, pipeline_run.settings
    env = pipeline_run.setup.env
    traced: dict[str, list | None] = {}
    marking = None
    named = []
    for finding in findings:
        source = tree.sources.get(finding.path)
        if source is None:
            named.append(finding)
            continue
        if not source.is_template:
            shown = _shown(source.path, settings)
            named.append(replace(finding, template=shown, template_line=finding.line))
            continue
        if finding.path not in traced:
            from makeflux.lint.origins import marking_environment, template_origins

            rendered = tree.files[finding.path].decode("utf-8", "replace")
            marking = marking or marking_environment(env)
            traced[finding.path] = template_origins(
                marking, source, settings, rendered, env.globals
            )
        origins = traced[finding.path]
        origin = origins[finding.line - 1] if origins and finding.line <= len(origins) else None
        if origin is None:
            named.append(finding)
            continue
        name, line = origin
        try:
            filename = env.loader.get_source(env, name)[1] if env.loader else None
        except Exception:  # a template the loader no longer finds: name nothing
            filename = None
        if filename is None:
            named.append(finding)
            continue
        named.append(
            replace(finding, template=_shown(Path(filename), settings), template_line=line)
        )
    return named


def config_from_settings(settings: Settings) -> LintConfig:
    where = display_path(settings.source) if settings.source else "settings"
    config = lint_config(
        settings.lint, where, settings.base_dir, tuple(settings.rewritten_patterns)
    )
    return replace(config, cache_dir=settings.cache_dir)


def lint_templates(
    settings: Settings,
    data: Mapping[str, object],
    config: LintConfig | None = None,
    *,
    setup: JinjaSetup | None = None,
) -> list[Finding]:
    """The template rules: schema variables vs the templates' variables, runaway comments.

    `setup` is the render's environment when there is one (plugins are not loaded twice).
    """
    from makeflux.environment import build_environment
    from makeflux.render import discover_sources

    config = config or config_from_settings(settings)
    setup = setup or build_environment(settings, data)
    # Names the environment itself supplies (Jinja's and plugins' globals); data doesn't count.
    provided = set(setup.env.globals) - set(data)
    # find_undeclared_variables skips every global, so parse in an overlay without them (the
    # render's environment keeps its own); check_templates subtracts `provided` itself.
    parse_env = setup.env.overlay()
    parse_env.globals = {}
    sources = []
    for source in discover_sources(settings, setup, with_partials=True):
        if not source.is_template:
            continue
        try:
            text = source.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # rendering already reported it
        sources.append(TemplateSource(source.name, _shown(source.path, settings), text))
    schema = None
    schema_shown = ""
    if settings.schema is not None:
        schema_shown = _shown(settings.schema, settings)
        schema = schema_variables(settings.schema)  # SchemaError, in validate's words
    findings = check_templates(
        parse_env,
        sources,
        schema=schema,
        schema_shown=schema_shown,
        provided=provided,
        cache_dir=config.cache_dir,
    )
    return _finish(findings, config)


def read_directory(root: Path) -> dict[str, bytes]:
    """A tree on disk as lint_tree's input: YAML files with their content, every other file
    by name only (lint needs to know it exists). Hidden directories (.git …) are skipped."""
    files: dict[str, bytes] = {}
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in names:
            path = Path(directory, name)
            relative = path.relative_to(root).as_posix()
            if not name.endswith(YAML_SUFFIXES) and name not in KUSTOMIZATION_NAMES:
                files[relative] = b""
                continue
            try:
                files[relative] = path.read_bytes()
            except OSError as exc:
                raise MakefluxError(
                    Problem(
                        f"cannot read: {exc.strerror}; check its permissions", display_path(path)
                    )
                ) from None
    return files


# A rule that knows a field better than its schema does: where it reports, the schema rules'
# finding at the same line would say the same thing less precisely.
_SPECIFIC_RULES = {
    "promql-duration-invalid": ("schema-pattern", "schema-type"),
    "flux-api-removed": ("schema-missing",),
}


def _one_per_problem(findings: list[Finding]) -> list[Finding]:
    covered = {
        (f.path, f.line, general) for f in findings for general in _SPECIFIC_RULES.get(f.rule, ())
    }
    return [f for f in findings if (f.path, f.line, f.rule) not in covered]


def _finish(findings: list[Finding], config: LintConfig) -> list[Finding]:
    return sorted({f for f in findings if f.rule not in config.disabled})


def _shown(path: Path, settings: Settings) -> str:
    """Relative to the working directory, else to the project (lint may run from elsewhere)."""
    shown = display_path(path)
    return display_path(path, settings.base_dir) if Path(shown).is_absolute() else shown
