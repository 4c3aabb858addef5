"""Heavy steps (training, evaluation) run as their own process through Dagster Pipes.

Their memory is freed when the process ends, an out-of-memory or crash cannot take the code server
down, and the same ``python -m fine_tune_assets.workers.<worker> REQUEST.json`` can be launched elsewhere
(a GPU node, ``PipesK8sClient``) unchanged.
"""

import json
from pathlib import Path

import dagster as dg

from fine_tune_assets.lib.common.paths import DataPaths
from fine_tune_assets.lib.models.loading import resolve_device
from fine_tune_assets.lib.training.distributed import torchrun_command, torchrun_env

from .kubernetes import is_k8s_client, run_in_pod


def run_folder(paths: DataPaths, context) -> Path:
    """``adapters/.runs/<run_id>/``: the run's requests and its unpublished outputs."""
    folder = paths.adapters / ".runs" / context.run_id
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def launch_worker(context, client: dg.PipesSubprocessClient, module: str, request: dict,
                  request_path: Path, nproc_per_node: int = 1, device: str = "auto",
                  fsdp: bool = False) -> dg.MaterializeResult:
    """Write ``request`` to ``request_path`` and run the worker module on it, in ``nproc_per_node``
    processes under torchrun when more than one (rank 0 reports); its report is the result."""
    request_path.write_text(json.dumps(request, indent=2))
    command = torchrun_command(f"fine_tune_assets.workers.{module}", [str(request_path)], nproc_per_node)
    if is_k8s_client(client):  # a pod with one GPU per process (defs/kubernetes.py): its device, not ours
        env = torchrun_env(nproc_per_node, "cpu" if device == "cpu" else "cuda", fsdp)
        result = run_in_pod(client, context, command, env, gpus=nproc_per_node, data_dir=request["data_dir"])
    else:
        env = torchrun_env(nproc_per_node, resolve_device(device), fsdp)
        result = client.run(command=command, context=context, env=env)
    return result.get_materialize_result()
