"""Training in its own process, reporting to Dagster through Pipes.

``python -m fine_tune_assets.workers.training REQUEST.json``: a crash or out-of-memory here frees
all of training's memory and cannot take the Dagster code server down, and the same entry point
can be launched on a GPU node (PipesK8sClient) unchanged. Without Pipes (run by hand) it logs to
stderr. Under ``torchrun`` (``nproc_per_node`` > 1) every process runs it; only rank 0 opens Pipes,
writes the adapter and the registry (``lib.training.distributed``).

Checkpoints go to ``adapters/.checkpoints/<training identity>``, not under the per-run folder, so
re-running the same training (same dataset version, base model and config) after a crash or a kill
resumes from the last checkpoint instead of starting over.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

from dagster_pipes import open_dagster_pipes

from fine_tune_assets.lib.common.paths import DataPaths
from fine_tune_assets.lib.models.base_model import adapter_base_reference
from fine_tune_assets.lib.models.loading import resolve_device
from fine_tune_assets.lib.registry.connection import worker_registry
from fine_tune_assets.lib.registry.ledger import EventKind, event_reference
from fine_tune_assets.lib.training import TrainingConfig, distributed, train_adapter
from fine_tune_assets.lib.training.checkpoints import training_identity
from fine_tune_assets.lib.training.export import merged_dir_for
from fine_tune_assets.lib.training.publish import publish_adapter


def main(request_path: str) -> None:
    request = json.loads(Path(request_path).read_text())
    config = TrainingConfig.from_dict(request["config"])
    rank = distributed.start(resolve_device(config.device))  # the process group, under torchrun
    try:
        if rank.is_main:
            with open_dagster_pipes() as pipes:
                _train_and_publish(request, config, pipes)
        else:  # its share of each step; logs to stderr, never to Pipes, the registry or the adapter folder
            logging.basicConfig(level=logging.INFO, format=f"rank {rank.rank}: %(message)s")
            _train(request, config, progress=None)
    finally:
        distributed.stop()


def _train(request: dict, config: TrainingConfig, progress) -> tuple[dict, str]:
    """``train_adapter`` on the request's dataset version; returns (metrics, training identity)."""
    adapters_dir = Path(request["adapters_dir"])
    identity = training_identity(request["dataset_version"], request["base_model"]["identity_hash"], config)
    reference = adapter_base_reference(request["base_model"], DataPaths.from_env(request["data_dir"]).models)
    metrics = train_adapter(request["train_path"], request["eval_path"], request["base_model"]["path"],
                            Path(request["run_dir"]) / "adapter", config, progress=progress,
                            checkpoint_dir=adapters_dir / ".checkpoints" / identity, identity=identity,
                            base_model_ref=reference)
    return metrics, identity


