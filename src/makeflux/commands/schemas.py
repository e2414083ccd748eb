"""makeflux schemas extract: CRD YAMLs → a catalog in the {group}/{kind}_{version}.json layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from makeflux.errors import MakefluxError, Problem, display_path
from makeflux.lint.catalog import crd_schemas, is_crd, load_crd_documents, write_schema
from makeflux.output import info


@click.group("schemas")
def schemas() -> None:
    """Schema catalogs for the schema-* lint rules."""


@schemas.command("extract")
@click.argument("crd_files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-d",
    "--directory",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Catalog directory to write (list it in lint.schema_locations).",
)
def extract(crd_files: tuple[Path, ...], directory: Path) -> None:
    """Write one schema per served version of every CRD in CRD_FILES into DIRECTORY.

    A file may hold many CRDs, or a List of them: `kubectl get crds -o yaml > crds.yaml`
    captures a cluster's CRDs as installed (patches included).

    Every file is read and checked before anything is written: one bad file writes nothing.
    """
    found = []
    for path in crd_files:
        where = display_path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise MakefluxError(Problem(f"cannot read: {reason}", where)) from None
        crds = [d for d in _listed(load_crd_documents(text, where)) if is_crd(d)]
        if not crds:
            raise MakefluxError(
                Problem(
                    "holds no CustomResourceDefinition (apiextensions.k8s.io); pass the CRD"
                    " files themselves",
                    where,
                )
            )
        for crd in crds:
            found.extend(crd_schemas(crd, where))
    for group, kind, version, schema in found:
        write_schema(directory, group, kind, version, schema)
    info(f"makeflux: {len(found)} schema(s) written to {display_path(directory)}")


def _listed(documents: list[Any]) -> list[Any]:
    """Documents, with the items of a `kind: List` (what `kubectl get crds -o yaml` prints)."""
    found: list[Any] = []
    for document in documents:
        is_list = isinstance(document, dict) and document.get("kind") == "List"
        items = document.get("items") if is_list else None
        if isinstance(items, list):
            found.extend(items)
        else:
            found.append(document)
    return found
