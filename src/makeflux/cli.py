"""The makeflux command line: a click group whose commands are thin calls into the pipeline."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from makeflux import __version__, cache, output
from makeflux.errors import EXIT_BAD_INPUT, MakefluxError

# Command name → (module, attribute). A command's module is imported only when that command
# runs (or for --help), so `makeflux render` does not pay for set's, docs' or explain's imports.
# Register a new command here.
COMMANDS: dict[str, tuple[str, str]] = {
    "render": ("makeflux.commands.render", "render"),
    "lint": ("makeflux.commands.lint", "lint"),
    "validate": ("makeflux.commands.validate", "validate"),
    "plan": ("makeflux.commands.plan", "plan"),
    "check": ("makeflux.commands.check", "check"),
    "init": ("makeflux.commands.init", "init"),
    "set": ("makeflux.commands.set_value", "set_command"),
    "explain": ("makeflux.commands.explain", "explain"),
    "docs": ("makeflux.commands.docs", "docs"),
}


class MakefluxGroup(click.Group):
    """Turns user mistakes into one-line errors (exit 2) and hides tracebacks unless --debug."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attribute = COMMANDS[cmd_name]
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return self.commands.get(cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MakefluxError as exc:
            if ctx.meta.get("makeflux.debug"):
                raise
            for line in exc.lines():
                click.echo(line, err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            if ctx.meta.get("makeflux.debug"):
                raise
            click.echo("makeflux: interrupted", err=True)
            ctx.exit(130)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            if ctx.meta.get("makeflux.debug"):
                raise
            click.echo(
                f"makeflux: internal error: {type(exc).__name__}: {exc} "
                "(rerun with --debug for the traceback, and please report it)",
                err=True,
            )
            ctx.exit(EXIT_BAD_INPUT)


@click.group(cls=MakefluxGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="makeflux")
@click.option("--debug", is_flag=True, help="Show Python tracebacks for errors.")
@click.option("-q", "--quiet", is_flag=True, help="Print only results and errors.")
@click.option("-v", "--verbose", is_flag=True, help="Also say which files each step uses.")
@click.option(
    "--no-cache",
    is_flag=True,
    help="Compile every template afresh; neither read nor write the compiled-template cache "
    "($MAKEFLUX_CACHE_DIR, else $XDG_CACHE_HOME/makeflux or ~/.cache/makeflux).",
)
@click.pass_context
def cli(ctx: click.Context, debug: bool, quiet: bool, verbose: bool, no_cache: bool) -> None:
    """Render one cluster.yaml into a Flux-ready kubernetes/ tree.

    Exit status: 0 ok, 1 changes/drift/findings, 2 bad input or usage.
    Colour only on a terminal; NO_COLOR turns it off.
    Shell completion: eval "$(_MAKEFLUX_COMPLETE=bash_source makeflux)" (zsh_source, fish_source).
    """
    ctx.meta["makeflux.debug"] = debug
    cache.set_enabled(not no_cache)  # set on every invocation: in-process callers run many
    if quiet and verbose:
        raise click.UsageError("--quiet and --verbose contradict each other; pick one")
    ctx.meta[output.VERBOSITY_KEY] = (
        output.QUIET if quiet else output.VERBOSE if verbose else output.NORMAL
    )


def main() -> None:
    cli(prog_name="makeflux")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