def _train_and_publish(request: dict, config: TrainingConfig, pipes) -> None:
    """Rank 0: train (reporting progress), publish the adapter and register it, report the materialization."""
    registry = worker_registry(request["data_dir"], request["registry"])
    started = datetime.now(UTC)

    def progress(p: dict) -> None:
        if "message" in p:
            pipes.log.info(p["message"])
            return
        loss, eta = p.get("loss"), p.get("eta_s")
        pipes.log.info(
            f"step {p.get('step')}/{p.get('max_steps')} loss {'-' if loss is None else f'{loss:.4f}'} "
            f"trained tokens/s {p.get('trained_tokens_per_s') or 0:.0f} "
            f"ETA {'-' if eta is None else f'{eta:.0f} s'}")

    run_folder = Path(request["run_dir"]) / "adapter"
    plan = _plan(request, config, pipes)
    metrics, identity = _train(request, config, progress)
    if plan:
        metrics = {**metrics, "plan": {"estimate": plan, **_against_actual(request, plan, metrics)}}
    adapter_id, folder, lineage = publish_adapter(
        run_folder, Path(request["adapters_dir"]), registry, request["dataset_version"],
        request["base_model"], config.to_dict(), config.config_hash, metrics, started,
        Path(request["repo"]), request.get("run_id"), request.get("trigger"), request.get("launched_by"))
    merged = merged_dir_for(run_folder)
    if merged.is_dir():  # a sub-folder: the adapter's content hash covers top-level files only
        shutil.rmtree(folder / "merged", ignore_errors=True)
        shutil.move(str(merged), str(folder / "merged"))
    pipes.report_asset_materialization(
        metadata={
            "adapter_id": adapter_id,
            "path": {"raw_value": str(folder), "type": "path"},
            "dataset_version": request["dataset_version"],
            "base_model": lineage["base_model"]["name"],
            "base_model_identity": lineage["base_model"]["identity_hash"],
            "training_config_hash": config.config_hash,
            "eval_loss": metrics["eval_loss"],
            "eval_loss_before": metrics["eval_loss_before"],
            "train_loss": metrics["train_loss"],
            "steps": metrics["steps"],
            "resumed_from_step": metrics["resumed_from_step"],
            "training_identity": identity,
            "ledger_event": event_reference(registry, EventKind.ADAPTER_TRAINED, adapter_id) or "-",
            "trained_tokens_per_s": round(metrics["trained_tokens_per_s"], 1),
            "train_seconds": round(metrics["train_seconds"], 1),
            "device": metrics["device"],
            "world_size": metrics["world_size"],
            "trigger": (request.get("trigger") or {}).get("trigger", "manual"),
            **_plan_metadata(metrics.get("plan")),
            **({"merged_model": {"raw_value": str(folder / "merged"), "type": "path"}}
               if (folder / "merged").is_dir() else {}),
        },
        data_version=adapter_id,
    )


def _plan(request: dict, config: TrainingConfig, pipes) -> dict | None:
    """``fine-tune-assets plan`` for this run (its base model, dataset version and config), made before it
    trains; None, with a log line, without a price table or when the base model's config is unusable."""
    from fine_tune_assets.lib.models.base_model import BaseModelError
    from fine_tune_assets.lib.training.model_size import load_config, model_size
    from fine_tune_assets.lib.training.plan import PlanError, Prices, dataset_workload, make_plan

    prices = Path(request["data_dir"]) / "config" / "prices.yaml"
    if not prices.exists():
        pipes.log.info(f"no cost plan: no price table at {prices}")
        return None
    try:
        model_config, _ = load_config(request["base_model"]["path"], request["data_dir"])
        size = model_size(model_config, request["base_model"]["name"], config.lora_r, config.target_modules)
        method = "qlora" if config.load_in_4bit else "lora"
        work = dataset_workload(Path(request["train_path"]).with_suffix(".parquet"), config, method,
                                f"dataset {request['dataset_version'][:12]}")
        plan = make_plan(size, work, Prices.load(prices))
    except (PlanError, BaseModelError, OSError, ValueError) as exc:
        pipes.log.warning(f"no cost plan: {exc}")
        return None
    pipes.log.info(f"plan: peak GPU memory {plan['peak_memory_gb']['total']} GB, "
                   f"{plan['training_tokens']:,} training tokens")
    return plan


def _against_actual(request: dict, plan: dict, metrics: dict) -> dict:
    from fine_tune_assets.lib.training.plan import Prices, hardware_entry, planned_against_actual
    from fine_tune_assets.lib.training.publish import hardware

    prices = Prices.load(Path(request["data_dir"]) / "config" / "prices.yaml")
    entry = hardware_entry(prices, metrics["device"], hardware(metrics["device"]).get("gpu"))
    return {"against_actual": planned_against_actual(plan, metrics, entry)}


def _plan_metadata(plan: dict | None) -> dict:
    """The plan as JSON metadata on the materialization, and its figures next to the run's."""
    if not plan:
        return {}
    a = plan["against_actual"]
    return {"plan": {"raw_value": plan["estimate"], "type": "json"},
            "planned_peak_memory_gb": a["planned_peak_memory_gb"],
            "actual_peak_memory_gb": a["actual_peak_memory_gb"],
            "actual_compute_hours": a["actual_compute_hours"],
            **({"estimated_cost": a["actual_cost"]} if a["actual_cost"] is not None else {})}


if __name__ == "__main__":
    main(sys.argv[1])
