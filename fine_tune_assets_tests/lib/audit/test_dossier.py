"""The audit dossier: every section from the registry and the ledger, explicit gaps, banners, escaping, CLI, asset."""

from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fine_tune_assets import cli
from fine_tune_assets.lib.audit.dossier import (
    DRIFT_POLICY_GAP,
    DossierError,
    build_dossier,
    render_html,
    render_markdown,
    write_dossier,
)
from fine_tune_assets.lib.audit.verify import verify_all
from fine_tune_assets.lib.common.paths import DataPaths
from fine_tune_assets.lib.data.publish import PublishRequest, publish_dataset
from fine_tune_assets.lib.data.records import QUARANTINE_SCHEMA
from fine_tune_assets.lib.registry.connection import connect
from fine_tune_assets.lib.registry.ledger import append_event, read_events
from fine_tune_assets_tests.factories import (
    publish_test_adapter,
    publish_test_dataset,
    record_test_evaluation,
    write_validated,
)

SECTIONS = ["Identity", "Data", "De-identification", "Quality gates", "Training", "Evaluation", "Operations",
            "Approvals", "Integrity"]
SCRIPT = "<script>alert('x')</script>"


def _rows(dossier: dict, section_id: str) -> dict[str, dict]:
    """label -> field row of one section (fields blocks only)."""
    s = next(s for s in dossier["sections"] if s["id"] == section_id)
    return {r["label"]: r for b in s["blocks"] if b["kind"] == "fields" for r in b["rows"]}


def _table(dossier: dict, section_id: str, title_start: str) -> dict:
    s = next(s for s in dossier["sections"] if s["id"] == section_id)
    return next(b for b in s["blocks"] if b["kind"] == "table" and b["title"].startswith(title_start))


def _no_silence(dossier: dict) -> None:
    """Every field has a value or a gap reason; every table has rows or a gap reason."""
    for s in dossier["sections"]:
        assert s["blocks"], s["title"]
        for b in s["blocks"]:
            if b["kind"] == "fields":
                for r in b["rows"]:
                    assert (r["value"] is not None) != bool(r["gap"]), (s["title"], r)
            elif b["kind"] == "table":
                assert b["rows"] or b["gap"], (s["title"], b["title"])


def test_every_section_is_present_and_missing_items_are_explicit_gaps(published):
    paths, version, adapter_id, eval_id = published
    dossier = build_dossier(paths, "latest")
    assert (dossier["adapter_id"], dossier["dataset_version"]) == (adapter_id, version)
    assert [s["title"] for s in dossier["sections"]] == SECTIONS
    _no_silence(dossier)
    md = render_markdown(dossier)
    for number, title in enumerate([*SECTIONS, "Gaps"], 1):
        assert f"\n## {number}. {title}\n" in md
    # the test helpers record no scrub policy, no gates and no drift policy: each shows as a gap, with a reason
    gaps = {(g["section"], g["item"]): g["reason"] for g in dossier["gaps"]}
    assert gaps[("Operations", "drift policy")] == DRIFT_POLICY_GAP
    assert "not recorded" in gaps[("De-identification", "entities detected")]
    assert gaps[("Quality gates", "dataset gates")] == "no dataset gate results recorded for this dataset version"
    assert ("Data", "time window of the conversations") in gaps
    assert f"**GAP:** {DRIFT_POLICY_GAP}" in md
    assert f"**{len(dossier['gaps'])} gap(s)**" in md
    # what is recorded is shown: counts through the stages, the evaluation, the ledger events with their hashes
    flow = _table(dossier, "data", "Record counts")["rows"]
    assert ["input records", "-", "8"] in flow and ["accounting: in = accepted + quarantined", "-", "balanced"] in flow
    assert _rows(dossier, "evaluation")["evaluation id"]["value"] == eval_id
    with connect(paths.registry, read_only=True) as con:
        events = read_events(con)
    ledger = _table(dossier, "integrity", "Ledger events")["rows"]
    assert [(r[0], r[2], r[5]) for r in ledger] == [(str(e["seq"]), e["kind"], e["event_hash"]) for e in events]
    assert dossier["ledger_head"] == {"seq": 3, "event_hash": events[-1]["event_hash"]}
    assert f"event_hash {events[-1]['event_hash']}" in md
    assert _rows(dossier, "integrity")["verify (re-hash every published file, recompute the ledger chain)"][
        "value"].startswith("INTACT: 3 ledger events")
    assert dossier["integrity_ok"] and not dossier["needs_retraining"] and dossier["banners"] == []
    assert dossier["tool"]["name"] == "fine_tune_assets" and dossier["generated_at"]
    comparison = _table(dossier, "evaluation", "Comparison with the base model")["rows"]
    assert comparison == [["format compliance", "25.0%", "75.0%", "+50.0 pp (better)"]]


