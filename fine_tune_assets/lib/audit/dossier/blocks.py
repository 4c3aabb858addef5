"""The dossier's data model: sections of blocks (fields, tables, text), each item a value or an explicit gap.

A missing item is never left out: it is a gap with the reason it is missing, and every gap is listed again at
the end. Blocks are plain JSON-able dicts, so the content hash covers exactly what both renderers show.
"""

from __future__ import annotations

from collections.abc import Iterator

from ...common.render import value_text

NOT_RECORDED = "not recorded"


def item(label: str, value=None, gap: str | None = None, note: str | None = None) -> dict:
    """One line of a section: a value, or an explicit gap. A value of None without a reason is a gap too."""
    if gap is None and (value is None or value == ""):
        gap = NOT_RECORDED
    return {"label": label, "value": None if gap else value_text(value), "gap": gap, "note": note}


def fields(*items: dict) -> dict:
    return {"kind": "fields", "rows": list(items)}


def table(title: str, columns: list[str], rows: list[list], gap: str | None = None,
          empty: list | None = None) -> dict:
    """A table; with no rows it shows the row ``empty`` when the absence is itself the fact, else the gap ``gap``."""
    rows = [[value_text(c) for c in row] for row in rows or ([empty] if empty else [])]
    return {"kind": "table", "title": title, "columns": columns, "rows": rows,
            "gap": gap if not rows else None}


def text(value: str) -> dict:
    return {"kind": "text", "text": value}


def section(key: str, title: str, blocks: list[dict]) -> dict:
    return {"id": key, "title": title, "blocks": blocks}


def section_gaps(s: dict) -> Iterator[tuple[str, str]]:
    """(item label or table title, reason) of every gap in a section."""
    for block in s["blocks"]:
        if block["kind"] == "fields":
            for row in block["rows"]:
                if row["gap"]:
                    yield row["label"], row["gap"]
        elif block["kind"] == "table" and block["gap"]:
            yield block["title"], block["gap"]
