"""A small project for the render/plan/check tests: templates, data, makeflux.toml in tmp_path.

No tests here: the helpers build a tree with one optional feature (tracing), a sops secret and a
template that renders empty, so every scenario (prune, guard, encrypted) has something to act on.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml

from tests.conftest import run_cli

SETTINGS = """\
[makeflux]
inputs = ["templates"]
output = "kubernetes"
data = ["cluster.yaml"]
"""

TEMPLATES = {
    "apps/base/app.yaml.j2": "kind: App\nname: #{ name }#\n",
    "apps/base/config.yaml.j2": "replicas: #{ replicas }#\n",
    "apps/tracing/tempo/tempo.yaml.j2": (
        "#% if tracing %#\nkind: Tempo\nname: #{ name }#-tempo\n#% endif %#\n"
    ),
    "apps/tracing/tempo/agent.yaml.j2": "#% if tracing %#\nkind: Agent\n#% endif %#\n",
    "apps/tracing/kustomization.yaml.j2": (
        "#% if tracing %#\nresources: [tempo/tempo.yaml, tempo/agent.yaml]\n#% endif %#\n"
    ),
    "apps/secret.sops.yaml.j2": "password: #{ password }#\n",
    "apps/empty.yaml.j2": "#| always empty #|\n",
}

DATA = {"name": "demo", "replicas": 1, "tracing": False, "password": "hunter2"}

TRACING_FILES = {
    "apps/tracing/tempo/tempo.yaml",
    "apps/tracing/tempo/agent.yaml",
    "apps/tracing/kustomization.yaml",
}
BASE_FILES = {"apps/base/app.yaml", "apps/base/config.yaml", "apps/secret.sops.yaml"}

# What sops leaves behind: ENC[...] values and a top-level sops key.
ENCRYPTED_SECRET = (
    "password: ENC[AES256_GCM,data:q0hKc2E=,iv:aXY=,tag:dGFn,type:str]\n"
    "sops:\n    age: []\n    version: 3.9.0\n"
)


def make_project(tmp_path: Path, settings: str = SETTINGS, **data: object) -> Path:
    project = tmp_path / "project"
    for name, text in TEMPLATES.items():
        path = project / "templates" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (project / "makeflux.toml").write_text(settings)
    set_data(project, **data)
    return project


def set_data(project: Path, **changes: object) -> None:
    (project / "cluster.yaml").write_text(yaml.safe_dump({**DATA, **changes}, sort_keys=True))


def render(project: Path, *args: str):
    return run_cli(["render", *args], project)


def encrypt_secrets(project: Path) -> None:
    """What `sops --encrypt --in-place` does to the rendered secret (check refuses plaintext)."""
    (out(project) / "apps/secret.sops.yaml").write_text(ENCRYPTED_SECRET)


def out(project: Path) -> Path:
    return project / "kubernetes"


def manifest(project: Path) -> dict[str, str]:
    return json.loads((project / ".makeflux-manifest.json").read_text())["files"]


def sha(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


def files_on_disk(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
