"""Where a mistake is: the data file and line (or --set option) that set the key it is about."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from makeflux.cluster_schema.words import escaped, key_text
from makeflux.errors import Problem, display_path
from makeflux.yamlsource import YAML_SUFFIXES, KeyPath, load_documents, locate

if TYPE_CHECKING:
    from makeflux.cluster_schema.messages import Mistake
    from makeflux.data import LoadedData
    from makeflux.settings import Settings


class Locator:
    """Turns a key path into the file (or --set option) and line that set it."""

    def __init__(self, settings: Settings, data: LoadedData) -> None:
        self.settings = settings
        self.data = data
        self.documents: dict[Path, list[Any] | None] = {}
        self.file_order = {display_path(f): n for n, f in enumerate(data.files)}

    def problem(self, mistake: Mistake) -> Problem:
        override = self._override(mistake.at) or self._override(mistake.about)
        if override is not None:
            key, raw = override
            given = f"{key}={raw}"
            shown = given if given.isprintable() else escaped(given)
            return Problem(mistake.text, f"--set {shown}")
        if mistake.at and self._from_data_vars(mistake.at) and self.settings.source:
            return Problem(mistake.text, display_path(self.settings.source))
        top = mistake.at[0] if mistake.at else None
        origin = self.data.origins.get(top) if isinstance(top, str) else None
        if origin is None and mistake.at:
            origin = self._origin_by_text(mistake.at[0])
        if origin is None:
            main = self.main_file()
            return Problem(mistake.text, display_path(main) if main else None)
        if origin.suffix not in YAML_SUFFIXES:
            return Problem(mistake.text, display_path(origin))
        documents = self._documents(origin)
        position = locate(documents, mistake.at, at_value=mistake.at_value) if documents else None
        line, column = position if position else (None, None)
        return Problem(mistake.text, display_path(origin), line, column)

    def order(self, problem: Problem) -> tuple[int, int, int, str]:
        if problem.path is None or problem.path.startswith("--set "):
            file_rank = len(self.file_order) + 1
        else:
            file_rank = self.file_order.get(problem.path, len(self.file_order))
        return (file_rank, problem.line or 0, problem.column or 0, problem.message)

    def _override(self, path: KeyPath) -> tuple[str, str] | None:
        text_path = [str(p) for p in path]
        best: tuple[str, str] | None = None
        for key, raw in self.data.overrides.items():
            parts = key.split(".")
            shorter = min(len(parts), len(text_path))
            matches = shorter and parts[:shorter] == text_path[:shorter]
            if matches and (best is None or len(key) > len(best[0])):
                best = (key, raw)
        return best

    def _from_data_vars(self, path: KeyPath) -> bool:
        text_path = [str(p) for p in path]
        for key in self.settings.data_vars:
            parts = key.split(".")
            shorter = min(len(parts), len(text_path))
            if parts[:shorter] == text_path[:shorter]:
                return True
        return False

    def _origin_by_text(self, key: Any) -> Path | None:
        for origin_key, origin in self.data.origins.items():
            if key_text(origin_key) == str(key):
                return origin
        return None

    def main_file(self) -> Path | None:
        for path in self.data.files:
            if path.suffix in YAML_SUFFIXES:
                return path
        return self.data.files[0] if self.data.files else None

    def _documents(self, path: Path) -> list[Any] | None:
        if path not in self.documents:
            self.documents[path] = load_documents(path)
        return self.documents[path]