def test_an_adapter_without_evaluation_says_so(tmp_path, registry_backend):
    paths = DataPaths.from_env(tmp_path / "data")
    version = publish_test_dataset(paths, tmp_path)
    adapter_id = publish_test_adapter(paths, tmp_path, version)
    # the registry file (whose folder is the data directory) and a prefix work too; a URL does not name the files
    dossier = build_dossier(paths.root if registry_backend else paths.registry, adapter_id[:8])
    _no_silence(dossier)
    rows = _rows(dossier, "evaluation")
    assert rows["evaluation"]["gap"] == "no evaluation recorded for this adapter (materialize eval_report)"
    assert rows["comparison with the previous adapter"]["gap"] == "no evaluation recorded for this adapter"
    assert dossier["banners"][0]["text"].startswith("NOT EVALUATED")
    md = render_markdown(dossier)
    assert "**GAP:** no evaluation recorded for this adapter (materialize eval_report)" in md


def _two_adapters_promoted_and_erased(paths: DataPaths, tmp_path: Path) -> tuple[str, str, str]:
    version = publish_test_dataset(paths, tmp_path)
    first = publish_test_adapter(paths, tmp_path, version, weights=b"weights-1")
    record_test_evaluation(paths, first, version)
    second = publish_test_adapter(paths, tmp_path, version, weights=b"weights-2")
    record_test_evaluation(paths, second, version)
    with connect(paths.registry) as con:
        append_event(con, "promotion", first, {
            "adapter_id": first, "stage": "production", "previous_adapter_id": None, "reason": "first release",
            "user": "alice", "forced": False, "gate": {"passed": True}})
        append_event(con, "promotion", second, {
            "adapter_id": second, "stage": "production", "previous_adapter_id": first, "reason": SCRIPT,
            "user": "bob", "forced": True, "gate": {"passed": False}})
        append_event(con, "drift_evaluation", second, {
            "reference_adapter": second, "reference_version": version, "candidate": "8" * 64,
            "decision": "signal", "n_window": 240, "window_ids_sha256": "7" * 64, "policy_hash": "6" * 64,
            "detectors": {"descriptors": {"flagged": True}, "novelty": {"flagged": False},
                          "classifier": {"flagged": True}}})
        append_event(con, "erasure", "req-1", {
            "request_id": "req-1", "record_ids": ["r1", "r2"], "source_files": ["tickets.jsonl"],
            "reason": "GDPR art. 17 ticket 42", "user": "carol", "affected_versions": [version],
            "affected_adapters": [second], "new_version": "9" * 64})
    return version, first, second


