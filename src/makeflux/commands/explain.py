"""makeflux explain [KEY]: what a variable means, its limits and rules, and who uses it."""

from __future__ import annotations

import difflib
import textwrap
from pathlib import Path
from typing import Any

import click
from click.shell_completion import CompletionItem

from makeflux import output
from makeflux.cluster_schema.variables import (
    SchemaInfo,
    Variable,
    is_missing,
    load_schema_info,
    lookup,
    template_usage,
)
from makeflux.cluster_schema.words import format_value
from makeflux.commands.common import command_settings, config_option
from makeflux.data import LoadedData, load_data
from makeflux.errors import MakefluxError, Problem
from makeflux.errors import display_path as display
from makeflux.settings import Settings

LABEL_WIDTH = 10


def _complete_key(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Shell completion: the schema's variable names."""
    try:
        settings = command_settings(ctx.params.get("config"))
        names = load_schema_info(settings).variables
    except MakefluxError:
        return []
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]


@click.command("explain")
@click.argument("key", required=False, shell_complete=_complete_key)
@config_option
def explain(key: str | None, config: Path | None) -> None:
    """Explain a cluster.yaml variable; without KEY, list every variable and its value."""
    settings = command_settings(config)
    info = load_schema_info(settings)
    output.detail(f"makeflux: schema {display(info.path)}")
    data = _current_data(settings)
    if key is None:
        output.result(_table(info, data))
        return
    variable = info.variables.get(key)
    if variable is None:
        raise MakefluxError(Problem(_unknown_message(key, info)))
    output.result(_describe(variable, info, data, template_usage(settings)))


def _current_data(settings: Settings) -> LoadedData:
    """cluster.yaml as it is now; a data file that does not exist yet counts as empty."""
    existing = tuple(path for path in settings.data if path.exists())
    for path in settings.data:
        if not path.exists():
            output.detail(f"makeflux: {display(path)} does not exist yet; showing defaults")
    return load_data(settings, data_files=existing)


def _unknown_message(key: str, info: SchemaInfo) -> str:
    message = f"makeflux explain: unknown variable '{key}'"
    guess = difflib.get_close_matches(key, list(info.variables), n=1, cutoff=0.6)
    if guess:
        message += f"; did you mean '{guess[0]}'?"
    return message + " ('makeflux explain' lists every variable)"


def _value_and_source(variable: Variable, data: LoadedData) -> tuple[str, str]:
    value = lookup(data.values, variable.name)
    top = variable.name.split(".", 1)[0]
    if not is_missing(value):
        origin = data.origins.get(top)
        return format_value(value), display(origin) if origin else "settings"
    if variable.has_default:
        return format_value(variable.default), "default"
    return "-", "not set"


def _table(info: SchemaInfo, data: LoadedData) -> str:
    leaves = [v for v in info.variables.values() if "properties" not in v.schema]
    rows = [(v.name, *_value_and_source(v, data)) for v in leaves]
    name_width = max([len("VARIABLE"), *(len(r[0]) for r in rows)])
    value_width = min(50, max([len("VALUE"), *(len(r[1]) for r in rows)]))
    lines = [output.style(f"{'VARIABLE':<{name_width}}  {'VALUE':<{value_width}}  FROM", bold=True)]
    for name, value, source in rows:
        source_text = output.style(source, dim=True) if source == "default" else source
        lines.append(f"{name:<{name_width}}  {value:<{value_width}}  {source_text}")
    lines.append("")
    lines.append("makeflux explain KEY shows what a variable does and which templates use it.")
    return "\n".join(lines)


def _describe(
    variable: Variable, info: SchemaInfo, data: LoadedData, usage: dict[str, list[str]]
) -> str:
    lines = [output.style(variable.name, bold=True)]
    if variable.description:
        lines.extend(
            textwrap.wrap(variable.description, 88, initial_indent="  ", subsequent_indent="  ")
        )
    lines.append("")

    def field(label: str, values: list[str]) -> None:
        for index, value in enumerate(values):
            head = f"{label}:" if index == 0 else ""
            lines.append(f"  {head:<{LABEL_WIDTH}}{value}")

    field("type", [variable.type_text])
    field("default", [format_value(variable.default) if variable.has_default else "none"])
    if variable.required:
        field("required", ["yes"])
    anything = "true or false" if variable.type_text == "boolean" else "any " + variable.type_text
    field("allowed", variable.constraints() or [anything])
    value, source = _value_and_source(variable, data)
    field("current", [f"{value} ({source})" if source != "not set" else "not set"])
    field("rules", [rule.text for rule in info.rules_for(variable.name)] or ["none"])
    users = usage.get(variable.name.split(".", 1)[0], [])
    field("used by", users or ["no template (lint reports unused variables)"])
    return "\n".join(lines)
