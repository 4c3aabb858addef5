"""Evaluating an adapter against its base model on the held-out split: the spec, inference, scoring,
the promotion-gate verdict, the report (Markdown, HTML, loss curve) and its registry rows."""
