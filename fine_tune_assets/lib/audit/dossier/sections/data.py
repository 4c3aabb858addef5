"""Data: the dataset version, its raw sources, record counts through every stage, de-duplication and split."""

from __future__ import annotations

from pathlib import Path

from ....common.render import iso_time
from ..blocks import fields, item, section, table
from ..context import DossierContext
from ..values import load_json

DEDUP_METHOD = ("exact: same scrubbed content; near: same text after folding case, punctuation and whitespace, "
                "or MinHash character 5-gram Jaccard at or above the threshold (system prompts left out); the "
                "smallest record id is kept")


def _tokens(stats: dict | None) -> str | None:
    if not stats:
        return None
    return (f"{stats.get('examples')} examples, {stats.get('total')} tokens (min {stats.get('min')}, p50 "
            f"{stats.get('p50')}, p95 {stats.get('p95')}, max {stats.get('max')})")


def _stage_flow(ctx: DossierContext, d: dict) -> dict:
    """Records through every stage: in -> quarantined at ingest / scrub / validate -> accepted -> split."""
    per_stage: dict[str, int] = {}
    for r in ctx.stage_counts:
        per_stage[r["stage"]] = per_stage.get(r["stage"], 0) + r["n"]
    rows = [["input records", "-", d["input_records"]]]
    remaining = d["input_records"]
    if per_stage or not d["quarantined"]:
        for stage in ("ingest", "scrub", "validate", *sorted(set(per_stage) - {"ingest", "scrub", "validate"})):
            n = per_stage.get(stage, 0)
            remaining -= n
            rows.append([f"quarantined at {stage}", n, remaining])
    else:
        remaining -= d["quarantined"]
        rows.append(["quarantined (stage not recorded)", d["quarantined"], remaining])
    balanced = remaining == d["accepted"] and d["input_records"] == d["accepted"] + d["quarantined"]
    rows += [["accepted", "-", d["accepted"]], ["train split", "-", d["n_train"]],
             ["eval split", "-", d["n_eval"]],
             ["accounting: in = accepted + quarantined", "-", "balanced" if balanced else "DOES NOT BALANCE"]]
    return table("Record counts through every stage", ["step", "records removed", "records remaining"], rows)


def data(ctx: DossierContext) -> dict:
    d, version = ctx.dataset, ctx.version_id
    if d is None:
        return section("data", "Data", [fields(item("dataset version", version, gap=(
            f"dataset version {version} is not in the registry: counts, sources and split cannot be shown")))])
    by_reason = load_json(d["quarantined_by_reason"]) or {}
    settings = load_json(d["settings"]) or {}
    manifest_path = Path(d["path"]) / "manifest.json"
    manifest = load_json(manifest_path.read_text()) if manifest_path.is_file() else None
    token_stats = load_json(d["token_stats"]) or {}
    blocks = [fields(
        item("dataset version (sha256 of train.jsonl + eval.jsonl hashes)", version),
        item("published at", iso_time(d["created_at"])),
        item("parent version", d["parent_version"] or "none (first published version)"),
        item("folder", d["path"]),
        item("manifest.json sha256", ctx.manifest_sha256),
        item("Dagster run id", d["run_id"]),
        item("time window of the conversations", None, gap=(
            "not recorded: ingest keeps no conversation timestamps; the data is what the sources below held when "
            f"the version was published ({iso_time(d['created_at'])})")),
    )]
    blocks.append(table("Sources (raw files, by content hash)",
                        ["file", "sha256", "format", "mapping", "records in", "accepted", "quarantined",
                         "blank lines"],
                        [[s["source_file"], s["source_sha256"], s["format"], s["mapping"] or "-", s["inputs"],
                          s["accepted"], s["quarantined"], s["blank_lines"]] for s in ctx.sources],
                        gap="no source files recorded for this dataset version"))
    blocks.append(_stage_flow(ctx, d))
    blocks.append(table("Quarantine reasons", ["stage", "reason", "records"],
                        [[r["stage"], r["reason"], r["n"]] for r in ctx.stage_counts]
                        or [["-", k, v] for k, v in sorted(by_reason.items())],
                        gap=None if not d["quarantined"] else "quarantine reasons not recorded",
                        empty=None if d["quarantined"] else ["-", "(none: no record was quarantined)", "0"]))
    threshold = settings.get("near_duplicate_threshold")
    blocks.append(fields(
        item("de-duplication: method", DEDUP_METHOD),
        item("de-duplication: near-duplicate threshold", threshold,
             gap=None if threshold is not None else "not recorded in this version's settings"),
        item("de-duplication: exact duplicates removed", by_reason.get("duplicate_exact", 0)),
        item("de-duplication: near duplicates removed", by_reason.get("duplicate_near", 0)),
    ))
    eval_fraction = (manifest or {}).get("eval_fraction", settings.get("eval_fraction"))
    overlap = ((ctx.report or {}).get("eval_set") or {}).get("train_overlap")
    blocks.append(fields(
        item("split: method", "deterministic by record hash (a record keeps its split as data grows)"),
        item("split: eval fraction", eval_fraction),
        item("split: train examples", d["n_train"]),
        item("split: eval (held-out) examples", d["n_eval"]),
        item("split: train/eval overlap found at evaluation", overlap,
             gap=None if overlap is not None else "no evaluation report: overlap not checked"),
        item("tokens: train", _tokens(token_stats.get("train"))),
        item("tokens: eval", _tokens(token_stats.get("eval"))),
    ))
    files = load_json(d["files"]) or {}
    blocks.append(table("Dataset files", ["file", "sha256"], [[k, v] for k, v in sorted(files.items())],
                        gap="no file hashes recorded"))
    return section("data", "Data", blocks)
