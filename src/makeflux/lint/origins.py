"""Which template line produced each line of a rendered file, for findings that name both.

The template is rendered once more in an overlay of the render's environment whose code
generator puts an invisible mark before every piece of output: template text carries its
template name and first line (a later line of the same text is counted by its newlines), an
expression its template name and line. Includes and macros are compiled by the same overlay,
so their lines are their own files'. The marks are then read off line by line. When the text
without marks is not exactly what was rendered (a filter that parsed or encoded a macro's
output, a test on a macro's emptiness), the mapping is not trusted and nothing is named.

Only files that have findings are rendered again: a clean tree costs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from makeflux.jinja_internals import output_marking_generator

if TYPE_CHECKING:
    import jinja2

    from makeflux.render import SourceFile
    from makeflux.settings import Settings

_MARK = "\x1e"
_MARK_PATTERN = re.compile("\x1e([TE])(\\d+)\x1f([^\x1e]*)\x1e")

Origin = tuple[str, int]  # (template name, line)


def _mark(kind: str, line: int, name: str) -> str:
    return f"{_MARK}{kind}{line}\x1f{name}{_MARK}"


def marking_environment(env: jinja2.Environment) -> jinja2.Environment | None:
    """An overlay of `env` whose templates mark their output (one per lint run: partials and
    macros are compiled once however many files are traced); None when the Jinja in use
    cannot mark (no template is named then)."""
    generator = output_marking_generator(_mark)
    if generator is None:
        return None
    marking = env.overlay()
    marking.code_generator_class = generator
    # Never share compiled code with the real render: neither its in-memory templates nor the
    # persistent cache may hand out (or receive) marked code.
    marking.cache = {}
    marking.bytecode_cache = None
    return marking


def read_origins(marked: str) -> tuple[str, list[Origin | None]]:
    """The text without marks, and for each of its lines the origin of its first non-blank
    character (of the line's start when it is blank)."""
    text: list[str] = []
    origins: list[Origin | None] = [None]
    current: Origin | None = None
    advancing = False  # inside template text, whose newlines are template lines too
    has_content = False  # the current output line has shown a non-blank character

    def emit(chunk: str) -> None:
        nonlocal current, has_content
        text.append(chunk)
        for piece in chunk.split("\n")[1:] if "\n" in chunk else ():
            if current is not None and advancing:
                current = (current[0], current[1] + 1)
            origins.append(current)
            has_content = bool(piece.strip())
        if "\n" not in chunk and chunk.strip():
            has_content = True

    position = 0
    for match in _MARK_PATTERN.finditer(marked):
        emit(marked[position : match.start()])
        current, advancing = (match.group(3), int(match.group(2))), match.group(1) == "T"
        if not has_content:
            origins[-1] = current
        position = match.end()
    emit(marked[position:])
    return "".join(text), origins


def template_origins(
    marking: jinja2.Environment | None,
    source: SourceFile,
    settings: Settings,
    rendered: str,
    context: Mapping[str, Any],
) -> list[Origin | None] | None:
    """Per output line (index 0 = line 1), the template name and line it came from; None when
    the template cannot be traced (the marked render failed or differs from `rendered`).
    `marking` comes from marking_environment()."""
    from makeflux.render import render_one

    if marking is None:
        return None
    try:
        marked = render_one(marking, source, settings, context)
    except Exception:
        return None
    text, origins = read_origins(marked)
    if text != rendered:
        return None
    return origins
