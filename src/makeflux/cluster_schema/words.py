"""How keys and values are spelled in messages and in the variables reference."""

from __future__ import annotations

import json
import re
from typing import Any

from makeflux.yamlsource import KeyPath


def dotted(path: KeyPath) -> str:
    """A key path the way a user writes it: `nodes[0].address`."""
    text = ""
    for step in path:
        if isinstance(step, int):
            text += f"[{step}]"
        else:
            text += ("." if text else "") + printable(str(step))
    return text or "(top level)"


def printable(text: str) -> str:
    """`text` as is, or quoted with escapes when it is empty or holds invisible characters."""
    if text and text.isprintable() and text.strip() == text:
        return text
    return escaped(text)


def escaped(text: str) -> str:
    """Double-quoted like a YAML string, every invisible character spelled out (\\t, \\x85)."""
    shown = []
    for char in text:
        if char in '"\\':
            shown.append("\\" + char)
        elif char.isprintable():
            shown.append(char)
        else:
            shown.append(char.encode("unicode_escape").decode("ascii"))
    return '"' + "".join(shown) + '"'


def show(value: Any) -> str:
    """A value as YAML would spell it."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        if not text.isprintable():
            return escaped(text)
        return "'" + text.replace("'", "''") + "'"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)


def key_text(key: Any) -> str:
    """A non-string key as the user most likely wrote it: 1, true, 2024-01-01."""
    return show(key) if isinstance(key, bool) or key is None else str(key)


def or_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def and_list(items: list[str]) -> str:
    if len(items) <= 1:  # nothing to join (an empty rule says "", its caller words it)
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def did_you_mean(value: Any, choices: list[str]) -> str:
    match = closest(value, choices) if isinstance(value, str) else None
    return f"; did you mean '{match}'?" if match else ""


def closest(word: str, choices: list[str]) -> str | None:
    """The choice `word` is most likely a typo of, ignoring case ('DSR' → 'dsr')."""
    import difflib  # only when there is a mistake to explain

    by_lower = {choice.lower(): choice for choice in choices}
    matches = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[matches[0]] if matches else None


def first_sentence(text: str) -> str:
    """The first sentence of a description, on one line."""
    match = re.match(r"(.+?[.!?])(\s|$)", text, re.S)
    return (match.group(1) if match else text).replace("\n", " ")


def format_value(value: Any) -> str:
    """A value the way cluster.yaml would spell it: true, 90, 7d, [a, b]."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return value if value else '""'
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(", ", ": "))
    return str(value)
