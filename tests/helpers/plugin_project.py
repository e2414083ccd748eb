"""A small makejinja project with a loader plugin, partials, macros and a copied file: what
the cache, parallel rendering, Jinja-internals and import tests render."""

from __future__ import annotations

import textwrap
from pathlib import Path

SETTINGS = """\
[makejinja]
inputs = ["./templates"]
output = "./out"
exclude_patterns = ["*.partial.j2"]
data = ["./cluster.yaml"]
import_paths = ["./scripts"]
loaders = ["plugin:Plugin"]
jinja_suffix = ".j2"
undefined = "strict"

[makejinja.delimiter]
block_start = "#%"
block_end = "%#"
comment_start = "#|"
comment_end = "#|"
variable_start = "#{"
variable_end = "}#"
"""

PLUGIN = """\
import makejinja


def shout(value):
    return str(value).upper() + "!"


class Plugin(makejinja.plugin.Plugin):
    def filters(self):
        return [shout]
"""

TEMPLATES = {
    "app.yaml.j2": """\
        #% import 'macros.partial.j2' as m %#
        #| a comment #|
        name: #{ cluster_name }#
        constant: #{ "folded" | shout }#
        labels:
          #% include 'labels.partial.j2' %#
        nodes:
        #% for node in nodes if node.enabled %#
          - #{ m.host(node) }#
        #% endfor %#
        """,
    "feature.yaml.j2": """\
        #% if feature_enabled %#
        feature: #{ nodes | map(attribute="name") | join(",") | tojson }#
        #% endif %#
        """,
    "disabled.yaml.j2": """\
        #% if not feature_enabled %#
        never: rendered
        #% endif %#
        """,
    "labels.partial.j2": "app: #{ cluster_name | replace('-', '_') }#\n",
    "macros.partial.j2": "#% macro host(node) %##{ node.name }#.#{ domain }##% endmacro %#\n",
    "plain.txt": "copied as is\n",
}

DATA = """\
cluster_name: home-ops
domain: example.com
feature_enabled: true
nodes:
  - {name: a, enabled: true}
  - {name: b, enabled: false}
  - {name: c, enabled: true}
"""


def make_project(root: Path) -> Path:
    (root / "templates").mkdir(parents=True)
    for name, text in TEMPLATES.items():
        (root / "templates" / name).write_text(textwrap.dedent(text))
    (root / "scripts").mkdir()
    (root / "scripts" / "plugin.py").write_text(PLUGIN)
    (root / "cluster.yaml").write_text(DATA)
    (root / "makejinja.toml").write_text(SETTINGS)
    return root


def read_tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
