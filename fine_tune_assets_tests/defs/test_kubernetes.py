"""The Kubernetes path, checked offline with dagster_k8s's own builders (no cluster): the training pod that
PipesK8sClient would create, and the K8sRunLauncher block of deploy/run_launcher.k8s.yaml."""

import yaml
from dagster._config import process_config
from dagster_k8s import K8sRunLauncher, PipesK8sClient
from dagster_k8s.pipes import build_pod_body

from fine_tune_assets.defs.kubernetes import GPU_RESOURCE, is_k8s_client, training_pod_spec
from fine_tune_assets.lib.training.distributed import torchrun_command
from fine_tune_assets_tests.factories import REPO


def test_the_training_pod_asks_for_the_gpus_torchrun_uses_and_never_restarts():
    request = "/data/adapters/.runs/r1/request.json"
    command = torchrun_command("fine_tune_assets.workers.training", [request], nproc_per_node=4)
    spec = training_pod_spec("registry.example/fine-tune-assets:abc123", gpus=4, data_dir="/data",
                             data_claim="fine-tune-data", secret="fine-tune-assets")
    pod = build_pod_body("fine-tune-train", "registry.example/fine-tune-assets:abc123", ["python", *command[1:]],
                         {"DAGSTER_PIPES_CONTEXT": "ctx", "DAGSTER_PIPES_MESSAGES": "msgs"}, None, spec)
    [container] = pod.spec.containers
    assert container.resources.limits[GPU_RESOURCE] == "4" == container.resources.requests[GPU_RESOURCE]
    assert container.command == ["python", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4",
                                 "-m", "fine_tune_assets.workers.training", request]
    assert pod.spec.restart_policy == "Never"
    assert {m.mount_path for m in container.volume_mounts} == {"/data", "/dev/shm"}
    assert {v.name: v.persistent_volume_claim.claim_name for v in pod.spec.volumes
            if v.persistent_volume_claim} == {"data": "fine-tune-data"}
    env = {e.name: e.value for e in container.env}
    assert env["FINE_TUNE_DATA_DIR"] == "/data" and env["DAGSTER_PIPES_CONTEXT"] == "ctx"
    assert container.env_from[0].secret_ref.name == "fine-tune-assets"  # the registry URL, not in the spec


def test_a_single_process_pod_runs_the_worker_without_torchrun():
    command = torchrun_command("fine_tune_assets.workers.evaluation", ["/data/r.json"], nproc_per_node=1)
    assert command[1:] == ["-m", "fine_tune_assets.workers.evaluation", "/data/r.json"]


def test_launch_worker_recognises_the_k8s_client():
    assert is_k8s_client(PipesK8sClient())
    import dagster as dg

    assert not is_k8s_client(dg.PipesSubprocessClient())


def test_the_run_launcher_block_validates_against_dagster_k8s(monkeypatch):
    monkeypatch.setenv("FINE_TUNE_K8S_IMAGE", "registry.example/fine-tune-assets:abc123")
    block = yaml.safe_load((REPO / "deploy" / "run_launcher.k8s.yaml").read_text())["run_launcher"]
    assert (block["module"], block["class"]) == ("dagster_k8s", "K8sRunLauncher")
    result = process_config(K8sRunLauncher.config_type(), block["config"])
    assert result.success, [e.message for e in result.errors]
    typo = {**block["config"], "job_imag": "x"}
    assert not process_config(K8sRunLauncher.config_type(), typo).success
