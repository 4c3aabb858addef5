"""Reading JSON Lines robustly: one line at a time, in bytes, each problem named with its line."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class JsonLine:
    line: int  # 1-based physical line
    raw: bytes
    value: Any = None
    error: str | None = None  # invalid_utf8 | invalid_json | line_too_long
    detail: str = ""


def iter_json_lines(path: str | Path, max_line_bytes: int | None = None,
                    on_blank: Callable[[int], None] | None = None) -> Iterator[JsonLine]:
    """Every non-blank line, parsed, or with the reason it could not be. Blank lines are not
    records: they are skipped (``on_blank(line)`` is called, so callers can count them)."""
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(handle, 1):
            if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                if on_blank:
                    on_blank(line_no)
                continue
            if max_line_bytes is not None and len(raw) > max_line_bytes:
                yield JsonLine(line_no, raw, error="line_too_long",
                               detail=f"{len(raw):,} bytes, limit {max_line_bytes:,}")
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield JsonLine(line_no, raw, error="invalid_utf8", detail=f"invalid UTF-8 byte at offset {exc.start}")
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                yield JsonLine(line_no, raw, error="invalid_json", detail=f"{exc.msg} at column {exc.colno}")
                continue
            except (ValueError, RecursionError) as exc:  # an integer over Python's digit limit; nesting too deep
                yield JsonLine(line_no, raw, error="invalid_json", detail=f"{type(exc).__name__}: a number too long "
                               "or arrays/objects nested too deep")
                continue
            if b"\\u" in raw and _lone_surrogate(value):
                yield JsonLine(line_no, raw, error="invalid_utf8",
                               detail="a \\u escape of a lone surrogate: not text that UTF-8 can hold")
                continue
            yield JsonLine(line_no, raw, value=value)


def _lone_surrogate(value: Any) -> bool:
    """Whether a parsed value holds a string with a lone surrogate (``"\\ud800"`` is valid JSON)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    except RecursionError:  # as deep as json.loads allows: the checks after this one reject it
        return False
    return False
