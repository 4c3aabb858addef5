"""The audit trail: ``verify``, ``lineage``, ``erase`` and ``dossier``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from fine_tune_assets.lib.common.paths import DataPaths
from fine_tune_assets.lib.registry.backends import display
from fine_tune_assets.lib.registry.connection import registry_exists

from .access import roles, warn_if_unchecked
from .output import UsageError, answer
from .registry import read_registry


def verify(args) -> int:
    from fine_tune_assets.lib.audit.verify import verify_all

    return answer(args, lambda: verify_all(DataPaths.from_env(), expect_head=args.expect_head), _verify_text,
                  code=lambda result: 0 if result["ok"] else 1)


def _verify_text(result: dict) -> str:
    if result["nothing_to_verify"]:
        return "nothing to verify: the registry has no ledger events yet"
    summary = (f"{result['events']} ledger events, {result['datasets']} dataset versions, {result['adapters']} "
               f"adapters, {result['evaluations']} evaluations, {result['files']} files re-hashed")
    lines = [f"warning: {warning}" for warning in result["warnings"]]
    if result["ok"]:
        head = result["head"]
        lines.append(f"intact: {summary}\nledger head: seq {head['seq']} {head['event_hash']} (note it; "
                     "`verify --expect-head HASH` later proves no newer event was deleted before it)")
    else:
        lines.append(f"{len(result['problems'])} problems ({summary}):")
        lines += [f"  {problem}" for problem in result["problems"]]
    return "\n".join(lines)


def show_lineage(args) -> int:
    from fine_tune_assets.lib.audit import lineage

    def call() -> dict:
        if sum([bool(args.adapter), bool(args.source), bool(args.record)]) != 1:
            raise UsageError("give one of: an adapter id (or 'latest'), --source FILE ..., --record ID ...")
        registry = DataPaths.from_env().registry
        if not registry_exists(registry):
            raise UsageError(f"no registry at {display(registry)}: nothing has been published yet")
        if args.adapter:
            return read_registry(lambda con: lineage.adapter_lineage(con, args.adapter))
        if args.record:
            return read_registry(lambda con: lineage.record_lineage(con, args.record))
        results = read_registry(lambda con: [lineage.source_lineage(con, source) for source in args.source])
        return results[0] if len(results) == 1 else {"sources": results}

    def text(result: dict) -> str:
        if args.adapter:
            return lineage.render_adapter_lineage(result)
        if args.record:
            return lineage.render_record_lineage(result)
        sources = [result] if len(args.source) == 1 else result["sources"]
        return "\n".join(lineage.render_source_lineage(source) for source in sources)

    return answer(args, call, text, errors=(lineage.LineageError,))


def erase(args) -> int:
    from fine_tune_assets.lib.audit import erasure

    paths = DataPaths.from_env()

    def then(result) -> None:
        _report_erasure_to_dagster(result, note_if_unset=not args.json)
        warn_if_unchecked(paths)

    return answer(args, lambda: erasure.erase(paths, args.reason, record_refs=args.record, sources=args.source,
                                              access=roles(paths)),
                  _erasure_text, errors=(erasure.ErasureError,), then=then)


def _erasure_text(result) -> str:
    n, files = len(result.record_ids), len(result.source_files)
    lines = [f"erasure request {result.request_id[:12]} by {result.user}: {n} record{'s' * (n != 1)}"
             + (f" from {files} source file{'s' * (files != 1)}" if files else "")]
    if result.new_version_created:
        lines.append(f"  new dataset version {result.new_version} without them ({result.erased_from_new_version} "
                     f"removed; {result.counts['train']} train / {result.counts['eval']} eval)")
    else:
        lines.append("  no new dataset version: the newest version holds none of these records")
    versions = result.affected_versions
    lines.append(f"  found in {len(versions)} dataset version{'s' * (len(versions) != 1)}: "
                 + (", ".join(v[:12] for v in versions) or "none"))
    lines += ["  adapters flagged needs-retraining: " + (", ".join(a[:12] for a in result.affected_adapters) or "none"),
              ("  future dataset versions leave these records (and these source files) out as 'erased' quarantine "
               "rows")]
    if result.purged_staging:
        lines.append(f"  deleted {len(result.purged_staging)} staging folders that held them (rebuilt on the next run)")
    for loc in result.raw_locations:
        found = loc["lines"]
        where = "whole file" if found == [0] else (
            "line" + "s" * (len(found) != 1) + " " + ", ".join(map(str, found[:10]))
            + (f" (+{len(found) - 10} more)" if len(found) > 10 else ""))
        lines.append(f"  still in raw/{loc['source_file']} ({where}): remove or redact them there")
    return "\n".join(lines)


def _report_erasure_to_dagster(result, note_if_unset: bool) -> None:
    """Runless events in the Dagster instance ($DAGSTER_HOME), so the UI shows the flags; best effort."""
    if not os.environ.get("DAGSTER_HOME"):
        if note_if_unset:
            print("  (DAGSTER_HOME not set: the Dagster UI was not told; the registry and ledger were)")
        return
    try:
        from fine_tune_assets.defs.audit.erasure_events import report_to_dagster

        n = report_to_dagster(result)
        print(f"  reported {n} events to the Dagster instance at {os.environ['DAGSTER_HOME']}")
    except Exception as exc:
        print(f"  warning: could not report to the Dagster instance: {type(exc).__name__}: {exc}", file=sys.stderr)


def dossier(args) -> int:
    from fine_tune_assets.lib.audit.dossier import DossierError, build_dossier, render_html, render_markdown
    from fine_tune_assets.lib.common.parquet import atomic_write_bytes

    def call() -> str:
        """The dossier itself, or with --output the path it was written to."""
        built = build_dossier(DataPaths.from_env(), args.adapter)
        body = render_html(built) if args.format == "html" else render_markdown(built)
        if not args.output:
            return body.removesuffix("\n")  # print() gives it back
        target = Path(args.output)
        try:
            atomic_write_bytes(target, body.encode("utf-8"))
        except OSError as exc:
            raise UsageError(f"{target}: cannot write: {exc.strerror or exc}") from None
        return str(target)

    return answer(args, call, str, errors=(DossierError,))


def register(sub) -> None:
    p = sub.add_parser("verify", help="re-hash published datasets and adapters against the ledger; check its chain")
    p.add_argument("--json", action="store_true")
    p.add_argument("--expect-head", metavar="HASH",
                   help="an event hash noted earlier (>= 12 hex chars): fail unless it is still in the chain")
    p.set_defaults(func=verify)

    p = sub.add_parser("lineage", help="what an adapter came from, or which versions and adapters hold a record "
                                       "or a raw file")
    p.add_argument("adapter", nargs="?", help="adapter id, unique prefix (4+), stage name or 'latest'")
    p.add_argument("--source", action="append", default=[], metavar="FILE",
                   help="raw file by recorded name, path (matched by name, else by its sha256) or sha256")
    p.add_argument("--record", action="append", default=[], metavar="ID", help="record id or unique prefix")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=show_lineage)

    p = sub.add_parser("erase", help="erasure request: publish a version without the records, keep them out of "
                                     "future versions, flag adapters trained on them")
    p.add_argument("--record", action="append", default=[], metavar="ID", help="record id or unique prefix")
    p.add_argument("--source", action="append", default=[], metavar="FILE",
                   help="every record of a raw file (recorded name, path or sha256)")
    p.add_argument("--reason", required=True,
                   help="why (e.g. the request's ticket number); stored in the ledger: no personal data here")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=erase)

    p = sub.add_parser("dossier", help="the audit dossier of an adapter, generated from the registry and the ledger")
    p.add_argument("adapter", help="adapter id, unique prefix (4+), stage name or 'latest'")
    p.add_argument("--format", choices=("md", "html"), default="md", help="Markdown (default) or one HTML page")
    p.add_argument("--output", metavar="FILE", help="write to FILE (and print its path) instead of stdout")
    p.set_defaults(func=dossier)
