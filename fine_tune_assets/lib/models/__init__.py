"""The base model: resolving and converting it (identity for lineage), its chat templates (package data)
and conversation tokenisation, loading it for training or evaluation."""
