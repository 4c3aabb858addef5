"""The data half of the asset graph, materialized in process on the sample data, for real."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest

from fine_tune_assets.defs.resources import PipelineResource
from fine_tune_assets_tests.factories import DATA_ASSETS, DATA_CHECKS, REPO, make_data_dir
from fine_tune_assets_tests.pii_patterns import structured_pii

pytestmark = pytest.mark.slow  # every test reads the data graph materialized on the sample data


def materialize(data_dir: Path, instance: dg.DagsterInstance, **settings) -> dg.ExecuteInProcessResult:
    return dg.materialize([*DATA_ASSETS, *DATA_CHECKS], instance=instance,
                          resources={"pipeline": PipelineResource(data_dir=str(data_dir), **settings)},
                          raise_on_error=False)


@pytest.fixture(scope="module")
def sample(tmp_path_factory, models_dir):
    data_dir = make_data_dir(tmp_path_factory.mktemp("sample") / "data", models_dir)
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(data_dir, instance)
    return data_dir, instance, result


def registry(data_dir: Path):
    return duckdb.connect(str(data_dir / "registry.duckdb"), read_only=True)


def latest_version(data_dir: Path) -> dict:
    with registry(data_dir) as con:
        cursor = con.execute("SELECT * FROM dataset_versions ORDER BY created_at DESC LIMIT 1")
        return dict(zip([d[0] for d in cursor.description], cursor.fetchone()))


def physical_inputs(path: Path) -> int:
    """Records in a raw file counted independently of the pipeline: non-blank lines or data rows."""
    if path.suffix == ".jsonl":
        return sum(1 for line in path.read_bytes().splitlines() if line.strip())
    if path.suffix == ".csv":
        with open(path, encoding="utf-8", errors="replace", newline="") as handle:
            return sum(1 for row in list(csv.reader(handle))[1:] if any(f.strip() for f in row))
    return pq.ParquetFile(path).metadata.num_rows


def test_sample_publishes_a_version_with_all_gates_passing(sample):
    data_dir, _, result = sample
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert set(checks) == {"expectation_suite", "no_residual_pii", "quarantine_rate", "minimum_examples"}
    assert all(checks.values()), checks
    version = latest_version(data_dir)
    folder = Path(version["path"])
    assert folder.name == version["version_id"]
    assert {p.name for p in folder.iterdir()} >= {"train.jsonl", "eval.jsonl", "train.parquet", "eval.parquet",
                                                   "quarantine.parquet", "manifest.json"}
    assert version["n_train"] >= 500 and version["n_eval"] >= 40


def test_accounting_adds_up_per_file_and_in_total(sample):
    data_dir, _, _ = sample
    version = latest_version(data_dir)
    assert version["input_records"] == version["accepted"] + version["quarantined"]
    with registry(data_dir) as con:
        sources = con.execute("SELECT source_file, inputs, accepted, quarantined FROM dataset_sources "
                              "WHERE version_id = ?", [version["version_id"]]).fetchall()
        quarantined_by_file = dict(con.execute(
            "SELECT source_file, count(*) FROM quarantine WHERE version_id = ? GROUP BY 1",
            [version["version_id"]]).fetchall())
    raw_files = sorted(p for p in (data_dir / "raw").iterdir() if p.is_file())
    assert sorted(s[0] for s in sources) == [p.name for p in raw_files]
    for name, inputs, accepted, quarantined in sources:
        assert inputs == physical_inputs(data_dir / "raw" / name), name
        assert inputs == accepted + quarantined, name
        assert quarantined == quarantined_by_file.get(name, 0), name
    assert sum(s[1] for s in sources) == version["input_records"]


def test_dataset_files_are_canonical_and_pii_free(sample):
    data_dir, _, _ = sample
    folder = Path(latest_version(data_dir)["path"])
    seen = set()
    for split in ("train", "eval"):
        lines = (folder / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(lines) == pq.ParquetFile(folder / f"{split}.parquet").metadata.num_rows
        for line in lines:
            example = json.loads(line)
            assert list(example) == ["messages"]
            assert example["messages"][-1]["role"] == "assistant"
            assert structured_pii(line) == [], f"{split}.jsonl: {structured_pii(line)}"
            assert line not in seen
            seen.add(line)
    quarantine = pq.read_table(folder / "quarantine.parquet").to_pylist()
    for row in quarantine:
        assert row["reason"] and row["source_file"] and row["source_line"] is not None
        assert structured_pii(row["detail"] or "") == []
        assert structured_pii(row["messages_json"] or "") == []


def test_no_planted_pii_value_reaches_the_dataset(sample):
    """Ground truth: the generator's manifest lists every PII value it planted in message content."""
    data_dir, _, _ = sample
    manifest = json.loads((REPO / "data" / "sample_manifest.json").read_text())
    planted = [p for p in manifest["pii"] if p.get("in_mapped_content", True)]
    assert len(planted) > 700
    folder = Path(latest_version(data_dir)["path"])
    contents = "\n".join(m["content"] for split in ("train", "eval")
                         for line in (folder / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
                         for m in json.loads(line)["messages"])
    leaked = sorted({(p["kind"], p["file"], p["line"]) for p in planted if p["value"] in contents})
    assert leaked == [], f"planted PII found in the dataset (kind, file, line): {leaked[:20]}"


def test_planted_defects_are_quarantined_with_their_reasons(sample):
    data_dir, _, _ = sample
    with registry(data_dir) as con:
        reasons = {r for (r,) in con.execute("SELECT DISTINCT reason FROM quarantine").fetchall()}
    expected = {"invalid_json", "invalid_utf8", "data_type", "missing_messages_list", "message_missing_key",
                "message_unrecognized_key", "unrecognized_role", "missing_content",
                "example_missing_assistant_message", "role_order", "whitespace_only_content",
                "duplicate_exact", "duplicate_near", "malformed_row"}
    assert expected <= reasons, expected - reasons
    assert reasons & {"over_token_limit", "over_size_limit"}


def test_no_raw_pii_in_dagster_event_log(sample):
    _, instance, result = sample
    for record in instance.all_logs(result.run_id):
        text = json.dumps(dg.serialize_value(record)) if hasattr(dg, "serialize_value") else str(record)
        assert structured_pii(text) == [], record.dagster_event_type


def test_rematerializing_unchanged_input_publishes_no_new_version(sample):
    data_dir, instance, _ = sample
    before = latest_version(data_dir)["version_id"]
    again = materialize(data_dir, instance)
    assert again.success
    materialization = again.asset_materializations_for_node("dataset_version")[0]
    assert materialization.metadata["dataset_version"].value == before
    assert materialization.metadata["new_version"].value is False
    with registry(data_dir) as con:
        assert con.execute("SELECT count(*) FROM dataset_versions").fetchone()[0] == 1


def test_added_data_makes_a_child_version_and_splits_are_stable(sample, tmp_path):
    data_dir, instance, _ = sample
    grown = tmp_path / "grown"
    shutil.copytree(data_dir, grown, symlinks=True)
    (grown / "registry.duckdb").unlink()
    shutil.copy(data_dir / "registry.duckdb", grown / "registry.duckdb")
    extra = [{"messages": [{"role": "user", "content": f"Question {i}: my FiberMax {i * 7} plan renewal date "
                                                        f"differs by {i} days from the invoice. Why?"},
                           {"role": "assistant", "content": f"Renewal dates shift after plan change number {i}."}]}
             for i in range(40)]
    (grown / "raw" / "chat_export_2026-12.jsonl").write_text("".join(json.dumps(e) + "\n" for e in extra))
    result = materialize(grown, instance)
    assert result.success
    scrubbed = result.asset_materializations_for_node("scrubbed_conversations")[0].metadata
    assert scrubbed["scrubbed_in_this_run"].value == 40  # the others came from the scrub cache the copy holds
    assert scrubbed["reused_from_scrub_cache"].value == scrubbed["records"].value - 40
    assert "records_per_second" not in scrubbed and scrubbed["scrub_seconds"].value > 0  # 40 records: no rate
    validated = result.asset_materializations_for_node("validated_conversations")[0].metadata
    assert validated["tokenized_in_this_run"].value == 40
    old, new = latest_version(data_dir), latest_version(grown)
    assert new["version_id"] != old["version_id"] and new["parent_version"] == old["version_id"]
    with registry(grown) as con:
        old_splits = dict(con.execute("SELECT record_id, split FROM dataset_records WHERE version_id = ?",
                                      [old["version_id"]]).fetchall())
        new_splits = dict(con.execute("SELECT record_id, split FROM dataset_records WHERE version_id = ?",
                                      [new["version_id"]]).fetchall())
    assert len(new_splits) >= len(old_splits) + 35
    assert all(new_splits[r] == s for r, s in old_splits.items() if r in new_splits)
    assert sum(r in new_splits for r in old_splits) == len(old_splits)


def test_blocking_gate_stops_publication(sample, tmp_path):
    data_dir, _, _ = sample
    copy = tmp_path / "data"
    shutil.copytree(data_dir, copy, symlinks=True)  # staged outputs are reused: same data versions
    result = materialize(copy, dg.DagsterInstance.ephemeral(), min_examples=100_000)
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["minimum_examples"] is False
    assert not result.asset_materializations_for_node("dataset_version")
    with registry(copy) as con:
        assert con.execute("SELECT count(*) FROM dataset_versions").fetchone()[0] == 1


def test_cli_datasets_list_and_show(sample):
    data_dir, _, _ = sample
    env = {**os.environ, "FINE_TUNE_DATA_DIR": str(data_dir)}

    def cli(*args):
        done = subprocess.run([sys.executable, "-m", "fine_tune_assets.cli", *args], capture_output=True,
                              text=True, env=env, cwd=REPO, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    listed = json.loads(cli("datasets", "list", "--json"))
    shown = json.loads(cli("datasets", "show", "latest", "--json"))
    assert shown["version_id"] == listed[0]["version_id"]
    counts = shown["counts"]
    assert counts["input_records"] == counts["accepted"] + counts["quarantined"]
    assert sum(counts["quarantined_by_reason"].values()) == counts["quarantined"]
    assert "quality gates" in cli("datasets", "show", shown["version_id"][:10])
