"""Unified diffs as `git diff` shows them: the fewest changed lines, three lines of context, and
the hunk header naming the nearest line above it that starts a top-level key (git's default
"function" line)."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence

CONTEXT_LINES = 3  # git's default (diff.context)
_FUNCTION_LINE_CHARS = 80  # git cuts the hunk header's function line to this many bytes


def unified_diff(old: str, new: str, old_label: str, new_label: str) -> str:
    """The diff from `old` to `new`, empty when they are equal.

    difflib's own matcher reports lines that repeat often (YAML's `labels:`, `for: 15m`) as
    changed; Myers' algorithm, git's, keeps every line it can.
    """
    a = old.splitlines(keepends=True)
    b = new.splitlines(keepends=True)
    if a == b:
        return ""
    out = [f"--- {old_label}\n", f"+++ {new_label}\n"]
    for group in _hunks(_edit_script(a, b), CONTEXT_LINES):
        out.append(_hunk_header(group, a))
        for line in _hunk_lines(group, a, b):
            out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


# Myers' algorithm keeps a row of the edit graph per changed line: past this many changes (a
# file rewritten from scratch) difflib's matcher, without autojunk, is near enough.
_MAX_MINIMAL_CHANGES = 1000


Opcode = tuple[str, int, int, int, int]  # difflib's: (tag, i1, i2, j1, j2)


def _edit_script(a: list[str], b: list[str]) -> list[Opcode]:
    """A minimal edit script (Myers), its changes placed among equal lines as git places them,
    so a changed line among repeats is shown where git shows it."""
    changed = _myers(a, b, _MAX_MINIMAL_CHANGES)
    if changed is None:
        matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
        return [(tag, i1, i2, j1, j2) for tag, i1, i2, j1, j2 in matcher.get_opcodes()]
    deleted, inserted = changed
    _compact(_Side(a, deleted), _Side(b, inserted))
    _compact(_Side(b, inserted), _Side(a, deleted))
    return _opcodes(deleted, inserted)


def _hunks(codes: list[Opcode], context: int) -> Iterator[list[Opcode]]:
    """The script cut into hunks with `context` equal lines around each change (as
    difflib.SequenceMatcher.get_grouped_opcodes cuts it)."""
    codes = list(codes)
    if codes[0][0] == "equal":
        tag, i1, i2, j1, j2 = codes[0]
        codes[0] = (tag, max(i1, i2 - context), i2, max(j1, j2 - context), j2)
    if codes[-1][0] == "equal":
        tag, i1, i2, j1, j2 = codes[-1]
        codes[-1] = (tag, i1, min(i2, i1 + context), j1, min(j2, j1 + context))
    group: list[Opcode] = []
    for tag, i1, i2, j1, j2 in codes:
        if tag == "equal" and i2 - i1 > 2 * context:
            group.append((tag, i1, min(i2, i1 + context), j1, min(j2, j1 + context)))
            yield group
            group = []
            i1, j1 = max(i1, i2 - context), max(j1, j2 - context)
        group.append((tag, i1, i2, j1, j2))
    if group and not (len(group) == 1 and group[0][0] == "equal"):
        yield group


def _myers(a: Sequence[str], b: Sequence[str], limit: int) -> tuple[list[bool], list[bool]] | None:
    """Which lines of `a` are deleted and which of `b` inserted, in a shortest edit script."""
    n, m = len(a), len(b)
    start = 0
    while start < n and start < m and a[start] == b[start]:
        start += 1
    end_a, end_b = n, m
    while end_a > start and end_b > start and a[end_a - 1] == b[end_b - 1]:
        end_a, end_b = end_a - 1, end_b - 1
    x_lines, y_lines = a[start:end_a], b[start:end_b]
    size_x, size_y = len(x_lines), len(y_lines)
    deleted, inserted = [False] * n, [False] * m
    offset = size_x + size_y + 1
    frontier = [0] * (2 * offset + 1)  # V: furthest x on each diagonal k, at index k + offset
    trace: list[list[int]] = []
    for depth in range(min(size_x + size_y, limit) + 1):
        trace.append(frontier[offset - depth : offset + depth + 1])  # diagonals -depth..depth
        for k in range(-depth, depth + 1, 2):
            if k == -depth or (k != depth and frontier[k - 1 + offset] < frontier[k + 1 + offset]):
                x = frontier[k + 1 + offset]  # down: an insertion
            else:
                x = frontier[k - 1 + offset] + 1  # right: a deletion
            y = x - k
            while x < size_x and y < size_y and x_lines[x] == y_lines[y]:
                x, y = x + 1, y + 1
            frontier[k + offset] = x
            if x >= size_x and y >= size_y:
                _backtrack(trace, depth, size_x, size_y, start, deleted, inserted)
                return deleted, inserted
    return None


def _backtrack(
    trace: list[list[int]],
    depth: int,
    x: int,
    y: int,
    start: int,
    deleted: list[bool],
    inserted: list[bool],
) -> None:
    """Walk the edit graph back from (x, y), marking each step's line."""
    for d in range(depth, 0, -1):
        frontier = trace[d]  # diagonal k at index k + d
        k = x - y
        down = k == -d or (k != d and frontier[k - 1 + d] < frontier[k + 1 + d])
        prev_k = k + 1 if down else k - 1
        prev_x = frontier[prev_k + d]
        prev_y = prev_x - prev_k
        if down:  # (prev_x, prev_y) → (prev_x, prev_y + 1), then equal lines to (x, y)
            inserted[start + prev_y] = True
        else:
            deleted[start + prev_x] = True
        x, y = prev_x, prev_y


