"""The error types a user can see. Each carries where (file:line) and what to do next."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Exit statuses shared by every command.
EXIT_OK = 0
EXIT_CHANGES = 1  # changes (plan --exit-code), drift (check), lint findings
EXIT_BAD_INPUT = 2  # bad input or usage
EXIT_INTERNAL = 3  # a bug in makeflux (or a plugin): never the user's input


def display_path(path: Path | str, base: Path | None = None) -> str:
    """A path as the user would type it: relative to the working directory (or `base`) when
    below it, else absolute."""
    path = Path(path)
    try:
        return path.resolve().relative_to((base or Path.cwd()).resolve()).as_posix()
    except (ValueError, OSError):
        return str(path)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the user's input, printed as one line."""

    message: str
    path: str | None = None
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        return f"{where}{self.message}"


class MakefluxError(Exception):
    """Bad input of any kind: printed one problem per line, never as a traceback."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, problems: str | Problem | Iterable[Problem]) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


class SettingsError(MakefluxError):
    """makeflux.toml / makejinja.toml is missing, malformed or names something that is not there."""


class DataError(MakefluxError):
    """A data file (cluster.yaml …) or a --set override cannot be loaded."""


class ValidationError(MakefluxError):
    """The data does not satisfy the JSON Schema."""


class SchemaError(MakefluxError):
    """The JSON Schema itself is broken."""


class TemplateError(MakefluxError):
    """One or more templates failed to load or render."""


class PluginError(MakefluxError):
    """A makejinja-style plugin could not be imported or constructed."""
