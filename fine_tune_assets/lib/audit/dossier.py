"""The audit dossier of one adapter: generated from the registry, the ledger and the adapter's files, never by hand.

Plain Python, no Dagster import: the ``model_dossier`` asset and ``fine-tune-assets dossier`` share it.
``build_dossier`` collects every section as data (a JSON-able dict); ``render_markdown`` and
``render_html`` only lay it out, so both formats always show the same items.

Sections: identity, data, de-identification, quality gates, training, evaluation, operations, integrity.
Every item has either a value or an explicit gap with the reason it is missing ("GAP: ..."): a missing
item is never silently left out, and all gaps are listed again at the end.

What never goes in: record content. Only ids, counts, hashes, policy and file names, and the free-text
fields people wrote into the ledger (promotion and erasure reasons). The evaluation report's generated
answers are not copied (the dossier links to the report instead).

Sources and rules:

- Stage transitions, erasures and drift evaluations come from ledger events (kinds ``promotion``,
  ``rollback``, ``erasure``, ``drift_evaluation``), with their ``seq``, ``created_at`` and ``event_hash``.
- An adapter named in an erasure's ``affected_adapters``, or trained on a dataset version named in its
  ``affected_versions``, NEEDS RETRAINING: a banner at the top says so.
- The "previous adapter" compared against is, in this order: the adapter this one replaced in a stage
  (``previous_adapter_id`` of its newest promotion); else the newest adapter created before this one on
  the same dataset lineage (this dataset version or one of its ``parent_version`` ancestors).
- Integrity: ``verify_all`` (every dataset and adapter file re-hashed against the ledger, and the hash
  chain recomputed) is run when the dossier is generated; its verdict is part of the dossier.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path

from ..common.hashing import canonical_json, sha256_file, sha256_json
from ..common.paths import SOURCE_ROOT, DataPaths
from ..registry.connection import connect, rows_as_dicts, table_names
from ..registry.ledger import read_events

DOSSIER_FORMAT = "1"
GAP = "GAP"
NOT_RECORDED = "not recorded"
DRIFT_POLICY_GAP = ("drift policy not configured: the project has no drift policy yet (no thresholds, "
                    "no monitored metrics, no schedule)")
STAGE_KINDS = ("promotion", "rollback")


class DossierError(LookupError):
    """The adapter asked about is not in the registry (the message says what to run instead)."""


# ---------------------------------------------------------------- items, tables, sections (the data model)

def item(label: str, value=None, gap: str | None = None, note: str | None = None) -> dict:
    """One line of a section: a value, or an explicit gap. A value of None without a reason is a gap too."""
    if gap is None and (value is None or value == ""):
        gap = NOT_RECORDED
    return {"label": label, "value": None if gap else _text(value), "gap": gap, "note": note}


def fields(*items: dict) -> dict:
    return {"kind": "fields", "rows": list(items)}


def table(title: str, columns: list[str], rows: list[list], gap: str | None = None) -> dict:
    """A table; with no rows it shows ``gap`` (or, when the absence is itself the fact, ``empty``)."""
    rows = [[_text(c) for c in row] for row in rows]
    return {"kind": "table", "title": title, "columns": columns, "rows": rows,
            "gap": gap if not rows else None}


def text(value: str) -> dict:
    return {"kind": "text", "text": value}


def section(key: str, title: str, blocks: list[dict]) -> dict:
    return {"id": key, "title": title, "blocks": blocks}


def _text(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return canonical_json(value)
    return str(value)


def _short(value: str | None, n: int = 12) -> str:
    return (value or "")[:n]


def _load(value):
    if value is None or isinstance(value, (dict, list)):
        return value
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return None


def _iso(value) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else str(value)


def _pct(value) -> str:
    return "-" if not isinstance(value, (int, float)) or isinstance(value, bool) else f"{value:.1%}"


def _seconds(value) -> str | None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    return f"{value:.1f} s ({value / 60:.1f} min)"


# ---------------------------------------------------------------- registry access

def _paths(paths_or_registry) -> DataPaths:
    """A DataPaths, or the registry file (whose folder is the data directory)."""
    if isinstance(paths_or_registry, DataPaths):
        return paths_or_registry
    registry = Path(paths_or_registry)
    if registry.is_dir():
        return DataPaths(registry.resolve())
    return DataPaths(registry.resolve().parent)


def resolve_adapter(con, wanted: str) -> dict:
    """The adapters row for a full id, a unique prefix, or 'latest' (the newest), like ``adapters show``."""
    if "adapters" not in table_names(con):
        raise DossierError("the registry has no adapters yet: materialize lora_adapter first")
    if wanted in ("", "latest"):
        rows = rows_as_dicts(con.execute("SELECT * FROM adapters ORDER BY created_at DESC LIMIT 1"))
    else:
        rows = rows_as_dicts(con.execute(
            "SELECT * FROM adapters WHERE starts_with(adapter_id, ?) ORDER BY created_at DESC", [wanted]))
    if len(rows) != 1:
        raise DossierError(f"{len(rows)} adapters match {wanted!r}; see `fine-tune-assets adapters list`")
    return rows[0]


def _evaluation_row(con, adapter_id: str) -> dict | None:
    if "evaluations" not in table_names(con):
        return None
    rows = rows_as_dicts(con.execute("SELECT * FROM evaluations WHERE adapter_id = ? ORDER BY created_at DESC "
                                     "LIMIT 1", [adapter_id]))
    return rows[0] if rows else None


def tool_version() -> dict:
    from ..training.publish import git_commit

    try:
        version = package_version("fine_tune_assets")
    except PackageNotFoundError:
        version = None
    return {"name": "fine_tune_assets", "version": version, "dossier_format": DOSSIER_FORMAT,
            "git_commit": git_commit(SOURCE_ROOT)}


# ---------------------------------------------------------------- ledger reading

def _mentions(event: dict, adapter_id: str, version: str) -> bool:
    """Does this event concern the adapter (or, for data events, its dataset version)?"""
    p = event["payload"] if isinstance(event["payload"], dict) else {}
    kind, subject = event["kind"], event["subject"]
    if kind == "dataset_published":
        return subject == version or p.get("version_id") == version
    if kind == "adapter_trained":
        return subject == adapter_id or p.get("adapter_id") == adapter_id
    if kind == "evaluation_completed":
        return p.get("adapter_id") == adapter_id
    if kind == "promotion":
        return adapter_id in (subject, p.get("adapter_id"), p.get("previous_adapter_id"))
    if kind == "rollback":
        return adapter_id in (p.get("adapter_id"), p.get("rolled_back_adapter_id"))
    if kind == "erasure":
        return adapter_id in (p.get("affected_adapters") or []) or version in (p.get("affected_versions") or [])
    # drift_evaluation and anything newer: free-form, so any mention of the adapter or its dataset counts
    return subject in (adapter_id, version) or adapter_id in (event.get("payload_text") or "")


def _stage_holders(events: list[dict]) -> dict[str, dict]:
    """stage -> {adapter_id, seq}: who holds each stage after replaying every promotion and rollback."""
    holders: dict[str, dict] = {}
    for e in events:
        p = e["payload"] if isinstance(e["payload"], dict) else {}
        if e["kind"] in STAGE_KINDS and p.get("stage"):
            holders[p["stage"]] = {"adapter_id": p.get("adapter_id"), "seq": e["seq"]}
    return holders


# ---------------------------------------------------------------- the dossier

def build_dossier(paths_or_registry, adapter_id: str) -> dict:
    """Every section of the audit dossier of ``adapter_id`` (full id, unique prefix or 'latest')."""
    from .verify import verify_all

    paths = _paths(paths_or_registry)
    if not paths.registry.exists():
        raise DossierError(f"no registry at {paths.registry}: nothing has been published yet")
    integrity = verify_all(paths)  # opens the registry itself: run before our own connection
    with connect(paths.registry, read_only=True) as con:
        adapter = resolve_adapter(con, adapter_id)
        aid = adapter["adapter_id"]
        version_id = adapter["dataset_version"]
        dataset = (rows_as_dicts(con.execute("SELECT * FROM dataset_versions WHERE version_id = ?", [version_id]))
                   or [None])[0]
        sources = rows_as_dicts(con.execute(
            "SELECT source_file, source_sha256, format, mapping, inputs, accepted, quarantined, blank_lines "
            "FROM dataset_sources WHERE version_id = ? ORDER BY source_file", [version_id]))
        stage_counts = rows_as_dicts(con.execute(
            "SELECT stage, reason, count(*) AS n FROM quarantine WHERE version_id = ? GROUP BY stage, reason "
            "ORDER BY stage, reason", [version_id]))
        versions = {r["version_id"]: r["parent_version"] for r in rows_as_dicts(con.execute(
            "SELECT version_id, parent_version FROM dataset_versions"))}
        all_adapters = rows_as_dicts(con.execute(
            "SELECT adapter_id, created_at, dataset_version FROM adapters ORDER BY created_at"))
        evaluation = _evaluation_row(con, aid)
        events = read_events(con)
        previous = _previous_adapter(aid, adapter, events, versions, all_adapters)
        previous_eval = _evaluation_row(con, previous["adapter_id"]) if previous.get("adapter_id") else None

    lineage = _load(adapter["lineage"]) or {}
    metrics = _load(adapter["metrics"]) or lineage.get("metrics") or {}
    adapter_dir = Path(adapter["path"])
    report, report_path = _eval_report(evaluation, adapter_dir)
    previous_report = _eval_report(previous_eval, paths.adapters / previous["adapter_id"])[0] \
        if previous.get("adapter_id") else None
    mine = [e for e in events if _mentions(e, aid, version_id)]
    erasures = [e for e in mine if e["kind"] == "erasure"]
    # needs retraining: named by the erasure, or trained (later) on a version that holds erased records
    retrain = [e for e in erasures if aid in ((e["payload"] or {}).get("affected_adapters") or [])
               or version_id in ((e["payload"] or {}).get("affected_versions") or [])]
    head = events[-1] if events else None
    ctx = {"paths": paths, "adapter": adapter, "aid": aid, "version_id": version_id, "dataset": dataset,
           "sources": sources, "stage_counts": stage_counts, "lineage": lineage, "metrics": metrics,
           "adapter_dir": adapter_dir, "evaluation": evaluation, "report": report, "report_path": report_path,
           "previous": previous, "previous_eval": previous_eval, "previous_report": previous_report,
           "events": events, "mine": mine, "erasures": erasures, "retrain": retrain, "integrity": integrity}
    checks = _load(dataset["checks"]) if dataset else None
    sections = [
        _identity(ctx), _data(ctx), _deidentification(ctx, checks), _gates(ctx, checks), _training(ctx),
        _evaluation(ctx), _operations(ctx), _integrity(ctx)]
    gaps = [{"section": s["title"], "item": label, "reason": reason}
            for s in sections for label, reason in _section_gaps(s)]
    dossier = {
        "title": f"Audit dossier: adapter {aid[:12]}",
        "format": DOSSIER_FORMAT,
        "generated_at": datetime.now(UTC).isoformat(),
        "tool": tool_version(),
        "registry": str(paths.registry),
        "adapter_id": aid,
        "dataset_version": version_id,
        "hashes": {
            "adapter_id": aid, "dataset_version": version_id,
            "dataset_manifest_sha256": _manifest_sha256(ctx),
            "training_config_hash": adapter["training_config_hash"],
            "base_model_identity_hash": (lineage.get("base_model") or {}).get("identity_hash"),
            "eval_set_sha256": (evaluation or {}).get("eval_set_sha256") or ((report or {}).get("eval_set") or {})
            .get("sha256"),
        },
        "ledger_head": {"seq": head["seq"], "event_hash": head["event_hash"]} if head else None,
        "integrity_ok": bool(integrity["ok"]) and not integrity["nothing_to_verify"],
        "needs_retraining": bool(retrain),
        "banners": _banners(ctx),
        "sections": sections,
        "gaps": gaps,
    }
    return dossier


def content_hash(dossier: dict) -> str:
    """sha256 of the dossier without its generation stamp: unchanged facts give the same hash."""
    return sha256_json({k: v for k, v in dossier.items() if k not in ("generated_at",)})


def _section_gaps(s: dict):
    for block in s["blocks"]:
        if block["kind"] == "fields":
            for row in block["rows"]:
                if row["gap"]:
                    yield row["label"], row["gap"]
        elif block["kind"] == "table" and block["gap"]:
            yield block["title"], block["gap"]


def _manifest_sha256(ctx: dict) -> str | None:
    for e in ctx["mine"]:
        if e["kind"] == "dataset_published" and isinstance(e["payload"], dict):
            return e["payload"].get("manifest_sha256")
    manifest = Path(ctx["dataset"]["path"]) / "manifest.json" if ctx["dataset"] else None
    return sha256_file(manifest) if manifest and manifest.is_file() else None


def _eval_report(evaluation: dict | None, adapter_dir: Path) -> tuple[dict | None, Path | None]:
    """The evaluation report JSON named by the registry row, else the one in ``<adapter>/eval/``."""
    candidates = ([Path(evaluation["report_path"])] if evaluation and evaluation.get("report_path") else []) \
        + [adapter_dir / "eval" / "eval_report.json"]
    for path in candidates:
        if path.is_file():
            try:
                return json.loads(path.read_text(encoding="utf-8")), path
            except (OSError, ValueError):
                continue
    return None, None


def _previous_adapter(aid: str, adapter: dict, events: list[dict], versions: dict, all_adapters: list[dict]) -> dict:
    """The adapter to compare against, and the rule that chose it (see the module docstring)."""
    for e in reversed(events):
        p = e["payload"] if isinstance(e["payload"], dict) else {}
        if e["kind"] == "promotion" and p.get("adapter_id") == aid and p.get("previous_adapter_id"):
            return {"adapter_id": p["previous_adapter_id"],
                    "rule": f"held stage {p.get('stage')!r} before this adapter was promoted to it "
                            f"(ledger seq {e['seq']})"}
    lineage, version, seen = set(), adapter["dataset_version"], set()
    while version and version not in seen:
        seen.add(version)
        lineage.add(version)
        version = versions.get(version)
    earlier = [a for a in all_adapters if a["adapter_id"] != aid and a["created_at"] < adapter["created_at"]
               and a["dataset_version"] in lineage]
    if earlier:
        return {"adapter_id": earlier[-1]["adapter_id"],
                "rule": "newest adapter created before this one on the same dataset lineage (this dataset version "
                        "or an ancestor); this adapter has not replaced another in a stage"}
    return {"adapter_id": None, "rule": None}


def _banners(ctx: dict) -> list[dict]:
    banners = []
    for e in ctx["retrain"]:
        p = e["payload"]
        banners.append({"level": "critical", "text": (
            f"NEEDS RETRAINING: erasure request {p.get('request_id') or e['subject']} (ledger seq {e['seq']}, "
            f"{_iso(e['created_at'])}, {len(p.get('record_ids') or [])} record(s)) names this adapter among the "
            "adapters trained on the erased records. New dataset version without them: "
            f"{p.get('new_version') or 'none recorded'}.")})
    integrity = ctx["integrity"]
    if integrity["nothing_to_verify"]:
        banners.append({"level": "warning", "text": "INTEGRITY NOT VERIFIABLE: the registry has no ledger events "
                                                    "(published before the audit ledger existed)."})
    elif not integrity["ok"]:
        banners.append({"level": "critical", "text": f"INTEGRITY CHECK FAILED: {len(integrity['problems'])} "
                                                     "problem(s), see Integrity."})
    gate = ((ctx["report"] or {}).get("gate") or _load((ctx["evaluation"] or {}).get("gate")) or {})
    if not ctx["report"] and not ctx["evaluation"]:
        banners.append({"level": "warning", "text": "NOT EVALUATED: no evaluation recorded for this adapter."})
    elif gate.get("passed") is False:
        banners.append({"level": "warning", "text": "PROMOTION GATE FAILED: " + "; ".join(map(str, gate.get(
            "reasons") or []))})
    return banners


# ---------------------------------------------------------------- sections

def _identity(ctx: dict) -> dict:
    a, lineage, metrics = ctx["adapter"], ctx["lineage"], ctx["metrics"]
    base = lineage.get("base_model") or _load(a["base_model"]) or {}
    code = lineage.get("code") or {}
    hw = lineage.get("hardware") or {}
    report = ctx["report"] or {}
    eval_seconds = [((report.get("metrics") or {}).get(side) or {}).get("seconds") for side in ("base", "fine_tuned")]
    eval_total = sum(eval_seconds) if all(isinstance(s, (int, float)) for s in eval_seconds) else None
    wall = None
    if lineage.get("started_at") and lineage.get("finished_at"):
        try:
            wall = (datetime.fromisoformat(lineage["finished_at"]) - datetime.fromisoformat(lineage["started_at"])
                    ).total_seconds()
        except ValueError:
            wall = None
    gpu = hw.get("gpu") or ("none (trained on CPU)" if (hw.get("device") or metrics.get("device")) == "cpu"
                            else None)
    weights = base.get("weights_sha256") or {}
    blocks = [fields(
        item("adapter id (sha256 of weights, adapter config, training config, tokenizer)", ctx["aid"]),
        item("adapter folder", str(ctx["adapter_dir"])),
        item("registered at", _iso(a["created_at"])),
        item("Dagster run id", a.get("run_id"), gap=None if a.get("run_id") else "trained outside a Dagster run"),
        item("base model", base.get("name")),
        item("base model source", base.get("source")),
        item("base model revision", base.get("revision")),
        item("base model architecture", base.get("architecture")),
        item("base model parameters", base.get("n_parameters") or None),
        item("base model identity hash", base.get("identity_hash")),
        item("base model weights sha256", ", ".join(f"{k} {v}" for k, v in sorted(weights.items())) or None),
        item("base model chat template sha256", base.get("chat_template_sha256")),
        item("code: git commit at training", code.get("git_commit"),
             gap=None if code.get("git_commit") else "not recorded (training ran outside a git checkout)"),
        item("code: uncommitted changes at training", None,
             gap="not recorded: lineage keeps the commit only, not whether the working tree was clean"),
        item("code: fine_tune_assets version", code.get("package_version")),
        item("code: dataset stage code version", (ctx["dataset"] or {}).get("code_version")),
        item("libraries", ", ".join(f"{k} {v}" for k, v in sorted((lineage.get("libraries") or {}).items()))
             or None),
        item("hardware: device", hw.get("device") or metrics.get("device")),
        item("hardware: GPU", gpu),
        item("hardware: platform", hw.get("platform")),
        item("hardware: CPU count", hw.get("cpu_count")),
        item("hardware: Python", hw.get("python")),
        item("precision", metrics.get("precision"),
             gap=None if metrics.get("precision") else "not recorded by this training run (older training code)"),
        item("compute: training seconds", _seconds(metrics.get("train_seconds"))),
        item("compute: training process seconds (incl. loading, evaluation)", _seconds(metrics.get("total_seconds"))),
        item("compute: training wall clock", None if wall is None else
             f"{_seconds(wall)}, {lineage.get('started_at')} to {lineage.get('finished_at')}"),
        item("compute: evaluation seconds (base + fine-tuned passes)", _seconds(eval_total),
             gap=None if eval_total is not None else "no evaluation report with timings"),
    )]
    return section("identity", "Identity", blocks)


def _data(ctx: dict) -> dict:
    d, version = ctx["dataset"], ctx["version_id"]
    if d is None:
        return section("data", "Data", [fields(item("dataset version", version, gap=(
            f"dataset version {version} is not in the registry: counts, sources and split cannot be shown")))])
    by_reason = _load(d["quarantined_by_reason"]) or {}
    settings = _load(d["settings"]) or {}
    manifest_path = Path(d["path"]) / "manifest.json"
    manifest = _load(manifest_path.read_text()) if manifest_path.is_file() else None
    token_stats = _load(d["token_stats"]) or {}
    blocks = [fields(
        item("dataset version (sha256 of train.jsonl + eval.jsonl hashes)", version),
        item("published at", _iso(d["created_at"])),
        item("parent version", d["parent_version"] or "none (first published version)"),
        item("folder", d["path"]),
        item("manifest.json sha256", _manifest_sha256(ctx)),
        item("Dagster run id", d["run_id"]),
        item("time window of the conversations", None, gap=(
            "not recorded: ingest keeps no conversation timestamps; the data is what the sources below held when "
            f"the version was published ({_iso(d['created_at'])})")),
    )]
    blocks.append(table("Sources (raw files, by content hash)",
                        ["file", "sha256", "format", "mapping", "records in", "accepted", "quarantined",
                         "blank lines"],
                        [[s["source_file"], s["source_sha256"], s["format"], s["mapping"] or "-", s["inputs"],
                          s["accepted"], s["quarantined"], s["blank_lines"]] for s in ctx["sources"]],
                        gap="no source files recorded for this dataset version"))
    blocks.append(_stage_flow(ctx, d))
    blocks.append(table("Quarantine reasons", ["stage", "reason", "records"],
                        [[r["stage"], r["reason"], r["n"]] for r in ctx["stage_counts"]]
                        or [["-", k, v] for k, v in sorted(by_reason.items())],
                        gap=None if not d["quarantined"] else "quarantine reasons not recorded"))
    if not ctx["stage_counts"] and not by_reason and not d["quarantined"]:
        blocks[-1]["gap"] = None
        blocks[-1]["rows"] = [["-", "(none: no record was quarantined)", "0"]]
    threshold = settings.get("near_duplicate_threshold")
    blocks.append(fields(
        item("de-duplication: method", "exact: same scrubbed content; near: same text after folding case, "
                                       "punctuation and whitespace, or MinHash character 5-gram Jaccard at or above "
                                       "the threshold (system prompts left out); the smallest record id is kept"),
        item("de-duplication: near-duplicate threshold", threshold,
             gap=None if threshold is not None else "not recorded in this version's settings"),
        item("de-duplication: exact duplicates removed", by_reason.get("duplicate_exact", 0)),
        item("de-duplication: near duplicates removed", by_reason.get("duplicate_near", 0)),
    ))
    eval_fraction = (manifest or {}).get("eval_fraction", settings.get("eval_fraction"))
    overlap = ((ctx["report"] or {}).get("eval_set") or {}).get("train_overlap")
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
    files = _load(d["files"]) or {}
    blocks.append(table("Dataset files", ["file", "sha256"], [[k, v] for k, v in sorted(files.items())],
                        gap="no file hashes recorded"))
    return section("data", "Data", blocks)


def _tokens(stats: dict | None) -> str | None:
    if not stats:
        return None
    return (f"{stats.get('examples')} examples, {stats.get('total')} tokens (min {stats.get('min')}, p50 "
            f"{stats.get('p50')}, p95 {stats.get('p95')}, max {stats.get('max')})")


def _stage_flow(ctx: dict, d: dict) -> dict:
    """Records through every stage: in -> quarantined at ingest / scrub / validate -> accepted -> split."""
    per_stage: dict[str, int] = {}
    for r in ctx["stage_counts"]:
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


def _deidentification(ctx: dict, checks: list | None) -> dict:
    d = ctx["dataset"]
    if d is None:
        return section("deidentification", "De-identification", [fields(item(
            "scrub policy", None, gap="dataset version not in the registry"))])
    policy = _load(d["scrub_policy"]) or {}
    counts = _load(d["scrub_entity_counts"]) or {}
    residual = next((c for c in checks or [] if c.get("name") == "no_residual_pii"), None)
    residual_check = policy.get("residual_check") or {}
    rescanned = set(residual_check.get("entities") or [])
    found_after = ((residual or {}).get("details") or {}).get("findings_by_type") or {}
    operators = policy.get("operators") or {}
    versions = policy.get("versions") or {}
    empty = "not recorded: this dataset version's scrub policy record is empty"
    blocks = [fields(
        item("method", "Presidio analyzer with pattern recognizers and offline spaCy NER; each finding at or above "
                       "its score threshold is replaced by its operator; then an independent second scan of the "
                       "scrubbed records for structured PII (blocking gate)"),
        item("scrub policy hash", d["scrub_policy_hash"]),
        item("policy file", policy.get("source"), gap=None if policy.get("source") else (
            "packaged default policy" if policy else empty)),
        item("scrub logic version", policy.get("logic_version"), gap=None if policy else empty),
        item("entities detected", ", ".join(policy.get("entities") or []) or None, gap=None if policy else empty),
        item("score threshold", policy.get("score_threshold"), gap=None if policy else empty),
        item("per-entity thresholds", ", ".join(f"{k} {v}" for k, v in (policy.get("entity_thresholds") or {})
                                               .items()) or "none (the score threshold applies to all)",
             gap=None if policy else empty),
        item("recognizers file", policy.get("recognizers_file") or ("none (built-in recognizers only)" if policy
                                                                    else None), gap=None if policy else empty),
        item("recognizers file sha256", policy.get("recognizers_file_sha256") or ("-" if policy else None),
             gap=None if policy else empty),
        item("pseudonym key (environment variable name only)", policy.get("pseudonym_key_env") or
             "not used (no pseudonymize operator)", gap=None if policy else empty),
        item("library and model versions", ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) or None,
             gap=None if versions else (empty if not policy else NOT_RECORDED)),
    )]
    blocks.append(table("Recognizers", ["recognizer", "entities"],
                        [[r.get("name"), ", ".join(r.get("entities") or [])] for r in policy.get("recognizers") or []],
                        gap=empty if not policy else "recognizer list not recorded"))
    blocks.append(table("Operators", ["applies to", "operator", "parameters"],
                        [[k, v.get("type"), _text(v.get("params") or {})] for k, v in operators.items()],
                        gap=empty if not policy else "operators not recorded"))
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
             gap=None if rescanned else (empty if not policy else NOT_RECORDED)),
        item("residual-PII check: score threshold", residual_check.get("threshold"),
             gap=None if residual_check else (empty if not policy else NOT_RECORDED)),
        item("residual counts for " + (", ".join(not_rescanned) or "-"), None,
             gap=("not measured: the second scan re-checks structured types only (names, addresses and dates "
                  "have no independent detector)")) if not_rescanned else
        item("residual counts for every detected type", "measured"),
        item("evaluation report examples withheld for residual PII", (ctx["report"] or {}).get(
            "examples_withheld_for_pii"), gap=None if ctx["report"] else "no evaluation report"),
    ))
    return section("deidentification", "De-identification", blocks)


def _gates(ctx: dict, checks: list | None) -> dict:
    rows = []
    for c in checks or []:
        verdict = "PASS" if c.get("passed") else "FAIL"
        if c.get("passed") and c.get("severity") == "WARN":
            verdict = "PASS (warning)"
        rows.append(["dataset", c.get("name"), c.get("description"), c.get("threshold"), c.get("observed"), verdict,
                     "blocking" if c.get("blocking") else "advisory"])
    report = ctx["report"] or {}
    gate = report.get("gate") or _load((ctx["evaluation"] or {}).get("gate")) or {}
    regression = report.get("regression") or gate.get("regression") or {}
    if gate:
        primary = gate.get("primary_metric")
        direction = "higher" if gate.get("higher_is_better", True) else "lower"
        rows.append(["adapter", f"promotion gate: {primary}",
                     f"fine-tuned must beat the base model ({direction} is better)",
                     f"base {_text(gate.get('base'))}", _text(gate.get("fine_tuned")),
                     "PASS" if gate.get("passed") else "FAIL", "blocking (promotion_gate asset check)"])
    if regression:
        rows.append(["adapter", "promotion gate: general-prompt regression",
                     f"relative change of {regression.get('metric', 'general_loss')} vs the base model",
                     f"<= +{_pct(regression.get('threshold'))}", _pct(regression.get("relative_change"))
                     if regression.get("relative_change") is not None else "not measured (no general prompts)",
                     "PASS" if regression.get("passed") else "FAIL", "blocking (part of the promotion gate)"])
    blocks = [table("Gate results", ["applies to", "gate", "what it checks", "threshold", "observed", "verdict",
                                      "blocking"], rows,
                    gap="no quality gate results recorded for this dataset version or adapter")]
    suite = next((c for c in checks or [] if c.get("name") == "expectation_suite"), None)
    expectations = ((suite or {}).get("details") or {}).get("expectations") or []
    if suite:
        blocks.append(table("Expectation suite (Great Expectations), one row per expectation",
                            ["table", "column", "expectation", "result", "unexpected"],
                            [[e.get("table"), e.get("column") or "-", e.get("expectation"),
                              "PASS" if e.get("success") else "FAIL", e.get("unexpected_count")]
                             for e in expectations], gap="the expectation results were not recorded"))
    blocks.append(fields(
        item("dataset gates", f"{len(checks)} recorded" if checks else None,
             gap=None if checks else "no dataset gate results recorded for this dataset version"),
        item("adapter gates", "recorded" if gate else None,
             gap=None if gate else "no evaluation recorded for this adapter: promotion gate never ran"),
    ))
    return section("gates", "Quality gates", blocks)


def _training(ctx: dict) -> dict:
    a, lineage, metrics = ctx["adapter"], ctx["lineage"], ctx["metrics"]
    config = _load(a["training_config"]) or lineage.get("training_config") or {}
    identity = metrics.get("training_identity")
    checkpoint_dir = ctx["paths"].adapters / ".checkpoints" / identity if identity else None
    blocks = [fields(
        item("training config hash", a["training_config_hash"]),
        item("seed", config.get("seed", lineage.get("seed"))),
        item("method", "LoRA" + (" on a 4-bit (NF4) base: QLoRA" if config.get("load_in_4bit") else "")
             + " with TRL's SFTTrainer, loss on assistant tokens only"),
        item("trainable parameters", metrics.get("trainable_parameters")),
        item("steps", metrics.get("steps")),
        item("epochs", metrics.get("epochs")),
        item("train loss", metrics.get("train_loss")),
        item("eval loss before / after training",
             f"{_text(metrics.get('eval_loss_before'))} / {_text(metrics.get('eval_loss'))}"),
        item("training identity (names the checkpoint folder)", identity,
             gap=None if identity else "not recorded by this training run (older training code)"),
        item("checkpoints: every N steps", config.get("save_steps")),
        item("checkpoints: kept at most", config.get("save_total_limit")),
        item("checkpoints: resumed from step", None, gap="not recorded by this training run (older training code)")
        if "resumed_from_step" not in metrics else
        item("checkpoints: resumed from step", metrics["resumed_from_step"] if metrics["resumed_from_step"] is not None
             else "none (ran from the start)"),
        item("checkpoints: still on disk", None if checkpoint_dir is None else (
            f"yes, {checkpoint_dir}" if checkpoint_dir.is_dir() else
            "no (deleted after the successful run; keep_checkpoints is off)"),
             gap=None if checkpoint_dir else "unknown: training identity not recorded"),
    )]
    blocks.append(table("Full training configuration", ["key", "value"],
                        [[k, v] for k, v in sorted(config.items())], gap="training configuration not recorded"))
    shown = ("train_loss", "eval_loss", "eval_loss_before", "steps", "epochs", "trainable_parameters",
             "resumed_from_step", "training_identity")
    blocks.append(table("Training metrics", ["metric", "value"],
                        [[k, v] for k, v in sorted(metrics.items()) if k not in shown],
                        gap="training metrics not recorded"))
    return section("training", "Training", blocks)


def _metric_rows(left: dict, right: dict) -> list[list]:
    from ..evaluation.report import _METRICS, _change, _fmt

    rows = []
    for label, key, kind, better in _METRICS:
        b, t = left.get(key), right.get(key)
        if b is None and t is None:
            continue
        rows.append([label, _fmt(b, kind), _fmt(t, kind), _change(b, t, kind, better)[0]])
    return rows


def _evaluation(ctx: dict) -> dict:
    evaluation, report = ctx["evaluation"], ctx["report"]
    if not evaluation and not report:
        return section("evaluation", "Evaluation", [fields(
            item("evaluation", None, gap="no evaluation recorded for this adapter (materialize eval_report)"),
            item("comparison with the base model", None, gap="no evaluation recorded for this adapter"),
            item("comparison with the previous adapter", None, gap="no evaluation recorded for this adapter"))])
    report = report or {}
    eval_set, config = report.get("eval_set") or {}, report.get("config") or {}
    metrics = report.get("metrics") or _load((evaluation or {}).get("metrics")) or {}
    gate = report.get("gate") or _load((evaluation or {}).get("gate")) or {}
    report_dir = ctx["report_path"].parent if ctx["report_path"] else None
    from ..evaluation.evaluate import evaluation_id

    try:
        report_eval_id = evaluation_id(report) if report else None
    except (KeyError, TypeError):
        report_eval_id = None
    mismatch = evaluation and report_eval_id and report_eval_id != evaluation["eval_id"]
    blocks = [fields(
        item("evaluation id", (evaluation or {}).get("eval_id"), gap=None if evaluation else (
            "not registered: no evaluations row and no evaluation_completed event (evaluated before the audit "
            "ledger); the figures below come from the report file only")),
        item("evaluated at", _iso((evaluation or {}).get("created_at")) or report.get("created_at")),
        *([item("report file matches the registry row", "no: the report on disk is from another evaluation; "
                "figures below are the report's" if mismatch else "yes")] if evaluation and report else []),
        item("eval set sha256", eval_set.get("sha256") or (evaluation or {}).get("eval_set_sha256")),
        item("eval set", f"split {eval_set.get('split')}, {eval_set.get('n_examples')} examples, "
                         f"{eval_set.get('n_format_applicable')} format-applicable" if eval_set else None,
             gap=None if eval_set else "the evaluation report file is missing"),
        item("general prompts (regression check)", eval_set.get("n_general_prompts"),
             gap=None if eval_set else "the evaluation report file is missing"),
        item("evaluation spec hash", config.get("spec_hash") or (evaluation or {}).get("spec_hash")),
        item("evaluation spec file", config.get("source"), gap=None if config else "the evaluation report file is "
                                                                                   "missing"),
        item("primary metric", gate.get("primary_metric") or config.get("primary_metric")),
        item("evaluation settings", None if not config else (
            f"response format {_text((config.get('response_format') or {}).get('name'))}, accuracy fields "
            f"{', '.join(config.get('accuracy_fields') or []) or '-'}, {len(config.get('domain_terms') or [])} domain "
            f"terms, max {config.get('max_new_tokens')} new tokens (greedy), max general regression "
            f"{_pct(config.get('max_general_regression'))}, logic version {config.get('logic_version')}"),
             gap=None if config else "the evaluation report file is missing"),
        item("evaluation device", report.get("device"), gap=None if report else "the evaluation report file is "
                                                                                 "missing"),
        item("report (generated answers and examples are there, not here)",
             None if report_dir is None else ", ".join(str(report_dir / n) for n in ("report.html", "report.md",
                                                                                      "eval_report.json")
                                                       if (report_dir / n).exists()),
             gap=None if report_dir else "the evaluation report file is missing"),
        item("eval_report.json sha256", sha256_file(ctx["report_path"]) if ctx["report_path"] else None,
             gap=None if ctx["report_path"] else "the evaluation report file is missing"),
    )]
    base, tuned = metrics.get("base") or {}, metrics.get("fine_tuned") or {}
    blocks.append(table("Comparison with the base model (same weights, adapter off)",
                        ["metric", "base model", "this adapter", "change"], _metric_rows(base, tuned),
                        gap="no metrics recorded"))
    reasons = "; ".join(map(str, gate.get("reasons") or []))
    blocks.append(fields(item("promotion gate", None if not gate else
                              f"{'PASSED' if gate.get('passed') else 'FAILED'}" + (f": {reasons}" if reasons else ""),
                              gap=None if gate else "no gate verdict recorded")))
    blocks += _previous_comparison(ctx, tuned, eval_set.get("sha256") or (evaluation or {}).get("eval_set_sha256"))
    return section("evaluation", "Evaluation", blocks)


def _previous_comparison(ctx: dict, tuned: dict, eval_sha: str | None) -> list[dict]:
    previous = ctx["previous"]
    if not previous.get("adapter_id"):
        return [fields(item("comparison with the previous adapter", None, gap=(
            "no previous adapter: none replaced in a stage, and none trained earlier on this dataset lineage")))]
    prev_eval, prev_report = ctx["previous_eval"], ctx["previous_report"] or {}
    prev_metrics = (prev_report.get("metrics") or _load((prev_eval or {}).get("metrics")) or {}).get("fine_tuned") \
        or {}
    prev_sha = (prev_eval or {}).get("eval_set_sha256") or (prev_report.get("eval_set") or {}).get("sha256")
    comparable = "yes: same eval set" if prev_sha and prev_sha == eval_sha else (
        f"no: different eval sets ({_short(prev_sha)} vs {_short(eval_sha)}): read the change with care")
    blocks = [fields(
        item("previous adapter", previous["adapter_id"]),
        item("chosen because", previous["rule"]),
        item("previous adapter's evaluation", (prev_eval or {}).get("eval_id"),
             gap=None if prev_eval else "the previous adapter has no registered evaluation"),
        item("same held-out set", comparable if prev_metrics else None,
             gap=None if prev_metrics else "nothing to compare"),
    )]
    blocks.append(table("Comparison with the previous adapter (fine-tuned metrics of each)",
                        ["metric", "previous adapter", "this adapter", "change"],
                        _metric_rows(prev_metrics, tuned) if prev_metrics else [],
                        gap="the previous adapter has no recorded evaluation metrics"))
    return blocks


def _event_time(e: dict) -> str:
    return _iso(e["created_at"]) or "-"


def _gate_text(gate) -> str:
    """A promotion event's gate state ({evaluated, passed, needs_retraining, ...}) in a few words."""
    if not isinstance(gate, dict):
        return "-" if gate is None else _text(gate)
    if gate.get("evaluated") is False or gate.get("passed") is None:
        text = "not evaluated"
    else:
        text = "passed" if gate["passed"] else "FAILED"
    return text + (", needs retraining" if gate.get("needs_retraining") else "")


