"""The scrub stage as a Ray job: what dagster-ray's Pipes clients get, checked without a cluster.

The submission parameters must be ones ``PipesRayJobClient.run`` / ``PipesKubeRayJobClient.run`` accept
and must turn into a KubeRay ``RayJob`` (dagster-ray's own conversion, offline). The job's entry
point is run for real, by Dagster Pipes in a subprocess instead of a Ray job submission: the job's
driver process on a local Ray. It must report the stage that an in-process run reuses (same data
version).
"""

import json
import shlex
import shutil
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from fine_tune_assets import OFFLINE_DEFAULTS
from fine_tune_assets.defs.data.scrub import ray_job_params, scrub_request, scrub_result
from fine_tune_assets.defs.resources import PipelineResource
from fine_tune_assets.lib.common.paths import DataPaths
from fine_tune_assets.lib.data.scrub import load_policy
from fine_tune_assets.lib.data.stages import StageOutput, ingest_stage, scrub_stage
from fine_tune_assets_tests.factories import REPO, sample_conversations, write_jsonl

pytest.importorskip("dagster_ray", reason="the ray extra is not installed (pip install -e '.[ray]')")


def test_job_params_are_what_dagster_rays_clients_submit(tmp_path):
    from dagster_ray.core.pipes import SubmitJobParams
    from dagster_ray.kuberay.pipes import _merge_submit_params_into_ray_job

    request = tmp_path / "scrub request.json"
    params = ray_job_params(request)
    assert "entrypoint" in params and set(params) <= set(SubmitJobParams.__annotations__)
    assert shlex.split(params["entrypoint"]) == ["python", "-m", "fine_tune_assets.workers.scrub", str(request)]
    assert params["runtime_env"] == {"env_vars": OFFLINE_DEFAULTS}
    assert "FINE_TUNE_PSEUDONYM_KEY" not in json.dumps(params)  # a runtime env shows on the dashboard
    assert ray_job_params(request)["runtime_env"] is not params["runtime_env"]  # dagster-ray adds to it

    template = {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": "scrub"}, "spec": {}}
    spec = _merge_submit_params_into_ray_job(template, params)["spec"]
    assert spec["entrypoint"] == params["entrypoint"] and spec["entrypointNumCpus"] == 1
    assert yaml.safe_load(spec["runtimeEnvYAML"]) == params["runtime_env"]


@pytest.mark.slow  # a Pipes subprocess that starts a local Ray and one actor: ~25 s on 2 cores
def test_the_job_entrypoint_runs_the_stage_and_reports_it(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)  # a local Ray, not somebody's cluster
    data_dir = tmp_path / "data"
    (data_dir / "raw").mkdir(parents=True)
    shutil.copytree(REPO / "data" / "config", data_dir / "config")  # the sample company's policy
    write_jsonl(data_dir / "raw" / "chats.jsonl", [{"messages": m} for m in sample_conversations()[:40]])
    paths = DataPaths(data_dir)

    @dg.asset(name="scrubbed_conversations")
    def scrubbed_on_a_ray_job(context: dg.AssetExecutionContext, pipeline: PipelineResource,
                              ray_jobs: dg.PipesSubprocessClient) -> dg.MaterializeResult:
        """The README's cluster asset, with a Pipes subprocess standing in for the Ray job submission."""
        request_path = tmp_path / "request.json"
        request_path.write_text(json.dumps(scrub_request(pipeline, ingest_stage(pipeline.paths))))
        params = ray_job_params(request_path)
        command = [sys.executable, *shlex.split(params["entrypoint"])[1:]]  # the image's python: this one
        invocation = ray_jobs.run(context=context, command=command, env=params["runtime_env"]["env_vars"])
        return scrub_result(StageOutput.load(Path(invocation.get_custom_messages()[-1]["staging_path"])), 1.0)

    result = dg.materialize([scrubbed_on_a_ray_job], resources={
        "pipeline": PipelineResource(data_dir=str(data_dir), scrub_workers=2),
        "ray_jobs": dg.PipesSubprocessClient()})
    assert result.success
    materialization = result.asset_materializations_for_node("scrubbed_conversations")[-1]
    metadata = materialization.metadata
    assert metadata["records"].value + metadata["quarantined"].value == metadata["inputs"].value > 30
    assert metadata["entities_replaced"].value > 10

    in_process = scrub_stage(paths, ingest_stage(paths), load_policy(paths.scrub_policy))
    assert in_process.reused and str(in_process.folder) == metadata["staging_path"].value
    assert materialization.tags["dagster/data_version"] == in_process.data_version
