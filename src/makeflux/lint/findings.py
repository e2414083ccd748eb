"""A lint finding, and the three ways to print a list of them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass

ERROR = "error"
WARNING = "warning"
FORMATS = ("text", "json", "github")


@dataclass(frozen=True, order=True)
class Finding:
    """One problem in the tree, printed as `path:line: severity: rule: message`, or, for a
    rendered file, `path:line (template:line): severity: rule: message`."""

    path: str
    line: int
    severity: str
    rule: str
    message: str
    # the template (or copied source file) and line that produced path:line, when known
    template: str = ""
    template_line: int = 0

    def __str__(self) -> str:
        origin = f" ({self.template}:{self.template_line})" if self.template else ""
        return f"{self.path}:{self.line}{origin}: {self.severity}: {self.rule}: {self.message}"


def format_findings(findings: Iterable[Finding], fmt: str = "text") -> str:
    """text: one line each; json: a list of objects; github: workflow-command annotations."""
    ordered = sorted(findings)
    if fmt == "json":
        return json.dumps([finding_json(f) for f in ordered], indent=2)
    if fmt == "github":
        return "\n".join(_github_line(f) for f in ordered)
    return "\n".join(str(f) for f in ordered)


def finding_json(finding: Finding) -> dict[str, object]:
    """Every field; template and template_line are null when no template made the line."""
    found = asdict(finding)
    if not finding.template:
        found["template"] = found["template_line"] = None
    return found


def _github_line(finding: Finding) -> str:
    from makeflux.report import github_annotation

    level = "error" if finding.severity == ERROR else "warning"
    message = f"{finding.rule}: {finding.message}"
    path, line = finding.path, finding.line
    if finding.template:
        # Annotate the template, the file to edit; the message says what it rendered.
        message = f"{finding.path}:{finding.line}: {message}"
        path, line = finding.template, finding.template_line
    return github_annotation(level, message, path, line, title=finding.rule)


def exit_status(findings: Iterable[Finding], strict: bool = False) -> int:
    """1 when there is an error (or, with strict, any finding), else 0."""
    severities = {f.severity for f in findings}
    if ERROR in severities or (strict and severities):
        return 1
    return 0
