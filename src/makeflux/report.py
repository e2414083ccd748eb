"""Plans and problems → text, diffs, JSON and GitHub annotations: every user-facing write."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from makeflux import gitdiff, output
from makeflux.errors import Problem
from makeflux.errors import display_path as display
from makeflux.sync import CREATE, DELETE, ENCRYPTED, RECREATE, UNCHANGED, UPDATE, Plan

if TYPE_CHECKING:  # the lint package is heavy to import; plan and --no-lint never need it
    from makeflux.lint.findings import Finding

CHECK_HINT = "run makeflux render and commit"

LEFTOVER, PLAINTEXT = "leftover", "plaintext"  # check's findings beyond the rendered content
_SYMBOLS = {CREATE: "+", RECREATE: "+", UPDATE: "~", DELETE: "-", LEFTOVER: "-", PLAINTEXT: "!"}
_COLOURS = {
    CREATE: "green",
    RECREATE: "green",
    UPDATE: "yellow",
    DELETE: "red",
    LEFTOVER: "red",
    PLAINTEXT: "red",
}
_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")


@dataclass(frozen=True)
class Change:
    """One path that differs between the rendered tree and the disk, ready to print."""

    path: str  # as the user sees it (relative to the working directory when below it)
    relative: str  # relative to the output directory
    action: str  # CREATE / RECREATE / UPDATE / DELETE, or "conflict"
    note: str = ""
    diff: str | None = None  # unified diff, for UPDATE of text files


def use_colour(stream: IO[Any] | None = None) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    return output.colour_enabled(stream)


def summary_line(plan: Plan) -> str:
    """One line saying what a render did."""
    counts = [
        f"{len(plan.paths(CREATE, RECREATE))} created",
        f"{len(plan.paths(UPDATE))} updated",
        f"{len(plan.paths(DELETE))} deleted",
        f"{len(plan.paths(UNCHANGED))} unchanged",
    ]
    skipped = len(plan.tree.skipped_empty)
    if skipped:
        counts.append(f"{skipped} skipped (empty)")
    encrypted = len(plan.paths(ENCRYPTED))
    if encrypted:
        counts.append(f"{encrypted} skipped (encrypted)")
    return "makeflux: " + ", ".join(counts)


def recreated_lines(plan: Plan) -> list[str]:
    """A line per manifest-listed file the user deleted, which render writes again."""
    return [
        f"makeflux: recreated {display(plan.tree.root / p)} (makeflux generated it; it was "
        "missing on disk)"
        for p in plan.paths(RECREATE)
    ]


def secret_lines(plan: Plan) -> list[str]:
    """The warning after a render that wrote sops files in plaintext."""
    written = [display(plan.tree.root / p) for p in plan.secrets_written()]
    if not written:
        return []
    shown = " ".join(written[:_SECRETS_SHOWN])
    more = len(written) - _SECRETS_SHOWN
    if more > 0:  # one line stays readable; `makeflux check` lists every one
        shown += f" … and {more} more: makeflux check lists them"
    return [
        f"makeflux: {len(written)} secret file(s) written in plaintext: encrypt them before "
        f"committing (sops --encrypt --in-place {shown})"
    ]


_SECRETS_SHOWN = 5


def plan_changes(plan: Plan, *, for_check: bool = False, with_diff: bool = True) -> list[Change]:
    """Every create/update/delete (and conflict) in the plan, sorted by path; for check also
    leftovers of an interrupted render and secrets in plaintext."""
    changes: list[Change] = []
    root = plan.tree.root
    if for_check:
        for path in plan.leftovers:
            changes.append(
                Change(
                    display(path),
                    display(path, root),
                    LEFTOVER,
                    "left by an interrupted render; makeflux render removes it",
                )
            )
        for relative in plan.plaintext_secrets:
            if relative in plan.actions and plan.actions[relative] != UNCHANGED:
                continue  # already listed as drift
            command = f"sops --encrypt --in-place {display(root / relative)}"
            changes.append(
                Change(
                    display(root / relative),
                    relative,
                    PLAINTEXT,
                    f"a secret in plaintext (no sops metadata); encrypt it before committing: "
                    f"{command}",
                )
            )
    for relative in plan.paths(CREATE, RECREATE, UPDATE, DELETE):
        action = plan.actions[relative]
        if for_check and action == UPDATE and plan.unverifiable(relative):
            continue  # listed under skipped: ciphertext cannot be compared
        note, diff = "", None
        if action == RECREATE:
            note = "missing on disk; render recreates it"
        elif action == UPDATE and relative in plan.encrypted_on_disk:
            note = (
                "encrypted on disk; its rendered plaintext changed since the last render"
                if not plan.unverifiable(relative)
                else "encrypted on disk; render writes the new plaintext"
            )
        elif action == UPDATE and with_diff:
            diff = unified_diff(
                root / relative, plan.tree.files[relative], display(root / relative)
            )
        changes.append(Change(display(root / relative), relative, action, note, diff))
    for conflict in plan.conflicts:
        changes.append(
            Change(
                display(root / conflict.path),
                conflict.path,
                "conflict",
                conflict.reason
                + (
                    "; render stops here unless --force"
                    if conflict.forceable
                    else "; render stops here"
                ),
            )
        )
    return sorted(changes, key=lambda c: c.relative)


def skipped(plan: Plan, *, for_check: bool = False) -> list[tuple[str, str]]:
    """(path, reason) for outputs that were not compared: encrypted or rendered empty."""
    root = plan.tree.root
    items = [(display(root / p), "encrypted") for p in plan.paths(ENCRYPTED)]
    if for_check:
        items += [
            (display(root / p), "encrypted") for p in plan.paths(UPDATE) if plan.unverifiable(p)
        ]
    items += [(display(root / p), "empty") for p in plan.tree.skipped_empty]
    return sorted(items)


def unified_diff(path: Path, new: bytes, label: str) -> str:
    """The diff from the file on disk to the rendered content, as `git diff` would show it."""
    try:
        old_text = path.read_bytes().decode("utf-8")
        new_text = new.decode("utf-8")
    except UnicodeDecodeError:
        return f"Binary files a/{label} and b/{label} differ\n"
    except OSError as exc:
        return f"(cannot read {label}: {exc.strerror})\n"
    return gitdiff.unified_diff(old_text, new_text, f"a/{label}", f"b/{label}")


def first_changed_line(change: Change) -> int:
    """The line of the file on disk where the drift starts (1 when unknown)."""
    line_no = None
    for line in (change.diff or "").splitlines():
        match = _HUNK.match(line)
        if match:
            line_no = int(match.group(1))
            continue
        if line_no is None:
            continue  # the ---/+++ header
        if line.startswith(("-", "+")):
            return max(line_no, 1)
        line_no += 1  # a context line
    return 1


def plan_text(plan: Plan, *, stat: bool = False, colour: bool = False) -> list[str]:
    """`+`/`~`/`-` per path, then (unless --stat) a unified diff per changed file."""
    changes = plan_changes(plan, with_diff=not stat)
    lines = [_change_line(c, colour) for c in changes]
    # Empty templates are only counted (they are many and rarely news); ciphertext is listed.
    lines += [_skipped_line(p, r, colour) for p, r in skipped(plan) if r == "encrypted"]
    if not stat:
        for change in changes:
            if change.diff:
                lines.append("")
                lines.extend(_colour_diff(change.diff, colour))
    return lines


def plan_summary(plan: Plan) -> str:
    """The last line of `plan`: what render would do."""
    if not plan.changed:
        return "makeflux: no changes; " + summary_line(plan).removeprefix("makeflux: ")
    conflicts = len(plan.conflicts)
    line = "makeflux: render would do: " + summary_line(plan).removeprefix("makeflux: ")
    if conflicts:
        line += f"; {conflicts} conflict(s): render stops on them unless --force"
    return line


def plan_json(plan: Plan, *, for_check: bool = False, findings: list[Finding] | None = None) -> str:
    """A machine-readable report of a plan (or of check's drift, with its lint findings)."""
    changes = plan_changes(plan, for_check=for_check)
    document = {
        "changed": bool(changes),
        "summary": {
            "created": len(plan.paths(CREATE, RECREATE)),
            "updated": len(plan.paths(UPDATE)),
            "deleted": len(plan.paths(DELETE)),
            "unchanged": len(plan.paths(UNCHANGED)),
            "conflicts": len(plan.conflicts),
            "skipped_empty": len(plan.tree.skipped_empty),
            "skipped_encrypted": sum(
                1 for _, r in skipped(plan, for_check=for_check) if r == "encrypted"
            ),
        },
        "changes": [
            {
                "path": c.path,
                "relative": c.relative,
                "action": c.action,
                **({"note": c.note} if c.note else {}),
                **({"diff": c.diff} if c.diff is not None else {}),
            }
            for c in changes
        ],
        "skipped": [{"path": p, "reason": r} for p, r in skipped(plan, for_check=for_check)],
    }
    if findings is not None:
        from makeflux.lint.findings import finding_json  # lint ran: already imported

        document["lint"] = [finding_json(f) for f in sorted(findings)]
    if for_check:
        document["in_sync"] = not changes
        if changes:
            document["hint"] = CHECK_HINT
    return json.dumps(document, indent=2, ensure_ascii=False)


def check_text(plan: Plan, *, colour: bool = False) -> list[str]:
    """check's report: drift list and diffs, then the verdict and hint."""
    changes = plan_changes(plan, for_check=True)
    lines = [
        _skipped_line(p, r, colour) for p, r in skipped(plan, for_check=True) if r == "encrypted"
    ]
    if not changes:
        lines.append(f"makeflux: in sync ({len(plan.tree.files)} files)")
        return lines
    lines = [_change_line(c, colour) for c in changes] + lines
    for change in changes:
        if change.diff:
            lines.append("")
            lines.extend(_colour_diff(change.diff, colour))
    lines.append(f"makeflux: drift in {len(changes)} file(s); {CHECK_HINT}")
    return lines


def check_github(plan: Plan) -> list[str]:
    """GitHub Actions workflow commands: one ::error annotation per drifted file."""
    lines = []
    for change in plan_changes(plan, for_check=True):
        if change.action in (CREATE, RECREATE):
            source = plan.tree.sources.get(change.relative)
            file, line = (display(source.path) if source else change.path), 1
            message = f"{change.path} is missing; {CHECK_HINT}"
        elif change.action == DELETE:
            file, line = change.path, 1
            message = f"{change.path} is no longer rendered and should be deleted; {CHECK_HINT}"
        elif change.action in (LEFTOVER, PLAINTEXT):
            file, line = change.path, 1
            message = f"{change.path}: {change.note}"
        else:
            file, line = change.path, first_changed_line(change)
            detail = f" ({change.note})" if change.note else ""
            message = f"{change.path} differs from what the templates render{detail}; {CHECK_HINT}"
        lines.append(github_annotation("error", message, file, line))
    if not lines:
        lines.append(f"makeflux: in sync ({len(plan.tree.files)} files)")
    return lines


def problems_text(problems: list[Problem], fmt: str) -> str:
    """Bad input as GitHub annotations (`::error file=…,line=…::`) or one JSON object."""
    if fmt == "json":
        errors = [
            {
                "message": p.message,
                **({"path": p.path} if p.path is not None else {}),
                **({"line": p.line} if p.line is not None else {}),
                **({"column": p.column} if p.column is not None else {}),
            }
            for p in problems
        ]
        return json.dumps({"error": errors}, indent=2, ensure_ascii=False)
    lines = [github_annotation("error", p.message, p.path, p.line, p.column) for p in problems]
    return "\n".join(lines)


def lint_lines(findings: list[Finding], fmt: str = "text") -> list[str]:
    """Lint findings in the format of the command that ran lint (text, github; json is nested)."""
    from makeflux.lint.findings import format_findings

    text = format_findings(findings, fmt)
    return text.splitlines() if text else []


def lint_exit_status(findings: list[Finding]) -> int:
    """1 when any finding is an error (warnings alone do not fail a run)."""
    from makeflux.lint.findings import exit_status

    return exit_status(findings)


def lint_summary(findings: list[Finding]) -> str:
    errors = sum(1 for f in findings if f.severity == "error")
    return f"makeflux: lint: {errors} error(s), {len(findings) - errors} warning(s)"


def _change_line(change: Change, colour: bool) -> str:
    if change.action == "conflict":
        text = f"! {change.path}  ({change.note})"
        return click.style(text, fg="red", bold=True) if colour else text
    text = f"{_SYMBOLS[change.action]} {change.path}"
    if change.note:
        text += f"  ({change.note})"
    return click.style(text, fg=_COLOURS[change.action]) if colour else text


def _skipped_line(path: str, reason: str, colour: bool) -> str:
    text = f"  {path}  (skipped: {reason})"
    return click.style(text, dim=True) if colour else text


def _colour_diff(diff: str, colour: bool) -> list[str]:
    lines = diff.rstrip("\n").split("\n")
    if not colour:
        return lines
    styled = []
    for line in lines:
        if line.startswith(("+++", "---")):
            styled.append(click.style(line, bold=True))
        elif line.startswith("@@"):
            styled.append(click.style(line, fg="cyan"))
        elif line.startswith("+"):
            styled.append(click.style(line, fg="green"))
        elif line.startswith("-"):
            styled.append(click.style(line, fg="red"))
        else:
            styled.append(line)
    return styled


def github_annotation(
    level: str,
    message: str,
    path: str | None = None,
    line: int | None = None,
    column: int | None = None,
    title: str | None = None,
) -> str:
    """One GitHub Actions workflow command (`::error file=…,line=…::message`), escaped as
    GitHub requires in properties and message."""
    properties = []
    if path is not None:
        properties.append(f"file={_gh_property(path)}")
        if line is not None:
            properties.append(f"line={line}")
            if column is not None:
                properties.append(f"col={column}")
    if title is not None:
        properties.append(f"title={_gh_property(title)}")
    where = f" {','.join(properties)}" if properties else ""
    return f"::{level}{where}::{_gh_data(message)}"


def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_property(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")
