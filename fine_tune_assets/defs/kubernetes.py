"""Training on Kubernetes: the same worker in a pod with GPUs, launched by ``dagster_k8s.PipesK8sClient``.

Give the definitions a ``PipesK8sClient`` as ``pipes_subprocess_client`` (the resource key the assets
use) and set the ``FINE_TUNE_K8S_*`` variables below; ``launch_worker`` then starts the worker in a pod
instead of a local process: the image is the project's (the same package and lock), the data directory
is a volume mounted at the same path in the code server and the pod (requests and adapters are files
there), ``nproc_per_node`` is the number of GPUs the pod asks for, and the registry URL comes from a
secret. Only the first container talks to Dagster (rank 0 of torchrun inside it).

Checked offline by ``fine_tune_assets_tests/defs/test_kubernetes.py``: the pod body dagster_k8s builds from
this spec has the GPU limit, the torchrun command and ``restartPolicy: Never``.
"""

from __future__ import annotations

import os
from typing import Any

GPU_RESOURCE = "nvidia.com/gpu"
IMAGE_ENV = "FINE_TUNE_K8S_IMAGE"  # the project's image, e.g. registry.example/fine-tune-assets:<commit>
DATA_CLAIM_ENV = "FINE_TUNE_K8S_DATA_CLAIM"  # the PersistentVolumeClaim holding FINE_TUNE_DATA_DIR
SECRET_ENV = "FINE_TUNE_K8S_SECRET"  # a Secret with FINE_TUNE_REGISTRY_URL (and any other credentials)


def training_pod_spec(image: str, gpus: int, data_dir: str, data_claim: str, secret: str | None = None,
                      memory: str = "64Gi") -> dict[str, Any]:
    """``base_pod_spec`` for a training pod: ``gpus`` GPUs (one torchrun process each), the data volume
    at ``data_dir``, shared memory for NCCL, credentials from ``secret``; never restarted by Kubernetes
    (a re-run of the asset resumes from the checkpoints instead)."""
    container: dict[str, Any] = {
        "name": "training",
        "image": image,
        "resources": {"limits": {GPU_RESOURCE: str(gpus), "memory": memory}, "requests": {GPU_RESOURCE: str(gpus)}},
        "volumeMounts": [{"name": "data", "mountPath": data_dir}, {"name": "dshm", "mountPath": "/dev/shm"}],
        "env": [{"name": "FINE_TUNE_DATA_DIR", "value": data_dir}, {"name": "HF_HUB_OFFLINE", "value": "1"}],
    }
    if secret:
        container["envFrom"] = [{"secretRef": {"name": secret}}]
    return {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": data_claim}},
                    {"name": "dshm", "emptyDir": {"medium": "Memory"}}],
    }


def is_k8s_client(client) -> bool:
    """Whether the Pipes client launches pods (dagster_k8s is an optional extra: compared by name)."""
    return type(client).__name__ == "PipesK8sClient"


def run_in_pod(client, context, command: list[str], env: dict[str, str], gpus: int, data_dir: str):
    """``client.run`` for a worker ``command`` (its first word is the pod's python, not this process's)."""
    image = os.environ.get(IMAGE_ENV)
    claim = os.environ.get(DATA_CLAIM_ENV)
    if not image or not claim:
        raise RuntimeError(f"training on Kubernetes needs {IMAGE_ENV} (the project's image) and {DATA_CLAIM_ENV} "
                           "(the PersistentVolumeClaim of the data directory)")
    return client.run(context=context, image=image, command=["python", *command[1:]], env=env,
                      base_pod_spec=training_pod_spec(image, gpus, data_dir, claim, os.environ.get(SECRET_ENV)))