def test_promotion_erasure_and_drift_events_fill_operations(tmp_path):
    paths = DataPaths.from_env(tmp_path / "data")
    version, first, second = _two_adapters_promoted_and_erased(paths, tmp_path)
    dossier = build_dossier(paths, second)
    _no_silence(dossier)
    assert dossier["needs_retraining"]
    assert dossier["banners"][0]["level"] == "critical"
    assert dossier["banners"][0]["text"].startswith("NEEDS RETRAINING: erasure request req-1")
    md = render_markdown(dossier)
    assert md.index("NEEDS RETRAINING") < md.index("## 1. Identity")  # prominently at the top
    ops = _rows(dossier, "operations")
    assert ops["current stage(s)"]["value"] == "production"
    assert ops["needs retraining"]["value"].startswith("YES")
    assert ops["drift policy"]["value"].startswith("6" * 12)  # the policy the recorded evaluation ran under
    history = _table(dossier, "operations", "Stage history")["rows"]
    assert [(r[2], r[4], r[5], r[6], r[7]) for r in history] == [("promotion", SCRIPT, "bob", "yes", "FAILED")]
    assert f"replacing {first[:12]}" in history[0][3]
    erasure = _table(dossier, "operations", "Erasures")["rows"]
    assert erasure[0][2:5] == ["req-1", "2", "tickets.jsonl"] and erasure[0][-1] == "9" * 12
    drift = _table(dossier, "operations", "Drift evaluations")["rows"]
    assert drift[0][2:] == ["signal", version[:12], "8" * 12, "240", "classifier, descriptors", "7" * 16, "6" * 12]
    # the previous adapter is the one it replaced in production, compared on the same eval set
    evaluation = _rows(dossier, "evaluation")
    assert evaluation["previous adapter"]["value"] == first
    assert "held stage 'production'" in evaluation["chosen because"]["value"]
    assert evaluation["same held-out set"]["value"] == "yes: same eval set"
    assert _table(dossier, "evaluation", "Comparison with the previous adapter")["rows"] == [
        ["format compliance", "75.0%", "75.0%", "+0.0 pp"]]

    # HTML and Markdown escape what people typed into the ledger
    html = render_html(dossier)
    assert "<script" not in html and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "<script" not in md and "&lt;script>" in md
    assert html.index("NEEDS RETRAINING") < html.index("1. Identity")
    assert "class='banner critical'" in html and "@media print" in html and "<link" not in html

    # the replaced adapter: trained on the same (affected) dataset version, so it needs retraining too even
    # though this event names only the newer adapter; no stage now; its history names its replacement
    older = build_dossier(paths, first)
    assert older["needs_retraining"]
    assert _rows(older, "operations")["current stage(s)"]["value"] == "none: the adapter holds no stage"
    assert len(_table(older, "operations", "Stage history")["rows"]) == 2
    assert _rows(older, "operations")["needs retraining"]["value"].startswith("YES")
    assert "previous adapter" not in _rows(older, "evaluation")  # nothing earlier on its lineage

    # a rollback gives production back to the first adapter
    with connect(paths.registry) as con:
        append_event(con, "rollback", first, {"stage": "production", "adapter_id": first,
                                              "rolled_back_adapter_id": second, "reason": "drift", "user": "dan"})
    assert _rows(build_dossier(paths, first), "operations")["current stage(s)"]["value"] == "production"
    assert _rows(build_dossier(paths, second), "operations")["current stage(s)"]["value"] == \
        "none: the adapter holds no stage"


