"""The makeflux command line: a click group whose commands are thin calls into the pipeline."""

from __future__ import annotations

import atexit
import gc
import importlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from makeflux import __version__, classcode, output
from makeflux.errors import EXIT_INTERNAL, MakefluxError, Problem

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
    "schemas": ("makeflux.commands.schemas", "schemas"),
    "cache": ("makeflux.commands.cache_cmd", "cache_group"),
}


class LazyCommands(dict[str, click.Command]):
    """click.Group.commands, complete, whose entries in COMMANDS are imported on first lookup.

    Looking one command up (what running it does) imports only that command; iterating, len()
    or keys() (--help, completion, code that lists `cli.commands`) imports them all.
    """

    def __missing__(self, name: str) -> click.Command:
        if name not in COMMANDS:
            raise KeyError(name)
        module, attribute = COMMANDS[name]
        with _collector_paused():
            command: click.Command = getattr(importlib.import_module(module), attribute)
        self[name] = command
        return command

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        try:
            return self[name]
        except KeyError:
            return default

    def __contains__(self, name: object) -> bool:
        return dict.__contains__(self, name) or name in COMMANDS

    def _load_all(self) -> None:
        for name in COMMANDS:
            self.get(name)

    def __iter__(self):  # type: ignore[no-untyped-def]
        self._load_all()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._load_all()
        return dict.__len__(self)

    def keys(self):  # type: ignore[no-untyped-def]
        self._load_all()
        return dict.keys(self)

    def values(self):  # type: ignore[no-untyped-def]
        self._load_all()
        return dict.values(self)

    def items(self):  # type: ignore[no-untyped-def]
        self._load_all()
        return dict.items(self)


# Set by main(): this process is the console script, which starts, runs one command and exits.
_ONE_COMMAND = False


@contextmanager
def _collector_paused() -> Iterator[None]:
    """In the console script, import a command's modules (Jinja, the pipeline: objects that live
    until the process exits) without the garbage collector, which would scan them ~30 times
    (~5 ms of a warm render) to free nothing, and freeze them so that it never scans them;
    their dataclasses run kept code (makeflux.classcode)."""
    if not _ONE_COMMAND or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        with classcode.kept():
            yield
    finally:
        gc.freeze()
        gc.enable()


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP: stopped like Ctrl-C, so what was written is recorded."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextmanager
def _stop_signals_interrupt() -> Iterator[None]:
    """While a command runs, SIGTERM and SIGHUP interrupt it as Ctrl-C does (the manifest then
    records the writes that completed) instead of killing the process mid-write."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, _frame: Any) -> None:
        raise Terminated(signum)

    previous = {}
    for signum in (signal.SIGTERM, signal.SIGHUP):
        previous[signum] = signal.signal(signum, interrupt)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class MakefluxGroup(click.Group):
    """Turns user mistakes into one-line errors (exit 2) and hides tracebacks unless --debug."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = LazyCommands(self.commands)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with _stop_signals_interrupt():
                return super().invoke(ctx)
        except MakefluxError as exc:
            if ctx.meta.get("makeflux.debug"):
                raise
            _report_error(ctx, exc.problems)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt as exc:
            if ctx.meta.get("makeflux.debug"):
                raise
            if isinstance(exc, Terminated):
                name = signal.Signals(exc.signum).name
                output.write(f"makeflux: stopped by {name}", err=True)
                ctx.exit(128 + exc.signum)
            output.write("makeflux: interrupted", err=True)
            ctx.exit(130)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            if ctx.meta.get("makeflux.debug"):
                raise
            message = (
                f"makeflux: internal error: {type(exc).__name__}: {exc} "
                "(rerun with --debug for the traceback, and please report it)"
            )
            _report_error(ctx, [Problem(message)])
            ctx.exit(EXIT_INTERNAL)


def _report_error(ctx: click.Context, problems: list[Problem]) -> None:
    """Every problem on stderr, one line each; with --format github or json also on stdout in
    that format, so a CI run that reads only those shows the reason."""
    output.error_lines([str(problem) for problem in problems])
    fmt = ctx.meta.get("makeflux.format")
    if fmt in ("github", "json"):
        from makeflux import report

        output.write(report.problems_text(problems, fmt))


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

    Exit status: 0 ok, 1 changes/drift/findings, 2 bad input or usage, 3 internal error.
    Colour only on a terminal; NO_COLOR turns it off.
    Shell completion: eval "$(_MAKEFLUX_COMPLETE=bash_source makeflux)" (zsh_source, fish_source).
    """
    ctx.meta["makeflux.debug"] = debug
    ctx.meta["makeflux.use_cache"] = not no_cache  # Settings.cache_dir None: commands.common
    if quiet and verbose:
        raise click.UsageError("--quiet and --verbose contradict each other; pick one")
    ctx.meta[output.VERBOSITY_KEY] = (
        output.QUIET if quiet else output.VERBOSE if verbose else output.NORMAL
    )
    if "MAKEFLUX_JOBS" in os.environ:  # checked up front: a bad value stops every command
        from makeflux import parallel

        jobs = parallel.jobs_description()
        if jobs is not None:
            output.detail(f"makeflux: {jobs}")


def main() -> None:
    """The console script: run the command, then leave without tearing the interpreter down.

    Freeing every object at exit takes 10-30 ms (more after a big render), each run, for
    nothing: output is flushed and atexit handlers run first, exactly as a normal exit would.
    """
    global _ONE_COMMAND
    _ONE_COMMAND = True
    try:
        cli(prog_name="makeflux")
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)  # what sys.exit does with a message
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe (makeflux plan | head): nothing left to say
        pass
    atexit._run_exitfuncs()
    os._exit(code)
