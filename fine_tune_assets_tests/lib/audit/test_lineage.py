"""Lineage both ways and erasure requests, on real registry rows (DuckDB, ledger) without training."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fine_tune_assets.lib.audit.erasure import ErasureError, erase
from fine_tune_assets.lib.audit.lineage import LineageError, adapter_lineage, record_lineage, source_lineage
from fine_tune_assets.lib.audit.verify import verify_all
from fine_tune_assets.lib.common.hashing import record_id_for
from fine_tune_assets.lib.common.paths import DataPaths
from fine_tune_assets.lib.data.publish import PublishRequest, publish_dataset
from fine_tune_assets.lib.data.records import RECORD_SCHEMA
from fine_tune_assets.lib.registry.connection import connect
from fine_tune_assets.lib.registry.erasures import denylist
from fine_tune_assets.lib.registry.ledger import read_events
from fine_tune_assets_tests.factories import publish_test_adapter, record_test_evaluation

SOURCES = {"tickets.jsonl": "ab" * 32, "chats.jsonl": "cd" * 32}


def _rows(n_per_source: int = 6) -> list[dict]:
    rows = []
    for source, digest in SOURCES.items():
        for i in range(n_per_source):
            messages = [{"role": "user", "content": f"{source} question {i}"},
                        {"role": "assistant", "content": f"answer {i}"}]
            rows.append({"record_id": record_id_for(messages), "messages_json": json.dumps(messages),
                         "source_file": source, "source_sha256": digest, "source_line": i + 1,
                         "source_format": "jsonl", "mapping": None, "n_tokens": 10 + i})
    return rows


def _publish(paths: DataPaths, tmp_path: Path, rows: list[dict]) -> str:
    validated = tmp_path / f"validated-{len(rows)}.parquet"
    schema = RECORD_SCHEMA.append(pa.field("n_tokens", pa.int64()))
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), validated)
    reports = [{"path": s, "sha256": d, "format": "jsonl", "mapping": None, "blank_lines": 0,
                "inputs": sum(r["source_file"] == s for r in rows)} for s, d in SOURCES.items()]
    request = PublishRequest(validated_path=validated, quarantine_paths=[], file_reports=reports,
                             scrub_policy={"recognizers": [{"name": "EmailRecognizer"}], "score_threshold": 0.5},
                             scrub_policy_hash="0" * 64, scrub_entity_counts={"EMAIL_ADDRESS": 3},
                             checks=[{"name": "minimum_examples", "passed": True, "observed": len(rows),
                                      "threshold": 1, "blocking": True}],
                             settings={}, eval_fraction=0.3, code_version="test")
    return publish_dataset(paths, request).version_id


@pytest.fixture
def world(tmp_path):
    paths = DataPaths.from_env(tmp_path / "data")
    rows = _rows()
    version = _publish(paths, tmp_path, rows)
    adapter_id = publish_test_adapter(paths, tmp_path, version)
    record_test_evaluation(paths, adapter_id, version)
    return paths, rows, version, adapter_id


def cli(paths: DataPaths, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "FINE_TUNE_DATA_DIR": str(paths.root), "FINE_TUNE_USER": "dpo-alice"}
    return subprocess.run([sys.executable, "-m", "fine_tune_assets.cli", *args], capture_output=True, text=True,
                          env=env, timeout=120, check=False)


def test_forward_lineage_reaches_sources_policy_checks_base_config_and_eval(world):
    paths, _rows, version, adapter_id = world
    with connect(paths.registry, read_only=True) as con:
        d = adapter_lineage(con, adapter_id[:10])
    assert d["adapter"]["adapter_id"] == adapter_id
    assert d["adapter"]["files"]["adapter_model.safetensors"]  # from the adapter_trained event
    ds = d["dataset_version"]
    assert ds["version_id"] == version
    assert {(s["source_file"], s["source_sha256"]) for s in ds["sources"]} == set(SOURCES.items())
    assert ds["scrub_policy"]["recognizers"] == ["EmailRecognizer"] and ds["scrub_policy"]["score_threshold"] == 0.5
    assert ds["quality_checks"][0]["name"] == "minimum_examples"
    assert d["base_model"]["identity_hash"] == "c" * 64
    assert d["training"]["config_hash"] == "d" * 64
    assert d["evaluation"]["gate"]["passed"] is True
    assert [e["kind"] for e in d["ledger_events"]] == ["dataset_published", "adapter_trained", "evaluation_completed"]
    shown = cli(paths, "lineage", "latest")
    assert shown.returncode == 0, shown.stderr
    assert "tickets.jsonl" in shown.stdout and "<- scrub policy" in shown.stdout and "gate PASSED" in shown.stdout
    as_json = json.loads(cli(paths, "lineage", adapter_id, "--json").stdout)
    assert as_json["dataset_version"]["version_id"] == version


def test_reverse_lineage_by_record_and_by_source(world, tmp_path):
    paths, rows, version, adapter_id = world
    record = rows[0]["record_id"]
    with connect(paths.registry, read_only=True) as con:
        d = record_lineage(con, [record[:10]])
        by_name = source_lineage(con, "tickets.jsonl")
        by_path = source_lineage(con, str(tmp_path / "raw" / "tickets.jsonl"))  # base name match
        by_hash = source_lineage(con, "cd" * 32)
        with pytest.raises(LineageError, match="in no dataset version"):
            source_lineage(con, "unknown.csv")
        with pytest.raises(LineageError, match="no dataset version and no quarantine"):
            record_lineage(con, ["f" * 64])
    (entry,) = d["records"]
    assert entry["record_id"] == record
    assert [(v["version_id"], v["source_file"], v["source_line"]) for v in entry["versions"]] == \
        [(version, "tickets.jsonl", 1)]
    assert [a["adapter_id"] for a in entry["adapters"]] == [adapter_id]
    assert by_name["versions"][0]["records"] == 6 and [a["adapter_id"] for a in by_name["adapters"]] == [adapter_id]
    assert by_path["matched"] == ["tickets.jsonl"]
    assert by_hash["matched_by"] == "sha256" and by_hash["matched"] == ["chats.jsonl"]
    out = cli(paths, "lineage", "--record", record[:12])
    assert out.returncode == 0 and adapter_id[:12] in out.stdout
    missing = cli(paths, "lineage", "--source", "nope.jsonl")
    assert missing.returncode == 2 and missing.stderr.startswith("error:") and "Traceback" not in missing.stderr


def test_erasure_publishes_a_version_without_the_records_and_flags_the_adapter(world, tmp_path):
    paths, rows, version, adapter_id = world
    erased = [rows[0]["record_id"], rows[7]["record_id"]]
    out = cli(paths, "erase", "--record", erased[0][:12], "--record", erased[1], "--reason", "DSR-1042", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["user"] == "dpo-alice" and result["record_ids"] == sorted(erased)
    assert result["affected_versions"] == [version] and result["affected_adapters"] == [adapter_id]
    new = result["new_version"]
    assert new and new != version and result["erased_from_new_version"] == 2

    folder = paths.datasets / new
    kept = [json.loads(line)["messages"] for split in ("train", "eval")
            for line in (folder / f"{split}.jsonl").read_text().splitlines()]
    assert len(kept) == len(rows) - 2
    assert all(record_id_for(m) not in erased for m in kept)
    quarantine = pq.read_table(folder / "quarantine.parquet").to_pylist()
    assert sorted(q["record_id"] for q in quarantine if q["reason"] == "erased") == sorted(erased)
    assert all(q["messages_json"] is None for q in quarantine)
    manifest = json.loads((folder / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["input_records"] == counts["accepted"] + counts["quarantined"] == len(rows)
    assert manifest["parent_version"] == version

    with connect(paths.registry, read_only=True) as con:
        events = read_events(con)
        d = record_lineage(con, [erased[0]])
    erasure = [e for e in events if e["kind"] == "erasure"]
    assert len(erasure) == 1 and erasure[0]["payload"]["new_version"] == new
    assert erasure[0]["payload"]["reason"] == "DSR-1042" and erasure[0]["payload"]["user"] == "dpo-alice"
    assert events[-2]["kind"] == "dataset_published" and events[-2]["subject"] == new  # same transaction
    (entry,) = d["records"]
    assert [q["reason"] for q in entry["quarantined_in"]] == ["erased"]
    assert entry["adapters"][0]["flags"][0]["flag"] == "needs_retraining"
    assert verify_all(paths)["ok"]

    listing = json.loads(cli(paths, "adapters", "list", "--json").stdout)
    assert listing[0]["needs_retraining"] is True
    assert "RETRAIN" in cli(paths, "adapters", "list").stdout

    # A later publish from raw data holding the same records still leaves them out (the deny-list).
    assert set(denylist(paths.registry)[0]) == set(erased)
    (tmp_path / "again").mkdir()
    assert _publish(paths, tmp_path / "again", rows) == new


def test_erasing_a_source_erases_all_its_records(world):
    paths, _rows, _version, _adapter_id = world
    result = erase(paths, "contract ended", sources=["chats.jsonl"], user="bob")
    assert result.source_files == [{"source_file": "chats.jsonl", "source_sha256": "cd" * 32}]
    assert len(result.record_ids) == 6
    kept = (paths.datasets / result.new_version / "train.jsonl").read_text() + \
        (paths.datasets / result.new_version / "eval.jsonl").read_text()
    assert "chats.jsonl question" not in kept and "tickets.jsonl question" in kept
    assert denylist(paths.registry)[1] == {"cd" * 32: result.request_id}


def test_erasure_refuses_what_it_cannot_apply(world):
    paths, rows, _version, _adapter_id = world
    with pytest.raises(ErasureError, match="reason"):
        erase(paths, " ", record_refs=[rows[0]["record_id"]])
    with pytest.raises(ErasureError, match="at least one"):
        erase(paths, "why")
    with pytest.raises(ErasureError, match="no dataset version and no quarantine"):
        erase(paths, "why", record_refs=["0" * 64])
    bad = cli(paths, "erase", "--record", "abc", "--reason", "x")
    assert bad.returncode == 2 and "too short" in bad.stderr and "Traceback" not in bad.stderr
    with connect(paths.registry, read_only=True) as con:
        assert not [e for e in read_events(con) if e["kind"] == "erasure"]


def test_erasure_is_reported_to_the_dagster_instance(world, tmp_path):
    import dagster as dg

    paths, rows, _version, adapter_id = world
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {**os.environ, "FINE_TUNE_DATA_DIR": str(paths.root), "DAGSTER_HOME": str(home)}
    done = subprocess.run([sys.executable, "-m", "fine_tune_assets.cli", "erase", "--record", rows[1]["record_id"],
                           "--reason", "DSR-9"], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0 and "reported 2 events" in done.stdout, done.stdout + done.stderr
    with dg.DagsterInstance.from_config(str(home)) as instance:
        published = instance.get_latest_materialization_event(dg.AssetKey("dataset_version"))
        observed = instance.fetch_observations(dg.AssetKey("lora_adapter"), limit=5).records
    assert published.asset_materialization.metadata["erased_records"].value == 1
    (observation,) = observed
    metadata = observation.asset_observation.metadata
    assert metadata["adapter_id"].value == adapter_id and metadata["needs_retraining"].value is True
    assert rows[1]["messages_json"] not in str(metadata)


def test_erasure_that_recreates_an_older_version_makes_it_latest_again(tmp_path):
    from fine_tune_assets.lib.registry.erasures import erased_records_in
    from fine_tune_assets.lib.registry.resolve import resolve_dataset_version

    paths = DataPaths.from_env(tmp_path / "data")
    rows = _rows()
    tickets = [r for r in rows if r["source_file"] == "tickets.jsonl"]
    first = tmp_path / "first"
    first.mkdir()
    v1 = _publish(paths, first, tickets)  # only tickets.jsonl (reports still name both files: 0 inputs from chats)
    v2 = _publish(paths, tmp_path, rows)  # both files
    result = erase(paths, "contract ended", sources=["chats.jsonl"], user="bob")
    assert not result.new_version_created and result.new_version == v1
    with connect(paths.registry, read_only=True) as con:
        assert erased_records_in(con, v2) == 6 and erased_records_in(con, v1) == 0
        assert resolve_dataset_version(con, "latest")["version_id"] == v1  # v2 is newer but holds erased records
        assert resolve_dataset_version(con, v2[:8])["version_id"] == v2  # still reachable by id, for audits


def test_source_erasure_matches_exact_names_or_content_only(world, tmp_path):
    paths, _rows, _version, _adapter_id = world
    with pytest.raises(ErasureError, match="in no dataset version"):
        erase(paths, "why", sources=["exports/tickets.jsonl"])  # same base name, not the recorded name
    local = tmp_path / "renamed.jsonl"
    local.write_text("not the recorded bytes\n")
    with pytest.raises(ErasureError, match="in no dataset version"):
        erase(paths, "why", sources=[str(local)])


@pytest.mark.parametrize("tamper, expected", [
    ("DELETE FROM erasures", "records are missing from the erasures table"),
    ("DELETE FROM adapter_flags", "needs_retraining flag of erasure request"),
    ("DELETE FROM ledger", "is in the registry with no dataset_published ledger event"),
])
def test_verify_catches_edits_to_erasures_and_flags(world, tamper, expected):
    from fine_tune_assets.lib.registry.connection import connect

    paths, rows, _version, _adapter_id = world
    erase(paths, "DSR-5", record_refs=[rows[2]["record_id"]], user="carol")
    assert verify_all(paths)["ok"]
    with connect(paths.registry) as con:
        con.execute(tamper)
    result = verify_all(paths)
    assert not result["ok"] and any(expected in p for p in result["problems"]), result["problems"]
