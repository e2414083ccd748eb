"""The error types a user can see. Each carries where (file:line) and what to do next."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Exit statuses shared by every command.
EXIT_OK = 0
EXIT_CHANGES = 1  # changes (plan --exit-code), drift (check), lint findings
EXIT_BAD_INPUT = 2  # bad input or usage
EXIT_INTERNAL = 3  # a bug in makeflux (or a plugin): never the user's input


def display_path(path: Path | str, base: Path | None = None) -> str:
    """A path as the user would type it: relative to the working directory (or `base`), with
    `..` for one above it in the same git repository (`../makeflux.toml`), as git shows paths,
    or at most two levels above it elsewhere; absolute otherwise. Links in the path are kept as
    written: the message is about the name the user knows."""
    path = Path(path)
    try:
        here = Path(os.path.abspath(base or Path.cwd()))
        written = Path(os.path.abspath(path))
        if not written.is_relative_to(here) and path.resolve().is_relative_to(here.resolve()):
            written, here = path.resolve(), here.resolve()  # reached through a linked cwd
    except (OSError, RuntimeError):
        return str(path)
    if written.is_relative_to(here):
        return written.relative_to(here).as_posix()
    relative = Path(os.path.relpath(written, here))
    root = repository_root(here)
    in_repository = root is not None and written.is_relative_to(root)
    if in_repository or relative.parts[: _MAX_CLIMB + 1].count("..") <= _MAX_CLIMB:
        return relative.as_posix()
    return str(written)


# Outside the repository, `../../x` still reads better than an absolute path; deeper climbs
# (a temporary directory seen from a checkout) do not.
_MAX_CLIMB = 2


_ROOTS: dict[Path, Path | None] = {}


def repository_root(directory: Path) -> Path | None:
    """The nearest directory at or above `directory` (absolute) holding `.git`; None if none."""
    if directory not in _ROOTS:
        _ROOTS[directory] = next(
            (d for d in (directory, *directory.parents) if (d / ".git").exists()), None
        )
    return _ROOTS[directory]


def reason(exc: Exception) -> str:
    """Why reading failed, without the absolute file name OSError's text carries."""
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text; save it as UTF-8"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


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


class LockedError(MakefluxError):
    """Another makeflux run holds the lock."""


class WriteError(MakefluxError):
    """The output tree could not be written (disk full, permissions ...)."""


class HandEditError(MakefluxError):
    """render would overwrite or delete files makeflux did not write (or no longer wrote)."""


class MassPruneError(MakefluxError):
    """render or check would delete most of what makeflux generated: more likely lost input."""


class ManifestError(MakefluxError):
    """The manifest exists but cannot be trusted (unreadable, not JSON, wrong shape)."""


# In the order they are tried: a bool is also an int.
_KINDS: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),
    (int, "whole number"),
    (float, "number"),
    (str, "string"),
    (Mapping, "mapping"),
    (list, "list"),
    (type(None), "null"),
)


def kind_of(value: Any) -> str:
    """What a value read from YAML, JSON or TOML is, in the words messages use."""
    for kind, words in _KINDS:
        if isinstance(value, kind):
            return words
    return {"date": "date", "datetime": "date and time"}.get(type(value).__name__, "value")


def with_article(noun: str) -> str:
    return ("an " if noun[:1] in "aeiou" else "a ") + noun