def _rich_dataset(paths: DataPaths, tmp_path: Path) -> str:
    """A version with a scrub policy, gate results and quarantined records at two stages."""
    validated = tmp_path / "validated.parquet"
    n = len(write_validated(validated))
    quarantine = tmp_path / "quarantine.parquet"
    rows = [{"record_id": "q1", "stage": "ingest", "reason": "invalid_json", "detail": "line 9", "source_file":
             "tickets.jsonl", "source_sha256": "ab" * 32, "source_line": 9, "source_format": "jsonl",
             "messages_json": None},
            {"record_id": "q2", "stage": "validate", "reason": "duplicate_exact", "detail": "of r1", "source_file":
             "tickets.jsonl", "source_sha256": "ab" * 32, "source_line": 10, "source_format": "jsonl",
             "messages_json": None}]
    pq.write_table(pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA), quarantine)
    policy = {"policy_hash": "p" * 64, "source": "config/scrub_policy.yaml", "entities": ["EMAIL_ADDRESS", "PERSON"],
              "score_threshold": 0.5, "entity_thresholds": {}, "operators": {"default": {"type": "placeholder",
                                                                                          "params": {}}},
              "recognizers": [{"name": "EmailRecognizer", "entities": ["EMAIL_ADDRESS"]},
                              {"name": "FilteredSpacyRecognizer", "entities": ["PERSON"]}],
              "recognizers_file": None, "recognizers_file_sha256": None, "pseudonym_key_env": None,
              "residual_check": {"entities": ["EMAIL_ADDRESS"], "threshold": 0.5},
              "versions": {"presidio_analyzer": "2.2.366"}, "logic_version": "2"}
    checks = [{"name": "no_residual_pii", "passed": True, "blocking": True, "observed": 0, "threshold": 0,
               "description": "second scan", "severity": "ERROR",
               "details": {"findings_by_type": {}, "records_with_findings": 0}},
              {"name": "minimum_examples", "passed": True, "blocking": True, "observed": 8, "threshold": 10,
               "description": "accepted examples", "severity": "WARN", "details": {}}]
    request = PublishRequest(
        validated_path=validated, quarantine_paths=[quarantine],
        file_reports=[{"path": "tickets.jsonl", "sha256": "ab" * 32, "format": "jsonl", "mapping": None,
                       "inputs": n + 2, "blank_lines": 1}],
        scrub_policy=policy, scrub_policy_hash="p" * 64, scrub_entity_counts={"EMAIL_ADDRESS": 5, "PERSON": 7},
        checks=checks, settings={"near_duplicate_threshold": 0.85, "eval_fraction": 0.5}, eval_fraction=0.5,
        code_version="test")
    return publish_dataset(paths, request).version_id


def test_recorded_data_and_deidentification_items_are_shown(tmp_path):
    paths = DataPaths.from_env(tmp_path / "data")
    version = _rich_dataset(paths, tmp_path)
    adapter_id = publish_test_adapter(paths, tmp_path, version)
    dossier = build_dossier(paths, adapter_id)
    _no_silence(dossier)
    flow = {r[0]: r[1:] for r in _table(dossier, "data", "Record counts")["rows"]}
    assert flow["input records"] == ["-", "10"]
    assert flow["quarantined at ingest"] == ["1", "9"] and flow["quarantined at scrub"] == ["0", "9"]
    assert flow["quarantined at validate"] == ["1", "8"] and flow["accepted"] == ["-", "8"]
    assert flow["accounting: in = accepted + quarantined"] == ["-", "balanced"]
    assert int(flow["train split"][1]) + int(flow["eval split"][1]) == 8
    data = _rows(dossier, "data")
    assert data["de-duplication: exact duplicates removed"]["value"] == "1"
    assert data["de-duplication: near duplicates removed"]["value"] == "0"
    assert data["de-duplication: near-duplicate threshold"]["value"] == "0.85"
    pii = _table(dossier, "deidentification", "PII findings by type")["rows"]
    assert pii == [["EMAIL_ADDRESS", "5", "0"], ["PERSON", "7", "not re-scanned"]]
    deid = _rows(dossier, "deidentification")
    assert deid["residual-PII check: verdict"]["value"].startswith("PASS: 0 finding(s)")
    assert deid["residual counts for PERSON"]["gap"].startswith("not measured")
    assert deid["recognizers file"]["value"] == "none (built-in recognizers only)"
    gates = {r[1]: r for r in _table(dossier, "gates", "Gate results")["rows"]}
    assert gates["minimum_examples"][3:] == ["10", "8", "PASS (warning)", "blocking"]
    assert gates["no_residual_pii"][5] == "PASS"
    # no raw content: the quarantine detail and the message text never appear
    md = render_markdown(dossier)
    assert "line 9" not in md and "question 0" not in md and "answer 0" not in md