def _sources_text(sources) -> str:
    """Erasure payload source files: {source_file, source_sha256} dicts (or plain names)."""
    parts = [f"{s.get('source_file')} ({_short(s.get('source_sha256'))})" if isinstance(s, dict) else str(s)
             for s in sources or []]
    return ", ".join(parts) or "-"


def _operations(ctx: dict) -> dict:
    aid, mine = ctx["aid"], ctx["mine"]
    holders = _stage_holders(ctx["events"])
    current = sorted(stage for stage, h in holders.items() if h["adapter_id"] == aid)
    transitions = [e for e in mine if e["kind"] in STAGE_KINDS]
    rows = []
    for e in transitions:
        p = e["payload"] if isinstance(e["payload"], dict) else {}
        if e["kind"] == "promotion":
            action = (f"promoted {_short(p.get('adapter_id'))} to {p.get('stage')}"
                      + (f", replacing {_short(p.get('previous_adapter_id'))}" if p.get("previous_adapter_id") else ""))
        else:
            action = (f"rolled {p.get('stage')} back from {_short(p.get('rolled_back_adapter_id'))} to "
                      f"{_short(p.get('adapter_id'))}")
        gate_text = _gate_text(p.get("gate")) if e["kind"] == "promotion" else "-"
        rows.append([e["seq"], _event_time(e), e["kind"], action, p.get("reason"), p.get("user"),
                     "yes" if p.get("forced") else ("no" if e["kind"] == "promotion" else "-"), gate_text,
                     _short(e["event_hash"], 16)])
    any_stage_events = any(e["kind"] in STAGE_KINDS for e in ctx["events"])
    blocks = [fields(
        item("drift policy", None, gap=DRIFT_POLICY_GAP),
        item("current stage(s)", ", ".join(current) if current else (
            "none: the adapter holds no stage" if any_stage_events else
            "none: no promotion has been recorded in the ledger")),
    )]
    blocks.append(table("Stage history (ledger promotion and rollback events)",
                        ["seq", "at (UTC)", "kind", "transition", "reason", "by", "forced", "gate", "event hash"],
                        rows))
    if not rows:
        blocks[-1]["rows"] = [["-", "-", "-", "none: this adapter was never promoted or rolled back", "-", "-", "-",
                               "-", "-"]]
    drift = [e for e in mine if e["kind"] == "drift_evaluation"]
    blocks.append(table("Drift evaluations (ledger drift_evaluation events, payload as recorded)",
                        ["seq", "at (UTC)", "subject", "payload"],
                        [[e["seq"], _event_time(e), e["subject"], e.get("payload_text") or _text(e["payload"])]
                         for e in drift],
                        gap="no drift evaluation recorded for this adapter (no drift policy configured)"))
    erasure_rows = []
    for e in ctx["erasures"]:
        p = e["payload"] if isinstance(e["payload"], dict) else {}
        erasure_rows.append([e["seq"], _event_time(e), p.get("request_id") or e["subject"],
                             len(p.get("record_ids") or []), _sources_text(p.get("source_files")),
                             p.get("reason"), p.get("user"),
                             ", ".join(_short(v) for v in p.get("affected_versions") or []) or "-",
                             ", ".join(_short(v) for v in p.get("affected_adapters") or []) or "-",
                             _short(p.get("new_version")) or "-"])
    blocks.append(table("Erasures affecting this adapter or its dataset version",
                        ["seq", "at (UTC)", "request", "records erased", "source files", "reason", "by",
                         "affected versions", "affected adapters", "new version"], erasure_rows))
    if not erasure_rows:
        blocks[-1]["rows"] = [["-", "-", "none: no erasure request affects this adapter or its dataset version",
                               "-", "-", "-", "-", "-", "-", "-"]]
    new_versions = [e["payload"]["new_version"] for e in ctx["retrain"] if e["payload"].get("new_version")]
    if ctx["retrain"]:
        verdict = (f"YES: trained on records erased by {len(ctx['retrain'])} erasure request(s) above" + (
            f"; retrain on dataset version {', '.join(_short(v) for v in new_versions)}" if new_versions else ""))
    elif ctx["erasures"]:
        verdict = ("no: an erasure request mentions it (e.g. its dataset version is the one published without "
                   "the erased records), but it was not trained on erased records")
    else:
        verdict = "no: no erasure request affects it"
    blocks.append(fields(item("needs retraining", verdict)))
    return section("operations", "Operations", blocks)


