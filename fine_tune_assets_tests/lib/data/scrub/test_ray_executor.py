"""The scrub stage on Ray Data gives byte for byte what the local pool gives (real Presidio, real Ray).

A local Ray of 2 CPUs (``ray.init(num_cpus=2)``), 300 of the sample's chat conversations plus two over
the size guard. Both executors write the same records and quarantine files, the same summary and the
same data version, and the accounting adds up. The CLI's ``--executor ray`` writes the same file as
``--executor local``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import typing

import pytest
import yaml

from fine_tune_assets.lib.common.parquet import iter_rows
from fine_tune_assets.lib.common.paths import DataPaths
from fine_tune_assets.lib.data.content_cache import remove_cache
from fine_tune_assets.lib.data.scrub import load_policy
from fine_tune_assets.lib.data.scrub.pool import EXECUTORS
from fine_tune_assets.lib.data.scrub.pseudonyms import key_fingerprint
from fine_tune_assets.lib.data.scrub.ray_pool import CONNECT_TIMEOUT_S, check_reachable, check_same_policy, ray_session
from fine_tune_assets.lib.data.stages import ingest_stage, scrub_stage
from fine_tune_assets_tests.factories import REPO, cli, sample_conversations, write_jsonl

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")


POLICY = REPO / "data" / "config" / "scrub_policy.yaml"  # the sample company's policy
N_CONVERSATIONS = 300
MAX_RECORD_CHARS = 20_000


@pytest.fixture
def local_ray():
    """A local Ray of 2 CPUs for one test. The scrub code uses it as it is and leaves it running."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _raw_dir(root):
    """300 sample conversations and two over the size guard (quarantined before the PII pass)."""
    paths = DataPaths(root)
    paths.raw.mkdir(parents=True)
    chats = [{"messages": m} for m in sample_conversations()[:N_CONVERSATIONS]]
    too_long = [{"messages": [{"role": "user", "content": f"log dump {i}: " + "x" * MAX_RECORD_CHARS},
                              {"role": "assistant", "content": "Thanks, looking at it."}]} for i in range(2)]
    write_jsonl(paths.raw / "chats.jsonl", chats[:150] + too_long[:1] + chats[150:] + too_long[1:])
    return paths


@pytest.mark.slow  # a local Ray and its actors' engines: ~25 s on 2 cores
def test_ray_executor_matches_the_local_pool_byte_for_byte(tmp_path, local_ray):
    paths = _raw_dir(tmp_path / "data")
    policy = load_policy(POLICY)
    ingested = ingest_stage(paths)
    assert ingested.summary["inputs"] == N_CONVERSATIONS + 2  # a few planted bad chats are rejected here

    local = scrub_stage(paths, ingested, policy, workers=2, max_record_chars=MAX_RECORD_CHARS)
    # The executor is not part of the identity: the same data version, so set the local output aside
    # (same path afterwards, so that summary.json, which names its folder, can be compared too).
    aside = tmp_path / "local"
    shutil.move(local.folder, aside)
    remove_cache(paths.staging)  # or the Ray run would find every record scrubbed already
    messages = []
    on_ray = scrub_stage(paths, ingested, policy, workers=2, max_record_chars=MAX_RECORD_CHARS,
                         progress=messages.append, executor="ray")

    assert not on_ray.reused and on_ray.data_version == local.data_version
    assert on_ray.folder == local.folder
    for name in ("records.parquet", "quarantine.parquet", "summary.json"):
        assert _sha256(on_ray.folder / name) == _sha256(aside / name), name
    assert on_ray.summary == local.summary
    assert list(iter_rows(on_ray.records_path)) == list(iter_rows(aside / "records.parquet"))

    summary, cumulative = on_ray.summary, on_ray.summary["cumulative"]
    assert summary["inputs"] == ingested.summary["records"] == summary["records"] + summary["rejected"]
    assert summary["records"] > 250 and summary["rejected"] >= 2  # ours, and the sample's longest chats
    assert summary["rejected_by_reason"] == {"over_size_limit": summary["rejected"]}
    assert cumulative["inputs"] == N_CONVERSATIONS + 2 == summary["records"] + cumulative["quarantined"]
    counts = summary["entity_counts"]
    assert counts["PERSON"] > 100 and sum(counts.values()) > 300  # the sample plants PII in most chats
    per_record = [json.loads(row["scrub_entity_counts"]) for row in iter_rows(on_ray.records_path)]
    assert sum(sum(c.values()) for c in per_record) == sum(counts.values())
    assert summary["cache"]["scrubbed"] > 250  # scrubbed on Ray, not taken from the local run's cache
    assert messages[-1].startswith(f"{summary['records']} records written in ")  # progress reported
    assert any(m.startswith(f"scrubbed {summary['cache']['scrubbed']} records not in the scrub cache in ")
               for m in messages)

    # and the same identity reuses either executor's output
    assert scrub_stage(paths, ingested, policy, max_record_chars=MAX_RECORD_CHARS).reused


