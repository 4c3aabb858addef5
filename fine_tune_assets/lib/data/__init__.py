"""The data stages, raw file to dataset version: ingest (JSONL, CSV/Parquet through mappings), scrub
(Presidio), validate (format, length, duplicates), quality gates (GX, residual PII), split and publish."""
