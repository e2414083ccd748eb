"""The makeflux command line: a click group whose commands are thin calls into the pipeline."""

from __future__ import annotations

import sys
from typing import Any

import click

from makeflux import __version__
from makeflux.commands.render import render
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
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Render one cluster.yaml into a Flux-ready kubernetes/ tree.

    Exit status: 0 ok, 1 changes/drift/findings, 2 bad input or usage.
    """
    ctx.meta["makeflux.debug"] = debug


cli.add_command(render)


def main() -> None:
    cli(prog_name="makeflux")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
