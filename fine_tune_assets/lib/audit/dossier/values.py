"""Registry values as the dossier shows them, beyond the shared formats of ``common.render``."""

from __future__ import annotations

import json

from ...common.render import is_number
from ...common.render import percent as render_percent


def load_json(value):
    """A registry JSON column as data; None when it is empty or no longer valid JSON."""
    if value is None or isinstance(value, (dict, list)):
        return value
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return None


def percent(value) -> str:
    """A fraction as a percentage; anything that is not a number shows as "-"."""
    return render_percent(value if is_number(value) else None, missing="-")