def test_tampering_is_in_the_dossier_and_dossier_files_do_not_break_verify(published):
    paths, _, adapter_id, _ = published
    dossier = build_dossier(paths, adapter_id)
    written = write_dossier(dossier, paths.adapters / adapter_id / "audit")
    assert sorted(p.name for p in written.values()) == ["dossier.html", "dossier.md"]
    assert verify_all(paths)["ok"]  # a sub-folder of the adapter: outside the hashed top-level files
    (paths.adapters / adapter_id / "adapter_model.safetensors").write_bytes(b"swapped")
    tampered = build_dossier(paths, adapter_id)
    assert not tampered["integrity_ok"]
    assert tampered["banners"][0]["text"].startswith("INTEGRITY CHECK FAILED: 1 problem(s)")
    problems = _table(tampered, "integrity", "Problems found by verify")["rows"]
    assert "adapter_model.safetensors changed" in problems[0][0]


def test_unknown_adapter_is_an_error(published, tmp_path, registry_backend):
    with pytest.raises(DossierError, match="0 adapters match 'ffff'"):
        build_dossier(published[0], "ffff")
    if registry_backend:  # PostgreSQL: the registry is the server's, whatever the data directory
        return
    with pytest.raises(DossierError, match="no registry"):
        build_dossier(DataPaths.from_env(tmp_path / "empty"), "latest")


def test_cli(published, tmp_path, monkeypatch, capsys, registry_backend):
    paths, _, adapter_id, _ = published
    monkeypatch.setenv("FINE_TUNE_DATA_DIR", str(paths.root))
    assert cli.main(["dossier", "latest"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"# Audit dossier: adapter {adapter_id[:12]}") and "## 9. Integrity" in out
    target = tmp_path / "out" / "dossier.html"
    assert cli.main(["dossier", adapter_id[:10], "--format", "html", "--output", str(target)]) == 0
    assert capsys.readouterr().out.strip() == str(target)
    assert target.read_text().startswith("<!DOCTYPE html>")
    assert cli.main(["dossier", "nope"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: 0 adapters match 'nope'") and "Traceback" not in captured.err
    if registry_backend is None:  # a data directory without a registry file
        monkeypatch.setenv("FINE_TUNE_DATA_DIR", str(tmp_path / "nothing"))
        assert cli.main(["dossier", "latest"]) == 2
        assert capsys.readouterr().err.startswith("error: no registry")


def test_model_dossier_asset_writes_files_and_metadata(published):
    from fine_tune_assets.defs.audit.model_dossier import model_dossier
    from fine_tune_assets.defs.resources import PipelineResource

    paths, version, adapter_id, _ = published
    resources = {"pipeline": PipelineResource(data_dir=str(paths.root))}
    result = dg.materialize([model_dossier], resources=resources,
                            run_config={"ops": {"model_dossier": {"config": {"adapter_id": adapter_id[:12]}}}})
    metadata = result.asset_materializations_for_node("model_dossier")[0].metadata
    folder = paths.adapters / adapter_id / "audit"
    assert metadata["adapter_id"].value == adapter_id and metadata["dataset_version"].value == version
    assert metadata["dossier"].value == str(folder / "dossier.html")
    assert (folder / "dossier.md").read_text() == metadata["summary"].value
    assert metadata["integrity_ok"].value is True and metadata["needs_retraining"].value is False
    assert metadata["ledger_head"].value.startswith("seq 3 ")
    observations = result.get_asset_observation_events()
    assert observations and observations[0].asset_observation_data.asset_observation.asset_key == \
        dg.AssetKey("lora_adapter")
    assert verify_all(paths)["ok"]
    # without a config and with no eval_report / lora_adapter materialization: a clear failure
    failed = dg.materialize([model_dossier], resources=resources, raise_on_error=False)
    assert not failed.success
