"""erasure_retrain: an erasure that touches the adapter in production asks for one retraining run on
the version without the erased records; the run's tags become the new adapter's recorded trigger."""

import dagster as dg

from fine_tune_assets.defs.monitoring.sensors import erasure_retrain
from fine_tune_assets.defs.resources import PipelineResource
from fine_tune_assets.defs.training.lora_adapter import run_trigger
from fine_tune_assets.lib.audit.dossier.sections.identity import trigger_text
from fine_tune_assets.lib.audit.erasure import erase
from fine_tune_assets.lib.audit.promotion import promote
from fine_tune_assets.lib.common.paths import DataPaths
from fine_tune_assets.lib.registry.connection import connect
from fine_tune_assets_tests.factories import publish_test_adapter, publish_test_dataset, sample_conversations


def _tick(root):
    context = dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(),
                                      resources={"pipeline": PipelineResource(data_dir=str(root))})
    data = erasure_retrain.evaluate_tick(context)
    return data.run_requests or [], data.skip_message


def test_an_erasure_of_the_production_adapters_data_requests_one_retraining(tmp_path):
    paths = DataPaths(tmp_path)
    assert _tick(tmp_path) == ([], "no registry yet")
    version = publish_test_dataset(paths, tmp_path, sample_conversations()[:40])
    production = publish_test_adapter(paths, tmp_path, version)
    other = publish_test_adapter(paths, tmp_path, version, weights=b"weights-2")
    promote(paths.registry, production, "production", "first", user="alice", allow_failed_gate=True)
    requests, skip = _tick(tmp_path)
    assert requests == [] and "no adapter in production or staging is flagged" in skip

    with connect(paths.registry, read_only=True) as con:
        record = con.execute("SELECT record_id FROM dataset_records WHERE version_id = ? LIMIT 1",
                             [version]).fetchone()[0]
    result = erase(paths, "ticket DSR-7", record_refs=[record], user="dpo")
    assert result.new_version and set(result.affected_adapters) == {production, other}

    requests, _ = _tick(tmp_path)
    assert len(requests) == 1  # the unstaged adapter is flagged too, but nothing serves it
    request = requests[0]
    assert request.run_key == _tick(tmp_path)[0][0].run_key  # stable: the daemon runs it once
    assert request.run_key.startswith(f"erasure-{result.request_id[:16]}-")
    assert request.run_config["ops"]["lora_adapter"]["config"] == {"dataset_version": result.new_version}
    assert request.tags["fine_tune_assets/trigger"] == "erasure"
    assert request.tags["fine_tune_assets/erasure_request"] == result.request_id
    assert request.tags["fine_tune_assets/erasure_replaces"] == production

    # what lora_adapter records from those tags, and how the dossier says it
    trigger = run_trigger(request.tags)
    assert trigger["erasure_version"] == result.new_version
    text = trigger_text(trigger)
    assert result.request_id in text and result.new_version[:12] in text and production[:12] in text


def test_the_drift_trigger_is_recorded_with_its_scores():
    tags = {"fine_tune_assets/trigger": "drift", "fine_tune_assets/drift_evaluation": "ev1",
            "fine_tune_assets/drift_ledger_seq": "7", "fine_tune_assets/drift_reference": "a" * 64,
            "fine_tune_assets/drift_candidate": "b" * 64, "fine_tune_assets/drift_scores": '{"classifier": 0.8}',
            "dagster/sensor_name": "drift_on_new_data"}
    trigger = run_trigger(tags)
    assert trigger["drift_scores"] == {"classifier": 0.8} and "sensor_name" not in str(trigger)
    assert "drift evaluation ev1 (ledger seq 7)" in trigger_text(trigger)
    assert run_trigger({"dagster/run_key": "x"}) is None
    assert trigger_text(None).startswith("started by hand")
