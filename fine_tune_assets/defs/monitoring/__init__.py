"""Drift sensors and assets (monitoring group); the decisions themselves live in ``lib/monitoring``."""
