"""output writes: what each verbosity shows, on which stream, and colour only on a terminal."""

from __future__ import annotations

import io

import click
import pytest
from click.testing import CliRunner

from makeflux import output


def run_with(verbosity: int) -> tuple[str, str]:
    @click.command()
    @click.pass_context
    def command(ctx: click.Context) -> None:
        ctx.meta[output.VERBOSITY_KEY] = verbosity
        output.info("info")
        output.info_lines(["info 2"])
        output.detail("detail")
        output.result("result")
        output.write("write")
        output.write_lines(["lines 1", "lines 2"], err=True)
        output.error_lines(["error"])

    result = CliRunner().invoke(command, [])
    assert result.exit_code == 0, result.output
    return result.stdout, result.stderr


def test_quiet_keeps_results_and_errors_only() -> None:
    assert run_with(output.QUIET) == ("result\nwrite\n", "lines 1\nlines 2\nerror\n")


def test_normal_adds_progress_and_verbose_adds_detail_on_stderr() -> None:
    stdout, stderr = run_with(output.NORMAL)
    assert stdout == "info\ninfo 2\nresult\nwrite\n"
    assert stderr == "lines 1\nlines 2\nerror\n"
    stdout, stderr = run_with(output.VERBOSE)
    assert stdout == "info\ninfo 2\nresult\nwrite\n"
    assert stderr == "detail\nlines 1\nlines 2\nerror\n"


def test_outside_the_cli_verbosity_is_normal() -> None:
    assert output.verbosity() == output.NORMAL


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert output.colour_enabled(Terminal())
    assert not output.colour_enabled(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not output.colour_enabled(Terminal())
