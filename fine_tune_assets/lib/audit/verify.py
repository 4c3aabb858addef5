"""``verify``: does what is on disk still match what the ledger recorded, and is the ledger intact?

For every ``dataset_published`` event the dataset folder's files are re-hashed; for the newest
``adapter_trained`` event of each adapter (re-publishing an adapter rewrites its lineage.json and
card, so earlier events describe an earlier state) the adapter folder's top-level files are
re-hashed, and a file that is missing, changed or not recorded is named; likewise the report files
of each adapter's newest evaluation. Then the chain itself.

Registry rows with no ledger event are named too: a dataset version or adapter inserted behind the
ledger's back is a problem; one created before the ledger began (published by an older
version of this tool) is only a warning, since nothing can vouch for it; a table the registry once
had (``registry_tables``) but lacks now is named, so dropping the ledger does not pass for an older
registry. That record lives in the same file: someone who drops both ``ledger`` and ``registry_tables``
makes a post-ledger registry read as a pre-ledger one (warnings only); ``expect_head`` catches that too.
The chain cannot show that its newest rows were deleted: ``expect_head`` (an event hash an auditor noted
earlier, e.g. from a dossier or an earlier ``verify``) must still be in the chain.

What a publication killed half-way leaves (``.tmp-*`` entries, a folder the registry does not hold) is a
warning: readers go through the registry and never see it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ..common.hashing import sha256_file
from ..common.paths import DataPaths
from ..registry.connection import connect, registry_exists
from ..registry.erasures import NEEDS_RETRAINING
from ..registry.ledger import STAGE_KINDS, EventKind, read_events, verify_chain
from ..registry.schema import recorded_tables, stored_tables


def compare_files(label: str, folder: Path, recorded: dict, problems: list[str], extra_allowed: bool) -> int:
    """Re-hash ``folder/<name>`` for every recorded name ({name: sha256}), appending a problem for each file
    missing, changed or (unless ``extra_allowed``) not recorded; returns how many files were checked."""
    if not folder.is_dir():
        problems.append(f"{label} folder {folder} missing ({len(recorded)} recorded files)")
        return 0
    checked = 0
    for name, sha in sorted(recorded.items()):
        path = folder / name
        checked += 1
        if not path.is_file():
            problems.append(f"{label} file {name} missing: sha256 recorded {sha[:12]}...")
            continue
        now = sha256_file(path)
        if now != sha:
            problems.append(f"{label} file {name} changed: sha256 recorded {sha[:12]}..., now {now[:12]}...")
    if not extra_allowed:
        for path in sorted(p for p in folder.iterdir() if p.is_file() and p.name not in recorded):
            problems.append(f"{label} file {path.name} added after publication (not recorded; sha256 "
                            f"{sha256_file(path)[:12]}...)")
    return checked


def _ledger_start(con, events: list[dict], problems: list[str]) -> datetime | None:
    """Since when every registry row must have a ledger event; None for a registry older than the ledger.
    Names the tables the registry once had but lacks now: dropping the ledger must not pass as "older"."""
    stored, recorded = stored_tables(con), recorded_tables(con)
    for name in sorted(recorded.keys() - stored):
        problems.append(f"registry table {name} missing: the registry had it (registry_tables), so it was dropped")
    known = [t for t in (events[0]["created_at"] if events else None, recorded.get("ledger")) if t is not None]
    if known:
        return min(known)
    if "ledger" in stored:  # an emptied ledger must not turn every row into "pre-ledger"
        return datetime.min.replace(tzinfo=UTC)
    return None


def _rows_without_events(con, events: list[dict], problems: list[str], warnings: list[str]) -> None:
    first = _ledger_start(con, events, problems)
    covered = {(e["kind"], e["subject"]) for e in events}
    for table, key, kind, label in (
            ("dataset_versions", "version_id", EventKind.DATASET_PUBLISHED, "dataset version"),
            ("adapters", "adapter_id", EventKind.ADAPTER_TRAINED, "adapter"),
            ("evaluations", "eval_id", EventKind.EVALUATION_COMPLETED, "evaluation")):
        for subject, created_at in con.execute(f"SELECT {key}, created_at FROM {table} ORDER BY created_at").fetchall():
            if (kind, subject) in covered:
                continue
            if first is None or created_at < first:
                warnings.append(f"{label} {subject[:12]} predates the ledger: its files cannot be verified")
            else:
                problems.append(f"{label} {subject[:12]} is in the registry with no {kind} ledger event "
                                "(inserted behind the ledger's back?)")


def _decisions_match_events(con, events: list[dict], problems: list[str]) -> None:
    """The tables that steer later work (erasure deny-list, needs-retraining flags, stage transitions) must
    say what their ledger events say: deleting an erasure row would let its records be published again."""
    erasures = {e["subject"]: e["payload"] for e in events
                if e["kind"] == EventKind.ERASURE and isinstance(e["payload"], dict)}
    rows: dict[str, set] = {}
    for request_id, record_id in con.execute("SELECT request_id, record_id FROM erasures").fetchall():
        rows.setdefault(request_id, set()).add(record_id)
    for request_id, payload in erasures.items():
        recorded = set(payload.get("record_ids") or [])
        if not recorded <= rows.get(request_id, set()):
            problems.append(f"erasure request {request_id[:12]}: {len(recorded - rows.get(request_id, set()))} of its "
                            "records are missing from the erasures table (their records could be published again)")
    for request_id in sorted(set(rows) - set(erasures)):
        problems.append(f"erasure request {request_id[:12]} is in the erasures table with no erasure ledger event")
    flags = set(con.execute("SELECT adapter_id, request_id FROM adapter_flags WHERE flag = ?",
                            [NEEDS_RETRAINING]).fetchall())
    for request_id, payload in erasures.items():
        for adapter_id in payload.get("affected_adapters") or []:
            if (adapter_id, request_id) not in flags:
                problems.append(f"adapter {adapter_id[:12]}: needs_retraining flag of erasure request "
                                f"{request_id[:12]} removed from adapter_flags")
    transitions = {e["seq"]: e for e in events if e["kind"] in STAGE_KINDS}
    stage_rows = {seq: (stage, adapter_id) for seq, stage, adapter_id in con.execute(
        "SELECT event_seq, stage, adapter_id FROM adapter_stages").fetchall()}
    for seq, event in transitions.items():
        payload = event["payload"] if isinstance(event["payload"], dict) else {}
        expected = (payload.get("stage"), payload.get("adapter_id"))
        if stage_rows.get(seq) != expected:
            problems.append(f"stage transition of ledger seq {seq} ({event['kind']} of {expected[0]}) missing from or "
                            "altered in adapter_stages")
    for seq in sorted(set(stage_rows) - set(transitions)):
        problems.append(f"adapter_stages row for ledger seq {seq} has no promotion/rollback ledger event")


def _leftovers(con, paths: DataPaths, warnings: list[str]) -> None:
    """What a publication killed half-way leaves: harmless (readers go through the registry), but named."""
    for folder, table, key in ((paths.datasets, "dataset_versions", "version_id"), (paths.adapters, "adapters",
                                                                                    "adapter_id")):
        if not folder.is_dir():
            continue
        registered = {v for (v,) in con.execute(f"SELECT {key} FROM {table}").fetchall()}
        for entry in sorted(folder.iterdir()):
            where = f"{folder.name}/{entry.name}"
            if entry.name.startswith(".") and entry.name.lstrip(".").startswith("tmp-"):
                warnings.append(f"{where}: left by an interrupted publication, never published (delete it when no "
                                "publication runs)")
            elif not entry.name.startswith(".") and entry.is_dir() and entry.name not in registered:
                warnings.append(f"{where[:len(folder.name) + 13]}: a folder the registry does not hold (a publication "
                                "killed before its registry commit? the next one of the same content takes it over)")


def verify_all(paths: DataPaths, expect_head: str | None = None) -> dict:
    """{ok, problems, warnings, head, events, files, datasets, adapters, evaluations, nothing_to_verify}."""
    result = {"ok": True, "problems": [], "warnings": [], "head": None, "events": 0, "files": 0, "datasets": 0,
              "adapters": 0, "evaluations": 0, "nothing_to_verify": False}
    if not registry_exists(paths.registry):
        result["nothing_to_verify"] = True
        return result
    with connect(paths.registry, read_only=True) as con:
        events = read_events(con)
        problems = verify_chain(con, events)
        _rows_without_events(con, events, problems, result["warnings"])
        _decisions_match_events(con, events, problems)
        _leftovers(con, paths, result["warnings"])
    result["events"] = len(events)
    if events:
        result["head"] = {"seq": events[-1]["seq"], "event_hash": events[-1]["event_hash"]}
    if expect_head:
        expected = expect_head.strip().lower()
        if not any(e["event_hash"].startswith(expected) for e in events) or len(expected) < 12:
            problems.append(f"expected ledger event {expected[:12]}... is not in the chain (newest events deleted, "
                            "or the registry was replaced)" if len(expected) >= 12 else
                            "--expect-head needs at least 12 hex characters of an event hash")
    if not events:
        result["problems"] = problems
        result["ok"] = not problems
        result["nothing_to_verify"] = not problems
        return result
    latest_adapter: dict[str, dict] = {}
    latest_report: dict[str, dict] = {}  # re-evaluating rewrites adapters/<id>/eval/: the newest event counts
    for event in events:
        payload = event["payload"]
        if not isinstance(payload, dict):
            continue  # already reported by verify_chain
        if event["kind"] == EventKind.DATASET_PUBLISHED:
            version = payload.get("version_id", event["subject"])
            recorded = dict(payload.get("files") or {})
            if payload.get("manifest_sha256"):
                recorded["manifest.json"] = payload["manifest_sha256"]
            result["files"] += compare_files(f"dataset {version[:12]}", paths.datasets / version, recorded, problems,
                                             extra_allowed=True)
            result["datasets"] += 1
        elif event["kind"] == EventKind.ADAPTER_TRAINED:
            latest_adapter[payload.get("adapter_id", event["subject"])] = {
                **payload, "files": dict(payload.get("files") or {})}
        elif event["kind"] == EventKind.EVALUATION_COMPLETED:
            result["evaluations"] += 1
            if payload.get("files"):  # events before report hashing have none
                latest_report[payload.get("adapter_id", "")] = payload
            trained = latest_adapter.get(payload.get("adapter_id", ""))
            if payload.get("card_sha256") and trained:  # the evaluation rewrote the model card with its results
                trained["files"]["README.md"] = payload["card_sha256"]
    for adapter_id, payload in latest_adapter.items():
        result["files"] += compare_files(f"adapter {adapter_id[:12]}", paths.adapters / adapter_id,
                                         payload.get("files") or {}, problems, extra_allowed=False)
        result["adapters"] += 1
    for adapter_id, payload in latest_report.items():
        result["files"] += compare_files(f"eval report of adapter {adapter_id[:12]}",
                                         paths.adapters / adapter_id / "eval", payload["files"], problems,
                                         extra_allowed=False)
    result["problems"] = problems
    result["ok"] = not problems
    return result
