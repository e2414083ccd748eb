"""makeflux docs: docs/variables.md comes from the schema, and the committed copy is current."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from makeflux.cli import cli
from tests.conftest import REPO_ROOT, run_subprocess

REPO = REPO_ROOT
SCHEMA = json.loads((REPO / "schemas" / "cluster.schema.json").read_text())


def makeflux(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_subprocess(args, cwd)


def test_committed_variables_reference_is_up_to_date() -> None:
    result = makeflux(REPO, "docs", "--check")
    assert result.returncode == 0, (
        "docs/variables.md is out of date with schemas/cluster.schema.json: run `makeflux docs` "
        f"and commit it\n{result.stdout}{result.stderr}"
    )


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(REPO / "schemas", root / "schemas")
    shutil.copy2(REPO / "makeflux.toml", root / "makeflux.toml")
    (root / "templates" / "config").mkdir(parents=True)
    monkeypatch.chdir(root)
    return root


def test_docs_documents_every_variable_and_rule(project: Path) -> None:
    result = CliRunner().invoke(cli, ["docs"])
    assert result.exit_code == 0, result.output
    page = (project / "docs" / "variables.md").read_text()
    for name, spec in SCHEMA["properties"].items():
        assert f"### `{name}`" in page
        assert f"| [`{name}`](#{name}) |" in page
        assert f"- Type: {spec['type'] if spec['type'] != 'array' else 'list of string'}" in page
    for rule in SCHEMA.get("allOf", []):
        condition = next(iter(rule["if"]["properties"]))
        demand = next(iter(rule["then"]["properties"]))
        assert f"- when {condition} is true, {demand} must be true" in page


def test_docs_is_deterministic_and_check_detects_staleness(project: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["docs"]).exit_code == 0
    page = project / "docs" / "variables.md"
    first = page.read_bytes()
    assert runner.invoke(cli, ["docs"]).exit_code == 0
    assert page.read_bytes() == first
    assert runner.invoke(cli, ["docs", "--check"]).exit_code == 0

    # A schema change the page does not reflect yet: --check exits 1 and writes nothing.
    schema_path = project / "schemas" / "cluster.schema.json"
    schema = json.loads(schema_path.read_text())
    schema["properties"]["cluster_name"]["description"] = "A new description."
    schema_path.write_text(json.dumps(schema, indent=2))
    stale = runner.invoke(cli, ["docs", "--check"])
    assert stale.exit_code == 1
    assert "docs/variables.md: out of date" in stale.output
    assert page.read_bytes() == first
    assert runner.invoke(cli, ["docs"]).exit_code == 0
    assert "A new description." in page.read_text()


def test_docs_check_fails_when_the_page_is_missing(project: Path) -> None:
    result = CliRunner().invoke(cli, ["docs", "--check"])
    assert result.exit_code == 1
    assert not (project / "docs").exists()


def test_docs_without_a_schema_is_a_clear_error(project: Path) -> None:
    (project / "makeflux.toml").write_text(
        '[makeflux]\ninputs = ["templates/config"]\noutput = "."\n'
    )
    result = makeflux(project, "docs")
    assert result.returncode == 2
    assert "no 'schema' in the settings" in result.stderr
    assert "Traceback" not in result.stderr
