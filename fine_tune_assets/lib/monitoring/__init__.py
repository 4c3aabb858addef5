"""Drift monitoring of new data against the data an adapter was trained on (plain Python, no Dagster).

It sits above data, training and evaluation: it reads dataset versions and adapters, and may compare
evaluations. Its Dagster sensors and assets go in ``defs/monitoring/``.
"""
