"""scripts/update_schema_catalog.py regenerates the built-in catalog from upstream files: run
for real against a local git repository standing in for kustomize-controller's."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from makeflux.lint.catalog import BUILTIN_DIR
from tests.conftest import REPO_ROOT, TESTS_DIR

REPO = REPO_ROOT
CRD = TESTS_DIR / "fixtures/crds/kustomize.toolkit.fluxcd.io_kustomizations.yaml"
CRD_PATH = "config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml"


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_catalog_is_regenerated_with_versions_and_licenses(tmp_path: Path) -> None:
    clone = tmp_path / "mirror" / "fluxcd+kustomize-controller" / "repo"
    (clone / CRD_PATH).parent.mkdir(parents=True)
    shutil.copy(CRD, clone / CRD_PATH)
    (clone / "LICENSE").write_text("Apache License\nVersion 2.0, January 2004\n")
    git("init", "-q", cwd=clone)
    git("add", ".", cwd=clone)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "crd", cwd=clone)
    git("tag", "v1.9.4", cwd=clone)
    sources = tmp_path / "sources.toml"
    sources.write_text(
        '[[source]]\nname = "kustomize-controller"\nrepo = "fluxcd/kustomize-controller"\n'
        f'version = "v1.9.4"\nlicense = "LICENSE"\nfiles = ["{CRD_PATH}"]\n'
    )
    output = tmp_path / "schemas"
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts/update_schema_catalog.py"),
            "--mirror",
            str(tmp_path / "mirror"),
            "--sources",
            str(sources),
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"1 schemas written to {output}\n"
    relative = "kustomize.toolkit.fluxcd.io/kustomization_v1.json"
    assert (output / relative).read_text() == (BUILTIN_DIR / relative).read_text()
    recorded = json.loads((output / "SOURCES.json").read_text())
    assert recorded == [
        {
            "name": "kustomize-controller",
            "repository": "https://github.com/fluxcd/kustomize-controller",
            "version": "v1.9.4",
            "files": [CRD_PATH],
            "kinds": ["kustomize.toolkit.fluxcd.io/Kustomization/v1"],
            "widened": [],
        }
    ]
    notice = (output / "LICENSES/kustomize-controller.txt").read_text()
    assert notice.startswith("Schemas from https://github.com/fluxcd/kustomize-controller v1.9.4")
    assert "Apache License" in notice
