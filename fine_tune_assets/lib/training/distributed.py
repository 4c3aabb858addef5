"""Training in several processes under ``torchrun`` (one per GPU, or several CPU processes over gloo).

The same worker runs in every process; ``torchrun --standalone --nproc_per_node N`` sets ``RANK``,
``LOCAL_RANK`` and ``WORLD_SIZE``, and the Trainer (through accelerate) runs data-parallel on the process
group ``start`` opens. Only rank 0 talks to Dagster Pipes, writes checkpoint metadata, writes the
adapter and registers it: the others compute their share of each step and log to stderr.

On a CUDA node process ``LOCAL_RANK`` owns GPU ``LOCAL_RANK`` (NCCL). On CPU the processes use gloo on
the loopback interface with the cores split between them, which is what makes the multi-process path
testable on a laptop or CI machine: slower than one process there, the same code as on a GPU node.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Rank:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def current() -> Rank:
    """This process's place, from torchrun's environment (a plain ``python`` run is rank 0 of 1)."""
    return Rank(int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)),
                int(os.environ.get("WORLD_SIZE", 1)))


def torchrun_command(module: str, args: list[str], nproc_per_node: int) -> list[str]:
    """``python -m module args`` in one process, or under ``torchrun --standalone`` in ``nproc_per_node``."""
    if nproc_per_node <= 1:
        return [sys.executable, "-m", module, *args]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc_per_node}",
            "-m", module, *args]


def torchrun_env(nproc_per_node: int, device: str, fsdp: bool = False) -> dict[str, str]:
    """Environment for the processes: on CPU, gloo over loopback (no other interface may be reachable)
    and the cores split between the processes (each would otherwise start one thread per core). Under
    FSDP, CPU-RAM-efficient loading must be on before the model loads (before the Trainer exists)."""
    if fsdp:
        return {"ACCELERATE_USE_FSDP": "true", "FSDP_CPU_RAM_EFFICIENT_LOADING": "true"}
    if nproc_per_node <= 1 or device == "cuda":
        return {}
    threads = max(1, (os.cpu_count() or 1) // nproc_per_node)
    return {"GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": str(threads)}


class DistributedConfigError(ValueError):
    """A multi-process setting that cannot work on this device (e.g. FSDP on a CPU)."""


def check_fsdp(config, device: str) -> None:
    """FSDP-QLoRA needs CUDA, several processes and 4-bit weights; refuse early and say which is missing."""
    if not getattr(config, "fsdp", False):
        return
    missing = [why for ok, why in ((device == "cuda", "a CUDA device"),
                                   (config.nproc_per_node > 1, "nproc_per_node > 1 (one process per GPU)"),
                                   (config.load_in_4bit, "load_in_4bit (FSDP-QLoRA)")) if not ok]
    if missing:
        raise DistributedConfigError(f"fsdp needs {', '.join(missing)}")


def start(device: str) -> Rank:
    """Open the process group when under torchrun (NCCL on CUDA, gloo on CPU); pin this process's GPU."""
    import torch
    import torch.distributed as dist

    rank = current()
    if rank.distributed and not dist.is_initialized():
        if device == "cuda":
            torch.cuda.set_device(rank.local_rank)
        dist.init_process_group(backend="nccl" if device == "cuda" else "gloo")
    return rank


def stop() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every process (a no-op in one process)."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()


def sum_over_processes(values: dict[str, float]) -> dict[str, float]:
    """``values`` summed over the processes (each counts the tokens of its own share of the batches)."""
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        return dict(values)
    keys = sorted(values)
    tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return dict(zip(keys, tensor.tolist()))
