"""The makeflux command line: a click group whose commands are thin calls into the pipeline."""

from __future__ import annotations

import sys
from typing import Any

import click

from makeflux import __version__, output
from makeflux.commands.docs import docs
from makeflux.commands.explain import explain
from makeflux.commands.init import init
from makeflux.commands.set_value import set_command
from makeflux.commands.check import check
from makeflux.commands.plan import plan
from makeflux.commands.lint import lint
from makeflux.commands.render import render
from makeflux.commands.validate import validate
from makeflux.errors import EXIT_BAD_INPUT, MakefluxError


class MakefluxGroup(click.Group):
    """Turns user mistakes into one-line errors (exit 2) and hides tracebacks unless --debug."""

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
@click.pass_context
def cli(ctx: click.Context, debug: bool, quiet: bool, verbose: bool) -> None:
    """Render one cluster.yaml into a Flux-ready kubernetes/ tree.

    Exit status: 0 ok, 1 changes/drift/findings, 2 bad input or usage.
    Colour only on a terminal; NO_COLOR turns it off.
    Shell completion: eval "$(_MAKEFLUX_COMPLETE=bash_source makeflux)" (zsh_source, fish_source).
    """
    ctx.meta["makeflux.debug"] = debug
    if quiet and verbose:
        raise click.UsageError("--quiet and --verbose contradict each other; pick one")
    ctx.meta[output.VERBOSITY_KEY] = (
        output.QUIET if quiet else output.VERBOSE if verbose else output.NORMAL
    )


cli.add_command(render)
cli.add_command(lint)
cli.add_command(validate)
cli.add_command(plan)
cli.add_command(check)
cli.add_command(init)
cli.add_command(set_command)
cli.add_command(explain)
cli.add_command(docs)


def main() -> None:
    cli(prog_name="makeflux")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
