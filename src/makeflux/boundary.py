"""What makeflux may write or delete: decided here from the settings, never by the manifest.

A manifest is a committed file; merges and hand-resolved conflicts can put anything in it. So a
path is makeflux's to write or prune only when it lies under the output directory, inside no
version-control directory, and is none of the project's own files: the settings, data, schema,
manifest and lock, a template input, or a plugin's source. Symlinked directories on the way are
refused separately, where the disk is read (sync.py).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from makeflux.errors import display_path
from makeflux.settings import Settings

# Directories of version-control systems: nothing below them is ever generated.
VCS_DIRS = frozenset({".git", ".hg", ".svn", ".bzr", ".jj", "_darcs", ".pijul"})

LOCK_FILE = ".makeflux.lock"


@dataclass(frozen=True)
class Boundary:
    """The output directory and the project files inside or beside it that are never touched."""

    root: Path  # the output directory, resolved
    own_files: Mapping[Path, str] = field(default_factory=dict)  # resolved path → what it is
    own_dirs: tuple[tuple[Path, str], ...] = ()  # resolved directory → what it is

    def refusal(self, relative: str) -> str | None:
        """Why `relative` (posix, under the output) is not makeflux's to touch; None if it is."""
        parts = relative.split("/")
        for part in parts[:-1]:
            if part in VCS_DIRS:
                return f"is inside {part}/, which makeflux never touches"
        if parts[-1] in VCS_DIRS:
            return f"is {parts[-1]}, which makeflux never touches"
        # Lexical, on strings (called once per output file): the directories below the root are
        # checked for links where they are read.
        if "" in parts or "." in parts or ".." in parts:
            path = os.path.normpath(os.path.join(self._root_text, *parts))
        else:  # already normal: what normpath would give, without it (~2 µs a path)
            path = self._root_prefix + relative
        what = self._file_texts.get(path)
        if what is not None:
            return f"is {what}"
        for directory, what in self._dir_texts:
            if path == directory or path.startswith(directory + os.sep):
                return f"is inside {what}"
        return None

    @cached_property
    def _root_text(self) -> str:
        return str(self.root)

    @cached_property
    def _root_prefix(self) -> str:
        return os.path.join(os.path.normpath(self._root_text), "")

    @cached_property
    def _file_texts(self) -> dict[str, str]:
        return {str(path): what for path, what in self.own_files.items()}

    @cached_property
    def _dir_texts(self) -> tuple[tuple[str, str], ...]:
        return tuple((str(directory), what) for directory, what in self.own_dirs)


def boundary_for(
    settings: Settings,
    data_files: Iterable[Path] = (),
    plugins: Iterable[Any] = (),
    extra_files: Mapping[Path, str] | None = None,
) -> Boundary:
    """The Boundary of one run: its output, and every project file it read or keeps."""
    own_files: dict[Path, str] = {}

    def own(path: Path | None, what: str) -> None:
        if path is not None:
            own_files.setdefault(_resolved(path), what)

    own_dirs: list[tuple[Path, str]] = []
    own(settings.source, f"the settings file {display_path(settings.source or '')}")
    for path in (*settings.data, *data_files, *_flat(settings.file_data.values())):
        if path.is_dir():
            own_dirs.append((_resolved(path), f"the data directory {display_path(path)}/"))
        else:
            own(path, f"the data file {display_path(path)}")
    own(settings.schema, f"the schema {display_path(settings.schema or '')}")
    for path, what in (extra_files or {}).items():
        own(path, what)
    for file in plugin_files(plugins):
        own(file, f"the plugin source {display_path(file)}")
    for path in settings.inputs:
        resolved = _resolved(path)
        if path.is_dir():
            own_dirs.append((resolved, f"the template input {display_path(path)}/"))
        else:
            own_files.setdefault(resolved, f"the template {display_path(path)}")
    return Boundary(_resolved(settings.output), own_files, tuple(own_dirs))


def plugin_files(plugins: Iterable[Any]) -> list[Path]:
    """The source files of the modules that loaded plugin objects came from."""
    files = []
    for plugin in plugins:
        module = sys.modules.get(type(plugin).__module__)
        file = getattr(module, "__file__", None)
        if file:
            files.append(Path(file))
    return files


def _flat(groups: Iterable[Iterable[Path]]) -> list[Path]:
    return [path for group in groups for path in group]


def _resolved(path: Path) -> Path:
    return Path(os.path.realpath(path))


def inside(root_real: str, path: Path) -> bool:
    """True when `path`, with every link on the way followed, stays under `root_real`."""
    real = os.path.realpath(path)
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)