def _integrity(ctx: dict) -> dict:
    r, events = ctx["integrity"], ctx["events"]
    head = events[-1] if events else None
    if r["nothing_to_verify"]:
        verdict = None
        gap = "the registry has no ledger events: it was written before the audit ledger existed, so nothing can " \
              "be re-hashed against recorded hashes"
    else:
        verdict = (f"{'INTACT' if r['ok'] else 'PROBLEMS FOUND'}: {r['events']} ledger events, {r['datasets']} "
                   f"dataset versions, {r['adapters']} adapters, {r['evaluations']} evaluations, {r['files']} files "
                   "re-hashed")
        gap = None
    blocks = [fields(
        item("verify (re-hash every published file, recompute the ledger chain)", verdict, gap=gap),
        item("ledger head", None if head is None else f"seq {head['seq']}, event_hash {head['event_hash']}",
             gap=None if head else "no ledger events"),
    )]
    blocks.append(table("Problems found by verify", ["problem"], [[p] for p in r["problems"]]))
    if not r["problems"]:
        blocks[-1]["rows"] = [["none" if not r["nothing_to_verify"] else "nothing verified (no ledger events)"]]
    if r.get("warnings"):
        blocks.append(table("Warnings from verify", ["warning"], [[w] for w in r["warnings"]]))
    blocks.append(table("Ledger events about this adapter and its dataset version",
                        ["seq", "at (UTC)", "kind", "subject", "payload sha256", "event hash"],
                        [[e["seq"], _event_time(e), e["kind"], e["subject"], e["payload_sha256"], e["event_hash"]]
                         for e in ctx["mine"]],
                        gap="no ledger event records this adapter or its dataset version (published before the audit "
                            "ledger)"))
    kinds = {e["kind"] for e in ctx["mine"]}
    missing = [k for k in ("dataset_published", "adapter_trained", "evaluation_completed") if k not in kinds]
    if missing and ctx["mine"]:
        blocks.append(fields(item("expected events not in the ledger", None, gap=", ".join(missing) + (
            " not recorded (published before the ledger, or never evaluated)"))))
    return section("integrity", "Integrity", blocks)