class _Side:
    """One file's lines and changed-line marks, with git's group moves (xdiff's xdl_change_compact):
    a group is the run of changed lines between two unchanged ones, possibly empty, and the k-th
    group of one file faces the k-th group of the other."""

    def __init__(self, lines: Sequence[str], changed: list[bool]) -> None:
        self.lines, self.changed = lines, changed
        self.start = self.end = 0
        self._extend_end()

    def _extend_end(self) -> None:
        while self.end < len(self.lines) and self.changed[self.end]:
            self.end += 1

    def _extend_start(self) -> None:
        while self.start > 0 and self.changed[self.start - 1]:
            self.start -= 1

    def next(self) -> bool:
        if self.end == len(self.lines):
            return False
        self.start = self.end = self.end + 1
        self._extend_end()
        return True

    def previous(self) -> bool:
        if self.start == 0:
            return False
        self.start = self.end = self.start - 1
        self._extend_start()
        return True

    def slide_down(self) -> bool:
        if self.end < len(self.lines) and self.lines[self.start] == self.lines[self.end]:
            self.changed[self.start], self.changed[self.end] = False, True
            self.start, self.end = self.start + 1, self.end + 1
            self._extend_end()
            return True
        return False

    def slide_up(self) -> bool:
        if self.start > 0 and self.lines[self.start - 1] == self.lines[self.end - 1]:
            self.changed[self.start - 1], self.changed[self.end - 1] = True, False
            self.start, self.end = self.start - 1, self.end - 1
            self._extend_start()
            return True
        return False


def _compact(side: _Side, other: _Side) -> None:
    """Slide each group of changes in `side` as git does: down as far as it goes, unless it can
    line up with a group of changes in `other` (then a change reads as a replacement)."""
    while True:
        if side.end > side.start:
            while True:
                size = side.end - side.start
                end_matching_other = -1
                while side.slide_up():
                    other.previous()
                earliest_end = side.end
                if other.end > other.start:
                    end_matching_other = side.end
                while side.slide_down():
                    other.next()
                    if other.end > other.start:
                        end_matching_other = side.end
                if size == side.end - side.start:
                    break
            if side.end == earliest_end:
                pass  # it cannot move
            elif end_matching_other != -1:
                while other.end == other.start:
                    side.slide_up()
                    other.previous()
            else:
                best = _best_shift(side.lines, side.end, side.end - side.start, earliest_end)
                while side.end > best:
                    side.slide_up()
                    other.previous()
        if not side.next():
            return
        other.next()


# git's indent heuristic (xdiff's xdl_change_compact, on by default since git 2.14): where a
# group of added or deleted lines could sit at several places among equal lines, pick the one
# whose two edges read best: at blank lines and at the start of a less indented block.
_MAX_INDENT = 200
_MAX_BLANKS = 20
_MAX_SLIDING = 100
_START_OF_FILE_PENALTY = 1
_END_OF_FILE_PENALTY = 21
_TOTAL_BLANK_WEIGHT = -30
_POST_BLANK_WEIGHT = 6
_RELATIVE_INDENT_PENALTY = -4
_RELATIVE_INDENT_WITH_BLANK_PENALTY = 10
_RELATIVE_OUTDENT_PENALTY = 24
_RELATIVE_OUTDENT_WITH_BLANK_PENALTY = 17
_RELATIVE_DEDENT_PENALTY = 23
_RELATIVE_DEDENT_WITH_BLANK_PENALTY = 17
_INDENT_WEIGHT = 60


def _indent(line: str) -> int:
    """Columns of leading white space (tabs to multiples of 8); -1 for a blank line."""
    width = 0
    for char in line:
        if not char.isspace():
            return width
        if char == " ":
            width += 1
        elif char == "\t":
            width += 8 - width % 8
        if width >= _MAX_INDENT:
            return _MAX_INDENT
    return -1


