"""makeflux lint: checks on the rendered tree and the templates (see engine.py).

The package is imported by settings loading too (lint.config checks [makeflux.lint] for every
command), so it stays light: the rules load on first use of anything below.
"""

from __future__ import annotations

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    if name.startswith("__") or name == "engine":  # asked by the import system itself
        raise AttributeError(name)
    return getattr(importlib.import_module("makeflux.lint.engine"), name)
