"""Training in its own process, reporting to Dagster through Pipes.

``python -m fine_tune_assets.training_worker REQUEST.json``: a crash or out-of-memory here frees
all of training's memory and cannot take the Dagster code server down, and the same entry point
can be launched on a GPU node (PipesK8sClient) unchanged. Without Pipes (run by hand) it logs to
stderr.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from dagster_pipes import open_dagster_pipes

from .lib.adapters import publish_adapter
from .lib.training import TrainingConfig, train_adapter


def main(request_path: str) -> None:
    request = json.loads(Path(request_path).read_text())
    config = TrainingConfig.from_dict(request["config"])
    with open_dagster_pipes() as pipes:
        started = datetime.now(timezone.utc)

        def progress(p: dict) -> None:
            loss, eta = p.get("loss"), p.get("eta_s")
            pipes.log.info(
                f"step {p.get('step')}/{p.get('max_steps')} loss {'-' if loss is None else f'{loss:.4f}'} "
                f"trained tokens/s {p.get('trained_tokens_per_s') or 0:.0f} "
                f"ETA {'-' if eta is None else f'{eta:.0f} s'}")

        run_folder = Path(request["run_dir"]) / "adapter"
        metrics = train_adapter(request["train_path"], request["eval_path"], request["base_model"]["path"],
                                run_folder, config, progress=progress)
        adapter_id, folder, lineage = publish_adapter(
            run_folder, Path(request["adapters_dir"]), Path(request["registry"]), request["dataset_version"],
            request["base_model"], config.to_dict(), config.config_hash, metrics, started,
            Path(request["repo"]), request.get("run_id"))
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
                "trained_tokens_per_s": round(metrics["trained_tokens_per_s"], 1),
                "train_seconds": round(metrics["train_seconds"], 1),
                "device": metrics["device"],
            },
            data_version=adapter_id,
        )


if __name__ == "__main__":
    main(sys.argv[1])
