"""The thin Dagster layer, discovered by `definitions.py`: one folder per asset group (data, training,
evaluation, audit, monitoring), one file per asset or check family; shared plumbing beside them (keys,
resources, jobs, metadata, OpenLineage, Pipes)."""
