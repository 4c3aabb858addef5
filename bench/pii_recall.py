"""PII recall / precision of the scrubber, next to stock Presidio, on two labelled sets.

    .venv/bin/python bench/pii_recall.py [--set presidio|enterprise|both] [--limit N | --smoke]
        [--policy PATH] [--data PATH] [--enterprise-n 300] [--seed 10] [--no-baseline]

``presidio``: presidio-research ``presidio_synth_dataset_v2.json`` (1,500 sentences, spans with
``entity_type`` / ``start_position`` / ``end_position``). A gold span counts as found when a
finding of the mapped type overlaps it ("covered" when a finding of any type does: the text is
gone either way). Precision: share of findings that overlap a gold span of their type (typed)
or of any type (PII vs not-PII). Over-scrubbing: findings that overlap no gold span, and the
ordinary English words inside them (WordNet index shipped with the spaCy model, plus stop words).
First analysis pass only (``Scrubber.analyze_many``), as before.

``enterprise``: support chats made by ``bench/enterprise_chats.py`` (seeded; names typed by hand, not
from the scrubber's gazetteer). The project is measured on what ``Scrubber.scrub_many`` outputs for
whole conversations (cross-message propagation and fixed-point passes included): the placeholders
in the output are aligned back to the original text. Adds recall of PERSON by form, case and
"in gazetteer", "whole" (every character of the value removed, so no part of it leaks), people
caught in one message and leaked in another, and must-keep words planted on purpose.

Both sets: "words kept" is the share of words (letter runs) outside every gold span that no finding
touches. Stock Presidio: ``AnalyzerEngine`` with its default recognizers, the same offline spaCy
model, threshold 0.5, one message at a time; its findings are limited to the policy's entity types
it supports (its other types, e.g. DATE_TIME or LOCATION, only count for "covered").
Prints tables and writes ``bench/results/pii_recall.json`` (the Presidio set's fields at the top
level as before, the enterprise set under ``enterprise``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import regex

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))  # enterprise_chats, next to this file

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


def stock_analyzer():
    """Stock Presidio 2.2.366 with en_core_web_sm, default recognizers (offline model, no download)."""
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    from fine_tune_assets.lib.data.scrub.nlp import nlp_configuration

    engine = NlpEngineProvider(nlp_configuration=nlp_configuration()).create_engine()
    return AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])


def stock_presidio(texts, analyzer=None):
    """Stock findings per text at threshold 0.5 (every entity type stock Presidio knows)."""
    analyzer = analyzer or stock_analyzer()
    out = []
    for text in texts:
        res = analyzer.analyze(text, language="en", score_threshold=0.5)
        out.append([(r.entity_type, r.start, r.end, r.score) for r in res])
    return out


def only(findings_per_text, entities):
    """Findings limited to the given entity types (stock Presidio configured for the policy's list)."""
    entities = set(entities)
    return [[f for f in fs if f[0] in entities] for fs in findings_per_text]


WORD_RE = regex.compile(r"\p{L}+(?:['’]\p{L}+)*")


def words_kept(text, gold_spans, findings) -> tuple[int, int]:
    """(non-PII words, of them untouched by any finding); gold_spans are (start, end) pairs."""
    total = kept = 0
    for m in WORD_RE.finditer(text):
        if any(overlaps(m.start(), m.end(), gs, ge) for gs, ge in gold_spans):
            continue
        total += 1
        if not any(overlaps(m.start(), m.end(), f[1], f[2]) for f in findings):
            kept += 1
    return total, kept


def places_as_people(items, findings_per_text) -> tuple[int, int]:
    """(GPE gold spans a PERSON finding overlaps, GPE gold spans). Cities and countries are
    ordinary content under the policy; "I'm from <PERSON_1>" is over-scrubbing that "words kept"
    cannot see, because it counts only words outside gold spans."""
    hit = total = 0
    for item, fs in zip(items, findings_per_text):
        for sp in item["spans"]:
            if sp["entity_type"] == "GPE":
                total += 1
                hit += any(f[0] == "PERSON" and overlaps(f[1], f[2], sp["start_position"], sp["end_position"])
                           for f in fs)
    return hit, total


def ratio(a, b):
    return a / b if b else None


def fmt(x, width=8):
    return f"{x:>{width}.3f}" if x is not None else f"{'-':>{width}}"


# ------------------------------------------------------------------------------------------------ enterprise set


def aligned_findings(original: str, scrubbed: str) -> list[tuple[str, int, int, float]] | None:
    """The spans of ``original`` that placeholders replaced in ``scrubbed``, typed by the placeholder.

    The scrubbed text is the original with some spans swapped for ``<TYPE_N>`` (or pseudonyms); the
    literal text around the placeholders is matched back in order. None when it does not line up.
    """
    from fine_tune_assets.lib.data.scrub.operators import PLACEHOLDER_RE

    if original == scrubbed:
        return []
    pattern, types, pos = [], [], 0
    for m in PLACEHOLDER_RE.finditer(scrubbed):
        pattern.append(regex.escape(scrubbed[pos:m.start()]))
        pattern.append("(.+?)")
        types.append(m.group(1))
        pos = m.end()
    pattern.append(regex.escape(scrubbed[pos:]))
    match = regex.fullmatch("".join(pattern), original, flags=regex.DOTALL)
    if match is None:
        return None
    return [(etype, match.start(i + 1), match.end(i + 1), 1.0) for i, etype in enumerate(types)]


def project_enterprise(scrubber, convs):
    """Findings per message of what the project outputs for whole conversations (scrub_many)."""
    results = scrubber.scrub_many([[{"role": m["role"], "content": m["content"]} for m in c["messages"]]
                                   for c in convs])
    out, failures = [], 0
    for conv, result in zip(convs, results):
        for m, new in zip(conv["messages"], result.messages):
            found = aligned_findings(m["content"], new["content"])
            if found is None:  # pragma: no cover - the output is the input with spans swapped
                failures += 1
                found = [("UNALIGNED", 0, len(m["content"]), 1.0)]
            out.append(found)
    return out, failures


def _bucket():
    return {"gold": 0, "found": 0, "whole": 0}


def _rates(buckets):
    return {k: {**v, "recall": ratio(v["found"], v["gold"]), "whole_recall": ratio(v["whole"], v["gold"])}
            for k, v in sorted(buckets.items())}


def evaluate_enterprise(convs, findings_per_message, words, all_findings_per_message=None) -> dict:
    """Recall by type / form / case / gazetteer, precision, words kept, for one scrubber's findings.

    ``findings_per_message`` follows the messages of ``convs`` in order. ``all_findings_per_message``
    (stock Presidio's unfiltered findings) only feeds "covered".
    """
    all_findings_per_message = all_findings_per_message or findings_per_message
    by_type, by_form, by_case, by_gaz, by_form_case, by_struct_form = (defaultdict(_bucket) for _ in range(6))
    covered = Counter()
    missed = defaultdict(list)
    n_find, typed_ok, any_ok = Counter(), Counter(), Counter()
    false_pos, dict_words = [], Counter()
    words_total = words_ok = 0
    keep_total, keep_ok = Counter(), Counter()
    keep_lost = []
    person_mentions = defaultdict(list)  # (conversation, person) -> [found?]
    k = 0
    for conv in convs:
        for m in conv["messages"]:
            findings, all_f = findings_per_message[k], all_findings_per_message[k]
            k += 1
            text, spans = m["content"], m["spans"]
            for sp in spans:
                et, gs, ge = sp["entity_type"], sp["start"], sp["end"]
                hit = any(f[0] == et and overlaps(gs, ge, f[1], f[2]) for f in findings)
                chars = [i for i in range(gs, ge) if not text[i].isspace()]
                whole = all(any(f[1] <= i < f[2] for f in findings) for i in chars)
                if any(overlaps(gs, ge, f[1], f[2]) for f in all_f):
                    covered[et] += 1
                buckets = [by_type[et]]
                if et == "PERSON":
                    buckets += [by_form[sp["form"]], by_case[sp["case"]], by_gaz[sp["in_gazetteer"]],
                                by_form_case[f"{sp['form']}/{sp['case']}"]]
                    person_mentions[(conv["id"], sp["person"])].append(hit)
                else:
                    buckets.append(by_struct_form[f"{et}/{sp['form']}"])
                for b in buckets:
                    b["gold"] += 1
                    b["found"] += hit
                    b["whole"] += whole
                if not hit or not whole:
                    missed[et].append({"value": sp["value"], "form": sp["form"], "case": sp.get("case"),
                                       "partial": hit and not whole, "conversation": conv["id"],
                                       "text": text[max(0, gs - 60):ge + 40]})
            for etype, fs, fe, score in findings:
                n_find[etype] += 1
                hit_any = [sp for sp in spans if overlaps(fs, fe, sp["start"], sp["end"])]
                any_ok[etype] += bool(hit_any)
                typed_ok[etype] += any(sp["entity_type"] == etype for sp in hit_any)
                if not hit_any:
                    value = text[fs:fe]
                    common = [t for t in WORD_RE.findall(value) if t.lower() in words]
                    dict_words.update(t.lower() for t in common)
                    false_pos.append({"type": etype, "value": value, "score": round(score, 3),
                                      "dictionary_words": common, "conversation": conv["id"],
                                      "text": text[max(0, fs - 60):fe + 40]})
            total, ok = words_kept(text, [(sp["start"], sp["end"]) for sp in spans], findings)
            words_total += total
            words_ok += ok
            for kp in m["keep"]:
                keep_total[kp["form"]] += 1
                if any(overlaps(kp["start"], kp["end"], f[1], f[2]) for f in findings):
                    keep_lost.append({"value": kp["value"], "form": kp["form"], "conversation": conv["id"]})
                else:
                    keep_ok[kp["form"]] += 1
    split_people = sum(1 for hits in person_mentions.values() if any(hits) and not all(hits))
    total_f = sum(n_find.values())
    types = _rates(by_type)
    for et, row in types.items():
        row["covered"] = ratio(covered[et], row["gold"])
    structured = [t for t in types if t != "PERSON"]
    s_gold = sum(types[t]["gold"] for t in structured)
    return {
        "n_conversations": len(convs),
        "n_messages": k,
        "recall_by_type": types,
        "structured": {"gold": s_gold, "found": sum(types[t]["found"] for t in structured),
                       "recall": ratio(sum(types[t]["found"] for t in structured), s_gold),
                       "whole_recall": ratio(sum(types[t]["whole"] for t in structured), s_gold)},
        "person_by_form": _rates(by_form),
        "person_by_case": _rates(by_case),
        "person_by_gazetteer": _rates(by_gaz),
        "person_by_form_and_case": _rates(by_form_case),
        "structured_by_form": _rates(by_struct_form),
        "people_caught_in_one_message_leaked_in_another": {"people": len(person_mentions),
                                                           "split": split_people},
        "precision": {e: {"findings": n_find[e], "typed_precision": typed_ok[e] / n_find[e],
                          "pii_precision": any_ok[e] / n_find[e]} for e in sorted(n_find)},
        "precision_all": {"findings": total_f, "typed_precision": ratio(sum(typed_ok.values()), total_f),
                          "pii_precision": ratio(sum(any_ok.values()), total_f)},
        "words_kept": {"words": words_total, "kept": words_ok, "share": ratio(words_ok, words_total)},
        "planted_keep_words": {f: {"n": keep_total[f], "kept": keep_ok[f], "share": ratio(keep_ok[f], keep_total[f])}
                               for f in sorted(keep_total)},
        "planted_keep_lost": keep_lost[:100],
        "over_scrubbing": {"findings_without_gold": len(false_pos), "dictionary_words": sum(dict_words.values()),
                           "top_dictionary_words": dict_words.most_common(30), "examples": false_pos[:100]},
        "missed": {et: v[:80] for et, v in missed.items()},
        "missed_counts": {et: len(v) for et, v in missed.items()},
    }


def print_enterprise(ours: dict, stock: dict | None) -> None:
    def line(label, o, s, extra=""):
        print(f"{label:<34}{o['gold']:>6}{fmt(o['recall'])}{fmt(o['whole_recall'])}"
              f"{fmt(s['recall'] if s else None)}{fmt(s['whole_recall'] if s else None)}{extra}")

    head = f"{'':<34}{'gold':>6}{'recall':>8}{'whole':>8}{'stock':>8}{'st.whole':>8}"
    print(f"\nenterprise chats: {ours['n_conversations']} conversations, {ours['n_messages']} messages "
          "(recall: a finding of the type overlaps; whole: every character removed)")
    print(head)
    for et, row in ours["recall_by_type"].items():
        line(et, row, stock["recall_by_type"].get(et) if stock else None)
    line("structured (all but PERSON)", ours["structured"], stock["structured"] if stock else None)
    for title, key in (("PERSON by form", "person_by_form"), ("PERSON by case", "person_by_case"),
                       ("PERSON by in gazetteer (parts)", "person_by_gazetteer")):
        print(f"\n{title}\n{head}")
        for name, row in ours[key].items():
            line(f"  {name}", row, stock[key].get(name) if stock else None)
    sp = ours["people_caught_in_one_message_leaked_in_another"]
    ssp = stock["people_caught_in_one_message_leaked_in_another"] if stock else None
    print(f"\npeople caught in one message and leaked in another: {sp['split']} of {sp['people']}"
          + (f" (stock {ssp['split']})" if ssp else ""))
    for label, r in (("ours", ours), ("stock", stock)):
        if not r:
            continue
        p, w = r["precision_all"], r["words_kept"]
        planted = ", ".join(f"{f} {v['kept']}/{v['n']}" for f, v in r["planted_keep_words"].items())
        print(f"{label:<6} precision typed {fmt(p['typed_precision'], 0)} PII {fmt(p['pii_precision'], 0)} "
              f"over {p['findings']} findings; {r['over_scrubbing']['findings_without_gold']} without gold; "
              f"words kept {fmt(w['share'], 0)} ({w['kept']}/{w['words']}); planted words kept: {planted}")
        person = r["precision"].get("PERSON")
        if person:
            print(f"       PERSON precision typed {person['typed_precision']:.3f} PII {person['pii_precision']:.3f} "
                  f"over {person['findings']} findings")
    for et, misses in ours["missed"].items():
        if et != "PERSON":
            print(f"MISSED {et}: {[(x['value'], x['form']) for x in misses]}")


def run_presidio(args, scrubber, policy, words, analyzer) -> dict:
    """The Presidio synthetic set: the table, precision and over-scrubbing as before, plus words kept."""
    items = json.loads(Path(args.data).read_text(encoding="utf-8"))
    if args.limit:
        items = items[:args.limit]
    texts = [x["full_text"] for x in items]
    t1 = time.perf_counter()
    findings = scrubber.analyze_many(texts)
    t2 = time.perf_counter()
    (gold, found, covered, missed, n_find, typed_ok, any_ok, false_pos, dict_words) = evaluate(items, findings, words)

    baseline_found = base = None
    if analyzer is not None:
        base = stock_presidio(texts, analyzer)
        _, baseline_found, *_ = evaluate(items, base, words)
    t3 = time.perf_counter()

    rows = []
    print(f"\nPresidio synthetic set: {len(texts)} sentences")
    print(f"{'dataset type':<18}{'ours':<16}{'gold':>6}{'found':>7}{'recall':>8}{'covered':>9}"
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

    def kept_share(per_text):
        total_w = kept_w = 0
        for item, fs in zip(items, per_text):
            gold_spans = [(sp["start_position"], sp["end_position"]) for sp in item["spans"]]
            a, b = words_kept(item["full_text"], gold_spans, fs)
            total_w, kept_w = total_w + a, kept_w + b
        return {"words": total_w, "kept": kept_w, "share": ratio(kept_w, total_w)}

    kept = {"ours": kept_share(findings)}
    places = {"ours": places_as_people(items, findings)}
    stock_precision = None
    if base is not None:
        stock_only = only(base, policy.entities)
        kept["stock"] = kept_share(stock_only)
        places["stock"] = places_as_people(items, stock_only)
        (_, _, _, _, s_find, s_typed, s_any, s_fp, _) = evaluate(items, stock_only, words)
        s_total = sum(s_find.values())
        stock_precision = {"findings": s_total, "typed_precision": ratio(sum(s_typed.values()), s_total),
                           "pii_precision": ratio(sum(s_any.values()), s_total), "findings_without_gold": len(s_fp)}
        print(f"stock Presidio (policy types it supports): {s_total} findings, typed P "
              f"{fmt(stock_precision['typed_precision'], 0)}, PII P {fmt(stock_precision['pii_precision'], 0)}, "
              f"{len(s_fp)} without gold")
    print("words kept (outside gold spans): " + ", ".join(
        f"{k} {fmt(v['share'], 0)} ({v['kept']}/{v['words']})" for k, v in kept.items()))
    print("places (GPE) scrubbed as PERSON: " + ", ".join(
        f"{k} {hit} of {total}" for k, (hit, total) in places.items()))
    print(f"analysis of {len(texts)} texts {t2 - t1:.1f}s ({len(texts) / max(t2 - t1, 1e-9):.0f} texts/s)"
          + (f", stock {t3 - t2:.1f}s" if analyzer is not None else ""))

    return {
        "dataset": str(args.data),
        "n_texts": len(texts),
        "type_map": TYPE_MAP,
        "recall": rows,
        "precision": precision,
        "precision_all": {"findings": total, "typed_precision": typed_all, "pii_precision": any_all},
        "stock_presidio_precision": stock_precision,
        "words_kept": kept,
        "places_scrubbed_as_person": {k: {"places": total, "scrubbed_as_person": hit}
                                      for k, (hit, total) in places.items()},
        "over_scrubbing": {
            "findings_without_gold": len(false_pos),
            "by_type": dict(fp_by_type),
            "dictionary_words": n_dict,
            "dictionary_words_distinct": len(dict_words),
            "top_dictionary_words": dict_words.most_common(50),
            "examples": false_pos[:200],
        },
        "missed": {k: v[:60] for k, v in missed.items()},
        "seconds": {"analyze": t2 - t1, "stock": t3 - t2 if analyzer is not None else None},
    }


def run_enterprise(args, scrubber, policy, words, analyzer) -> dict:
    """The generated enterprise chats: the project's scrub_many output and stock Presidio per message."""
    from enterprise_chats import generate, name_overlap

    n = min(args.enterprise_n, args.limit) if args.limit else args.enterprise_n
    convs = generate(n, args.seed)
    texts = [m["content"] for c in convs for m in c["messages"]]
    t0 = time.perf_counter()
    ours_findings, failures = project_enterprise(scrubber, convs)
    t1 = time.perf_counter()
    ours = evaluate_enterprise(convs, ours_findings, words)
    ours["alignment_failures"] = failures
    stock = None
    if analyzer is not None:
        base = stock_presidio(texts, analyzer)
        stock = evaluate_enterprise(convs, only(base, policy.entities), words, all_findings_per_message=base)
    t2 = time.perf_counter()
    print_enterprise(ours, stock)
    print(f"scrub_many of {len(texts)} messages {t1 - t0:.1f}s ({len(texts) / max(t1 - t0, 1e-9):.0f} msg/s)"
          + (f", stock {t2 - t1:.1f}s" if analyzer is not None else ""))
    overlap = name_overlap()
    return {"generator": {"n": n, "seed": args.seed, "name_lists": {k: v for k, v in overlap.items()
                                                                   if not isinstance(v, list)}},
            "ours": ours, "stock_presidio": stock, "seconds": {"ours": t1 - t0, "stock": t2 - t1}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=["presidio", "enterprise", "both"], default="both", dest="which")
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--policy", default=str(ROOT / "data" / "config" / "scrub_policy.yaml"),
                    help="scrub policy YAML (default: the sample company's, data/config/scrub_policy.yaml)")
    ap.add_argument("--enterprise-n", type=int, default=300, help="generated conversations (default 300)")
    ap.add_argument("--seed", type=int, default=10, help="seed of the enterprise generator")
    ap.add_argument("--limit", type=int, default=0, help="first N sentences / conversations of each set")
    ap.add_argument("--smoke", action="store_true", help="CI form: --limit 8")
    ap.add_argument("--no-baseline", action="store_true", help="skip stock Presidio for comparison")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "pii_recall.json"))
    args = ap.parse_args(argv)
    if args.smoke and not args.limit:
        args.limit = 8

    from fine_tune_assets.lib.data.scrub import Scrubber, describe_policy, load_policy
    from fine_tune_assets.lib.data.scrub.names import english_words

    policy = load_policy(args.policy)
    t0 = time.perf_counter()
    scrubber = Scrubber(policy)
    analyzer = None if args.no_baseline else stock_analyzer()
    t1 = time.perf_counter()
    words = english_words()

    result: dict = {"policy_hash": policy.hash, "policy": describe_policy(policy), "sets": args.which,
                    "limit": args.limit or None}
    if args.which in ("presidio", "both"):
        result.update(run_presidio(args, scrubber, policy, words, analyzer))
    if args.which in ("enterprise", "both"):
        result["enterprise"] = run_enterprise(args, scrubber, policy, words, analyzer)
    result.setdefault("seconds", {})["build"] = t1 - t0
    print(f"\nengine build {t1 - t0:.1f}s, policy {policy.hash[:12]}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
