"""Base model vs fine-tuned adapter on the held-out split: what did fine-tuning change?

Plain Python, no Dagster. One model is loaded once; the base model's numbers come from the same
weights with the adapter switched off (``PeftModel.disable_adapter``), so both sides see exactly
the same tokenizer, chat template (the one saved with the adapter, i.e. the training template),
prompts and decoding settings.

Metrics, each for base and fine-tuned:

- ``eval_loss`` / ``perplexity``: token-weighted NLL of the assistant tokens of the held-out split,
  labelled exactly as in training (same template, same masking).
- ``format_compliance``, ``field_accuracy``, ``domain_term_recall``: the greedy answers scored against
  the references (``scoring``).
- ``general_loss``: loss on a fixed set of general prompts: the regression check.

The promotion gate (``gate``): the fine-tuned model must beat the base model on the primary metric and may
not raise the general loss by more than ``max_general_regression``. The spec is ``spec``, the model passes
``inference``, the report files ``report``, the registry row ``store``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

from ..common.hashing import record_id_for, sha256_file
from ..common.render import percent
from ..models.chat_template import read_conversations, tokenize_split, training_chat_template
from ..models.loading import load_base_model, peft_wrapping, resolve_device
from .gate import champion_gate, promotion_gate
from .inference import Progress, assistant_loss, model_pass
from .report import pick_examples
from .scoring import score_generations, split_prompt
from .spec import EvalSpec


def evaluate_adapter(adapter_dir: str | Path, base_model_dir: str | Path, dataset_dir: str | Path, spec: EvalSpec,
                     device: str = "auto", progress: Progress | None = None,
                     is_clean: Callable[[str], bool] | None = None, champion: dict | None = None) -> dict:
    """Evaluate base vs fine-tuned on ``dataset_dir/eval.jsonl``; return the report dict (see module docstring).

    ``is_clean(text)`` decides whether a text may appear in the report's examples (a residual-PII scan).
    ``champion`` ({adapter_id, adapter_dir, known_record_ids}): the adapter in production, on the same base
    model; it answers the same prompts as a third side, and ``report["champion"]`` compares the two on the
    primary metric overall and on the records its dataset version never held (``known_record_ids``).
    """
    from peft import PeftModel

    say = progress or (lambda _message: None)
    adapter_dir, eval_path = Path(adapter_dir), Path(dataset_dir) / "eval.jsonl"
    conversations = _held_out(Path(dataset_dir))
    device = resolve_device(device)
    tokenizer = _adapter_tokenizer(adapter_dir)
    template = training_chat_template(tokenizer)
    lineage_path = adapter_dir / "lineage.json"
    lineage = json.loads(lineage_path.read_text()) if lineage_path.exists() else {}
    max_len = (lineage.get("training_config") or {}).get("max_seq_length") or 4096
    eval_rows = tokenize_split(tokenizer, conversations, template, max_len, "eval")
    general_rows = tokenize_split(tokenizer, spec.general_prompts, template, max_len, "general") \
        if spec.general_prompts else []
    split = [split_prompt(m) for m in conversations]
    prompts, references = [p for p, _ in split], [r for _, r in split]

    say(f"loading {base_model_dir} + adapter on {device}")
    with peft_wrapping():
        model = PeftModel.from_pretrained(load_base_model(base_model_dir, device), str(adapter_dir))
        if champion:
            say(f"loading the adapter in production, {champion['adapter_id'][:12]}, as the champion")
            model.load_adapter(str(champion["adapter_dir"]), adapter_name="champion")
    model.eval()
    known = set(champion["known_record_ids"]) if champion else set()
    new_rows = [i for i, m in enumerate(conversations) if record_id_for(m) not in known]
    metrics, answers, scores, new_loss = {}, {}, {}, {}
    for side in ("base", "fine_tuned", "champion") if champion else ("base", "fine_tuned"):
        started = time.perf_counter()
        if side != "base":
            model.set_adapter("champion" if side == "champion" else "default")
        with model.disable_adapter() if side == "base" else nullcontext():
            metrics[side], answers[side] = model_pass(model, tokenizer, eval_rows, general_rows, prompts, spec,
                                                      say, side)
            if champion and side != "base" and new_rows and spec.primary_metric == "eval_loss":
                new_loss[side] = assistant_loss(model, [eval_rows[i] for i in new_rows], tokenizer.pad_token_id,
                                                spec.loss_batch_size)[0]
        scores[side] = score_generations(spec, references, answers[side])
        metrics[side].update({k: v for k, v in scores[side].items() if k != "per_example"})
        metrics[side]["seconds"] = time.perf_counter() - started
        say(f"{side}: eval loss {metrics[side]['eval_loss']:.4f}, format compliance "
            f"{percent(metrics[side]['format_compliance'])}, field accuracy {percent(metrics[side]['field_accuracy'])}")
    regression, gate = promotion_gate(spec, metrics["base"], metrics["fine_tuned"])
    champion_report = _champion(spec, champion, metrics, answers, references, new_rows, new_loss) \
        if champion else None
    answers.pop("champion", None)
    metrics.pop("champion", None)  # in report["champion"]["metrics"]: "metrics" stays base vs fine-tuned
    examples, withheld = pick_examples(spec, prompts, references, answers, scores, is_clean)
    return {
        "adapter_id": lineage.get("adapter_id", adapter_dir.name),
        "dataset_version": lineage.get("dataset_version"),
        "base_model": (lineage.get("base_model") or {}).get("name", str(base_model_dir)),
        "created_at": datetime.now(UTC).isoformat(),
        "device": device,
        "eval_set": {"split": "eval", "path": str(eval_path), "sha256": sha256_file(eval_path),
                     "n_examples": len(conversations), "n_format_applicable": scores["base"]["n_format_applicable"],
                     "n_general_prompts": len(spec.general_prompts), "train_overlap": 0},  # _held_out refuses any
        "config": {**spec.to_dict(), "response_format": spec.response_format.describe(), "spec_hash": spec.spec_hash,
                   "source": spec.source},
        "metrics": metrics,
        "regression": regression,
        "gate": gate,
        "champion": champion_report,
        "examples": examples,
        "examples_withheld_for_pii": withheld,
        "generations": [{"index": i, "base": answers["base"][i], "fine_tuned": answers["fine_tuned"][i],
                         "base_compliant": scores["base"]["per_example"][i]["compliant"],
                         "fine_tuned_compliant": scores["fine_tuned"]["per_example"][i]["compliant"]}
                        for i in range(len(prompts))],
        "training": _training_summary(lineage),
    }


def _champion(spec: EvalSpec, champion: dict, metrics: dict, answers: dict, references: list[str],
              new_rows: list[int], new_loss: dict) -> dict:
    """The champion/challenger comparison on the primary metric: overall, and on the new records."""
    primary = spec.primary_metric

    def on_new(side: str):
        if primary == "eval_loss":
            return new_loss.get(side)
        return score_generations(spec, [references[i] for i in new_rows],
                                 [answers[side][i] for i in new_rows])[primary] if new_rows else None

    scopes = {"overall": {"champion": metrics["champion"].get(primary),
                          "challenger": metrics["fine_tuned"].get(primary), "n": len(references)},
              "new_records": {"champion": on_new("champion"), "challenger": on_new("fine_tuned"),
                              "n": len(new_rows)}}
    return {**champion_gate(spec, champion["adapter_id"], scopes), "metrics": metrics["champion"]}


def _held_out(dataset_dir: Path) -> list[list[dict]]:
    """The held-out conversations; an eval split sharing a conversation with train.jsonl is refused."""
    eval_path = dataset_dir / "eval.jsonl"
    conversations = read_conversations(eval_path)
    train_ids = {record_id_for(m) for m in read_conversations(dataset_dir / "train.jsonl")}
    overlap = sum(record_id_for(m) in train_ids for m in conversations)
    if overlap:
        raise ValueError(f"{eval_path}: {overlap} held-out conversations also appear in train.jsonl; "
                         "refusing to evaluate on training data")
    return conversations


def _adapter_tokenizer(adapter_dir: Path):
    """The adapter's own tokenizer copy: it carries the training chat template."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _training_summary(lineage: dict) -> dict:
    metrics, config = lineage.get("metrics") or {}, lineage.get("training_config") or {}
    return {"steps": metrics.get("steps"), "train_seconds": metrics.get("train_seconds"),
            "trained_tokens_per_s": metrics.get("trained_tokens_per_s"),
            "config_hash": lineage.get("training_config_hash"), "learning_rate": config.get("learning_rate"),
            "per_device_batch_size": config.get("per_device_batch_size")}
