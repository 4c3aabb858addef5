"""Base model vs fine-tuned adapter on the held-out split: what did fine-tuning change?

Plain Python, no Dagster. One model is loaded once; the base model's numbers come from the same
weights with the adapter switched off (``PeftModel.disable_adapter``), so both sides see exactly
the same tokenizer, chat template (the one saved with the adapter, i.e. the training template),
prompts and decoding settings.

Metrics, each for base and fine-tuned:

- ``eval_loss`` / ``perplexity``: token-weighted NLL of the assistant tokens of the held-out split,
  labelled exactly as in training (same template, same masking).
- ``format_compliance``: share of greedy answers that are, as a whole, one JSON value valid under the
  configured JSON Schema (or a full match of the configured regex). Scored only on held-out examples
  whose *reference* answer satisfies the format: free-text chats in the same split do not count.
- ``field_accuracy``: exact match of structured fields against the reference (compliance alone can
  be gamed by a model that answers the same category for everything).
- ``domain_term_recall``: of the configured domain terms a reference answer uses, the share the
  model's answer uses too.
- ``general_loss``: loss on a fixed set of general prompts: the regression check.

The promotion gate: the fine-tuned model must beat the base model on the primary metric and may not
raise the general loss by more than ``max_general_regression``.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from ..common.hashing import canonical_json, record_id_for, sha256_file, sha256_json
from ..models.shared_prefix import common_prefix, prefix_cache, prefix_groups

EVAL_LOGIC_VERSION = "1"
PRIMARY_METRICS = {"format_compliance": True, "field_accuracy": True, "eval_loss": False}  # name -> higher is better
Progress = Callable[[str], None]


class EvalSpecError(ValueError):
    """The evaluation configuration is unusable (names the file and the key)."""


@dataclass(frozen=True)
class ResponseFormat:
    """The answer format: a JSON Schema (whole answer one JSON value) or a regex (whole answer matches)."""

    kind: str  # json_schema | regex | none
    name: str = ""
    schema: dict | None = None
    pattern: str | None = None

    def check(self, text: str) -> tuple[bool, Any]:
        """(complies, parsed JSON or None). Surrounding prose or code fences make an answer non-compliant."""
        text = text.strip()
        if self.kind == "regex":
            return re.fullmatch(self.pattern, text, flags=re.DOTALL) is not None, None
        if self.kind != "json_schema":
            return False, None
        try:
            value = json.loads(text)
        except ValueError:
            return False, None
        return self._validator.is_valid(value), value

    @cached_property
    def _validator(self):
        """Built once: every held-out answer of both models is checked against the same schema."""
        from jsonschema import Draft202012Validator

        return Draft202012Validator(self.schema)

    def describe(self) -> dict:
        return {"kind": self.kind, "name": self.name, "pattern": self.pattern}


@dataclass
class EvalSpec:
    """What to measure; loaded from ``config/evaluation.yaml`` (see that file for the meaning of each key)."""

    response_format: ResponseFormat = field(default_factory=lambda: ResponseFormat("none"))
    accuracy_fields: list[str] = field(default_factory=list)
    domain_terms: list[str] = field(default_factory=list)
    general_prompts: list[list[dict]] = field(default_factory=list)
    primary_metric: str = "format_compliance"
    max_general_regression: float = 0.10
    max_new_tokens: int = 80
    generation_batch_size: int = 32
    loss_batch_size: int = 16
    examples_in_report: int = 4
    source: str = ""

    def to_dict(self) -> dict:
        return {
            "response_format": {**self.response_format.describe(), "schema": self.response_format.schema},
            "accuracy_fields": self.accuracy_fields, "domain_terms": self.domain_terms,
            "general_prompts_sha256": sha256_json(self.general_prompts), "n_general_prompts": len(self.general_prompts),
            "primary_metric": self.primary_metric, "max_general_regression": self.max_general_regression,
            "max_new_tokens": self.max_new_tokens, "generation_batch_size": self.generation_batch_size,
            "examples_in_report": self.examples_in_report, "logic_version": EVAL_LOGIC_VERSION,
        }

    @property
    def spec_hash(self) -> str:
        return sha256_json(self.to_dict())


def load_eval_spec(path: str | Path) -> EvalSpec:
    """Read the YAML spec; relative file names are resolved against the spec's folder."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise EvalSpecError(f"{path}: cannot read evaluation spec: {exc}") from None
    unknown = set(raw) - {"response_format", "accuracy_fields", "domain_terms", "general_prompts", "primary_metric",
                          "max_general_regression", "max_new_tokens", "generation_batch_size", "loss_batch_size",
                          "examples_in_report"}
    if unknown:
        raise EvalSpecError(f"{path}: unknown key(s) {sorted(unknown)}")
    folder = path.parent
    fmt = ResponseFormat("none")
    rf = raw.get("response_format") or {}
    if "json_schema" in rf:
        schema_path = folder / rf["json_schema"]
        try:
            schema = json.loads(schema_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise EvalSpecError(f"{path}: response_format.json_schema {schema_path}: {exc}") from None
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise EvalSpecError(f"{schema_path}: not a valid JSON Schema: {exc.message}") from None
        fmt = ResponseFormat("json_schema", name=Path(rf["json_schema"]).name, schema=schema)
    elif "regex" in rf:
        try:
            re.compile(rf["regex"])
        except re.error as exc:
            raise EvalSpecError(f"{path}: response_format.regex does not compile: {exc}") from None
        fmt = ResponseFormat("regex", name="regex", pattern=rf["regex"])
    fields = list(raw.get("accuracy_fields") or [])
    if not fields and fmt.schema:
        fields = [k for k, v in (fmt.schema.get("properties") or {}).items() if isinstance(v, dict) and "enum" in v]
    general: list[list[dict]] = []
    if raw.get("general_prompts"):
        general_path = folder / raw["general_prompts"]
        try:
            with open(general_path, encoding="utf-8") as handle:
                for number, line in enumerate(handle, 1):
                    if line.strip():
                        try:
                            general.append(json.loads(line)["messages"])
                        except (ValueError, KeyError, TypeError):
                            raise EvalSpecError(f"{general_path}:{number}: expected {{\"messages\": [...]}}") from None
        except OSError as exc:
            raise EvalSpecError(f"{path}: general_prompts: {exc}") from None
    primary = raw.get("primary_metric", "format_compliance")
    if primary not in PRIMARY_METRICS:
        raise EvalSpecError(f"{path}: primary_metric must be one of {sorted(PRIMARY_METRICS)}, not {primary!r}")
    return EvalSpec(
        response_format=fmt, accuracy_fields=fields, domain_terms=list(raw.get("domain_terms") or []),
        general_prompts=general, primary_metric=primary,
        max_general_regression=float(raw.get("max_general_regression", 0.10)),
        max_new_tokens=int(raw.get("max_new_tokens", 80)),
        generation_batch_size=int(raw.get("generation_batch_size", 32)),
        loss_batch_size=int(raw.get("loss_batch_size", 16)),
        examples_in_report=int(raw.get("examples_in_report", 4)), source=str(path))


# --- scoring (pure Python) ------------------------------------------------------------------------

def split_prompt(messages: list[dict]) -> tuple[list[dict], str]:
    """The prompt (everything before the last assistant turn) and that turn's reference answer."""
    last = max(i for i, m in enumerate(messages) if m.get("role") == "assistant")
    return messages[:last], messages[last]["content"]


def _term_pattern(term: str) -> re.Pattern:
    return re.compile(r"(?<!\w)" + re.escape(term) + r"(?!\w)", re.IGNORECASE)


def score_generations(spec: EvalSpec, references: list[str], generations: list[str]) -> dict:
    """Format compliance, field accuracy and domain-term recall of one model's answers."""
    fmt = spec.response_format
    applicable = compliant = 0
    field_hits = {name: 0 for name in spec.accuracy_fields}
    per_example = []
    for reference, generation in zip(references, generations, strict=True):
        ref_ok, ref_value = fmt.check(reference)
        ok, value = fmt.check(generation)
        per_example.append({"applicable": ref_ok, "compliant": ok if ref_ok else None})
        if not ref_ok:
            continue
        applicable += 1
        compliant += ok
        for name in spec.accuracy_fields:
            if ok and isinstance(value, dict) and isinstance(ref_value, dict) and value.get(name) == ref_value.get(name):
                field_hits[name] += 1
    terms = [(term, _term_pattern(term)) for term in spec.domain_terms]
    expected = used = 0
    for reference, generation in zip(references, generations, strict=True):
        for _, pattern in terms:
            if pattern.search(reference):
                expected += 1
                used += bool(pattern.search(generation))
    by_field = {name: (hits / applicable if applicable else None) for name, hits in field_hits.items()}
    values = [v for v in by_field.values() if v is not None]
    return {
        "format_compliance": compliant / applicable if applicable else None,
        "n_format_applicable": applicable,
        "field_accuracy": sum(values) / len(values) if values else None,
        "field_accuracy_by_field": by_field,
        "domain_term_recall": used / expected if expected else None,
        "per_example": per_example,
    }


def promotion_gate(spec: EvalSpec, base: dict, fine_tuned: dict) -> tuple[dict, dict]:
    """(regression, gate): beat the base on the primary metric; general loss may not rise beyond the threshold."""
    reasons, passed = [], True
    primary, higher = spec.primary_metric, PRIMARY_METRICS[spec.primary_metric]
    b, f = base.get(primary), fine_tuned.get(primary)
    if b is None or f is None:
        passed = False
        reasons.append(f"{primary} could not be measured (no held-out reference satisfies the response format?); "
                       "set primary_metric: eval_loss in the evaluation spec for free-text data")
    elif (f > b) if higher else (f < b):
        reasons.append(f"{primary} {f:.3f} beats base {b:.3f}")
    else:
        passed = False
        reasons.append(f"{primary} {f:.3f} does not beat base {b:.3f}")
    gb, gf = base.get("general_loss"), fine_tuned.get("general_loss")
    change = (gf - gb) / gb if gb and gf is not None else None
    regression_ok = change is None or change <= spec.max_general_regression
    regression = {"metric": "general_loss", "base": gb, "fine_tuned": gf, "relative_change": change,
                  "threshold": spec.max_general_regression, "passed": regression_ok}
    if change is None:
        reasons.append("general-prompt regression check skipped: no general prompts configured")
    elif regression_ok:
        reasons.append(f"general loss {change:+.1%} <= +{spec.max_general_regression:.0%}")
    else:
        passed = False
        reasons.append(f"general loss {change:+.1%} > +{spec.max_general_regression:.0%}: the model got worse "
                       "at general prompts")
    gate = {"primary_metric": primary, "higher_is_better": higher, "base": b, "fine_tuned": f,
            "passed": passed, "reasons": reasons}
    return regression, gate


# --- model passes ---------------------------------------------------------------------------------

def _causal_parts(model):
    """(backbone, lm_head) of a causal LM, through a PEFT wrapper (LoRA layers are injected in place)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.base_model, base.get_output_embeddings()


def _batches(sequences: list[list[int]], batch_size: int) -> list[list[int]]:
    """Index batches that never mix rows with different openings (so each batch keeps its shared
    prefix, see ``shared_prefix``), sorted by length inside each group (little padding)."""
    batches = []
    for group in prefix_groups(sequences):
        members = sorted(group, key=lambda i: len(sequences[i]))
        batches += [members[k:k + batch_size] for k in range(0, len(members), batch_size)]
    return batches


def assistant_loss(model, rows: list[dict], pad_id: int, batch_size: int = 8) -> tuple[float | None, int]:
    """Token-weighted mean NLL over label tokens; only labelled positions go through the LM head."""
    import torch
    import torch.nn.functional as F

    from ..training.train import IGNORE_INDEX

    backbone, head = _causal_parts(model)
    device = head.weight.device
    total, count = 0.0, 0
    with torch.no_grad():
        for chunk in _batches([r["input_ids"] for r in rows], batch_size):
            batch = [rows[i] for i in chunk]
            # Share only positions whose next token is not a label: the loss needs no hidden state there.
            first_label = min(next((k for k, y in enumerate(r["labels"]) if y != IGNORE_INDEX), len(r["labels"]))
                              for r in batch)
            shared = common_prefix([r["input_ids"] for r in batch], first_label - 1)
            width = max(len(r["input_ids"]) for r in batch) - shared
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
            mask = torch.zeros((len(batch), shared + width), dtype=torch.long)
            mask[:, :shared] = 1
            for j, r in enumerate(batch):
                n = len(r["input_ids"]) - shared
                ids[j, :n], labels[j, :n] = torch.tensor(r["input_ids"][shared:]), torch.tensor(r["labels"][shared:])
                mask[j, shared:shared + n] = 1
            cache = prefix_cache(backbone, batch[0]["input_ids"][:shared], len(batch), device) if shared else None
            hidden = backbone(input_ids=ids.to(device), attention_mask=mask.to(device), cache=cache,
                              use_cache=cache is not None).last_hidden_state
            shifted = labels[:, 1:].to(device)
            keep = shifted != IGNORE_INDEX
            logits = head(hidden[:, :-1][keep]).float()
            total += float(F.cross_entropy(logits, shifted[keep], reduction="sum"))
            count += int(keep.sum())
    return (total / count if count else None), count


def generate_answers(model, tokenizer, prompts: list[list[dict]], max_new_tokens: int, batch_size: int,
                     progress: Progress | None = None, label: str = "") -> tuple[list[str], dict]:
    """Greedy answers in batches that share their prompt's opening (e.g. the system prompt) through one
    key/value cache; each row's own part is left-padded after the shared part, and the attention mask
    hides the padding (positions come from the mask, so every row sees the positions it would alone)."""
    import torch

    encoded = [tokenizer(tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True),
                         add_special_tokens=False)["input_ids"] for p in prompts]
    stop_ids = sorted({tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")}
                      - {None, tokenizer.unk_token_id})
    pad_id = tokenizer.pad_token_id
    backbone, head = _causal_parts(model)
    device = head.weight.device
    answers: list[str] = [""] * len(prompts)
    new_tokens, done = 0, 0
    started = time.perf_counter()
    for chunk in _batches(encoded, batch_size):
        rows = [encoded[i] for i in chunk]
        shared = common_prefix(rows, min(len(r) for r in rows) - 1)
        width = max(len(r) for r in rows) - shared
        ids = torch.full((len(rows), shared + width), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for j, r in enumerate(rows):
            ids[j, :shared], mask[j, :shared] = torch.tensor(r[:shared]), 1
            own = r[shared:]
            ids[j, shared + width - len(own):], mask[j, shared + width - len(own):] = torch.tensor(own), 1
        with torch.no_grad():
            cache = prefix_cache(backbone, rows[0][:shared], len(rows), device) if shared else None
            out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), cache=cache,
                                 max_new_tokens=max_new_tokens, do_sample=False, temperature=None, top_p=None,
                                 top_k=None, eos_token_id=stop_ids, pad_token_id=pad_id)
        for row, index in zip(out[:, ids.shape[1]:].tolist(), chunk, strict=True):
            cut = next((k for k, tok in enumerate(row) if tok in stop_ids), len(row))
            new_tokens += cut
            answers[index] = tokenizer.decode(row[:cut], skip_special_tokens=True)
        done += len(chunk)
        if progress:
            rate = done / (time.perf_counter() - started)
            progress(f"{label} generation {done}/{len(prompts)} prompts, ETA {(len(prompts) - done) / rate:.0f} s")
    seconds = time.perf_counter() - started
    return answers, {"generation_seconds": seconds, "mean_generated_tokens": new_tokens / max(len(prompts), 1),
                     "n_generated": len(prompts)}


def _read_split(path: Path) -> list[list[dict]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line)["messages"] for line in handle if line.strip()]


def pick_examples(spec: EvalSpec, prompts: list[list[dict]], references: list[str], answers: dict[str, list[str]],
                  scores: dict[str, dict], is_clean: Callable[[str], bool] | None = None) -> tuple[list[dict], int]:
    """A few side-by-side examples: format-scored ones first, then a free-text one; none with residual PII."""
    applicable = [i for i, e in enumerate(scores["fine_tuned"]["per_example"]) if e["applicable"]]
    others = [i for i in range(len(prompts)) if i not in set(applicable)]
    wanted = spec.examples_in_report
    candidates = applicable[: max(wanted - 1, 1)] + others[:1] + applicable[max(wanted - 1, 1):]
    chosen, withheld = [], 0
    for i in candidates:
        if len(chosen) >= wanted:
            break
        prompt = next((m["content"] for m in reversed(prompts[i]) if m["role"] == "user"), "")
        texts = [prompt, references[i], answers["base"][i], answers["fine_tuned"][i]]
        if is_clean and not all(is_clean(t) for t in texts):
            withheld += 1
            continue
        chosen.append({"prompt": prompt, "reference": references[i], "base": answers["base"][i],
                       "fine_tuned": answers["fine_tuned"][i],
                       "base_compliant": scores["base"]["per_example"][i]["compliant"],
                       "fine_tuned_compliant": scores["fine_tuned"]["per_example"][i]["compliant"]})
    return chosen, withheld


def evaluate_adapter(adapter_dir: str | Path, base_model_dir: str | Path, dataset_dir: str | Path, spec: EvalSpec,
                     device: str = "auto", progress: Progress | None = None,
                     is_clean: Callable[[str], bool] | None = None) -> dict:
    """Evaluate base vs fine-tuned on ``dataset_dir/eval.jsonl``; return the report dict (see module docstring).

    ``is_clean(text)`` decides whether a text may appear in the report's examples (a residual-PII scan).
    """
    from peft import PeftModel
    from transformers import AutoTokenizer

    from ..training.train import load_base_model, resolve_device, tokenize_split, training_chat_template

    say = progress or (lambda _message: None)
    adapter_dir, dataset_dir = Path(adapter_dir), Path(dataset_dir)
    eval_path = dataset_dir / "eval.jsonl"
    conversations = _read_split(eval_path)
    train_ids = {record_id_for(m) for m in _read_split(dataset_dir / "train.jsonl")}
    overlap = sum(record_id_for(m) in train_ids for m in conversations)
    if overlap:
        raise ValueError(f"{eval_path}: {overlap} held-out conversations also appear in train.jsonl; "
                         "refusing to evaluate on training data")
    device = resolve_device(device)
    tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir))  # the adapter's own copy: the training template
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
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
    model = PeftModel.from_pretrained(load_base_model(base_model_dir, device), str(adapter_dir))
    model.eval()
    metrics: dict[str, dict] = {}
    answers: dict[str, list[str]] = {}
    scores: dict[str, dict] = {}
    for side in ("base", "fine_tuned"):
        started = time.perf_counter()
        if side == "base":
            with model.disable_adapter():
                metrics[side], answers[side] = _model_pass(model, tokenizer, eval_rows, general_rows, prompts, spec,
                                                           say, side)
        else:
            metrics[side], answers[side] = _model_pass(model, tokenizer, eval_rows, general_rows, prompts, spec,
                                                       say, side)
        scores[side] = score_generations(spec, references, answers[side])
        metrics[side].update({k: v for k, v in scores[side].items() if k != "per_example"})
        metrics[side]["seconds"] = time.perf_counter() - started
        say(f"{side}: eval loss {metrics[side]['eval_loss']:.4f}, format compliance "
            f"{_pct(metrics[side]['format_compliance'])}, field accuracy {_pct(metrics[side]['field_accuracy'])}")
    regression, gate = promotion_gate(spec, metrics["base"], metrics["fine_tuned"])
    examples, withheld = pick_examples(spec, prompts, references, answers, scores, is_clean)
    generations = [{"index": i, "base": answers["base"][i], "fine_tuned": answers["fine_tuned"][i],
                    "base_compliant": scores["base"]["per_example"][i]["compliant"],
                    "fine_tuned_compliant": scores["fine_tuned"]["per_example"][i]["compliant"]}
                   for i in range(len(prompts))]
    training_metrics = lineage.get("metrics") or {}
    training_config = lineage.get("training_config") or {}
    return {
        "adapter_id": lineage.get("adapter_id", adapter_dir.name),
        "dataset_version": lineage.get("dataset_version"),
        "base_model": (lineage.get("base_model") or {}).get("name", str(base_model_dir)),
        "created_at": datetime.now(UTC).isoformat(),
        "device": device,
        "eval_set": {"split": "eval", "path": str(eval_path), "sha256": sha256_file(eval_path),
                     "n_examples": len(conversations), "n_format_applicable": scores["base"]["n_format_applicable"],
                     "n_general_prompts": len(spec.general_prompts), "train_overlap": overlap},
        "config": {**spec.to_dict(), "response_format": spec.response_format.describe(), "spec_hash": spec.spec_hash,
                   "source": spec.source},
        "metrics": metrics,
        "regression": regression,
        "gate": gate,
        "examples": examples,
        "examples_withheld_for_pii": withheld,
        "generations": generations,
        "training": {"steps": training_metrics.get("steps"), "train_seconds": training_metrics.get("train_seconds"),
                     "trained_tokens_per_s": training_metrics.get("trained_tokens_per_s"),
                     "config_hash": lineage.get("training_config_hash"),
                     "learning_rate": training_config.get("learning_rate"),
                     "per_device_batch_size": training_config.get("per_device_batch_size")},
    }


def _model_pass(model, tokenizer, eval_rows, general_rows, prompts, spec: EvalSpec, say: Progress, side: str):
    eval_loss, eval_tokens = assistant_loss(model, eval_rows, tokenizer.pad_token_id, spec.loss_batch_size)
    general_loss = assistant_loss(model, general_rows, tokenizer.pad_token_id, spec.loss_batch_size)[0] \
        if general_rows else None
    say(f"{side}: eval loss {eval_loss:.4f} over {eval_tokens} tokens")
    answers, gen = generate_answers(model, tokenizer, prompts, spec.max_new_tokens, spec.generation_batch_size,
                                    say, side)
    metrics = {"eval_loss": eval_loss, "perplexity": math.exp(eval_loss) if eval_loss is not None else None,
               "eval_tokens": eval_tokens, "general_loss": general_loss,
               "general_perplexity": math.exp(general_loss) if general_loss is not None else None, **gen}
    return metrics, answers


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def write_report(report: dict, adapter_dir: Path) -> Path:
    """``<adapter>/eval/``: eval_report.json (all generations), report.md, report.html, loss_curve.png.

    Written to a temporary folder and renamed into place, so a crash never leaves a half-written report.
    The folder sits below the adapter's top level, outside the adapter's content hash.
    """
    import shutil

    from .report import plot_loss_curve, render_html, render_markdown

    target = adapter_dir / "eval"
    tmp = adapter_dir / f".eval.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    log_path = adapter_dir / "training_log.json"
    history = json.loads(log_path.read_text()) if log_path.exists() else []
    points = {f"{label} (held-out)": report["metrics"][side]["eval_loss"]
              for side, label in (("base", "base model"), ("fine_tuned", "fine-tuned"))
              if report["metrics"][side].get("eval_loss") is not None}
    curve = plot_loss_curve(history, tmp / "loss_curve.png", eval_points=points)
    name = curve.name if curve else None
    (tmp / "eval_report.json").write_text(json.dumps(report, indent=2, sort_keys=True), encoding="utf-8")
    (tmp / "report.md").write_text(render_markdown(report, loss_curve=name), encoding="utf-8")
    (tmp / "report.html").write_text(
        render_html(report, loss_curve=name, loss_curve_bytes=curve.read_bytes() if curve else None), encoding="utf-8")
    old = adapter_dir / f".eval.{os.getpid()}.old"
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
    return target


# --- registry -------------------------------------------------------------------------------------

EVALUATIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS evaluations (
    eval_id VARCHAR PRIMARY KEY,
    adapter_id VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    dataset_version VARCHAR,
    eval_set_sha256 VARCHAR NOT NULL,
    spec_hash VARCHAR NOT NULL,
    metrics JSON NOT NULL,
    gate JSON NOT NULL,
    report_path VARCHAR NOT NULL
);
"""


def evaluation_id(report: dict) -> str:
    """Same adapter, same held-out set, same spec and logic = same evaluation."""
    return sha256_json({"adapter": report["adapter_id"], "eval_set": report["eval_set"]["sha256"],
                        "spec": report["config"]["spec_hash"], "logic": EVAL_LOGIC_VERSION})


def record_evaluation(registry: Path, report: dict, report_path: Path) -> str:
    from ..common.hashing import sha256_file
    from ..registry.connection import connect
    from ..registry.ledger import append_event, transaction

    eval_id = evaluation_id(report)
    metrics = report["metrics"]
    gate = report["gate"]
    folder = Path(report_path).parent  # the report files, hashed so that `verify` notices an edited report
    files = {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file()} if folder.is_dir() else {}
    with connect(registry) as con:
        con.execute(EVALUATIONS_SCHEMA)
        with transaction(con):  # the row and its ledger event, or neither
            con.execute("DELETE FROM evaluations WHERE eval_id = ?", [eval_id])
            con.execute("INSERT INTO evaluations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [eval_id, report["adapter_id"], datetime.now(UTC), report["dataset_version"],
                         report["eval_set"]["sha256"], report["config"]["spec_hash"], canonical_json(metrics),
                         canonical_json({**gate, "regression": report["regression"]}), str(report_path)])
            append_event(con, "evaluation_completed", eval_id, {
                "eval_id": eval_id, "adapter_id": report["adapter_id"],
                "eval_set_sha256": report["eval_set"]["sha256"], "spec_hash": report["config"]["spec_hash"],
                "gate_passed": bool(gate.get("passed")),
                "primary_metric": {"name": gate.get("primary_metric"), "base": gate.get("base"),
                                   "fine_tuned": gate.get("fine_tuned")},
                **({"files": files} if files else {})})
    return eval_id


def latest_evaluation(con, adapter_id: str) -> dict | None:
    """The newest evaluation of an adapter as {eval_id, created_at, base, fine_tuned, gate, report}, or None."""
    from ..registry.connection import table_names

    if "evaluations" not in table_names(con):
        return None
    row = con.execute("SELECT eval_id, created_at, metrics, gate, report_path FROM evaluations WHERE adapter_id = ? "
                      "ORDER BY created_at DESC LIMIT 1", [adapter_id]).fetchone()
    if row is None:
        return None
    metrics = json.loads(row[2])
    return {"eval_id": row[0], "created_at": row[1].isoformat(), "base": metrics.get("base"),
            "fine_tuned": metrics.get("fine_tuned"), "gate": json.loads(row[3]), "report": row[4]}
