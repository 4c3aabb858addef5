"""Reads of the registry's dataset and adapter tables that several readers share: the command line's
``datasets list|show`` and ``adapters list``, lineage and the dossier.

Rows come back as dicts, newest first; the ``*_summary`` and ``*_details`` functions shape them into
the JSON-able dicts the command line prints with ``--json`` (timestamps as ISO 8601, JSON columns
parsed), so their keys are a public format: add keys, do not rename them.
"""

from __future__ import annotations

import json

from .connection import rows_as_dicts
from .resolve import resolve_dataset_version

SOURCE_COLUMNS = "source_file, source_sha256, format, mapping, inputs, accepted, quarantined, blank_lines"


def dataset_versions(con) -> list[dict]:
    """Every ``dataset_versions`` row, newest first."""
    return rows_as_dicts(con.execute("SELECT * FROM dataset_versions ORDER BY created_at DESC"))


def dataset_sources(con, version_id: str) -> list[dict]:
    """The raw files a dataset version was built from, with their counts, by file name."""
    return rows_as_dicts(con.execute(f"SELECT {SOURCE_COLUMNS} FROM dataset_sources WHERE version_id = ? "
                                     "ORDER BY source_file", [version_id]))


def adapters(con) -> list[dict]:
    """Every ``adapters`` row, newest first."""
    return rows_as_dicts(con.execute("SELECT * FROM adapters ORDER BY created_at DESC"))


def dataset_summary(row: dict) -> dict:
    """One line of ``datasets list``: id, time, split sizes and input counts."""
    return {"version_id": row["version_id"], "created_at": row["created_at"].isoformat(),
            "train": row["n_train"], "eval": row["n_eval"], "input_records": row["input_records"],
            "quarantined": row["quarantined"], "parent_version": row["parent_version"]}


def dataset_details(con, ref: str) -> dict:
    """``datasets show``: the version ``ref`` names (id, unique prefix or ``latest``; ``resolve.NotFound``
    otherwise) with its counts, sources, scrub policy, quality checks, files and settings."""
    row = resolve_dataset_version(con, ref)
    return {
        "version_id": row["version_id"],
        "created_at": row["created_at"].isoformat(),
        "parent_version": row["parent_version"],
        "path": row["path"],
        "counts": {"input_records": row["input_records"], "accepted": row["accepted"],
                   "quarantined": row["quarantined"],
                   "quarantined_by_reason": json.loads(row["quarantined_by_reason"]),
                   "train": row["n_train"], "eval": row["n_eval"]},
        "token_stats": json.loads(row["token_stats"]),
        "sources": dataset_sources(con, row["version_id"]),
        "scrub": {"policy_hash": row["scrub_policy_hash"], "policy": json.loads(row["scrub_policy"]),
                  "entity_counts": json.loads(row["scrub_entity_counts"])},
        "checks": json.loads(row["checks"]),
        "files": json.loads(row["files"]),
        "settings": json.loads(row["settings"]),
        "code_version": row["code_version"],
        "run_id": row["run_id"],
    }
