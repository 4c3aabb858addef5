"""The drift report an auditor reads: JSON (everything), Markdown (the verdict and why) and a plot
of each numeric descriptor, reference against window. Numbers, terms and record ids only: the
report never holds record text."""

from __future__ import annotations

import json
from pathlib import Path

from ..common.figures import save_png
from ..common.parquet import atomic_write_bytes
from .descriptors import NUMBERS
from .evaluate import DriftEvaluation


def _p(value) -> str:
    return "-" if value is None else f"{value:.3g}"


def markdown(e: DriftEvaluation, evaluation_id: str | None = None, event_seq: int | None = None) -> str:
    r, ref = e.report, e.reference
    lines = [f"# Drift report: **{r.decision}**", ""]
    if evaluation_id:
        lines.append(f"Evaluation `{evaluation_id}`, ledger event {event_seq}, {r.created_at}.")
    lines += [
        f"Reference: dataset version `{ref.version_id[:12]}`"
        + (f" (adapter `{ref.adapter_id[:12]}`, {ref.how})" if ref.adapter_id else f" ({ref.how})")
        + f", {r.n_reference} train records. Candidate: `{e.candidate[:40]}`, {r.n_candidate_new} records new to "
          f"the reference ({r.n_already_judged} of them judged by earlier windows), window {r.n_window}.", "",
        "## Why", "", *[f"- {reason}" for reason in r.reasons], ""]
    if r.detectors:
        lines += ["## Detectors", "", "| family | statistic | p-value | threshold | verdict | negative control |",
                  "| --- | ---: | ---: | --- | --- | --- |"]
        for name, d in r.detectors.items():
            c = r.control.get(name, {})
            control = f"{'flagged' if c.get('flagged') else 'quiet'} ({c.get('statistic')}, p {_p(c.get('p_value'))})"
            lines.append(f"| {name} | {d['statistic']} | {_p(d['p_value'])} | {d['threshold']} | "
                         f"{'**flagged**' if d['flagged'] else 'quiet'} | {control} |")
        lines.append("")
        moved = r.detectors.get("descriptors", {}).get("details", {}).get("moved", [])
        if moved:
            lines += ["## Descriptors that moved", "", "| scope | descriptor | test | JS distance | Holm p | "
                      "reference | window |", "| --- | --- | --- | ---: | ---: | --- | --- |"]
            lines += [f"| {m['scope']} | {m['descriptor']} | {m['test']} | {m['js']} | {_p(m['p_holm'])} | "
                      f"{_compact(m['reference'])} | {_compact(m['window'])} |" for m in moved[:20]]
            lines.append("")
        novelty = r.detectors.get("novelty", {}).get("details", {})
        if novelty.get("most_novel_record_ids"):
            lines += ["## Most novel records (ids)", "", *[f"- `{i}`" for i in novelty["most_novel_record_ids"]], ""]
        if e.over_represented_terms:
            lines += ["## Terms over-represented in the window", "",
                      "Used by at least five window records; letters only (no numbers, ids or addresses).", "",
                      "| term | window records using it | reference records using it | window records | Holm p |",
                      "| --- | ---: | ---: | ---: | ---: |"]
            lines += [f"| {t['term']} | {t['window_share']:.1%} | {t['reference_share']:.1%} | {t['window_records']} | "
                      f"{_p(t['p_holm'])} |" for t in e.over_represented_terms]
            lines.append("")
        if e.top_terms:
            lines += ["## Terms that tell the window apart (classifier)", "",
                      "Seen in at least five window records; letters only (no numbers, ids or addresses).", "",
                      ", ".join(f"{t['term']} ({t['window_records']})" for t in e.top_terms), ""]
    lines += [f"Policy `{e.policy.policy_hash[:12]}` ({e.policy.source}), drift logic {r.logic_version}."]
    return "\n".join(lines) + "\n"


def _compact(dist: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in list(dist.items())[:6])


def plot_descriptors(e: DriftEvaluation, path: Path) -> Path | None:
    """One histogram per numeric descriptor, reference against window (shares, shared bins)."""
    dists = e.report.distributions
    if not dists:
        return None
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cols = 4
    rows = -(-len(NUMBERS) // cols)
    fig = Figure(figsize=(12, 2.8 * rows), dpi=100, layout="tight")
    FigureCanvasAgg(fig)
    for i, name in enumerate(NUMBERS):
        ax = fig.add_subplot(rows, cols, i + 1)
        ref, win = (np.asarray(v, dtype=float) for v in dists[name])
        pooled = np.concatenate([ref, win])
        hi = float(np.quantile(pooled, 0.99)) if len(pooled) else 1.0
        bins = np.linspace(float(pooled.min()) if len(pooled) else 0.0, max(hi, 1e-9), 25)
        for values, label, color in ((ref, "reference", "tab:blue"), (win, "window", "tab:orange")):
            weights = np.full(len(values), 1 / max(len(values), 1))
            ax.hist(np.clip(values, bins[0], bins[-1]), bins=bins, weights=weights, alpha=0.55, label=label,
                    color=color)
        ax.set_title(name, fontsize="medium")
        ax.tick_params(labelsize="small")
        if i == 0:
            ax.legend(fontsize="small")
    fig.suptitle(f"Drift descriptors: {e.report.decision} (share of records; top 1% clipped)")
    return save_png(fig, path)


def write_report(e: DriftEvaluation, folder: Path, evaluation_id: str | None = None,
                 event_seq: int | None = None) -> dict[str, Path]:
    """report.json, report.md and descriptors.png in ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    data = {**e.to_dict(), "evaluation_id": evaluation_id, "event_seq": event_seq}
    out = {"json": folder / "report.json", "markdown": folder / "report.md"}
    atomic_write_bytes(out["json"], json.dumps(data, indent=2, ensure_ascii=False, default=str).encode("utf-8"))
    atomic_write_bytes(out["markdown"], markdown(e, evaluation_id, event_seq).encode("utf-8"))
    if (png := plot_descriptors(e, folder / "descriptors.png")) is not None:
        out["plot"] = png
    return out
