"""The plain-Python core, no Dagster: one package per domain, in layers (import-linter keeps them so).

    audit | monitoring          lineage, erasure, promotion, verify, OpenLineage, the dossier | drift
    training | evaluation       LoRA training and adapter publishing | base vs fine-tuned, the gate verdict
    data                        ingest, scrub (Presidio), validate, quality gates, publish dataset versions
    models                      the base model, its chat templates and tokenisation, model loading
    registry                    the DuckDB registry: schema, connections, the ledger, id resolution
    common                      paths, hashing, JSONL and Parquet I/O, rendering, package versions

A package imports only the ones below it; `training` and `evaluation` never import each other.
"""
