"""Adapter publication: content-hash id, lineage.json, model card, registry row.

The adapter id is the sha256 over the adapter's files except the run's metrics (weights, adapter
config, training config, tokenizer, chat template), so the same training on the same data gives
the same id, and any changed weight gives another.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from ..common.hashing import canonical_json, sha256_file, sha256_json
from ..common.parquet import fsync_path
from ..common.render import render_template
from ..common.versions import installed_version
from ..registry.connection import connect
from ..registry.ledger import EventKind, append_event, current_user, transaction

RUN_ONLY_FILES = {"training_metrics.json", "training_log.json", "lineage.json", "README.md"}
LIBRARIES = ("torch", "transformers", "trl", "peft", "accelerate", "bitsandbytes", "presidio-analyzer",
             "dagster", "fine_tune_assets")


def adapter_content_hash(folder: Path) -> str:
    files = {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name not in RUN_ONLY_FILES}
    return sha256_json(files)


def library_versions() -> dict:
    return {name: installed_version(name) for name in LIBRARIES}


def git_commit(repo: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=False)
    except OSError:
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def hardware(device: str) -> dict:
    info = {"device": device, "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "python": platform.python_version()}
    if device == "cuda":
        import torch

        info["gpu"] = torch.cuda.get_device_name(0)
    return info


CARD_METRICS = ("eval_loss", "perplexity", "format_compliance", "field_accuracy", "domain_term_recall")


def _eval_results(adapter_id: str, lineage: dict, report: dict | None) -> list:
    """``model-index`` entries (huggingface_hub ``EvalResult``) with a value: the evaluation report's fine-tuned
    metrics and per-field accuracies, else the eval loss training measured, else none (never a null)."""
    from huggingface_hub import EvalResult

    if report:
        tuned = report["metrics"]["fine_tuned"]
        values = {k: tuned.get(k) for k in CARD_METRICS}
        values |= {f"field_accuracy_{k}": v for k, v in (tuned.get("field_accuracy_by_field") or {}).items()}
        eval_set = (report.get("eval_set") or {}).get("sha256", "")
        source = f"held-out split of dataset {lineage['dataset_version'][:12]} (eval set {eval_set[:12]})"
    else:
        values = {"eval_loss": lineage["metrics"].get("eval_loss")}
        source = f"held-out split of dataset {lineage['dataset_version'][:12]}, at the end of training"
    return [EvalResult(task_type="text-generation", dataset_type="fine_tune_assets", dataset_name=source,
                       dataset_split="eval", metric_type=name, metric_value=round(float(value), 4))
            for name, value in values.items() if value is not None]


def model_card(adapter_id: str, lineage: dict, report: dict | None = None) -> str:
    """The adapter's README.md: Hub metadata (``base_model`` as the Hub id when known, a ``model-index`` with
    the measured results) built and parsed back by huggingface_hub, and a summary. Rewritten by the evaluation
    with its report; metadata, like ``eval/``, so outside the adapter id."""
    from huggingface_hub import ModelCard, ModelCardData

    base = lineage["base_model"]
    metrics = lineage["metrics"]
    data = ModelCardData(
        base_model=lineage.get("base_model_reference") or base["name"], library_name="peft", license="apache-2.0",
        tags=["lora", "fine_tune_assets"], datasets=[f"fine_tune_assets:{lineage['dataset_version']}"],
        model_name=adapter_id, eval_results=_eval_results(adapter_id, lineage, report) or None)
    tuned = (report or {}).get("metrics", {}).get("fine_tuned", {})
    body = render_template("training/templates/model_card.md.jinja", adapter_id=adapter_id, lineage=lineage,
                           base=base, metrics=metrics, tuned=tuned, report=report)
    text = f"---\n{data.to_yaml()}\n---\n{body}"
    ModelCard(text)  # parses the front matter back: a card the Hub would refuse raises here
    return text


def rewrite_card(adapter_dir: Path, report: dict) -> str:
    """Replace the adapter's model card by one with the evaluation's results (atomically); returns its sha256
    for the evaluation's ledger event. The adapter id does not change: the card is not part of it."""
    lineage = json.loads((adapter_dir / "lineage.json").read_text())
    card = adapter_dir / "README.md"
    tmp = adapter_dir / f".README.md.{os.getpid()}.tmp"
    tmp.write_text(model_card(lineage["adapter_id"], lineage, report), encoding="utf-8")
    fsync_path(tmp)
    os.replace(tmp, card)
    fsync_path(adapter_dir)
    return sha256_file(card)


