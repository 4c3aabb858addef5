"""The audit dossier of one adapter: generated from the registry, the ledger and the adapter's files, never by hand.

Plain Python, no Dagster import: the ``model_dossier`` asset and ``fine-tune-assets dossier`` share it.
``build_dossier`` collects every section as data (a JSON-able dict); ``render_markdown`` and ``render_html``
only lay it out, so both formats always show the same items. Sections: identity, data, de-identification,
quality gates, training, evaluation, operations, approvals (separation of duties), integrity. Every item has a
value or an explicit gap with the reason it is missing, and all gaps are listed again at the end. No record
content ever goes in.
Design notes (sources, the "previous adapter" rule, retraining): docs/audit.md.
"""

from .blocks import NOT_RECORDED
from .build import DOSSIER_FORMAT, build_dossier, content_hash, tool_version
from .context import DossierContext, DossierError
from .render import render_html, render_markdown, write_dossier
from .sections import DRIFT_POLICY_GAP

__all__ = ["DOSSIER_FORMAT", "DRIFT_POLICY_GAP", "NOT_RECORDED", "DossierContext", "DossierError", "build_dossier",
           "content_hash", "render_html", "render_markdown", "tool_version", "write_dossier"]
