"""drift_report materialized for real: the registry row and its ledger event in one transaction, the
report files without record text, the two checks, and a graceful answer before any adapter exists."""

import json

import dagster as dg
import pytest

from fine_tune_assets.defs.monitoring.drift_report import drift_report
from fine_tune_assets.defs.monitoring.sensors import drift_on_new_data
from fine_tune_assets.defs.resources import PipelineResource
from fine_tune_assets.lib.common.paths import DataPaths
from fine_tune_assets.lib.registry.connection import connect, rows_as_dicts
from fine_tune_assets.lib.registry.ledger import read_events, verify_chain
from fine_tune_assets_tests.factories import (
    REPO,
    new_product_line,
    publish_test_adapter,
    publish_test_dataset,
    sample_conversations,
)


def _materialize(root, instance=None) -> dg.ExecuteInProcessResult:
    return dg.materialize([drift_report], instance=instance or dg.DagsterInstance.ephemeral(),
                          resources={"pipeline": PipelineResource(data_dir=str(root))})


def _tick(instance, root, cursor=None):
    """(run requests, skip message, cursor) of one sensor tick, as the daemon would see it."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                      resources={"pipeline": PipelineResource(data_dir=str(root))})
    data = drift_on_new_data.evaluate_tick(context)
    return data.run_requests or [], data.skip_message, data.cursor


@pytest.fixture
def data_dir(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "drift_policy.yaml").write_text(
        (REPO / "data" / "config" / "drift_policy.yaml").read_text())
    return tmp_path


def test_no_adapter_yet_is_not_an_error(data_dir):
    publish_test_dataset(DataPaths(data_dir), data_dir, sample_conversations()[:50])
    result = _materialize(data_dir)
    assert result.success
    meta = result.asset_materializations_for_node("drift_report")[0].metadata
    assert meta["decision"].value == "no_reference" and "0 adapters match" in meta["why"].value
    assert all(c.passed for c in result.get_asset_check_evaluations())


def test_confirmed_drift_is_recorded_reported_and_checked(data_dir):
    paths, chats = DataPaths(data_dir), sample_conversations()
    reference = publish_test_dataset(paths, data_dir, chats[:300], eval_fraction=0.1)
    adapter = publish_test_adapter(paths, data_dir, reference)
    candidate = publish_test_dataset(paths, data_dir, chats[:480] + [new_product_line(i) for i in range(60)],
                                     eval_fraction=0.1)
    instance = dg.DagsterInstance.ephemeral()
    result = _materialize(data_dir, instance)
    assert result.success  # checks are not blocking: the run succeeds, the checks say what happened
    meta = result.asset_materializations_for_node("drift_report")[0].metadata
    assert meta["decision"].value == "confirmed" and meta["candidate_version"].value == candidate
    assert meta["reference_adapter"].value == adapter and meta["classifier_statistic"].value > 0.6
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not checks["drift_within_policy"].passed
    assert checks["drift_within_policy"].severity == dg.AssetCheckSeverity.ERROR
    assert checks["drift_negative_control"].passed

    with connect(paths.registry, read_only=True) as con:
        rows = rows_as_dicts(con.execute("SELECT * FROM drift_evaluations"))
        events = [e for e in read_events(con) if e["kind"] == "drift_evaluation"]
        assert verify_chain(con) == []
    assert len(rows) == 1 and len(events) == 1
    row, event = rows[0], events[0]
    assert row["event_seq"] == event["seq"] == meta["ledger_event"].value
    payload = event["payload"] if isinstance(event["payload"], dict) else json.loads(event["payload"])
    assert payload["reference_adapter"] == adapter and payload["candidate"] == candidate
    assert payload["window_ids_sha256"] == row["window_ids_sha256"] and payload["decision"] == "confirmed"
    assert set(payload["detectors"]) == {"descriptors", "novelty", "terms", "classifier"}

    folder = data_dir / "monitoring" / "drift" / row["evaluation_id"]
    assert {p.name for p in folder.iterdir()} == {"report.json", "report.md", "descriptors.png"}
    text = (folder / "report.md").read_text() + (folder / "report.json").read_text()
    assert "Drift report: **confirmed**" in text
    for messages in chats[300:480]:
        for m in messages:
            if m["role"] == "user" and len(m["content"]) > 25:
                assert m["content"] not in text

    # the sensor reads the decision: one run, pinned to the candidate, keyed by what was compared
    requests, _, cursor = _tick(instance, data_dir)
    assert len(requests) == 1
    request = requests[0]
    assert request.run_key.startswith(f"drift-{reference[:16]}-{candidate[:16]}-drift-")
    assert request.run_config["ops"]["lora_adapter"]["config"] == {"dataset_version": candidate}
    assert request.tags["fine_tune_assets/trigger"] == "drift"
    assert request.tags["fine_tune_assets/drift_ledger_seq"] == str(event["seq"])
    assert json.loads(request.tags["fine_tune_assets/drift_scores"])["classifier"] > 0.6
    again, _, _ = _tick(instance, data_dir, cursor)  # the same report again: nothing
    assert again == []
    with connect(paths.registry, read_only=True) as con:
        assert con.execute("SELECT retrain_requested_at FROM drift_evaluations").fetchone()[0] is not None

    # a second run of the asset on the same data: every new record was judged by the first window
    # (tumbling windows), so nothing is decided and nothing recorded
    second = _materialize(data_dir, instance).asset_materializations_for_node("drift_report")[0].metadata
    assert second["decision"].value == "insufficient_data" and second["evaluation_id"].value == "-"
    with connect(paths.registry, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM drift_evaluations").fetchone()[0] == 1

    # new records in a later version: a disjoint window, a hard signal again, but the retraining just
    # requested puts it in cooldown, and the sensor skips it, naming the decision
    later = publish_test_dataset(paths, data_dir, chats[:480] + [new_product_line(i) for i in range(300)],
                                 eval_fraction=0.1)
    third = _materialize(data_dir, instance).asset_materializations_for_node("drift_report")[0].metadata
    assert third["decision"].value == "cooldown" and third["candidate_version"].value == later
    assert third["n_window"].value == 240  # the 60 judged before are left out
    requests, skip, _ = _tick(instance, data_dir, cursor)
    assert requests == [] and "cooldown" in skip