# ---------------------------------------------------------------- rendering

_LEVEL = {"critical": "CRITICAL", "warning": "WARNING"}
GAP_ROW = " class='gaprow'"

_DOSSIER_CSS = """
.banner { font-weight: bold; padding: 0.6em 1em; border-radius: 4px; margin: 0.4em 0; }
.banner.critical { background: #fce8e6; color: #b3261e; border: 2px solid #b3261e; }
.banner.warning { background: #fff4e5; color: #8a4b00; border: 1px solid #e0a040; }
.gap { color: #b3261e; font-weight: bold; }
tr.gaprow td { background: #fff6f5; }
td { overflow-wrap: anywhere; }
.stamp { color: #555; font-size: 0.9em; }
@media print {
  body { max-width: none; margin: 0; font-size: 10pt; }
  h2 { page-break-after: avoid; break-after: avoid; }
  table, tr { page-break-inside: avoid; break-inside: avoid; }
  .banner { border: 2px solid #000; }
}
"""


def _stamp(d: dict) -> str:
    tool, head = d["tool"], d["ledger_head"]
    head_text = (f"seq {head['seq']} event_hash {head['event_hash']} (`fine-tune-assets verify --expect-head "
                 f"{head['event_hash'][:16]}` later proves no event up to it was deleted)" if head
                 else "none (no ledger events)")
    return (f"Generated {d['generated_at']} by {tool['name']} {tool.get('version') or '?'} (commit "
            f"{tool.get('git_commit') or 'unknown'}, dossier format {tool['dossier_format']}) from the registry "
            f"{d['registry']} and the ledger; ledger head: {head_text}. Generated, never written by hand: "
            "regenerate with `fine-tune-assets dossier " + d["adapter_id"][:12] + "`.")


