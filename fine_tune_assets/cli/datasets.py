"""``datasets list`` and ``datasets show VERSION|latest``: the published dataset versions."""

from __future__ import annotations

from .arguments import add_list_show
from .output import answer
from .registry import read_registry


def list_versions(args) -> int:
    from fine_tune_assets.lib.registry.queries import dataset_summary, dataset_versions

    return answer(args, lambda: read_registry(lambda con: [dataset_summary(row) for row in dataset_versions(con)]),
                  _list_text)


def _list_text(summary: list[dict]) -> str:
    if not summary:
        return "no dataset versions yet: run `make run` or materialize dataset_version in the UI"
    lines = [f"{'version':<14} {'created (UTC)':<20} {'train':>6} {'eval':>5} {'inputs':>7} {'quarantined':>11}"]
    lines += [f"{s['version_id'][:12]:<14} {s['created_at'][:19]:<20} {s['train']:>6} {s['eval']:>5} "
              f"{s['input_records']:>7} {s['quarantined']:>11}" for s in summary]
    return "\n".join(lines)


def show_version(args) -> int:
    from fine_tune_assets.lib.registry.queries import dataset_details

    return answer(args, lambda: read_registry(lambda con: dataset_details(con, args.version)), _show_text)


def _show_text(details: dict) -> str:
    c = details["counts"]
    lines = [f"dataset version {details['version_id']}",
             f"  created {details['created_at']}  parent {details['parent_version'] or '-'}",
             f"  path    {details['path']}",
             (f"  records {c['input_records']} in = {c['accepted']} accepted "
              f"({c['train']} train / {c['eval']} eval) + {c['quarantined']} quarantined")]
    lines += [f"    {reason:<36} {n}" for reason, n in c["quarantined_by_reason"].items()]
    lines.append("  sources")
    lines += [f"    {s['source_file']:<40} sha256 {s['source_sha256'][:12]}  {s['inputs']} in, "
              f"{s['accepted']} accepted, {s['quarantined']} quarantined" for s in details["sources"]]
    lines.append(f"  scrub policy {details['scrub']['policy_hash'][:12]}: "
                 + ", ".join(f"{k} {v}" for k, v in details["scrub"]["entity_counts"].items()))
    lines.append("  quality gates")
    lines += [f"    {'PASS' if g['passed'] else 'FAIL'}  {g['name']:<20} observed {g['observed']}  "
              f"threshold {g['threshold']}" for g in details["checks"]]
    lines += [f"  tokens {split:<5} total {t['total']}, min {t['min']}, p50 {t['p50']}, p95 {t['p95']}, max {t['max']}"
              for split, t in details["token_stats"].items()]
    return "\n".join(lines)


def register(sub) -> None:
    add_list_show(sub, "datasets", "published dataset versions", "version", list_versions, show_version)
