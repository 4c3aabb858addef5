"""The audit ledger: hash-chained events written with the registry rows, and `fine-tune-assets verify`."""

import json
import os
import subprocess
import sys

import duckdb
import pytest

from fine_tune_assets.lib.audit.verify import verify_all
from fine_tune_assets.lib.common.hashing import sha256_file, sha256_json
from fine_tune_assets.lib.common.paths import DataPaths
from fine_tune_assets.lib.registry.connection import connect
from fine_tune_assets.lib.registry.ledger import GENESIS_HASH, append_event, event_hash, read_events, verify_chain
from fine_tune_assets.lib.registry.schema import create_tables
from fine_tune_assets.lib.training import publish as adapters_lib
from fine_tune_assets_tests.factories import publish_test_adapter, publish_test_dataset, record_test_evaluation


def verify_cli(paths: DataPaths, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "FINE_TUNE_DATA_DIR": str(paths.root)}
    return subprocess.run([sys.executable, "-m", "fine_tune_assets.cli", "verify", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False)


def test_chain_links_after_three_appends():
    with duckdb.connect() as con:
        create_tables(con)
        rows = [append_event(con, "dataset_published", f"v{i}", {"i": i}) for i in range(3)]
        assert [r["seq"] for r in rows] == [1, 2, 3]
        assert rows[0]["prev_hash"] == GENESIS_HASH
        assert rows[1]["prev_hash"] == rows[0]["event_hash"]
        assert rows[2]["prev_hash"] == rows[1]["event_hash"]
        stored = read_events(con)
        for row, back in zip(rows, stored):
            assert back["event_hash"] == row["event_hash"]
            assert back["event_hash"] == event_hash(back["seq"], back["kind"], back["created_at"], back["subject"],
                                                    back["payload_sha256"], back["prev_hash"])
        assert verify_chain(con) == []
        with pytest.raises(ValueError, match="unknown ledger event kind"):
            append_event(con, "something_else", "x", {})


def test_hooks_write_one_event_each_with_the_lineage_payloads(published):
    paths, version, adapter_id, eval_id = published
    with connect(paths.registry, read_only=True) as con:
        events = read_events(con)
    assert [(e["seq"], e["kind"], e["subject"]) for e in events] == [
        (1, "dataset_published", version), (2, "adapter_trained", adapter_id), (3, "evaluation_completed", eval_id)]
    dataset, adapter, evaluation = (e["payload"] for e in events)
    folder = paths.datasets / version
    assert dataset["files"] == json.loads((folder / "manifest.json").read_text())["files"]
    assert dataset["manifest_sha256"] == sha256_file(folder / "manifest.json")
    assert dataset["counts"]["accepted"] == 8
    assert adapter["base_model_identity_hash"] == "c" * 64 and adapter["training_config_hash"] == "d" * 64
    assert set(adapter["files"]) == {"adapter_model.safetensors", "adapter_config.json", "training_metrics.json",
                                     "lineage.json", "README.md"}
    assert evaluation == {"eval_id": eval_id, "adapter_id": adapter_id, "eval_set_sha256": "e" * 64,
                          "spec_hash": "f" * 64, "gate_passed": True,
                          "primary_metric": {"name": "format_compliance", "base": 0.25, "fine_tuned": 0.75}}


def test_intact_registry_verifies(published):
    paths = published[0]
    done = verify_cli(paths)
    assert done.returncode == 0, done.stdout + done.stderr
    first, head = done.stdout.strip().splitlines()
    assert first == "intact: 3 ledger events, 1 dataset versions, 1 adapters, 1 evaluations, 11 files re-hashed"
    as_json = json.loads(verify_cli(paths, "--json").stdout)
    assert as_json["ok"] is True and as_json["problems"] == [] and as_json["warnings"] == []
    assert head.startswith(f"ledger head: seq 3 {as_json['head']['event_hash']}")


def test_deleting_the_newest_events_is_caught_against_a_noted_head(published):
    paths = published[0]
    noted = verify_all(paths)["head"]["event_hash"]
    assert verify_cli(paths, "--expect-head", noted[:16]).returncode == 0
    with connect(paths.registry) as con:  # the newest event and its registry row, consistently
        con.execute("DELETE FROM ledger WHERE seq = 3")
        con.execute("DELETE FROM evaluations")
    assert verify_cli(paths).returncode == 0  # the chain alone cannot see it ...
    done = verify_cli(paths, "--expect-head", noted[:16])
    assert done.returncode == 1  # ... the noted head can
    assert f"expected ledger event {noted[:12]}... is not in the chain" in done.stdout


def test_registry_row_without_event_is_named(published):
    paths, _version, adapter_id, _ = published
    with connect(paths.registry) as con:
        con.execute("INSERT INTO adapters SELECT 'f' || substr(adapter_id, 2), created_at + INTERVAL '1 minute', path, "
                    "dataset_version, base_model, training_config, training_config_hash, metrics, lineage, run_id "
                    "FROM adapters")
    problems = verify_all(paths)["problems"]
    assert problems == [f"adapter f{adapter_id[1:12]} is in the registry with no adapter_trained ledger event "
                        "(inserted behind the ledger's back?)"]


def test_missing_or_empty_registry_has_nothing_to_verify(tmp_path):
    paths = DataPaths.from_env(tmp_path / "data")
    done = verify_cli(paths)
    assert (done.returncode, done.stdout.strip()) == (0, "nothing to verify: the registry has no ledger events yet")
    paths.root.mkdir()
    with connect(paths.registry):  # creates the (empty) tables
        pass
    assert verify_cli(paths).returncode == 0


def test_edited_dataset_file_is_named(published):
    paths, version = published[:2]
    train = paths.datasets / version / "train.jsonl"
    before = sha256_file(train)
    with open(train, "a") as handle:
        handle.write('{"messages": [{"role": "user", "content": "smuggled"}]}\n')
    done = verify_cli(paths)
    assert done.returncode == 1
    assert (f"dataset {version[:12]} file train.jsonl changed: sha256 recorded {before[:12]}..., "
            f"now {sha256_file(train)[:12]}...") in done.stdout
    assert done.stdout.startswith("1 problems")


def test_replaced_or_added_adapter_weight_is_named(published):
    paths, _, adapter_id = published[:3]
    weights = paths.adapters / adapter_id / "adapter_model.safetensors"
    before = sha256_file(weights)
    weights.write_bytes(b"other weights")
    (paths.adapters / adapter_id / "extra.safetensors").write_bytes(b"x")
    done = verify_cli(paths)
    assert done.returncode == 1
    assert (f"adapter {adapter_id[:12]} file adapter_model.safetensors changed: sha256 recorded {before[:12]}..., "
            f"now {sha256_file(weights)[:12]}...") in done.stdout
    assert f"adapter {adapter_id[:12]} file extra.safetensors added after publication" in done.stdout
    weights.unlink()
    assert f"adapter {adapter_id[:12]} file adapter_model.safetensors missing" in verify_cli(paths).stdout


def test_payload_altered_with_sql_update_is_detected(published):
    paths, version = published[:2]
    with connect(paths.registry) as con:
        recorded = con.execute("SELECT payload_sha256 FROM ledger WHERE seq = 1").fetchone()[0]
        new_payload = json.loads(con.execute("SELECT payload FROM ledger WHERE seq = 1").fetchone()[0])
        new_payload["counts"]["accepted"] = 9
        con.execute("UPDATE ledger SET payload = ? WHERE seq = 1", [json.dumps(new_payload)])
    done = verify_cli(paths)
    assert done.returncode == 1
    assert (f"ledger row seq 1 altered: dataset_published payload for {version[:12]} no longer matches its "
            f"payload_sha256 (recorded {recorded[:12]}..., now {sha256_json(new_payload)[:12]}...)") in done.stdout
    # covering the payload change by also rewriting payload_sha256 breaks the event hash instead
    with connect(paths.registry) as con:
        con.execute("UPDATE ledger SET payload_sha256 = ? WHERE seq = 1", [sha256_json(new_payload)])
    done = verify_cli(paths)
    assert done.returncode == 1
    assert "ledger row seq 1 altered: event_hash does not recompute" in done.stdout


def test_deleted_ledger_row_is_detected(published):
    paths = published[0]
    with connect(paths.registry) as con:
        con.execute("DELETE FROM ledger WHERE seq = 2")
    done = verify_cli(paths)
    assert done.returncode == 1
    assert "ledger row seq 2 missing (deleted)" in done.stdout
    assert verify_all(paths)["problems"] == [
        "ledger row seq 2 missing (deleted)",
        f"adapter {published[2][:12]} is in the registry with no adapter_trained ledger event (inserted behind "
        "the ledger's back?)"]


def test_republishing_appends_an_event_and_still_verifies(published, tmp_path):
    paths, version, adapter_id = published[:3]
    again = tmp_path / "again"
    again.mkdir()
    assert publish_test_dataset(paths, again) == version  # unchanged content: no new version, no new event
    assert publish_test_adapter(paths, again, version) == adapter_id  # same weights: same id, new lineage.json
    record_test_evaluation(paths, adapter_id, version)
    with connect(paths.registry, read_only=True) as con:
        kinds = [e["kind"] for e in read_events(con)]
        assert con.execute("SELECT count(*) FROM adapters").fetchone()[0] == 1
    assert kinds == ["dataset_published", "adapter_trained", "evaluation_completed", "adapter_trained",
                     "evaluation_completed"]
    result = verify_all(paths)
    assert result["ok"], result["problems"]
    assert (result["adapters"], result["evaluations"]) == (1, 2)


def test_a_failed_event_leaves_no_registry_row(published, tmp_path, monkeypatch):
    paths, version = published[:2]

    def boom(*args, **kwargs):
        raise RuntimeError("crash between row and event")

    monkeypatch.setattr(adapters_lib, "append_event", boom)
    with pytest.raises(RuntimeError, match="crash between"):
        publish_test_adapter(paths, tmp_path, version, weights=b"weights-2")
    with connect(paths.registry, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM adapters").fetchone()[0] == 1
        assert con.execute("SELECT count(*) FROM ledger").fetchone()[0] == 3


def test_edited_eval_report_is_named(published):
    paths, version, adapter_id, _ = published
    eval_dir = paths.adapters / adapter_id / "eval"
    eval_dir.mkdir()
    (eval_dir / "eval_report.json").write_text("{}")
    (eval_dir / "report.md").write_text("format compliance 40%\n")
    record_test_evaluation(paths, adapter_id, version)  # the newest evaluation now has its report files hashed
    assert verify_all(paths)["ok"]
    (eval_dir / "report.md").write_text("format compliance 99%\n")
    problems = verify_all(paths)["problems"]
    assert len(problems) == 1 and problems[0].startswith(
        f"eval report of adapter {adapter_id[:12]} file report.md changed: sha256 recorded")
