"""Where the user's cluster.yaml and its sample live, for the commands that edit or create them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from makeflux.settings import Settings
from makeflux.yamlsource import YAML_SUFFIXES

CLUSTER_FILE = "cluster.yaml"
SAMPLE_FILE = "cluster.sample.yaml"
# The line `init` puts above a value it leaves for the user; `set` removes it with the value set.
FILL_IN_NOTE = "# FILL IN, no default (the example is not your network's): makeflux set {name}=…"


@dataclass(frozen=True)
class ClusterFiles:
    data_file: Path  # the cluster.yaml that `set` edits and `init` creates
    sample: Path  # the commented sample `init` copies


def locate(settings: Settings) -> ClusterFiles:
    """The settings' first YAML data file (else cluster.yaml), and cluster.sample.yaml beside it."""
    data_file = settings.base_dir / CLUSTER_FILE
    for path in settings.data:
        if path.suffix in YAML_SUFFIXES and not path.is_dir():
            data_file = path
            break
    sample = data_file.with_name(f"{data_file.stem}.sample{data_file.suffix}")
    if not sample.is_file() and (settings.base_dir / SAMPLE_FILE).is_file():
        sample = settings.base_dir / SAMPLE_FILE
    return ClusterFiles(data_file=data_file, sample=sample)
