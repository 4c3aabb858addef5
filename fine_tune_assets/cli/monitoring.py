"""``drift --candidate VERSION|FILE``: has the data changed since the adapter in production was trained?"""

from __future__ import annotations

from .output import UsageError, answer


def drift(args) -> int:
    from fine_tune_assets.lib.common.paths import DataPaths
    from fine_tune_assets.lib.evaluation.spec import EvalSpecError
    from fine_tune_assets.lib.monitoring.evaluate import evaluate_candidate
    from fine_tune_assets.lib.monitoring.file_candidate import CandidateFileError
    from fine_tune_assets.lib.monitoring.policy import DriftPolicyError, load_drift_policy

    def call():
        paths = DataPaths.from_env()
        if not args.candidate.strip():
            raise UsageError("--candidate needs a dataset version id, 'latest' or a file")
        policy = load_drift_policy(args.policy or paths.drift_policy)
        return evaluate_candidate(paths, args.candidate, args.reference, policy)

    return answer(args, call, _drift_text, errors=(DriftPolicyError, CandidateFileError, EvalSpecError),
                  code=lambda e: 1 if args.fail_on_drift and e.drift else 0)


def _label(candidate: str) -> str:
    return candidate if candidate.startswith("file:") else f"dataset {candidate[:12]}"


def _drift_text(e) -> str:
    r, ref = e.report, e.reference
    held = f"adapter {ref.adapter_id[:12]}, {ref.how}" if ref.adapter_id else ref.how
    lines = [f"drift: {r.decision}",
             f"  reference  dataset {ref.version_id[:12]} ({held}): {r.n_reference} train records",
             f"  candidate  {_label(e.candidate)}: {r.n_candidate_new} new records"
             + (f" ({r.n_already_judged} judged by earlier windows)" if r.n_already_judged else "")
             + f", window {r.n_window}"]
    if e.candidate_stages:
        s = e.candidate_stages
        lines.append(f"             the file through the pipeline's stages: {s['inputs']} in, {s['accepted']} "
                     f"accepted ({s['ingest_rejected']} ingest / {s['scrub_rejected']} scrub / "
                     f"{s['validate_rejected']} validate quarantined)")
    for name, d in r.detectors.items():
        verdict = "FLAGGED" if d["flagged"] else "quiet"
        p = f"{d['p_value']:.3g}" if d["p_value"] is not None else "-"
        lines.append(f"  {name:<12} {verdict:<8} statistic {d['statistic']}  p {p}  ({d['threshold']})")
    if r.control:
        flagged = [n for n, d in r.control.items() if d["flagged"]]
        verdict = "FLAGGED " + ", ".join(flagged) if flagged else "quiet"
        lines.append(f"  negative control (two halves of the reference): {verdict}")
    moved = r.detectors.get("descriptors", {}).get("details", {}).get("moved", [])
    if moved:
        lines.append("  descriptors that moved: " + ", ".join(
            f"{m['descriptor']} ({m['scope']}, JS {m['js']})" for m in moved[:8]))
    if e.over_represented_terms:
        lines.append("  terms over-represented in the window: " + ", ".join(
            f"{t['term']} ({t['window_share']:.0%} of window vs {t['reference_share']:.0%})"
            for t in e.over_represented_terms[:8]))
    if e.top_terms:
        lines.append("  terms that tell the window apart: " + ", ".join(t["term"] for t in e.top_terms[:10]))
    lines += [f"  why: {reason}" for reason in r.reasons]
    lines.append(f"  policy {e.policy.policy_hash[:12]} ({e.policy.source}); nothing was recorded or published")
    return "\n".join(lines)


def register(sub) -> None:
    p = sub.add_parser("drift", help="compare new data with the data an adapter was trained on (nothing is "
                                     "recorded or published)")
    p.add_argument("--reference", default="production",
                   help="production (default; the newest adapter when none holds it), latest, another stage, "
                        "an adapter id or a dataset version id")
    p.add_argument("--candidate", required=True,
                   help="a dataset version id (or 'latest'), or a raw file (chat JSONL, or CSV / Parquet with "
                        "a mapping) that goes through ingest, scrub and validation first")
    p.add_argument("--policy", default=None, help="drift policy YAML (default: config/drift_policy.yaml)")
    p.add_argument("--fail-on-drift", action="store_true",
                   help="exit 1 on drift (signal, confirmed, or confirmed during a cooldown), for CI")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=drift)
