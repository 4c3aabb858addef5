"""lora_adapter: a LoRA adapter trained on a pinned dataset version, in its own process (Pipes)."""

import json
from collections.abc import Mapping
from pathlib import Path

import dagster as dg
from pydantic import Field

from fine_tune_assets.lib.common.paths import SOURCE_ROOT
from fine_tune_assets.lib.models.base_model import resolve_base_model
from fine_tune_assets.lib.registry.backends import display
from fine_tune_assets.lib.registry.connection import connect
from fine_tune_assets.lib.registry.erasures import erased_records_in
from fine_tune_assets.lib.registry.ledger import current_user
from fine_tune_assets.lib.registry.resolve import LATEST, NotFound, resolve_dataset_version

from ..keys import ACCELERATOR_POOL, BASE_MODEL, DATASET_VERSION, TAG_PREFIX, automatic_launcher
from ..openlineage import emits_openlineage
from ..pipes import launch_worker, run_folder
from ..resources import PipelineResource

LORA_CODE_VERSION = "lora-1"


class LoraTrainingConfig(dg.Config):
    """Run parameters of one training run; every knob shows in the launchpad with its default."""

    dataset_version: str = Field(default="", description="Dataset version id or unique prefix; empty = newest")
    lora_r: int = Field(default=16, description="LoRA rank")
    lora_alpha: int = Field(default=32, description="LoRA alpha")
    lora_dropout: float = Field(default=0.05, description="LoRA dropout")
    target_modules: str = Field(default="all-linear",
                                description="'all-linear' or comma-separated module names (q_proj,k_proj,...)")
    learning_rate: float = Field(default=2e-4)
    num_epochs: float = Field(default=3.0)
    per_device_batch_size: int = Field(default=4)
    gradient_accumulation_steps: int = Field(default=4)
    warmup_ratio: float = Field(default=0.1)
    max_seq_length: int = Field(default=1024, description="Longer examples are truncated (answer must fit)")
    max_steps: int = Field(default=-1, description="Stop after this many optimizer steps (-1 = epochs decide)")
    save_steps: int = Field(default=50, description="Checkpoint every N steps")
    seed: int = Field(default=42)
    device: str = Field(default="auto", description="auto | cpu | cuda")
    load_in_4bit: bool = Field(default=False, description="QLoRA: NF4 4-bit base weights (bitsandbytes)")
    eval_before_training: bool = Field(
        default=False, description="Eval loss of the untrained adapter in the metrics (eval_report has it too)")
    eval_after_training: bool = Field(
        default=True, description="Eval loss of the trained adapter in the metrics (eval_report has it too)")
    resume: bool = Field(default=True, description="Continue an interrupted run of the same data, base model and "
                                                   "config from its last checkpoint")
    keep_checkpoints: bool = Field(default=False, description="Keep adapters/.checkpoints/<identity> after success")
    export_merged: bool = Field(default=False, description="Also save base + adapter merged into one model "
                                                           "(adapters/<id>/merged; not with load_in_4bit)")
    share_prefix: bool = Field(default=False, description="Compute a system prompt shared by a batch once per "
                                                         "batch")
    fused_kernels: str = Field(default="auto", description="Liger Kernel RoPE/RMSNorm/SwiGLU: auto (on CUDA when "
                                                           "installed) | on | off")
    fsdp: bool = Field(default=False, description="FSDP-QLoRA on a multi-GPU node (with load_in_4bit and "
                                                  "nproc_per_node > 1): shard the 4-bit base and the LoRA weights")
    nproc_per_node: int = Field(default=1, ge=1, description="Processes to train in under torchrun, data-parallel: "
                                                            "one per GPU; on CPU gloo processes (slower, the same "
                                                            "path). Rank 0 reports and publishes")

    def training_config(self):
        from fine_tune_assets.lib.training import TrainingConfig

        targets = self.target_modules if self.target_modules == "all-linear" else \
            [t.strip() for t in self.target_modules.split(",") if t.strip()]
        values = self.model_dump()
        values.pop("dataset_version")
        values["target_modules"] = targets
        return TrainingConfig.from_dict(values)


def run_trigger(tags: Mapping[str, str]) -> dict | None:
    """What started this run, from the tags a sensor set (``fine_tune_assets/trigger`` and the evidence:
    drift evaluation id, ledger seq, versions and scores, or the erasure request); None for a manual run."""
    found = {k.removeprefix(TAG_PREFIX): v for k, v in tags.items() if k.startswith(TAG_PREFIX)}
    if "trigger" not in found:
        return None
    if "drift_scores" in found:
        found["drift_scores"] = json.loads(found["drift_scores"])
    return found


@dg.asset(group_name="training", code_version=LORA_CODE_VERSION, deps=[DATASET_VERSION, BASE_MODEL],
          kinds={"pytorch", "peft"}, pool=ACCELERATOR_POOL)
@emits_openlineage
def lora_adapter(context: dg.AssetExecutionContext, config: LoraTrainingConfig, pipeline: PipelineResource,
                 pipes_subprocess_client: dg.PipesSubprocessClient) -> dg.MaterializeResult:
    """A LoRA adapter trained with TRL's SFTTrainer on a pinned (or the newest) dataset version, in its
    own process through Dagster Pipes. Lineage: dataset version id, base-model identity, full training
    config and its hash, code and library versions, hardware, metrics (``lineage.json`` beside the
    adapter, and the ``adapters`` table of the registry). Re-running the same training after a crash
    resumes from its last checkpoint (``adapters/.checkpoints/<training identity>``)."""
    paths = pipeline.paths
    with connect(paths.registry, read_only=True) as con:
        try:
            dataset = resolve_dataset_version(con, config.dataset_version or LATEST)
        except NotFound as exc:
            raise dg.Failure(str(exc)) from None
        erased = erased_records_in(con, dataset["version_id"])
    if erased:
        raise dg.Failure(f"dataset version {dataset['version_id'][:12]} holds {erased} records under an erasure "
                         "request: train on the version published without them (leave dataset_version empty for "
                         "the newest clean one; `fine-tune-assets lineage --record` shows which)")
    identity = resolve_base_model(pipeline.base_model, paths.models)
    training = config.training_config()
    run_dir = run_folder(paths, context)
    folder = Path(dataset["path"])
    request = {
        "train_path": str(folder / "train.jsonl"), "eval_path": str(folder / "eval.jsonl"),
        "dataset_version": dataset["version_id"], "base_model": identity.to_dict(),
        "config": training.to_dict(), "run_dir": str(run_dir), "adapters_dir": str(paths.adapters),
        # the worker opens the registry from the data directory and its own environment (a URL's password
        # never goes into the request file); "registry" only names it
        "data_dir": str(paths.root), "registry": display(paths.registry), "repo": str(SOURCE_ROOT),
        "run_id": context.run_id,
        "trigger": run_trigger(context.run.tags),
        "launched_by": automatic_launcher(context.run.tags) or current_user(),  # the four-eyes rule's trainer
    }
    context.log.info(f"training on dataset {dataset['version_id'][:12]} ({dataset['n_train']} train / "
                     f"{dataset['n_eval']} eval) from {identity.name}, config {training.config_hash[:12]}")
    if training.nproc_per_node > 1:
        context.log.info(f"training in {training.nproc_per_node} processes under torchrun")
    return launch_worker(context, pipes_subprocess_client, "training", request, run_dir / "request.json",
                         nproc_per_node=training.nproc_per_node, device=training.device,
                         fsdp=training.fsdp)
