"""Number formats, Markdown escaping and the Jinja2 environments: the one renderer behind the evaluation report,
the audit dossier and the Dagster metadata tables.

Values (plain functions; each but ``truncate``, a Jinja builtin, is also a filter of that name in both environments):

- ``text(value, missing="n/a")``: ``str(value)``; None shows as ``missing``.
- ``number(value, digits, missing="n/a")``: fixed decimals (``1.0500``); a non-number shows as ``text``.
- ``percent(fraction, digits=1, missing="n/a")``: 0.954 -> ``95.4%``; ``signed_percent``: ``+95.4%``.
- ``seconds(value)``: ``90.0 s (1.5 min)``, or None for a non-number; ``iso_time(value)``: a datetime as UTC
  ISO 8601 (anything else as ``str``, None stays None); ``short(value, n=12)``: the first ``n`` characters
  of an id (None -> ""); ``truncate(value, limit)``: at most ``limit`` characters, then ``…``.
- ``value_text(value)``: one cell of an audit table: None ``-``, booleans ``yes``/``no``, floats 6
  significant digits, dicts and lists canonical JSON.

Markdown:

- ``md(text)`` (filter ``md``): inline text on one line, safe in a table cell: ``|`` escaped, newlines
  folded, and only what could open an HTML tag or entity escaped (``<b`` -> ``&lt;b``), so "<=" and "&"
  stay readable in the raw file.
- ``md_fence(text, info="text")`` (filter ``fence``): a fenced block whose fence is longer than any
  backtick run inside, so the text cannot close it early.
- ``md_table(header, rows, align=None)``: the lines of a table, every cell through ``md``; ``align`` is
  one marker per column (``"---"``, ``"---:"``), default left. Used directly for Dagster metadata.

Templates: ``render_template(name, **context)`` renders ``name``, a path below ``fine_tune_assets/lib``
(``evaluation/templates/report.md.jinja``); the suffix picks the environment:

- ``*.html.jinja``: autoescaping ON: every ``{{ value }}`` is escaped as ``html.escape(str(value))``
  (``&quot;``, ``&#x27;``), except macro output and ``Markup``; ``|e`` escapes the same way. Avoid ``~``
  on report text there: joined with a ``Markup`` operand, the others get markupsafe's ``&#34;`` instead.
- ``*.md.jinja`` (anything else): no autoescaping; pass inline text through ``|md``, blocks through ``|fence``;
  ``md_table`` is a global there.
- Both: ``trim_blocks`` and ``lstrip_blocks`` (a block tag on its own line leaves no trace; end it with
  ``+%}`` to keep the newline after it), the trailing newline of a template kept, undefined names an
  error, the filters above plus ``urlquote`` (``urllib.parse.quote``, for relative links and ``src``).
- Shared pieces, under ``common/templates/``: ``tables.md.jinja`` and ``tables.html.jinja`` (import
  ``as tables``; macro ``table(header, rows, align=None)``, HTML cells escaped, no ``align``), and
  ``report.css``, the page style of every HTML report (``<style>\\n{% include "common/templates/report.css" %}``).
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from functools import cache
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from .hashing import canonical_json
from .paths import PACKAGE_ROOT

NA = "n/a"
TEMPLATE_ROOT = PACKAGE_ROOT / "lib"


# ---------------------------------------------------------------- values

def is_number(value) -> bool:
    """An int or float, and not a bool (True is an int to Python, not a number to a reader)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def text(value, missing: str = NA) -> str:
    return missing if value is None else str(value)


def number(value, digits: int, missing: str = NA) -> str:
    """Fixed decimals; a non-number is shown as it is rather than rejected (a report never fails on a value)."""
    return f"{value:.{digits}f}" if is_number(value) else text(value, missing)


def percent(fraction, digits: int = 1, missing: str = NA) -> str:
    return f"{fraction * 100:.{digits}f}%" if is_number(fraction) else text(fraction, missing)


def signed_percent(fraction, digits: int = 1, missing: str = NA) -> str:
    return f"{fraction * 100:+.{digits}f}%" if is_number(fraction) else text(fraction, missing)


def seconds(value) -> str | None:
    return f"{value:.1f} s ({value / 60:.1f} min)" if is_number(value) else None


def iso_time(value) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else str(value)


def short(value: str | None, n: int = 12) -> str:
    return (value or "")[:n]


def abbreviated(digest: str | None, n: int = 12, missing: str = "-") -> str:
    """A hash cut to ``n`` characters with an ellipsis (``abc123def456...``), as the text reports print them."""
    return f"{digest[:n]}..." if digest else missing


def truncate(value, limit: int) -> str:
    value = text(value)
    return value if len(value) <= limit else value[:limit].rstrip() + "…"


def value_text(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return canonical_json(value)
    return str(value)


# ---------------------------------------------------------------- Markdown

def md(value) -> str:
    value = re.sub(r"&(?=#?\w+;)", "&amp;", str(value))
    return re.sub(r"<(?=[A-Za-z/!?])", "&lt;", value).replace("|", "\\|").replace("\n", " ")


def md_fence(value: str, info: str = "text") -> str:
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * max(3, longest + 1)
    body = value if value.endswith("\n") else value + "\n"
    return f"{fence}{info}\n{body}{fence}"


def md_table(header, rows, align=None) -> str:
    align = align or ["---"] * len(header)
    return "\n".join(["| " + " | ".join(md(cell) for cell in header) + " |", "|" + "|".join(align) + "|",
                      *("| " + " | ".join(md(cell) for cell in row) + " |" for row in rows)])


# ---------------------------------------------------------------- HTML

def html_escape(value) -> Markup:
    """``html.escape`` (not markupsafe's ``&#34;``), so pages keep the bytes they had before templates."""
    if hasattr(value, "__html__"):
        return Markup(value.__html__())
    return Markup(html.escape(str(value), quote=True))


# ---------------------------------------------------------------- Jinja2

_FILTERS = {"text": text, "number": number, "percent": percent, "signed_percent": signed_percent,
            "seconds": seconds, "iso_time": iso_time, "short": short, "value_text": value_text,
            "md": md, "fence": md_fence, "urlquote": quote}


@cache
def environment(kind: str) -> Environment:
    """The shared environment of ``kind`` "html" or "markdown" (built once; templates are cached in it)."""
    html_kind = kind == "html"
    env = Environment(loader=FileSystemLoader(TEMPLATE_ROOT), autoescape=html_kind, trim_blocks=True,
                      lstrip_blocks=True, keep_trailing_newline=True, undefined=StrictUndefined,
                      finalize=html_escape if html_kind else None)
    env.filters.update(_FILTERS)
    env.globals["md_table"] = md_table
    if html_kind:
        env.filters["e"] = env.filters["escape"] = html_escape
    return env


def render_template(name: str, /, **context) -> str:
    """Render ``name`` (below ``fine_tune_assets/lib``) in the environment its suffix names."""
    return environment("html" if name.endswith(".html.jinja") else "markdown").get_template(name).render(**context)