def render_markdown(dossier: dict) -> str:
    from ..evaluation.report import _md

    def cell(row: dict) -> str:
        return f"**GAP:** {_md(row['gap'])}" if row["gap"] else _md(row["value"]) + (
            f" ({_md(row['note'])})" if row.get("note") else "")

    out = [f"# {_md(dossier['title'])}", "", _md(_stamp(dossier)), ""]
    for b in dossier["banners"]:
        out += [f"> **{_md(_LEVEL.get(b['level'], b['level'].upper()))}: {_md(b['text'])}**", ""]
    out += [(f"Adapter `{dossier['adapter_id']}`, dataset version `{dossier['dataset_version']}`. "
             f"**{len(dossier['gaps'])} gap(s)**, listed under Gaps at the end."), ""]
    for number, s in enumerate(dossier["sections"], 1):
        out += [f"## {number}. {_md(s['title'])}", ""]
        for block in s["blocks"]:
            if block["kind"] == "fields":
                out += ["| Item | Value |", "|---|---|",
                        *(f"| {_md(r['label'])} | {cell(r)} |" for r in block["rows"]), ""]
            elif block["kind"] == "table":
                out += [f"**{_md(block['title'])}**", ""]
                if block["gap"]:
                    out += [f"**GAP:** {_md(block['gap'])}", ""]
                else:
                    out += ["| " + " | ".join(_md(c) for c in block["columns"]) + " |",
                            "|" + "|".join("---" for _ in block["columns"]) + "|",
                            *("| " + " | ".join(_md(c) for c in row) + " |" for row in block["rows"]), ""]
            else:
                out += [_md(block["text"]), ""]
    out += [f"## {len(dossier['sections']) + 1}. Gaps", ""]
    if dossier["gaps"]:
        out += ["| Section | Item | Why it is missing |", "|---|---|---|",
                *(f"| {_md(g['section'])} | {_md(g['item'])} | {_md(g['reason'])} |" for g in dossier["gaps"]), ""]
    else:
        out += ["None: every item has a recorded value.", ""]
    return "\n".join(out)


