"""Lineage in both directions, read from the registry and the ledger (never from hand-kept notes).

Forward (``adapter_lineage``): adapter -> dataset version -> raw source files with their sha256 ->
scrub policy (recognizers, threshold, operators, Presidio and spaCy model versions) -> quality
checks -> base model identity -> training configuration -> evaluation, plus the ledger events that
recorded each step (seq and event hash, so an auditor can cross-check with ``verify``).

Reverse (``record_lineage``, ``source_lineage``): which dataset versions contain a record or a raw
file (or quarantined it, with the reason) and which adapters were trained on those versions. Records
are matched by id (or unique prefix); a source by its recorded name, its base name, or its sha256
(given directly, or computed from a local file), so a renamed copy of the same bytes is still found.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..common.hashing import sha256_file
from ..common.render import abbreviated, number, percent
from ..evaluation.store import latest_evaluation
from ..registry.backends import in_list
from ..registry.connection import rows_as_dicts
from ..registry.erasures import adapter_flags
from ..registry.ledger import EventKind, read_events
from ..registry.queries import dataset_sources
from ..registry.resolve import NotFound, resolve_adapter, resolve_dataset_version

# Record ids need more than registry.resolve.MIN_PREFIX: a dataset holds many records (a short prefix would
# often select one by chance), and erasure deletes what a record reference selects for good.
RECORD_MIN_PREFIX = 6


class LineageError(NotFound):
    """A record or raw source asked about is in no dataset version (message says what to run instead)."""


def _events_about(events: list[dict], subjects: set[str]) -> list[dict]:
    return [{"seq": e["seq"], "kind": e["kind"], "subject": e["subject"], "created_at": e["created_at"].isoformat(),
             "event_hash": e["event_hash"]} for e in events if e["subject"] in subjects]


def _newest_payload(events: list[dict], kind: str, subject: str) -> dict | None:
    for event in reversed(events):
        if event["kind"] == kind and event["subject"] == subject and isinstance(event["payload"], dict):
            return event["payload"]
    return None


def dataset_lineage(con, version_id: str, events: list[dict] | None = None) -> dict:
    """A dataset version with its raw sources, scrub policy, quality checks and recorded file hashes."""
    row = resolve_dataset_version(con, version_id)
    events = read_events(con) if events is None else events
    version = row["version_id"]
    sources = dataset_sources(con, version)
    published = _newest_payload(events, EventKind.DATASET_PUBLISHED, version)
    policy = json.loads(row["scrub_policy"])
    return {
        "version_id": version,
        "created_at": row["created_at"].isoformat(),
        "parent_version": row["parent_version"],
        "path": row["path"],
        "counts": {"input_records": row["input_records"], "accepted": row["accepted"],
                   "quarantined": row["quarantined"], "quarantined_by_reason": json.loads(row["quarantined_by_reason"]),
                   "train": row["n_train"], "eval": row["n_eval"]},
        "files": json.loads(row["files"]),
        "manifest_sha256": (published or {}).get("manifest_sha256"),
        "sources": sources,
        "scrub_policy": {
            "policy_hash": row["scrub_policy_hash"],
            "recognizers": [r.get("name") for r in policy.get("recognizers", [])],
            "entities": policy.get("entities"),
            "score_threshold": policy.get("score_threshold"),
            "entity_thresholds": policy.get("entity_thresholds"),
            "operators": policy.get("operators"),
            "residual_check": policy.get("residual_check"),
            "versions": policy.get("versions"),
            "source": policy.get("source"),
            "entity_counts": json.loads(row["scrub_entity_counts"]),
        },
        "quality_checks": [{k: g.get(k) for k in ("name", "passed", "observed", "threshold", "blocking", "description")}
                           for g in json.loads(row["checks"])],
        "code_version": row["code_version"],
        "run_id": row["run_id"],
    }


def adapter_lineage(con, ref: str) -> dict:
    """Everything an adapter came from, as one JSON-able dict (see module docstring)."""
    row = resolve_adapter(con, ref)
    adapter_id = row["adapter_id"]
    events = read_events(con)
    lineage = json.loads(row["lineage"])
    metrics = json.loads(row["metrics"])
    trained = _newest_payload(events, EventKind.ADAPTER_TRAINED, adapter_id)
    evaluation = latest_evaluation(con, adapter_id)
    dataset = dataset_lineage(con, row["dataset_version"], events)
    subjects = {adapter_id, dataset["version_id"]} | ({evaluation["eval_id"]} if evaluation else set())
    return {
        "adapter": {
            "adapter_id": adapter_id, "created_at": row["created_at"].isoformat(), "path": row["path"],
            "files": (trained or {}).get("files"), "run_id": row["run_id"],
            "flags": adapter_flags(con, [adapter_id]).get(adapter_id, []),
        },
        "dataset_version": dataset,
        "base_model": json.loads(row["base_model"]),
        "training": {
            "config_hash": row["training_config_hash"], "config": json.loads(row["training_config"]),
            "seed": lineage.get("seed"), "code": lineage.get("code"), "libraries": lineage.get("libraries"),
            "hardware": lineage.get("hardware"), "started_at": lineage.get("started_at"),
            "finished_at": lineage.get("finished_at"),
            "metrics": {k: metrics.get(k) for k in ("steps", "train_loss", "eval_loss", "train_seconds",
                                                    "trained_tokens", "device", "precision", "optimizer")},
        },
        "evaluation": evaluation,
        "ledger_events": _events_about(events, subjects),
    }


def _adapters_on(con, versions: list[str]) -> list[dict]:
    if not versions:
        return []
    rows = rows_as_dicts(con.execute(
        f"SELECT adapter_id, created_at, dataset_version, path FROM adapters WHERE {in_list('dataset_version')} "
        "ORDER BY created_at DESC", [versions]))
    flags = adapter_flags(con, [r["adapter_id"] for r in rows])
    return [{**r, "created_at": r["created_at"].isoformat(), "flags": flags.get(r["adapter_id"], [])} for r in rows]


def resolve_records(con, refs: list[str]) -> dict[str, str]:
    """{given ref: full record id}; a ref is a full id or a unique prefix, found in a version or quarantine."""
    resolved: dict[str, str] = {}
    for ref in refs:
        ref = ref.strip().lower()
        if len(ref) < RECORD_MIN_PREFIX:
            raise LineageError(f"record id {ref!r} is too short: give at least {RECORD_MIN_PREFIX} characters")
        ids = {r for (r,) in con.execute(
            "SELECT DISTINCT record_id FROM dataset_records WHERE starts_with(record_id, ?) UNION "
            "SELECT DISTINCT record_id FROM quarantine WHERE starts_with(record_id, ?)", [ref, ref]).fetchall()}
        if not ids:
            raise LineageError(f"record {ref!r} is in no dataset version and no quarantine")
        if len(ids) > 1:
            raise LineageError(f"record prefix {ref!r} matches {len(ids)} records; give more characters")
        resolved[ref] = ids.pop()
    return resolved


def record_lineage(con, refs: list[str]) -> dict:
    """For each record: the versions holding it (split, source file and line), the quarantines that hold
    it (stage, reason), and every adapter trained on one of those versions."""
    resolved = resolve_records(con, refs)
    records = []
    for ref, record_id in resolved.items():
        versions = rows_as_dicts(con.execute(
            "SELECT r.version_id, r.split, r.source_file, r.source_sha256, r.source_line, v.created_at "
            "FROM dataset_records r JOIN dataset_versions v USING (version_id) WHERE r.record_id = ? "
            "ORDER BY v.created_at", [record_id]))
        quarantined = rows_as_dicts(con.execute(
            "SELECT q.version_id, q.stage, q.reason, q.source_file, q.source_sha256, q.source_line "
            "FROM quarantine q JOIN dataset_versions v USING (version_id) WHERE q.record_id = ? "
            "ORDER BY v.created_at", [record_id]))
        for v in versions:
            v["created_at"] = v["created_at"].isoformat()
        records.append({"record_id": record_id, "query": ref, "versions": versions, "quarantined_in": quarantined,
                        "adapters": _adapters_on(con, [v["version_id"] for v in versions])})
    return {"records": records}


def resolve_source(con, source: str, strict: bool = False) -> tuple[str, list[str], str | None]:
    """How ``source`` matches recorded sources: ("name", names) when a recorded name or base name equals it
    (every content version of that file), else ("sha256", names) by content hash (given as 64 hex digits or
    computed from a local file: a renamed copy is still found).

    ``strict`` (erasure: what matches is deleted for good): a local file matches by its content hash only,
    anything else by its exact recorded name, never by base name."""
    sha = source.lower() if len(source) == 64 and all(c in "0123456789abcdef" for c in source.lower()) else None
    path = Path(source)
    if sha is None and path.is_file():
        sha = sha256_file(path)
    rows = con.execute("SELECT DISTINCT source_file, source_sha256 FROM dataset_sources").fetchall()
    if strict and sha is not None:
        return "sha256", sorted({name for name, digest in rows if digest == sha}), sha
    by_name = sorted({name for name, _ in rows
                      if name == source or (not strict and Path(name).name == path.name)})
    if by_name:
        return "name", by_name, sha
    return "sha256", sorted({name for name, digest in rows if sha is not None and digest == sha}), sha


def source_lineage(con, source: str) -> dict:
    """Every dataset version built from a raw file (with its counts there) and the adapters trained on them."""
    match, names, sha = resolve_source(con, source)
    if not names:
        hint = f" (sha256 {sha[:12]}...)" if sha else ""
        raise LineageError(f"source {source!r}{hint} is in no dataset version; see `fine-tune-assets datasets show`")
    condition, params = (in_list("s.source_file"), [names]) if match == "name" else \
        ("s.source_sha256 = ?", [sha])
    versions = rows_as_dicts(con.execute(
        "SELECT s.version_id, v.created_at, s.source_file, s.source_sha256, s.inputs, s.accepted, s.quarantined "
        f"FROM dataset_sources s JOIN dataset_versions v USING (version_id) WHERE {condition} "
        "ORDER BY v.created_at, s.source_file", params))
    for v in versions:
        v["created_at"] = v["created_at"].isoformat()
        v["records"] = con.execute("SELECT count(*) FROM dataset_records WHERE version_id = ? AND source_file = ?",
                                   [v["version_id"], v["source_file"]]).fetchone()[0]
    return {"source": source, "matched_by": match, "matched": names, "sha256": sha, "versions": versions,
            "adapters": _adapters_on(con, sorted({v["version_id"] for v in versions}))}


# ----------------------------------------------------------------------------- text rendering


def _flag_lines(flags: list[dict], indent: str) -> list[str]:
    return [f"{indent}NEEDS RETRAINING: {f.get('reason') or f['flag']} (request {str(f.get('request_id'))[:12]}, "
            f"{f['created_at'][:19]})" for f in flags]


def render_adapter_lineage(d: dict) -> str:
    a, ds, base, tr, ev = d["adapter"], d["dataset_version"], d["base_model"], d["training"], d["evaluation"]
    c, pol = ds["counts"], ds["scrub_policy"]
    lines = [f"adapter {a['adapter_id']}", f"  created {a['created_at'][:19]} UTC   path {a['path']}"]
    lines += _flag_lines(a["flags"], "  ")
    if a["files"]:
        lines.append("  files   " + ", ".join(f"{n} {abbreviated(s)}" for n, s in sorted(a["files"].items())))
    else:
        lines.append("  files   not recorded in the ledger (adapter published before the ledger existed)")
    lines += [
        f"<- dataset version {ds['version_id']}",
        f"     created {ds['created_at'][:19]} UTC, parent {abbreviated(ds['parent_version'])}",
        f"     {c['input_records']} input records = {c['accepted']} accepted ({c['train']} train / {c['eval']} eval)"
        f" + {c['quarantined']} quarantined"
        + (" (" + ", ".join(f"{k} {v}" for k, v in c["quarantined_by_reason"].items()) + ")"
           if c["quarantined_by_reason"] else ""),
        "     files " + ", ".join(f"{n} {abbreviated(s)}" for n, s in sorted(ds["files"].items()))
        + (f", manifest.json {abbreviated(ds['manifest_sha256'])}" if ds["manifest_sha256"] else ""),
        "  <- raw sources",
    ]
    for s in ds["sources"]:
        lines.append(f"       {s['source_file']:<40} sha256 {abbreviated(s['source_sha256'])}  {s['inputs']} in, "
                     f"{s['accepted']} accepted, {s['quarantined']} quarantined")
    versions = pol.get("versions") or {}
    lines += [
        f"  <- scrub policy {abbreviated(pol['policy_hash'])} ({pol.get('source') or 'built-in'})",
        f"       recognizers: {', '.join(pol['recognizers']) or '-'}",
        f"       score threshold {pol.get('score_threshold')}, operators "
        + ", ".join(f"{k}={v.get('type')}" for k, v in (pol.get("operators") or {}).items()),
        "       " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        "       PII replaced: " + (", ".join(f"{k} {v}" for k, v in pol["entity_counts"].items()) or "none"),
        "  <- quality checks",
    ]
    for g in ds["quality_checks"]:
        lines.append(f"       {'PASS' if g['passed'] else 'FAIL'}  {g['name']:<20} observed {g['observed']}, "
                     f"threshold {g['threshold']}{', blocking' if g.get('blocking') else ''}")
    weights = ", ".join(f"{n} {abbreviated(s)}" for n, s in (base.get("weights_sha256") or {}).items())
    code = tr.get("code") or {}
    m = tr["metrics"]
    lines += [
        f"<- base model {base.get('name')} rev {base.get('revision')} ({base.get('source')})",
        (f"     identity {abbreviated(base.get('identity_hash'))}, weights {weights or '-'}, chat template "
         f"{abbreviated(base.get('chat_template_sha256'))}"),
        f"<- training config {abbreviated(tr['config_hash'])}: seed {tr.get('seed')}, "
        + ", ".join(f"{k} {tr['config'].get(k)}" for k in ("learning_rate", "lora_r", "lora_alpha", "target_modules",
                                                            "per_device_batch_size", "max_steps", "num_epochs")
                    if k in tr["config"]),
        (f"     code git {str(code.get('git_commit'))[:12]}, package {code.get('package_version')}; "
         f"{m.get('steps')} steps in {round(m['train_seconds'] or 0)} s on {m.get('device')}"),
    ]
    if ev:
        base_m, tuned = ev["base"] or {}, ev["fine_tuned"] or {}
        compliance = " -> ".join(percent(side.get("format_compliance"), missing="-") for side in (base_m, tuned))
        loss = " -> ".join(number(side.get("eval_loss", float("nan")), 4) for side in (base_m, tuned))
        lines += [(f"-> evaluation {abbreviated(ev['eval_id'])} ({ev['created_at'][:19]}): format compliance "
                   f"{compliance}, eval loss {loss}, gate {'PASSED' if ev['gate']['passed'] else 'FAILED'}"),
                  f"     report {ev['report']}"]
    else:
        lines.append("-> evaluation: none recorded (materialize eval_report)")
    lines.append("ledger events: " + ("; ".join(f"seq {e['seq']} {e['kind']} {abbreviated(e['event_hash'])}"
                                                for e in d["ledger_events"]) or "none (published before the ledger)"))
    return "\n".join(lines)


def _adapter_lines(adapters: list[dict], indent: str) -> list[str]:
    if not adapters:
        return [f"{indent}no adapter trained on these versions"]
    lines = []
    for a in adapters:
        lines.append(f"{indent}adapter {a['adapter_id'][:12]} (dataset {a['dataset_version'][:12]}, "
                     f"{a['created_at'][:19]})")
        lines += _flag_lines(a["flags"], indent + "  ")
    return lines


def render_record_lineage(d: dict) -> str:
    lines = []
    for r in d["records"]:
        lines.append(f"record {r['record_id']}")
        for v in r["versions"]:
            lines.append(f"  in dataset {v['version_id'][:12]} ({v['split']}) from {v['source_file']} line "
                         f"{v['source_line']} (sha256 {abbreviated(v['source_sha256'])})")
        for q in r["quarantined_in"]:
            lines.append(f"  quarantined in dataset {q['version_id'][:12]} at {q['stage']}: {q['reason']} "
                         f"({q['source_file']} line {q['source_line']})")
        if not r["versions"]:
            lines.append("  in no dataset version (quarantined only): no adapter was trained on it")
        else:
            lines += _adapter_lines(r["adapters"], "  ")
    return "\n".join(lines)


def render_source_lineage(d: dict) -> str:
    how = "name" if d["matched_by"] == "name" else f"content sha256 {abbreviated(d['sha256'])}"
    lines = [f"source {d['source']} (matched by {how}: {', '.join(d['matched'])})"]
    for v in d["versions"]:
        lines.append(f"  in dataset {v['version_id'][:12]} ({v['created_at'][:19]}): {v['source_file']} sha256 "
                     f"{abbreviated(v['source_sha256'])}, {v['inputs']} in, {v['records']} records in the version, "
                     f"{v['quarantined']} quarantined")
    lines += _adapter_lines(d["adapters"], "  ")
    return "\n".join(lines)