def _renew_run_files(run_folder: Path, target: Path) -> None:
    """The same adapter published again (same weights, same id): move the new run's files over the published
    ones, one atomic rename each, so that the folder and its weights never disappear (a kill in between
    leaves a registered adapter with its files) and what was added beside them (``eval/``, ``merged/``)
    stays. Top-level files the new run lacks go; the emptied run folder is removed."""
    new = {p.name for p in run_folder.iterdir() if p.is_file()}
    for name in sorted(new):
        os.replace(run_folder / name, target / name)
    for path in target.iterdir():
        if path.is_file() and path.name not in new:
            path.unlink()
    fsync_path(target)
    shutil.rmtree(run_folder)


def publish_adapter(run_folder: Path, adapters_dir: Path, registry: Path | str, dataset_version: str,
                    base_model: dict, training_config: dict, training_config_hash: str, metrics: dict,
                    started_at: datetime, repo: Path, run_id: str | None = None,
                    trigger: dict | None = None, launched_by: str | None = None) -> tuple[str, Path, dict]:
    """Move a finished adapter folder to ``adapters/<adapter_id>/`` with lineage and card; register it.

    ``trigger``: why the run was started when a sensor started it (the run's ``fine_tune_assets/*``
    tags: ``trigger`` drift or erasure, the drift evaluation and ledger seq, or the erasure request).
    ``launched_by``: who started the training (``sensor:NAME`` for a sensor's run), default this process's
    user; the four-eyes rule (``audit.access``) keeps that user from promoting it to a protected stage."""
    adapter_id = adapter_content_hash(run_folder)
    lineage = {
        "adapter_id": adapter_id,
        "dataset_version": dataset_version,
        "base_model": {k: v for k, v in base_model.items() if k != "chat_template"},
        # what adapter_config.json names as the base: a Hub id, or a name under the data folder's models/
        "base_model_reference": json.loads((run_folder / "adapter_config.json").read_text())
        .get("base_model_name_or_path"),
        "training_config": training_config,
        "training_config_hash": training_config_hash,
        "seed": training_config.get("seed"),
        "code": {"git_commit": git_commit(repo), "package_version": library_versions()["fine_tune_assets"]},
        "libraries": library_versions(),
        "hardware": hardware(metrics.get("device", "cpu")),
        "metrics": metrics,
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "run_id": run_id,
        "trigger": trigger or None,
        "launched_by": launched_by or current_user(),
    }
    (run_folder / "lineage.json").write_text(json.dumps(lineage, indent=2, sort_keys=True))
    (run_folder / "README.md").write_text(model_card(adapter_id, lineage))
    for path in run_folder.iterdir():
        if path.is_file():
            fsync_path(path)  # on disk before the registry says they are there
    target = adapters_dir / adapter_id
    adapters_dir.mkdir(parents=True, exist_ok=True)
    created = not target.exists()
    if created:
        os.replace(run_folder, target)
    else:
        _renew_run_files(run_folder, target)
    fsync_path(adapters_dir)
    files = {p.name: sha256_file(p) for p in sorted(target.iterdir()) if p.is_file()}
    try:
        with connect(registry) as con, transaction(con):  # the row and its ledger event, or neither
            con.execute("DELETE FROM adapters WHERE adapter_id = ?", [adapter_id])
            con.execute("INSERT INTO adapters VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [adapter_id, datetime.now(UTC), str(target), dataset_version,
                         canonical_json(lineage["base_model"]), canonical_json(training_config),
                         training_config_hash, canonical_json(metrics), canonical_json(lineage), run_id])
            append_event(con, EventKind.ADAPTER_TRAINED, adapter_id, {
                "adapter_id": adapter_id, "dataset_version": dataset_version,
                "base_model_identity_hash": base_model.get("identity_hash"),
                "training_config_hash": training_config_hash, "files": files, "launched_by": lineage["launched_by"]})
    except BaseException:
        if created:  # not registered: back where it came from, out of sight, and publishable again
            os.replace(target, run_folder)
        raise
    return adapter_id, target, lineage
