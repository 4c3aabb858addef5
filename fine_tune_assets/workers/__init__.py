"""Processes launched through Dagster Pipes (`python -m fine_tune_assets.workers.<name> REQUEST.json`):
training and evaluation, so their memory is freed and a crash cannot take the code server down."""
