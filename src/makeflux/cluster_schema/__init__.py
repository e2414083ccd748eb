"""The cluster.yaml schema (a JSON Schema, draft 2020-12): not Kubernetes manifest schemas,
which lint reads (lint/openapi.py, lint/catalog.py).

One module a job, each imported only by what needs it (this package's import costs nothing):
reading (the file and `$ref`), defaults, validation (jsonschema, loaded lazily), messages and
words (how a mistake is said), locating (which file and line set a key) and variables (the
view `explain`, `set` and `docs` show).
"""
