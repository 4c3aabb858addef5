"""PII recall / precision of the scrubber on Presidio's labelled synthetic benchmark.

    .venv/bin/python bench/pii_recall.py [--policy PATH] [--data PATH] [--no-baseline]

Dataset: presidio-research ``presidio_synth_dataset_v2.json`` (1,500 sentences, spans with
``entity_type`` / ``start_position`` / ``end_position``). A gold span counts as found when a
finding of the mapped type overlaps it ("covered" when a finding of any type does: the text is
gone either way). Precision: share of findings that overlap a gold span of their type (typed)
or of any type (PII vs not-PII). Over-scrubbing: findings that overlap no gold span, and the
ordinary English words inside them (WordNet index shipped with the spaCy model, plus stop words).
Prints a table and writes ``bench/results/pii_recall.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_DATA = ROOT / "bench" / "data" / "presidio_synth_dataset_v2.json"  # vendored, see its README.md

# dataset type -> our entity type. Types mapped to None are not in the default policy on purpose
# (see fine_tune_assets/defaults/scrub_policy.yaml); they are reported as "covered by any finding".
TYPE_MAP = {
    "PERSON": "PERSON",
    "EMAIL_ADDRESS": "EMAIL_ADDRESS",
    "PHONE_NUMBER": "PHONE_NUMBER",
    "US_SSN": "US_SSN",
    "CREDIT_CARD": "CREDIT_CARD",
    "IBAN_CODE": "IBAN_CODE",
    "IP_ADDRESS": "IP_ADDRESS",
    "STREET_ADDRESS": "STREET_ADDRESS",
    "GPE": None,  # LOCATION: not in the default policy
    "ORGANIZATION": None,
    "DATE_TIME": None,  # generic dates are kept; only dates of birth are scrubbed
    "TITLE": None,
    "AGE": None,
    "NRP": None,
    "ZIP_CODE": None,  # part of an address block when the address is found
    "DOMAIN_NAME": None,
    "US_DRIVER_LICENSE": None,
}
ZERO_MISS = ("EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS")


def overlaps(a_start, a_end, b_start, b_end) -> bool:
    return a_start < b_end and b_start < a_end


def evaluate(items, findings_per_item, words):
    gold_total, found, covered = Counter(), Counter(), Counter()
    missed = defaultdict(list)
    n_findings, typed_ok, any_ok = Counter(), Counter(), Counter()
    false_pos = []
    dict_words = Counter()
    for item, findings in zip(items, findings_per_item):
        text = item["full_text"]
        spans = item["spans"]
        for span in spans:
            gtype, gs, ge = span["entity_type"], span["start_position"], span["end_position"]
            ours = TYPE_MAP.get(gtype)
            gold_total[gtype] += 1
            if any(overlaps(gs, ge, f[1], f[2]) for f in findings):
                covered[gtype] += 1
            if ours and any(f[0] == ours and overlaps(gs, ge, f[1], f[2]) for f in findings):
                found[gtype] += 1
            elif ours:
                missed[gtype].append({"value": span["entity_value"], "text": text[:160]})
        for etype, fs, fe, score in findings:
            n_findings[etype] += 1
            hit_any = [s for s in spans if overlaps(fs, fe, s["start_position"], s["end_position"])]
            if hit_any:
                any_ok[etype] += 1
            if any(TYPE_MAP.get(s["entity_type"]) == etype for s in hit_any):
                typed_ok[etype] += 1
            if not hit_any:
                value = text[fs:fe]
                toks = [t for t in value.replace("\n", " ").split() if t.isalpha()]
                common = [t for t in toks if t.lower() in words]
                dict_words.update(t.lower() for t in common)
                false_pos.append({"type": etype, "value": value, "score": round(score, 3),
                                  "dictionary_words": common, "text": text[:160]})
    return gold_total, found, covered, missed, n_findings, typed_ok, any_ok, false_pos, dict_words


def stock_presidio(texts):
    """Stock Presidio 2.2.366 with en_core_web_sm, default recognizers, threshold 0.5."""
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    from fine_tune_assets.lib.data.scrub.nlp import nlp_configuration

    engine = NlpEngineProvider(nlp_configuration=nlp_configuration()).create_engine()
    analyzer = AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])
    out = []
    for text in texts:
        res = analyzer.analyze(text, language="en", score_threshold=0.5)
        out.append([(r.entity_type, r.start, r.end, r.score) for r in res])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--policy", default=str(ROOT / "data" / "config" / "scrub_policy.yaml"),
                    help="scrub policy YAML (default: the sample company's, data/config/scrub_policy.yaml)")
    ap.add_argument("--no-baseline", action="store_true", help="skip stock Presidio for comparison")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "pii_recall.json"))
    args = ap.parse_args(argv)

    from fine_tune_assets.lib.data.scrub import Scrubber, describe_policy, load_policy
    from fine_tune_assets.lib.data.scrub.names import english_words

    items = json.loads(Path(args.data).read_text(encoding="utf-8"))
    texts = [x["full_text"] for x in items]
    policy = load_policy(args.policy)
    t0 = time.perf_counter()
    scrubber = Scrubber(policy)
    t1 = time.perf_counter()
    findings = scrubber.analyze_many(texts)
    t2 = time.perf_counter()
    words = english_words()
    (gold, found, covered, missed, n_find, typed_ok, any_ok, false_pos, dict_words) = evaluate(items, findings, words)

    baseline_found = None
    if not args.no_baseline:
        base = stock_presidio(texts)
        _, baseline_found, *_ = evaluate(items, base, words)

    rows = []
    print(f"\n{'dataset type':<18}{'ours':<16}{'gold':>6}{'found':>7}{'recall':>8}{'covered':>9}"
          f"{'stock':>8}  missed")
    for gtype in sorted(gold, key=lambda t: (TYPE_MAP.get(t) is None, -gold[t])):
        ours = TYPE_MAP.get(gtype)
        recall = found[gtype] / gold[gtype] if ours else None
        cov = covered[gtype] / gold[gtype]
        stock = baseline_found[gtype] / gold[gtype] if (baseline_found is not None and ours) else None
        rows.append({"dataset_type": gtype, "entity": ours, "gold": gold[gtype], "found": found[gtype],
                     "recall": recall, "covered_by_any": cov, "stock_presidio_recall": stock,
                     "missed": len(missed[gtype]) if ours else None})
        print(f"{gtype:<18}{(ours or '(not in policy)'):<16}{gold[gtype]:>6}{found[gtype] if ours else '':>7}"
              f"{(f'{recall:.3f}' if recall is not None else ''):>8}{cov:>9.3f}"
              f"{(f'{stock:.3f}' if stock is not None else ''):>8}  {len(missed[gtype]) if ours else ''}")

    total = sum(n_find.values())
    precision = {
        e: {"findings": n_find[e], "typed_precision": typed_ok[e] / n_find[e], "pii_precision": any_ok[e] / n_find[e]}
        for e in sorted(n_find)
    }
    print(f"\n{'our type':<16}{'findings':>9}{'typed P':>9}{'PII P':>8}{'no gold':>9}")
    fp_by_type = Counter(f["type"] for f in false_pos)
    for e, p in precision.items():
        print(f"{e:<16}{p['findings']:>9}{p['typed_precision']:>9.3f}{p['pii_precision']:>8.3f}{fp_by_type[e]:>9}")
    typed_all = sum(typed_ok.values()) / total if total else 0.0
    any_all = sum(any_ok.values()) / total if total else 0.0
    print(f"{'ALL':<16}{total:>9}{typed_all:>9.3f}{any_all:>8.3f}{len(false_pos):>9}")
    n_dict = sum(dict_words.values())
    print(f"\nover-scrubbing: {len(false_pos)} findings overlap no gold span; "
          f"{n_dict} ordinary dictionary words inside them ({len(dict_words)} distinct): "
          f"{', '.join(w for w, _ in dict_words.most_common(25))}")
    for etype in ZERO_MISS:
        if missed.get(etype):
            print(f"MISSED {etype}: {[m['value'] for m in missed[etype]]}")
    print(f"\nengine build {t1 - t0:.1f}s, analysis of {len(texts)} texts {t2 - t1:.1f}s "
          f"({len(texts) / (t2 - t1):.0f} texts/s), policy {policy.hash[:12]}")

    result = {
        "dataset": str(args.data),
        "n_texts": len(texts),
        "policy_hash": policy.hash,
        "policy": describe_policy(policy),
        "type_map": TYPE_MAP,
        "recall": rows,
        "precision": precision,
        "precision_all": {"findings": total, "typed_precision": typed_all, "pii_precision": any_all},
        "over_scrubbing": {
            "findings_without_gold": len(false_pos),
            "by_type": dict(fp_by_type),
            "dictionary_words": n_dict,
            "dictionary_words_distinct": len(dict_words),
            "top_dictionary_words": dict_words.most_common(50),
            "examples": false_pos[:200],
        },
        "missed": {k: v[:60] for k, v in missed.items()},
        "seconds": {"build": t1 - t0, "analyze": t2 - t1},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
