"""`fine-tune-assets drift`: two dataset versions published through the real code, an adapter on the
first; the command resolves the reference through the adapter, takes the window with DuckDB and
answers in text and JSON with the exit codes CI relies on."""

import json
import shutil

import pytest

from fine_tune_assets.lib.common.paths import DataPaths
from fine_tune_assets.lib.registry.connection import connect
from fine_tune_assets_tests.factories import (
    REPO,
    cli,
    new_product_line,
    publish_test_adapter,
    publish_test_dataset,
    sample_conversations,
)


@pytest.fixture(scope="module")
def versions(tmp_path_factory, models_dir):
    """(data dir, reference version, same-distribution candidate, shifted candidate)."""
    root = tmp_path_factory.mktemp("drift-data")
    (root / "models").symlink_to(models_dir, target_is_directory=True)
    for folder in ("config", "eval"):  # the sample's scrub, evaluation and drift policies
        shutil.copytree(REPO / "data" / folder, root / folder)
    paths, chats = DataPaths(root), sample_conversations()
    reference = publish_test_dataset(paths, root, chats[:300], eval_fraction=0.1)
    publish_test_adapter(paths, root, reference)
    same = publish_test_dataset(paths, root, chats, eval_fraction=0.1)
    shifted = publish_test_dataset(paths, root, chats[:480] + [new_product_line(i) for i in range(60)],
                                   eval_fraction=0.1)
    return root, reference, same, shifted


def test_same_distribution_is_no_drift(versions):
    root, reference, same, _ = versions
    done = cli("drift", "--candidate", same, "--json", "--fail-on-drift", data_dir=root)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["decision"] == "no_drift" and out["drift"] is False
    assert out["reference"]["version_id"] == reference
    assert "no adapter holds production" in out["reference"]["how"]
    assert out["n_window"] == out["n_candidate_new"] > 200  # new to the reference, held-out records excluded
    for family in ("descriptors", "novelty", "terms", "classifier"):
        assert {"statistic", "p_value", "threshold", "flagged"} <= set(out["detectors"][family])
    assert "window_ids" not in out and isinstance(out["top_terms"], list) and out["over_represented_terms"] == []


def test_a_shifted_version_is_drift_and_fails_ci(versions):
    root, _, _, shifted = versions
    done = cli("drift", "--candidate", shifted, "--fail-on-drift", data_dir=root)
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("drift: confirmed")
    assert "terms over-represented in the window: " in done.stdout
    assert "solarlink" in done.stdout and "negative control (two halves of the reference): quiet" in done.stdout
    with connect(DataPaths(root).registry, read_only=True) as con:  # the command records nothing
        assert con.execute("SELECT count(*) FROM drift_evaluations").fetchone()[0] == 0


def test_bad_arguments_are_one_line_errors(versions, tmp_path):
    root = versions[0]
    done = cli("drift", "--candidate", "ffff0000", data_dir=root)
    assert done.returncode == 2 and done.stderr.startswith("error: 0 dataset versions match 'ffff0000'")
    bad = tmp_path / "policy.yaml"
    bad.write_text("window: {min_records: 0}\n")
    done = cli("drift", "--candidate", "latest", "--policy", str(bad), data_dir=root)
    assert done.returncode == 2 and "policy.yaml: window.min_records" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_a_raw_file_goes_through_the_pipeline_stages_first(versions, tmp_path):
    root, _, _, _ = versions
    chats = sample_conversations()
    file = tmp_path / "export_2026-12.jsonl"
    lines = [json.dumps({"messages": m}) for m in chats[300:480] + [new_product_line(i) for i in range(80)]]
    file.write_text("\n".join([*lines, "{not json"]) + "\n")  # a broken line is quarantined, not fatal
    done = cli("drift", "--candidate", str(file), "--json", data_dir=root)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    stages = out["candidate_stages"]
    assert stages["inputs"] == 261 and stages["ingest_rejected"] >= 1  # the broken line, and planted bad chats
    assert stages["inputs"] == stages["accepted"] + stages["ingest_rejected"] + stages["scrub_rejected"] + \
        stages["validate_rejected"]
    assert out["candidate"] == "file:export_2026-12.jsonl" and out["decision"] == "confirmed", (stages, out["reasons"])
    assert not list(root.glob(".drift-candidate-*"))  # the throw-away stage folder is gone
    assert "Sie sind der Kundendienst" not in done.stdout  # no record text, not even a system prompt