@pytest.mark.slow  # two CLI processes, one with a local Ray: ~30 s on 2 cores
def test_cli_executor_ray_writes_the_same_file(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [{"messages": m, "metadata": {"n": i}}
                                              for i, m in enumerate(sample_conversations()[:80])])
    shutil.copytree(REPO / "data" / "config", tmp_path / "config")
    outputs = {}
    for executor in EXECUTORS:
        out = tmp_path / f"{executor}.jsonl"
        done = cli("scrub", str(src), str(out), "--executor", executor, data_dir=tmp_path)
        assert done.returncode == 0, done.stderr
        outputs[executor] = (_sha256(out), done.stdout.splitlines()[1:])  # the counts per entity type
    assert outputs["ray"] == outputs["local"]
    assert len(outputs["local"][1]) >= 5 and any("PERSON" in line for line in outputs["local"][1])


def test_executor_names_are_checked_everywhere():
    from fine_tune_assets.defs.resources import PipelineResource

    assert typing.get_args(PipelineResource.model_fields["scrub_executor"].annotation) == EXECUTORS
    with pytest.raises(ValueError, match="unknown scrub executor 'spark'"):
        scrub_stage(DataPaths(REPO / "nowhere"), None, load_policy(POLICY), executor="spark")


def test_an_actor_refuses_a_node_whose_pseudonym_key_differs(tmp_path, monkeypatch):
    spec = yaml.safe_load(POLICY.read_text())
    spec["operators"] = {"default": "placeholder", "PERSON": "pseudonymize"}
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump({**spec, "recognizers_file": str(
        REPO / "data" / "config" / "recognizers.yaml")}))
    monkeypatch.setenv("FINE_TUNE_PSEUDONYM_KEY", "driver-key")
    policy = load_policy(tmp_path / "policy.yaml")
    driver = key_fingerprint(policy)
    check_same_policy(policy, driver)
    monkeypatch.setenv("FINE_TUNE_PSEUDONYM_KEY", "another-key")  # the node's environment
    with pytest.raises(RuntimeError, match="pseudonym key in FINE_TUNE_PSEUDONYM_KEY on this Ray node"):
        check_same_policy(policy, driver)
    assert "driver-key" not in driver and "another-key" not in key_fingerprint(policy)


def test_an_unreachable_cluster_fails_in_one_line(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:9")  # discard: nothing listens there
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"no Ray cluster answers at RAY_ADDRESS=127.0.0.1:9 .* unset RAY_ADDRESS"):
        with ray_session(2):
            pass
    assert time.monotonic() - started < CONNECT_TIMEOUT_S + 5
    assert not ray.is_initialized()
    with pytest.raises(RuntimeError, match="is not HOST:PORT"):
        check_reachable("cluster-without-port")


def test_an_actor_refuses_a_node_whose_recognizers_differ(tmp_path):
    shutil.copytree(REPO / "data" / "config", tmp_path / "config")
    policy = load_policy(tmp_path / "config" / "scrub_policy.yaml")
    check_same_policy(policy)  # the driver's hash is cached in the policy an actor receives
    recognizers = tmp_path / "config" / "recognizers.yaml"
    recognizers.write_text(recognizers.read_text().replace("HBE-", "HBX-"))  # another file at the same path
    with pytest.raises(RuntimeError, match=f"scrub policy {policy.hash[:12]} is .* on this Ray node"):
        check_same_policy(policy)