def render_html(dossier: dict) -> str:
    """One self-contained page (inline CSS, no JavaScript, no external resources); every text escaped."""
    from ..evaluation.report import _CSS, _e

    def value_cell(row: dict) -> str:
        if row["gap"]:
            return f"<td><span class='gap'>GAP: {_e(row['gap'])}</span></td>"
        note = f" <span class='note'>({_e(row['note'])})</span>" if row.get("note") else ""
        return f"<td>{_e(row['value'])}{note}</td>"

    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{_e(dossier['title'])}</title>", f"<style>{_CSS}{_DOSSIER_CSS}</style></head><body>",
             f"<h1>{_e(dossier['title'])}</h1>", f"<p class='stamp'>{_e(_stamp(dossier))}</p>"]
    for b in dossier["banners"]:
        parts.append(f"<p class='banner {_e(b['level'])}'>{_e(_LEVEL.get(b['level'], b['level'].upper()))}: "
                     f"{_e(b['text'])}</p>")
    parts.append(f"<p>Adapter <code>{_e(dossier['adapter_id'])}</code>, dataset version "
                 f"<code>{_e(dossier['dataset_version'])}</code>. <strong>{len(dossier['gaps'])} gap(s)</strong>, "
                 "listed under Gaps at the end.</p>")
    for number, s in enumerate(dossier["sections"], 1):
        parts.append(f"<h2 id='{_e(s['id'])}'>{number}. {_e(s['title'])}</h2>")
        for block in s["blocks"]:
            if block["kind"] == "fields":
                parts.append("<table><tr><th>Item</th><th>Value</th></tr>" + "".join(
                    f"<tr{GAP_ROW if r['gap'] else ''}><td>{_e(r['label'])}</td>{value_cell(r)}</tr>"
                    for r in block["rows"]) + "</table>")
            elif block["kind"] == "table":
                parts.append(f"<h3>{_e(block['title'])}</h3>")
                if block["gap"]:
                    parts.append(f"<p class='gap'>GAP: {_e(block['gap'])}</p>")
                else:
                    head = "".join(f"<th>{_e(c)}</th>" for c in block["columns"])
                    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>"
                                   for row in block["rows"])
                    parts.append(f"<table><tr>{head}</tr>{body}</table>")
            else:
                parts.append(f"<p>{_e(block['text'])}</p>")
    parts.append(f"<h2 id='gaps'>{len(dossier['sections']) + 1}. Gaps</h2>")
    if dossier["gaps"]:
        parts.append("<table><tr><th>Section</th><th>Item</th><th>Why it is missing</th></tr>" + "".join(
            f"<tr class='gaprow'><td>{_e(g['section'])}</td><td>{_e(g['item'])}</td><td>{_e(g['reason'])}</td></tr>"
            for g in dossier["gaps"]) + "</table>")
    else:
        parts.append("<p>None: every item has a recorded value.</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


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
