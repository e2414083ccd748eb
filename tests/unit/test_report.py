"""report formats (nothing here writes): GitHub annotations, problems as JSON, lint lines."""

from __future__ import annotations

import json

from makeflux import report
from makeflux.errors import Problem
from makeflux.lint.findings import Finding, format_findings


def test_an_annotation_escapes_what_github_reads_as_syntax() -> None:
    line = report.github_annotation(
        "error", "100% wrong\nsecond line\r", "dir,with:odd%chars.yaml", 3, 7, title="a:b,c"
    )
    assert line == (
        "::error file=dir%2Cwith%3Aodd%25chars.yaml,line=3,col=7,title=a%3Ab%2Cc"
        "::100%25 wrong%0Asecond line%0D"
    )


def test_an_annotation_leaves_out_what_is_not_known() -> None:
    assert report.github_annotation("warning", "no place") == "::warning::no place"
    assert report.github_annotation("error", "m", "f.yaml") == "::error file=f.yaml::m"
    # A column without a line means nothing to GitHub: neither is written.
    assert report.github_annotation("error", "m", "f.yaml", None, 4) == "::error file=f.yaml::m"


def test_problems_as_github_annotations_and_as_json() -> None:
    problems = [
        Problem("bad value; use a number", "cluster.yaml", 4, 9),
        Problem("no settings file"),
    ]
    assert report.problems_text(problems, "github").splitlines() == [
        "::error file=cluster.yaml,line=4,col=9::bad value; use a number",
        "::error::no settings file",
    ]
    assert json.loads(report.problems_text(problems, "json")) == {
        "error": [
            {"message": "bad value; use a number", "path": "cluster.yaml", "line": 4, "column": 9},
            {"message": "no settings file"},
        ]
    }


def test_lint_findings_use_the_same_annotation_on_the_template_to_edit() -> None:
    rendered = Finding("out/a.yaml", 3, "error", "yaml-invalid", "bad: 50%", "t/a.yaml.j2", 2)
    on_disk = Finding("k,8s/b.yaml", 1, "warning", "unreachable", "not reached")
    assert format_findings([rendered, on_disk], "github").splitlines() == [
        "::warning file=k%2C8s/b.yaml,line=1,title=unreachable::unreachable: not reached",
        "::error file=t/a.yaml.j2,line=2,title=yaml-invalid::"
        "out/a.yaml:3: yaml-invalid: bad: 50%25",
    ]


def test_lint_summary_counts_errors_and_warnings() -> None:
    findings = [
        Finding("a", 1, "error", "yaml-invalid", "m"),
        Finding("b", 1, "warning", "unreachable", "m"),
        Finding("c", 1, "warning", "unreachable", "m"),
    ]
    assert report.lint_summary(findings) == "makeflux: lint: 1 error(s), 2 warning(s)"
    assert report.lint_exit_status(findings) == 1
    assert report.lint_exit_status(findings[1:]) == 0
