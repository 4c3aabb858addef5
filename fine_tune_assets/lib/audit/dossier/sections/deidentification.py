"""De-identification: the scrub policy the version was published with, and PII counts before and after."""

from __future__ import annotations

from ....common.render import value_text
from ..blocks import NOT_RECORDED, fields, item, section, table
from ..context import DossierContext
from ..values import load_json

METHOD = ("Presidio analyzer with pattern recognizers and offline spaCy NER; each finding at or above its score "
          "threshold is replaced by its operator; then an independent second scan of the scrubbed records for "
          "structured PII (blocking gate)")
EMPTY_POLICY = "not recorded: this dataset version's scrub policy record is empty"


def deidentification(ctx: DossierContext) -> dict:
    d = ctx.dataset
    if d is None:
        return section("deidentification", "De-identification", [fields(item(
            "scrub policy", None, gap="dataset version not in the registry"))])
    policy = load_json(d["scrub_policy"]) or {}
    counts = load_json(d["scrub_entity_counts"]) or {}
    residual = next((c for c in ctx.checks or [] if c.get("name") == "no_residual_pii"), None)
    residual_check = policy.get("residual_check") or {}
    rescanned = set(residual_check.get("entities") or [])
    found_after = ((residual or {}).get("details") or {}).get("findings_by_type") or {}
    operators = policy.get("operators") or {}
    versions = policy.get("versions") or {}
    empty = None if policy else EMPTY_POLICY
    blocks = [fields(
        item("method", METHOD),
        item("scrub policy hash", d["scrub_policy_hash"]),
        item("policy file", policy.get("source"), gap=None if policy.get("source") else (
            "packaged default policy" if policy else EMPTY_POLICY)),
        item("scrub logic version", policy.get("logic_version"), gap=empty),
        item("entities detected", ", ".join(policy.get("entities") or []) or None, gap=empty),
        item("score threshold", policy.get("score_threshold"), gap=empty),
        item("per-entity thresholds", ", ".join(f"{k} {v}" for k, v in (policy.get("entity_thresholds") or {})
                                               .items()) or "none (the score threshold applies to all)", gap=empty),
        item("recognizers file", policy.get("recognizers_file") or ("none (built-in recognizers only)" if policy
                                                                    else None), gap=empty),
        item("recognizers file sha256", policy.get("recognizers_file_sha256") or ("-" if policy else None), gap=empty),
        item("pseudonym key (environment variable name only)", policy.get("pseudonym_key_env") or
             "not used (no pseudonymize operator)", gap=empty),
        item("library and model versions", ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) or None,
             gap=None if versions else (EMPTY_POLICY if not policy else NOT_RECORDED)),
    )]
    blocks.append(table("Recognizers", ["recognizer", "entities"],
                        [[r.get("name"), ", ".join(r.get("entities") or [])] for r in policy.get("recognizers") or []],
                        gap=EMPTY_POLICY if not policy else "recognizer list not recorded"))
    blocks.append(table("Operators", ["applies to", "operator", "parameters"],
                        [[k, v.get("type"), value_text(v.get("params") or {})] for k, v in operators.items()],
                        gap=EMPTY_POLICY if not policy else "operators not recorded"))
    entities = sorted(set(counts) | set(policy.get("entities") or []) | set(found_after))
    rows = []
    for entity in entities:
        after = found_after.get(entity, 0) if entity in rescanned and residual else (
            "not re-scanned" if residual else "no residual scan recorded")
        rows.append([entity, counts.get(entity, 0), after])
    blocks.append(table("PII findings by type: before (found and replaced by the scrubber) and after (second scan "
                        "of the scrubbed records)", ["entity", "before: replaced", "after: residual findings"], rows,
                        gap="no PII counts recorded for this dataset version"))
    not_rescanned = sorted(set(policy.get("entities") or []) - rescanned)
    blocks.append(fields(
        item("residual-PII check: verdict", None if residual is None else (
            f"{'PASS' if residual.get('passed') else 'FAIL'}: {residual.get('observed')} finding(s) in "
            f"{(residual.get('details') or {}).get('records_with_findings', '?')} record(s), threshold "
            f"{residual.get('threshold')}"),
             gap=None if residual else "no residual-PII gate result recorded for this dataset version"),
        item("residual-PII check: entity types re-scanned", ", ".join(sorted(rescanned)) or None,
             gap=None if rescanned else (EMPTY_POLICY if not policy else NOT_RECORDED)),
        item("residual-PII check: score threshold", residual_check.get("threshold"),
             gap=None if residual_check else (EMPTY_POLICY if not policy else NOT_RECORDED)),
        item("residual counts for " + (", ".join(not_rescanned) or "-"), None,
             gap=("not measured: the second scan re-checks structured types only (names, addresses and dates "
                  "have no independent detector)")) if not_rescanned else
        item("residual counts for every detected type", "measured"),
        item("evaluation report examples withheld for residual PII", (ctx.report or {}).get(
            "examples_withheld_for_pii"), gap=None if ctx.report else "no evaluation report"),
    ))
    return section("deidentification", "De-identification", blocks)
