"""The dossier as Markdown and as one HTML page, laid out by ``templates/dossier.{md,html}.jinja``.

Both formats render the same dict, so they always show the same items; the templates only lay it out.
HTML autoescapes every value, Markdown passes every value through ``|md``: ledger free text (promotion and
erasure reasons) cannot inject markup into either.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...common.render import render_template

TEMPLATES = "audit/dossier/templates"
LEVELS = {"critical": "CRITICAL", "warning": "WARNING"}  # banner level -> its label; others are upper-cased


def render_markdown(dossier: dict) -> str:
    return render_template(f"{TEMPLATES}/dossier.md.jinja", d=dossier, levels=LEVELS)


def render_html(dossier: dict) -> str:
    """One self-contained page (inline CSS, no JavaScript, no external resources); every text escaped."""
    return render_template(f"{TEMPLATES}/dossier.html.jinja", d=dossier, levels=LEVELS)


def write_dossier(dossier: dict, folder: Path) -> dict[str, Path]:
    """``folder/dossier.md`` and ``folder/dossier.html``, each written to a temporary file and renamed."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, body in (("dossier.md", render_markdown(dossier)), ("dossier.html", render_html(dossier))):
        target = folder / name
        tmp = folder / f".{name}.{os.getpid()}.tmp"
        tmp.write_text(body, encoding="utf-8")
        os.replace(tmp, target)
        written[name] = target
    return written
