"""What auditors use: lineage both ways, erasure requests, stage promotion and rollback, who may do those
(`access`), `verify`, OpenLineage events, adapter status, and the audit dossier."""