def _split_score(lines: Sequence[str], split: int) -> tuple[int, int]:
    """(effective indent, penalty) of cutting `lines` before index `split`."""
    end_of_file = split >= len(lines)
    indent = -1 if end_of_file else _indent(lines[split])
    pre_blank, pre_indent = _nearest_indent(lines, range(split - 1, -1, -1))
    post_blank, post_indent = _nearest_indent(lines, range(split + 1, len(lines)))

    penalty = 0
    if pre_indent == -1 and pre_blank == 0:
        penalty += _START_OF_FILE_PENALTY
    if end_of_file:
        penalty += _END_OF_FILE_PENALTY
    blank_after = 1 + post_blank if indent == -1 else 0
    total_blank = pre_blank + blank_after
    penalty += _TOTAL_BLANK_WEIGHT * total_blank + _POST_BLANK_WEIGHT * blank_after
    effective = indent if indent != -1 else post_indent
    blanks = total_blank != 0
    if effective == -1 or pre_indent == -1 or effective == pre_indent:
        pass
    elif effective > pre_indent:
        penalty += _RELATIVE_INDENT_WITH_BLANK_PENALTY if blanks else _RELATIVE_INDENT_PENALTY
    elif post_indent != -1 and post_indent > effective:
        penalty += _RELATIVE_OUTDENT_WITH_BLANK_PENALTY if blanks else _RELATIVE_OUTDENT_PENALTY
    else:
        penalty += _RELATIVE_DEDENT_WITH_BLANK_PENALTY if blanks else _RELATIVE_DEDENT_PENALTY
    return effective, penalty


def _nearest_indent(lines: Sequence[str], indexes: range) -> tuple[int, int]:
    """(blank lines passed, indent of the first non-blank line) walking `indexes`; after
    _MAX_BLANKS blank lines the indent counts as 0, and -1 when the walk runs out."""
    blanks = 0
    for index in indexes:
        indent = _indent(lines[index])
        if indent != -1:
            return blanks, indent
        blanks += 1
        if blanks == _MAX_BLANKS:
            return blanks, 0
    return blanks, -1


def _best_shift(lines: Sequence[str], end: int, size: int, earliest_end: int) -> int:
    """The end index, from `earliest_end` to `end`, where a group of `size` lines reads best."""
    best_end, best_score = -1, (0, 0)
    for shift in range(max(earliest_end, end - size - 1, end - _MAX_SLIDING), end + 1):
        indent_a, penalty_a = _split_score(lines, shift)
        indent_b, penalty_b = _split_score(lines, shift - size)
        score = (indent_a + indent_b, penalty_a + penalty_b)
        compared = _INDENT_WEIGHT * ((score[0] > best_score[0]) - (score[0] < best_score[0]))
        if best_end == -1 or compared + score[1] - best_score[1] <= 0:
            best_end, best_score = shift, score
    return best_end


def _opcodes(deleted: list[bool], inserted: list[bool]) -> list[Opcode]:
    """difflib-style opcodes from the changed-line marks of both sides."""
    codes: list[Opcode] = []
    i = j = 0
    n, m = len(deleted), len(inserted)
    while i < n or j < m:
        i1, j1 = i, j
        while i < n and j < m and not deleted[i] and not inserted[j]:
            i, j = i + 1, j + 1
        if i > i1:
            codes.append(("equal", i1, i, j1, j))
        i1, j1 = i, j
        while i < n and deleted[i]:
            i += 1
        while j < m and inserted[j]:
            j += 1
        if i > i1 or j > j1:
            tag = "replace" if i > i1 and j > j1 else ("delete" if i > i1 else "insert")
            codes.append((tag, i1, i, j1, j))
    return codes


def _hunk_header(group: Sequence[Opcode], a: list[str]) -> str:
    first, last = group[0], group[-1]
    old_range = _range(first[1], last[2])
    new_range = _range(first[3], last[4])
    function = _function_line(a, first[1])
    return f"@@ -{old_range} +{new_range} @@{' ' + function if function else ''}\n"


def _range(start: int, stop: int) -> str:
    """`start,length` 1-based as diff writes it: `5` for one line, `4,0` for none after line 4."""
    length = stop - start
    if length == 1:
        return str(start + 1)
    return f"{start if length == 0 else start + 1},{length}"


def _function_line(a: list[str], hunk_start: int) -> str:
    """The nearest line before the hunk that starts with a letter, `_` or `$` (git's default)."""
    for index in range(hunk_start - 1, -1, -1):
        line = a[index]
        if line[:1].isalpha() or line[:1] in ("_", "$"):
            text = line.encode("utf-8")[:_FUNCTION_LINE_CHARS].decode("utf-8", "ignore")
            return text.rstrip()
    return ""


def _hunk_lines(group: Sequence[Opcode], a: list[str], b: list[str]) -> Iterator[str]:
    for tag, i1, i2, j1, j2 in group:
        if tag == "equal":
            yield from (" " + line for line in a[i1:i2])
            continue
        yield from ("-" + line for line in a[i1:i2])
        yield from ("+" + line for line in b[j1:j2])
