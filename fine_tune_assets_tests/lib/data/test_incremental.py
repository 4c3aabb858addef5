"""Incremental data runs: new raw records are scrubbed, tokenized and scanned; the others come from the caches.

Real Presidio, real tokenizer, real DuckDB joins over real cache parts. The warm run must write exactly
what a cold run over the same files writes (same bytes in the rows, same data versions), a policy or
pseudonym-key change must start cold, a killed run must keep the parts it finished, and an erasure
must take the record out of every cache.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest
import yaml

from fine_tune_assets.lib.common.parquet import iter_rows
from fine_tune_assets.lib.common.paths import DataPaths
from fine_tune_assets.lib.data.content_cache import ContentCache, purge_caches
from fine_tune_assets.lib.data.quality_gates import GateSettings, evaluate_gate, residual_cache
from fine_tune_assets.lib.data.scrub import load_policy
from fine_tune_assets.lib.data.stages import ingest_stage, scrub_cache, scrub_stage, validate_cache, validate_stage
from fine_tune_assets.lib.data.validate import ValidationSettings
from fine_tune_assets.lib.models.base_model import DEFAULT_BASE_MODEL, model_name
from fine_tune_assets_tests.factories import REPO, sample_conversations, write_jsonl

POLICY = REPO / "data" / "config" / "scrub_policy.yaml"
TOKENIZER_ID = model_name(DEFAULT_BASE_MODEL)


def _data_dir(root, conversations):
    paths = DataPaths(root)
    shutil.copytree(REPO / "data" / "config", paths.config)
    paths.raw.mkdir(parents=True)
    write_jsonl(paths.raw / "chats.jsonl", [{"messages": m} for m in conversations])
    return paths


def _run(paths, policy, tokenizer):
    """ingest -> scrub -> validate -> the residual-PII gate, as the data job runs them."""
    scrubbed = scrub_stage(paths, ingest_stage(paths), policy, workers=1)
    validated = validate_stage(paths, scrubbed, tokenizer, TOKENIZER_ID, ValidationSettings())
    gate = evaluate_gate("no_residual_pii", validated, policy, GateSettings())
    return scrubbed, validated, gate


def _rows(stage):
    return list(iter_rows(stage.records_path)), list(iter_rows(stage.quarantine_path))


@pytest.mark.slow  # three data runs with Presidio over ~130 conversations: ~15 s on 2 cores
def test_a_warm_run_scrubs_only_the_new_records_and_writes_what_a_cold_run_writes(tmp_path, tokenizer):
    conversations = sample_conversations()
    old, new = conversations[:120], conversations[120:124]
    policy = load_policy(POLICY)
    warm = _data_dir(tmp_path / "warm", old)
    first, _, _ = _run(warm, policy, tokenizer)
    assert first.summary["cache"]["scrubbed"] > 100
    assert scrub_cache(warm, policy).rows() == first.summary["cache"]["scrubbed"]

    # new data arrives: a new file with four new conversations and one repeat of an old one
    write_jsonl(warm.raw / "chats-new.jsonl", [{"messages": m} for m in [*new, old[0]]])
    scrubbed, validated, gate = _run(warm, policy, tokenizer)
    assert not scrubbed.reused and scrubbed.data_version != first.data_version
    assert scrubbed.summary["cache"] == {"scrubbed": 4, "reused": scrubbed.summary["records"] - 4,
                                         "folder": scrubbed.summary["cache"]["folder"]}
    assert validated.summary["cache"]["computed"] <= 4
    assert residual_cache(validated, policy).rows() == validated.summary["records"]  # all scanned, once each
    assert gate.passed and gate.observed == 0

    # a cold run over the same files, in a fresh data dir: the same rows, byte for byte, the same versions
    cold = DataPaths(tmp_path / "cold")
    shutil.copytree(warm.config, cold.config)
    shutil.copytree(warm.raw, cold.raw)
    cold_scrubbed, cold_validated, cold_gate = _run(cold, policy, tokenizer)
    assert cold_scrubbed.summary["cache"]["scrubbed"] == scrubbed.summary["records"] - 1  # the repeat, once
    for a, b in ((scrubbed, cold_scrubbed), (validated, cold_validated)):
        assert a.data_version == b.data_version
        assert _rows(a) == _rows(b)
        ignore = {"cache", "cumulative"}
        assert {k: v for k, v in a.summary.items() if k not in ignore} == \
            {k: v for k, v in b.summary.items() if k not in ignore}
    assert cold_gate.to_dict() == gate.to_dict()
    records = validated.summary["records"] + validated.summary["cumulative"]["quarantined"]
    assert records == validated.summary["cumulative"]["inputs"] == 125  # nothing lost on the way


@pytest.mark.slow  # four scrub runs of 12 conversations: ~5 s
def test_a_policy_or_pseudonym_key_change_starts_a_new_cache(tmp_path, monkeypatch):
    spec = yaml.safe_load(POLICY.read_text())
    spec["operators"] = {**spec.get("operators", {}), "EMAIL_ADDRESS": {"type": "pseudonymize"}}
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(spec))
    shutil.copy(REPO / "data" / "config" / "recognizers.yaml", tmp_path / "recognizers.yaml")
    paths = _data_dir(tmp_path / "data", [m for m in sample_conversations() if "@" in json.dumps(m)][:12])
    ingested = ingest_stage(paths)

    def scrub(key: str, **changes):
        monkeypatch.setenv("FINE_TUNE_PSEUDONYM_KEY", key)
        policy = load_policy(tmp_path / "policy.yaml")
        if changes:
            (tmp_path / "changed.yaml").write_text(yaml.safe_dump({**spec, **changes}))
            policy = load_policy(tmp_path / "changed.yaml")
        stage = scrub_stage(paths, ingested, policy, workers=1)
        emails = {m["content"] for row in iter_rows(stage.records_path) for m in json.loads(row["messages_json"])}
        return stage, emails

    first, emails_a = scrub("key-a" * 8)
    shutil.rmtree(first.folder)  # without the stage folder, the same identity is served by the cache
    again, emails_again = scrub("key-a" * 8)
    assert again.data_version == first.data_version and again.summary["cache"]["scrubbed"] == 0
    assert emails_again == emails_a

    rotated, emails_b = scrub("key-b" * 8)  # another key: other pseudonyms, so nothing may be reused
    assert rotated.data_version != first.data_version
    assert rotated.summary["cache"]["scrubbed"] == first.summary["cache"]["scrubbed"]
    assert emails_b != emails_a

    stricter, _ = scrub("key-a" * 8, score_threshold=0.9)  # another policy: another cache
    assert stricter.summary["cache"]["scrubbed"] == first.summary["cache"]["scrubbed"]
    assert len(list((paths.staging / "cache" / "scrub").iterdir())) == 3


_KILLED_RUN = """
import sys
from pathlib import Path
from fine_tune_assets.lib.common.paths import DataPaths
from fine_tune_assets.lib.data import content_cache
from fine_tune_assets.lib.data.scrub import load_policy
from fine_tune_assets.lib.data.stages import ingest_stage, scrub_stage
content_cache.ROWS_PER_PART = 5
paths = DataPaths(Path(sys.argv[1]))
scrub_stage(paths, ingest_stage(paths), load_policy(sys.argv[2]), workers=1)
"""


@pytest.mark.slow  # a scrub killed half-way, then resumed: ~16 s
def test_a_killed_scrub_keeps_the_parts_it_finished(tmp_path):
    paths = _data_dir(tmp_path / "data", sample_conversations()[:60])
    policy = load_policy(POLICY)
    cache = scrub_cache(paths, policy)
    child = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, str(paths.root), str(POLICY)])
    deadline = time.monotonic() + 120
    while len(cache.parts()) < 2 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert child.poll() is None, "the scrub ended before it could be killed"
    child.send_signal(signal.SIGKILL)
    child.wait()
    kept = cache.rows()
    assert len(cache.parts()) >= 2 and kept >= 10, "the child should have been killed half-way"
    assert not (paths.staging / "scrub").exists() or not any((paths.staging / "scrub").glob("*/summary.json"))

    resumed = scrub_stage(paths, ingest_stage(paths), policy, workers=1)
    assert resumed.summary["cache"]["scrubbed"] == cache.rows() - kept > 0
    assert resumed.summary["records"] + resumed.summary["cumulative"]["quarantined"] == 60  # nothing lost
    assert {row["record_id"] for row in iter_rows(resumed.records_path)} == \
        {key for part in cache.parts() for key in pq.read_table(part, columns=["key"])["key"].to_pylist()}


def test_cache_parts_merge_and_purge(tmp_path):
    import pyarrow as pa

    schema = pa.schema([pa.field("key", pa.string()), pa.field("value", pa.int64())])
    cache = ContentCache(tmp_path, "demo", {"v": 1}, schema)
    for start in range(0, 40, 2):  # twenty runs of two new rows
        with cache.writer() as out:
            out.write({"key": f"k{start}", "value": start})
            out.write({"key": f"k{start + 1}", "value": start + 1})
    with cache.writer() as out:  # and a run that raced another one: the same key twice
        out.write({"key": "k0", "value": 0})
    assert len(cache.parts()) == 21
    cache.compact()
    assert len(cache.parts()) == 1 and cache.rows() == 40  # one row per key

    with pytest.raises(RuntimeError), cache.writer(rows_per_part=3) as out:
        for i in range(7):
            out.write({"key": f"x{i}", "value": i})
        raise RuntimeError("the run dies")
    assert cache.rows() == 46  # two full parts of three stay; the unfinished one is gone

    other = ContentCache(tmp_path, "demo", {"v": 2}, schema)  # another identity, another folder
    assert other.folder != cache.folder and other.rows() == 0
    with other.writer() as out:
        out.write({"key": "k1", "value": -1})
    assert purge_caches(tmp_path, ["k1", "x0", "missing"]) == 3
    with cache.reading() as cached:
        import duckdb

        keys = {k for (k,) in duckdb.sql(f"SELECT key FROM {cached}").fetchall()}
    assert "k1" not in keys and "x0" not in keys and len(keys) == 44
    assert other.rows() == 0


def test_validate_cache_belongs_to_one_scrub_output_and_tokenizer(tmp_path):
    from fine_tune_assets.lib.data.stages import StageOutput

    def scrubbed(identity):
        return StageOutput("scrub", "v", tmp_path, {"cumulative": {"scrub": {"cache_identity": identity}}})

    paths = DataPaths(tmp_path)
    folders = {validate_cache(paths, scrubbed(s), t).folder for s in ("a", "b") for t in ("tok-1", "tok-2")}
    assert len(folders) == 4
    assert os.path.basename(validate_cache(paths, scrubbed("a"), "tok-1").folder) in {f.name for f in folders}
