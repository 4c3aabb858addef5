"""What auditors use: lineage both ways, erasure requests, stage promotion and rollback, `verify`,
OpenLineage events, adapter status, and the audit dossier."""
