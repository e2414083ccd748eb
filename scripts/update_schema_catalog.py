"""Regenerate makeflux's built-in schema catalog from the upstream CRDs in schema_sources.toml.

    python scripts/update_schema_catalog.py               # download from GitHub at each version
    python scripts/update_schema_catalog.py --mirror DIR  # local clones DIR/<owner>+<name>/repo

Writes src/makeflux/lint/schemas/{group}/{kind}_{version}.json (every served version, strict,
descriptions dropped), SOURCES.json (each source's repository, version and files) and
LICENSES/<source>.txt (the upstream license the schemas are distributed under).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from makeflux.lint.catalog import BUILTIN_DIR, crd_schemas, load_crd_documents, write_schema  # noqa: E402

SOURCES_FILE = Path(__file__).with_name("schema_sources.toml")


def read_upstream(repo: str, version: str, path: str, mirror: Path | None) -> str:
    if mirror is not None:
        clone = mirror / repo.replace("/", "+") / "repo"
        return subprocess.run(
            ["git", "-C", str(clone), "show", f"{version}:{path}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    url = f"https://raw.githubusercontent.com/{repo}/{version}/{path}"
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read().decode("utf-8")


def widen_enum(schema: dict, field: str, values: list[str]) -> None:
    """Add `values` to the enum at `field` (dotted, lists stepped through), where a known
    distribution patches the upstream CRD; a field that is not there stops the run."""
    node = schema
    for part in field.split("."):
        while node.get("type") == "array":
            node = node["items"]
        node = node["properties"][part]
    while node.get("type") == "array":
        node = node["items"]
    node["enum"] = [*node["enum"], *(v for v in values if v not in node["enum"])]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, help="directory of local git clones")
    parser.add_argument("--output", type=Path, default=BUILTIN_DIR)
    parser.add_argument("--sources", type=Path, default=SOURCES_FILE)
    args = parser.parse_args()
    sources = tomllib.loads(args.sources.read_text(encoding="utf-8"))["source"]
    staging = args.output.with_name(args.output.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "LICENSES").mkdir(parents=True)
    recorded = []
    for source in sources:
        kinds = []
        for path in source["files"]:
            text = read_upstream(source["repo"], source["version"], path, args.mirror)
            for document in load_crd_documents(text, path):
                for group, kind, version, schema in crd_schemas(document, path):
                    for widen in source.get("widen", []):
                        if (widen["kind"], widen["version"]) == (kind, version):
                            widen_enum(schema, widen["field"], widen["add"])
                    write_schema(staging, group, kind, version, schema)
                    kinds.append(f"{group}/{kind}/{version}")
        license_text = read_upstream(
            source["repo"], source["version"], source["license"], args.mirror
        )
        (staging / "LICENSES" / f"{source['name']}.txt").write_text(
            f"Schemas from https://github.com/{source['repo']} {source['version']}\n\n"
            + license_text,
            encoding="utf-8",
        )
        recorded.append(
            {
                "name": source["name"],
                "repository": f"https://github.com/{source['repo']}",
                "version": source["version"],
                "files": source["files"],
                "kinds": sorted(kinds),
                "widened": source.get("widen", []),
            }
        )
    (staging / "SOURCES.json").write_text(json.dumps(recorded, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(args.output, ignore_errors=True)
    staging.rename(args.output)
    print(f"{sum(len(s['kinds']) for s in recorded)} schemas written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
