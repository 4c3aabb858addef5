"""Training throughput of the project's LoRA trainer against the TRL recipe teams copy today.

    .venv/bin/python bench/train_throughput.py [--model PATH] [--dataset DIR] [--steps 8] [--batch-size 4]
        [--device cpu|cuda] [--load-in-4bit] [--variants project,reference,project_shared_prefix]
        [--out bench/results/train_throughput.json]
    .venv/bin/python bench/train_throughput.py --make-model-1b DIR   # random-init ~1B Llama for a GPU run

Why: ``fine_tune_assets.lib.training.train_adapter`` tokenises itself (assistant-only labels) and
trains on padding-free batches. This measures what that costs or saves against the usual recipe, on
the same model, data, LoRA settings, batch size, number of optimizer steps, seed and data order.

* project: ``train_adapter(train.jsonl, eval.jsonl, model, tmp, TrainingConfig(...))`` with LoRA
  r=16, alpha=32, dropout 0.05 on q/k/v/o_proj, gradient accumulation 1, ``max_steps=--steps``,
  evaluation before/after training off (``TrainingConfig.from_dict`` drops knobs it does not know;
  where ``eval_after_training`` is unknown the untimed final evaluation runs on a small eval file),
  no checkpoint inside the run. Timed window: its own ``train_seconds`` (``trainer.train()`` only).
* project_shared_prefix: project with ``share_prefix=True``: batches group rows by their opening
  (``SharedPrefixBatchSampler``) and a prompt shared by a batch runs once per batch. It does NOT see
  the batches of the other two (other sampler): compare rates, not per-step figures. Its "real
  tokens" are the computed ones (the shared prefix once per batch); "logical tokens" count the prefix
  for every row (what the other variants compute), so tok/s compares both ways.
* project_no_fused_kernels: project with ``fused_kernels="off"`` (on CUDA the project applies Liger
  Kernel's RoPE/RMSNorm/SwiGLU when installed; this isolates what they bring). Same as project on CPU.
* reference: TRL ``SFTTrainer`` on the ``{"messages": [...]}`` rows with TRL's own tokenisation:
  padding to the longest row of the batch (``padding_free=False``, ``packing=False``), loss on every
  non-pad token (TRL's default for conversational data: ``assistant_only_loss=False``),
  ``max_length`` = the project's ``max_seq_length``, lr 2e-4, warmup 10% (schedule: each its own
  default, cosine vs linear, no effect on speed), same LoRA, batch size, steps, seed (``seed`` =
  ``data_seed``), no checkpoint. Timed window: ``trainer.train()`` only.

All exclude model loading and tokenisation. Each variant runs in its own fresh subprocess of this
script (``--variant``), so peak RSS (``ru_maxrss``, whole process: load + tokenise + train) and CUDA
peak (``torch.cuda.max_memory_allocated``) are its own. project and reference use the Trainer's
seeded random sampler over the same rows in the same file order; a per-step hook records every
batch's row lengths, and the report says whether those two runs saw the same rows in the same batches.

Measured per variant: real (non-pad) input tokens / training wall seconds, padded tokens and the
padding fraction, loss-label tokens (assistant tokens for the project, every non-pad token for the
reference), seconds per optimizer step, peak memory, and on CUDA model FLOPs utilisation
(6 * N_params * real tokens/s / ``--peak-tflops``; for LoRA 6N overstates the work: frozen weights
get no weight gradient, while activation checkpointing recomputes a forward that 6N does not count).
Warm-up: the headline numbers discard nothing (step 1 included); a second "steady" figure uses the
per-step timestamps of steps 2..N-1 (needs --steps >= 3).

CPU runs use fp32 and no activation checkpointing for both (SFTConfig defaults bf16 and
checkpointing on; the recipe's bf16 and 4-bit are CUDA settings). With ``--device cuda`` both use
bf16 (fp16 without bf16 support) and activation checkpointing, as the project does on CUDA;
``--load-in-4bit`` loads NF4 for both (QLoRA; the reference as in TRL's docs, without PEFT's
``prepare_model_for_kbit_training``; the project freezes the same way, without its fp32 upcast). On
CUDA the project's padding-free rows use PyTorch's varlen flash attention when available
(``fine_tune_assets.lib.training.varlen_attention``), the reference SDPA on padded rows.

Results: a table on stdout and JSON (machine, versions, settings, per-variant metrics) at ``--out``.
Other processes on the machine distort the figures: the load average before/after is recorded.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Importing the package sets the offline defaults (HF_HUB_OFFLINE, ...) before any Hugging Face library loads.
from fine_tune_assets.lib.common.paths import DataPaths  # noqa: E402 - after the sys.path entry above

TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj"]
LORA = {"lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.05}
LEARNING_RATE = 2e-4
WARMUP_RATIO = 0.1
LOGGING_STEPS = 5
IGNORE_INDEX = -100
VARIANTS = ("project", "reference", "project_shared_prefix", "project_no_fused_kernels")


# ----------------------------------------------------------------------------- helpers


def newest_dataset(datasets_dir: Path) -> Path:
    """The dataset version folder whose manifest has the latest ``created_at``."""
    best: tuple[str, Path] | None = None
    for manifest in datasets_dir.glob("*/manifest.json"):
        created = json.loads(manifest.read_text(encoding="utf-8")).get("created_at") or ""
        if best is None or created > best[0]:
            best = (created, manifest.parent)
    if best is None:
        raise SystemExit(f"no dataset version (*/manifest.json) under {datasets_dir}")
    return best[1]


def read_conversations(path: Path) -> list[list[dict]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line)["messages"] for line in handle if line.strip()]


def max_rss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux


def make_step_recorder(steps: list[dict], memory: dict):
    """Records, at each ``training_step`` entry, the batch's rows, real/padded/label tokens and a timestamp.

    Padded batches: real tokens are the attention-mask ones. Padding-free batches (one flattened row):
    every position is real; row boundaries come from ``cu_seq_lens_q`` or ``position_ids == 0``.
    Labels count like the project's counter: positions 1.. that are not -100 (label 0 is never predicted).
    Shared-prefix batches (``prefix_ids`` [1, P]): rows are P + their suffix; real tokens count the
    prefix once (computed), logical tokens once per row.
    """
    import torch

    def record(inputs) -> None:
        if not steps:
            memory["rss_mib_at_first_step"] = max_rss_mib()
            if torch.cuda.is_available():
                memory["cuda_mib_at_first_step"] = torch.cuda.max_memory_allocated() / 2**20
        input_ids = inputs["input_ids"]
        mask = inputs.get("attention_mask")
        if mask is not None:
            lengths = mask.sum(dim=-1).tolist()
        elif inputs.get("cu_seq_lens_q") is not None:
            lengths = inputs["cu_seq_lens_q"].diff().tolist()
        elif inputs.get("position_ids") is not None:
            starts = [*(inputs["position_ids"][0] == 0).nonzero().flatten().tolist(), input_ids.shape[-1]]
            lengths = [b - a for a, b in itertools.pairwise(starts)]
        else:
            lengths = [input_ids.shape[-1]] * input_ids.shape[0]
        labels = inputs.get("labels")
        label_tokens = int((labels[..., 1:] != IGNORE_INDEX).sum()) if labels is not None else 0
        prefix = int(inputs["prefix_ids"].shape[-1]) if inputs.get("prefix_ids") is not None else 0
        steps.append({"t": time.perf_counter(), "rows": [prefix + int(x) for x in lengths], "prefix": prefix,
                      "real_tokens": prefix + int(sum(lengths)), "padded_tokens": prefix + int(input_ids.numel()),
                      "logical_tokens": prefix * len(lengths) + int(sum(lengths)), "label_tokens": label_tokens})

    return record


def steady_state(steps: list[dict]) -> dict[str, Any] | None:
    """Steps 2..N-1, timed from the entry of step 2 to the entry of step N (step 1 is the warm-up)."""
    if len(steps) < 3:
        return None
    window = steps[1:-1]
    seconds = steps[-1]["t"] - steps[1]["t"]
    tokens = sum(s["real_tokens"] for s in window)
    logical = sum(s.get("logical_tokens", s["real_tokens"]) for s in window)
    return {"steps": len(window), "seconds": seconds, "real_tokens": tokens, "logical_tokens": logical,
            "seconds_per_step": seconds / len(window), "real_tokens_per_s": tokens / seconds if seconds else None,
            "logical_tokens_per_s": logical / seconds if seconds else None}


def count_parameters(model_dir: Path) -> int:
    """Parameters of the base model (from its config, on the meta device: nothing is loaded)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(str(model_dir))
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())  # tied embeddings counted once


def make_model_1b(out_dir: Path, tokenizer_dir: Path, seed: int = 0, **overrides) -> Path:
    """Save a random-init ~1.07B Llama (2048 hidden, 16 layers, 32 heads, 8 KV heads, 8192 MLP, tied
    embeddings, bf16) with the SmolLM2 tokenizer and chat template, for throughput runs on a GPU."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, set_seed

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    settings = {"hidden_size": 2048, "num_hidden_layers": 16, "num_attention_heads": 32,
                "num_key_value_heads": 8, "intermediate_size": 8192, "max_position_embeddings": 8192,
                "tie_word_embeddings": True, **overrides}
    config = LlamaConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None
                         else tokenizer.eos_token_id, **settings)
    set_seed(seed)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):  # random init of 1B is slow on CPU
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    n_params = sum(p.numel() for p in model.parameters())
    (out_dir / "bench_model.json").write_text(json.dumps(
        {"what": "random-init Llama for bench/train_throughput.py (weights are noise; throughput only)",
         "parameters": n_params, "tokenizer_from": str(tokenizer_dir), "seed": seed, **settings}, indent=2))
    print(f"saved {n_params / 1e9:.3f}B-parameter random Llama to {out_dir}")
    return out_dir


# ----------------------------------------------------------------------------- variants (subprocess)


def run_project(spec: dict, work: Path, share_prefix: bool = False, fused_kernels: str = "auto") -> dict[str, Any]:
    """(a) the project's ``train_adapter``; timing is its own ``train_seconds``. ``share_prefix``: (c)."""
    import trl

    from fine_tune_assets.lib.training import TrainingConfig, train_adapter

    steps_log: list[dict] = []
    memory: dict[str, float] = {}
    record = make_step_recorder(steps_log, memory)
    original = trl.SFTTrainer.training_step

    def training_step(self, *args, **kwargs):  # the project's CountingSFTTrainer calls super() -> here
        inputs = args[1] if len(args) > 1 else kwargs["inputs"]
        record(inputs)
        return original(self, *args, **kwargs)

    trl.SFTTrainer.training_step = training_step

    values = {**LORA, "target_modules": TARGET_MODULES, "learning_rate": LEARNING_RATE,
              "warmup_ratio": WARMUP_RATIO, "per_device_batch_size": spec["batch_size"],
              "gradient_accumulation_steps": 1, "max_steps": spec["steps"], "num_epochs": 1,
              "max_seq_length": spec["max_seq_length"], "seed": spec["seed"], "device": spec["device"],
              "load_in_4bit": spec["load_in_4bit"], "padding_free": True, "logging_steps": LOGGING_STEPS,
              "save_steps": 10**9, "eval_before_training": False, "eval_after_training": False}
    fields = set(TrainingConfig.__dataclass_fields__)
    if share_prefix:
        if "share_prefix" not in fields:
            raise SystemExit("project_shared_prefix: this TrainingConfig has no share_prefix knob")
        values["share_prefix"] = True
    if fused_kernels != "auto":
        values["fused_kernels"] = fused_kernels
    config = TrainingConfig.from_dict(values)
    dropped = sorted(set(values) - fields)
    eval_path = Path(spec["dataset"]) / "eval.jsonl"
    if "eval_after_training" not in fields:  # final evaluation is untimed; keep it short
        rows = [line for line in eval_path.read_text(encoding="utf-8").splitlines() if line.strip()]
        eval_path = work / "eval_small.jsonl"
        eval_path.write_text("\n".join(rows[: spec["batch_size"]]) + "\n", encoding="utf-8")
    metrics = train_adapter(Path(spec["dataset"]) / "train.jsonl", eval_path, spec["model"],
                            work / "adapter", config, progress=None)
    seconds = metrics["train_seconds"]
    return {
        "config": config.to_dict(), "config_keys_unknown_to_this_TrainingConfig": dropped,
        "final_eval": "on" if "eval_after_training" not in fields else "off",
        "final_eval_rows": spec["batch_size"] if "eval_after_training" not in fields else 0,
        "steps": metrics["steps"], "train_seconds": seconds,
        "real_tokens": metrics["input_tokens"],
        "logical_tokens": metrics.get("logical_input_tokens", metrics["input_tokens"]),
        "padded_tokens": sum(s["padded_tokens"] for s in steps_log),
        "label_tokens": metrics["trained_tokens"],
        "label_tokens_kind": "assistant content + <|im_end|> (assistant-only labels)",
        "real_tokens_per_s": metrics["tokens_per_s"],
        "logical_tokens_per_s": metrics.get("logical_tokens_per_s", metrics["tokens_per_s"]),
        "label_tokens_per_s": metrics["trained_tokens_per_s"],
        "train_loss": metrics["train_loss"],
        "trainable_parameters": metrics["trainable_parameters"],
        **{k: metrics[k] for k in ("precision", "quantization", "optimizer", "activation_checkpointing",
                                   "fused_kernels", "attention") if k in metrics},
        "hook_real_tokens": sum(s["real_tokens"] for s in steps_log),
        "hook_logical_tokens": sum(s["logical_tokens"] for s in steps_log),
        "hook_label_tokens": sum(s["label_tokens"] for s in steps_log),
        "steps_log": steps_log, "memory": memory,
    }


def run_reference(spec: dict, work: Path) -> dict[str, Any]:
    """(b) TRL SFTTrainer on the conversational rows, TRL tokenisation, padded batches."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, set_seed
    from trl import SFTConfig, SFTTrainer

    cuda = spec["device"] == "cuda"
    bf16 = cuda and torch.cuda.is_bf16_supported()
    set_seed(spec["seed"])
    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # what the recipe does; the collator masks pads by length
    train = Dataset.from_list([{"messages": m} for m in read_conversations(Path(spec["dataset"]) / "train.jsonl")])

    kwargs: dict[str, Any] = {"dtype": (torch.bfloat16 if bf16 else torch.float16) if cuda else torch.float32,
                              "attn_implementation": "sdpa"}
    if spec["load_in_4bit"]:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=kwargs["dtype"])
        kwargs["device_map"] = {"": 0}
    model = AutoModelForCausalLM.from_pretrained(spec["model"], **kwargs)
    peft_config = LoraConfig(r=LORA["lora_r"], lora_alpha=LORA["lora_alpha"], lora_dropout=LORA["lora_dropout"],
                             target_modules=TARGET_MODULES, task_type="CAUSAL_LM")
    args = SFTConfig(
        output_dir=str(work / "reference"),
        max_steps=spec["steps"],
        per_device_train_batch_size=spec["batch_size"],
        gradient_accumulation_steps=1,
        learning_rate=LEARNING_RATE,
        warmup_steps=WARMUP_RATIO,  # transformers 5: a float < 1 is a ratio of the total steps
        seed=spec["seed"],
        data_seed=spec["seed"],
        bf16=bf16,  # SFTConfig defaults to True; on CPU that would be bf16 autocast
        fp16=cuda and not bf16,
        activation_checkpointing=cuda,  # transformers 5 name; SFTConfig defaults the old alias to True
        use_cpu=not cuda,
        max_length=spec["max_seq_length"],
        padding_free=False,
        packing=False,
        save_strategy="no",
        eval_strategy="no",
        logging_steps=LOGGING_STEPS,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    steps_log: list[dict] = []
    memory: dict[str, float] = {}
    record = make_step_recorder(steps_log, memory)

    class CountingSFTTrainer(SFTTrainer):
        def training_step(self, model, inputs, num_items_in_batch=None):
            record(inputs)
            return super().training_step(model, inputs, num_items_in_batch)

    trainer = CountingSFTTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer,
                                 peft_config=peft_config)
    trainer.remove_callback(PrinterCallback)  # the project removes it too
    started = time.perf_counter()
    result = trainer.train()
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    real = sum(s["real_tokens"] for s in steps_log)
    labels = sum(s["label_tokens"] for s in steps_log)
    return {
        "sft_config": {k: getattr(getattr(args, k), "value", getattr(args, k)) for k in (
            "max_length", "padding_free", "packing", "assistant_only_loss", "completion_only_loss", "loss_type",
            "bf16", "fp16", "activation_checkpointing", "learning_rate", "warmup_steps", "lr_scheduler_type",
            "optim", "seed", "data_seed", "per_device_train_batch_size", "gradient_accumulation_steps",
            "max_steps")},
        "steps": result.global_step, "train_seconds": seconds,
        "real_tokens": real,
        "logical_tokens": real,
        "padded_tokens": sum(s["padded_tokens"] for s in steps_log),
        "label_tokens": labels,
        "label_tokens_kind": "every non-pad token (TRL default for conversational data)",
        "real_tokens_per_s": real / seconds if seconds else None,
        "logical_tokens_per_s": real / seconds if seconds else None,
        "label_tokens_per_s": labels / seconds if seconds else None,
        "train_loss": result.training_loss,
        "trainable_parameters": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
        "steps_log": steps_log, "memory": memory,
    }


def variant_main(name: str, spec_path: Path, result_path: Path) -> None:
    import torch

    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix=f"train_throughput_{name}_") as tmp:
        if name == "reference":
            result = run_reference(spec, Path(tmp))
        else:
            result = run_project(spec, Path(tmp), share_prefix=name == "project_shared_prefix",
                                 fused_kernels="off" if name == "project_no_fused_kernels" else "auto")
    result["peak_rss_mib"] = max_rss_mib()
    if spec["device"] == "cuda":
        result["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    result["torch_threads"] = torch.get_num_threads()
    result["seconds_per_step"] = result["train_seconds"] / result["steps"] if result["steps"] else None
    result["steady"] = steady_state(result["steps_log"])
    result_path.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")


# ----------------------------------------------------------------------------- parent


def machine_info(device: str) -> dict[str, Any]:
    import importlib.metadata as md

    import torch

    cpu_model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu_model, "platform": platform.platform(), "python": platform.python_version(),
        "torch": torch.__version__, "device": device,
        "versions": {p: md.version(p) for p in ("transformers", "trl", "peft", "accelerate", "datasets")},
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
        for package in ("bitsandbytes", "liger-kernel", "triton"):
            try:
                info["versions"][package] = md.version(package)
            except md.PackageNotFoundError:
                info["versions"][package] = None
    return info


def run_variant(name: str, spec_path: Path, work: Path) -> dict[str, Any]:
    result_path = work / f"{name}.json"
    load_before = os.getloadavg()
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--variant", name,
                           "--spec", str(spec_path), "--result", str(result_path)], cwd=str(ROOT), check=False)
    if proc.returncode != 0 or not result_path.exists():
        return {"error": f"subprocess exited with {proc.returncode}"}
    result = json.loads(result_path.read_text(encoding="utf-8"))
    result["process_wall_seconds"] = time.perf_counter() - started
    result["loadavg_1m_before_after"] = [load_before[0], os.getloadavg()[0]]
    return result


def fmt(value, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def report(results: dict[str, dict], device: str, n_params: int, peak_tflops: float) -> dict[str, Any]:
    header = ["variant", "steps", "real tokens", "logical tokens", "padding %", "loss tokens", "s/step",
              "real tokens/s", "logical tok/s", "steady tok/s", "peak RSS MiB"]
    if device == "cuda":
        header += ["peak CUDA MiB", "MFU %"]
    rows = []
    for name, r in results.items():
        if "error" in r:
            rows.append([name, r["error"]] + [""] * (len(header) - 2))
            continue
        r["padding_fraction"] = 1 - r["real_tokens"] / r["padded_tokens"] if r["padded_tokens"] else None
        r.setdefault("logical_tokens", r["real_tokens"])
        r.setdefault("logical_tokens_per_s", r["real_tokens_per_s"])
        row = [name, str(r["steps"]), fmt(r["real_tokens"]), fmt(r["logical_tokens"]),
               fmt(100 * r["padding_fraction"], ".1f"), fmt(r["label_tokens"]), fmt(r["seconds_per_step"], ".2f"),
               fmt(r["real_tokens_per_s"], ",.1f"), fmt(r["logical_tokens_per_s"], ",.1f"),
               fmt((r["steady"] or {}).get("real_tokens_per_s"), ",.1f"), fmt(r["peak_rss_mib"], ",.0f")]
        if device == "cuda":
            flops = 6 * n_params * (r["real_tokens_per_s"] or 0)
            r["mfu_6n"] = flops / (peak_tflops * 1e12)
            r["mfu_6n_on_padded_tokens"] = r["mfu_6n"] * r["padded_tokens"] / r["real_tokens"]
            row += [fmt(r["peak_cuda_mib"], ",.0f"), fmt(100 * r["mfu_6n"], ".1f")]
        rows.append(row)
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    print()
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))

    ratios: dict[str, Any] = {}
    a, b = results.get("project", {}), results.get("reference", {})
    if a and b and "error" not in a and "error" not in b:
        ratios = {
            "speed_real_tokens_per_s_project_over_reference": a["real_tokens_per_s"] / b["real_tokens_per_s"],
            "seconds_per_step_project_over_reference": a["seconds_per_step"] / b["seconds_per_step"],
            "peak_rss_project_over_reference": a["peak_rss_mib"] / b["peak_rss_mib"],
            "same_batches": [s["rows"] for s in a["steps_log"]] == [s["rows"] for s in b["steps_log"]],
        }
        if a["steady"] and b["steady"]:
            ratios["steady_speed_project_over_reference"] = (a["steady"]["real_tokens_per_s"]
                                                             / b["steady"]["real_tokens_per_s"])
        if device == "cuda":
            ratios["peak_cuda_project_over_reference"] = a["peak_cuda_mib"] / b["peak_cuda_mib"]
        print()
        print(f"speed (a)/(b), real tokens/s: {ratios['speed_real_tokens_per_s_project_over_reference']:.2f}x"
              + (f"  (steady, steps 2..N-1: {ratios['steady_speed_project_over_reference']:.2f}x)"
                 if "steady_speed_project_over_reference" in ratios else ""))
        print(f"peak RSS (a)/(b): {ratios['peak_rss_project_over_reference']:.2f}x"
              + (f"   peak CUDA (a)/(b): {ratios['peak_cuda_project_over_reference']:.2f}x" if device == "cuda"
                 else ""))
        print(f"same rows in the same batches: {ratios['same_batches']}")
    c = results.get("project_shared_prefix", {})
    if c and b and "error" not in c and "error" not in b:
        shared = {
            "speed_real_tokens_per_s_shared_prefix_over_reference": c["real_tokens_per_s"] / b["real_tokens_per_s"],
            "speed_logical_tokens_per_s_shared_prefix_over_reference": (c["logical_tokens_per_s"]
                                                                        / b["real_tokens_per_s"]),
            "seconds_per_step_shared_prefix_over_reference": c["seconds_per_step"] / b["seconds_per_step"],
            "peak_rss_shared_prefix_over_reference": c["peak_rss_mib"] / b["peak_rss_mib"],
            "shared_prefix_batches": "different (grouped by opening; not the batches of project/reference)",
        }
        if c["steady"] and b["steady"]:
            shared["steady_logical_speed_shared_prefix_over_reference"] = (
                c["steady"]["logical_tokens_per_s"] / b["steady"]["real_tokens_per_s"])
        if a and "error" not in a:
            shared["speed_logical_tokens_per_s_shared_prefix_over_project"] = (c["logical_tokens_per_s"]
                                                                               / a["real_tokens_per_s"])
        if device == "cuda":
            shared["peak_cuda_shared_prefix_over_reference"] = c["peak_cuda_mib"] / b["peak_cuda_mib"]
        ratios.update(shared)
        print()
        logical = shared["speed_logical_tokens_per_s_shared_prefix_over_reference"]
        print(f"speed (c)/(b), logical tokens/s: {logical:.2f}x"
              f"  (computed tokens/s: {shared['speed_real_tokens_per_s_shared_prefix_over_reference']:.2f}x"
              + (f"; steady logical: {shared['steady_logical_speed_shared_prefix_over_reference']:.2f}x"
                 if "steady_logical_speed_shared_prefix_over_reference" in shared else "") + ")"
              + (f"   (c)/(a) logical: {shared['speed_logical_tokens_per_s_shared_prefix_over_project']:.2f}x"
                 if "speed_logical_tokens_per_s_shared_prefix_over_project" in shared else ""))
        print(f"peak RSS (c)/(b): {shared['peak_rss_shared_prefix_over_reference']:.2f}x"
              + (f"   peak CUDA (c)/(b): {shared['peak_cuda_shared_prefix_over_reference']:.2f}x"
                 if device == "cuda" else ""))
        print("(c) project_shared_prefix trains on other batches than (a) and (b) (rows grouped by opening): "
              "compare rates, not per-step figures.")
    d = results.get("project_no_fused_kernels", {})
    if a and d and "error" not in a and "error" not in d:
        ratios["speed_fused_kernels_on_over_off"] = a["real_tokens_per_s"] / d["real_tokens_per_s"]
        if device == "cuda":
            ratios["peak_cuda_fused_kernels_on_over_off"] = a["peak_cuda_mib"] / d["peak_cuda_mib"]
        print()
        print(f"fused kernels {a.get('fused_kernels') or '(none applied)'}: speed on/off "
              f"{ratios['speed_fused_kernels_on_over_off']:.2f}x"
              + (f"   peak CUDA on/off {ratios['peak_cuda_fused_kernels_on_over_off']:.2f}x" if device == "cuda"
                 else ""))
    print("real tokens/s and s/step: trainer.train() wall time, warm-up step included; steady: steps 2..N-1. "
          "loss tokens: assistant-only (a, c) vs every non-pad token (b). peak RSS: whole subprocess. "
          "real tokens: computed (a shared prefix once per batch); logical: a shared prefix once per row.")
    loads = {name: r["loadavg_1m_before_after"] for name, r in results.items() if "loadavg_1m_before_after" in r}
    if loads:
        print(f"1-min load average before/after (this run adds ~{os.cpu_count()} on CPU; more means other "
              "processes shared the cores): "
              + ", ".join(f"{name} {a:.1f}/{b:.1f}" for name, (a, b) in loads.items()))
    if device == "cpu":
        print("CPU: fp32 and no activation checkpointing for both; the recipe's bf16 / 4-bit are CUDA settings.")
    else:
        print("MFU = 6 * N_params * real tokens/s / peak; for LoRA 6N is an approximation (no weight gradients "
              "for frozen weights; checkpointing recompute not counted).")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    paths = DataPaths.from_env()
    parser.add_argument("--model", type=Path, default=paths.models / "SmolLM2-135M-Instruct")
    parser.add_argument("--dataset", type=Path, default=None, help="dataset version folder (default: newest)")
    parser.add_argument("--steps", type=int, default=8, help="optimizer steps (= micro-batches) per variant")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-seq-length", type=int, default=None,
                        help="default: TrainingConfig's max_seq_length; the reference's max_length")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--load-in-4bit", action="store_true", help="QLoRA (NF4) for both; CUDA only")
    parser.add_argument("--peak-tflops", type=float, default=989.0,
                        help="peak dense TFLOPS for MFU (default 989: H100/H200 bf16)")
    parser.add_argument("--variants", default=None,
                        help=f"comma-separated, from {', '.join(VARIANTS)} (default: all on CUDA; on CPU all but "
                             "project_no_fused_kernels, which equals project there)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "train_throughput.json")
    parser.add_argument("--make-model-1b", type=Path, metavar="DIR",
                        help="save a random-init ~1B Llama with the --model folder's tokenizer to DIR and exit")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.variant:
        variant_main(args.variant, args.spec, args.result)
        return
    if args.make_model_1b:
        make_model_1b(args.make_model_1b, args.model)
        return

    import torch

    from fine_tune_assets.lib.training import TrainingConfig

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device")
    if args.load_in_4bit and args.device != "cuda":
        raise SystemExit("--load-in-4bit is a CUDA setting here (use --device cuda)")
    variants = [v.strip() for v in (args.variants or ",".join(
        VARIANTS if args.device == "cuda" else VARIANTS[:3])).split(",") if v.strip()]
    if not set(variants) <= set(VARIANTS):
        raise SystemExit(f"--variants: choose from {', '.join(VARIANTS)}")
    dataset = (args.dataset or newest_dataset(paths.datasets)).resolve()
    model = args.model.resolve()
    spec = {"model": str(model), "dataset": str(dataset), "steps": args.steps, "batch_size": args.batch_size,
            "max_seq_length": args.max_seq_length or TrainingConfig().max_seq_length, "seed": args.seed,
            "device": args.device, "load_in_4bit": args.load_in_4bit}
    n_params = count_parameters(model)
    manifest = json.loads((dataset / "manifest.json").read_text(encoding="utf-8"))

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="train_throughput_") as tmp:
        work = Path(tmp)
        spec_path = work / "spec.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        for name in variants:  # one after the other, never two trainings at once
            print(f"== {name}: {args.steps} steps x batch {args.batch_size} on {args.device} ...", flush=True)
            results[name] = run_variant(name, spec_path, work)
    ratios = report(results, args.device, n_params, args.peak_tflops)

    out = {
        "machine": machine_info(args.device),
        "model": str(model), "model_parameters": n_params,
        "dataset": str(dataset), "dataset_version": manifest.get("version_id", dataset.name),
        "dataset_created_at": manifest.get("created_at"),
        "settings": {**spec, "lora": {**LORA, "target_modules": TARGET_MODULES}, "learning_rate": LEARNING_RATE,
                     "warmup_ratio": WARMUP_RATIO, "gradient_accumulation_steps": 1, "logging_steps": LOGGING_STEPS,
                     "precision": ("bf16 (fp16 without bf16 support), activation checkpointing" if args.device
                                   == "cuda" else "fp32, no activation checkpointing"),
                     "peak_tflops": args.peak_tflops if args.device == "cuda" else None},
        "notes": [
            ("Timed window: trainer.train() only (project: its train_seconds); model loading and tokenisation "
             "excluded. Warm-up step included in the headline figures; 'steady' uses steps 2..N-1."),
            ("Data order: project and reference use the Trainer's random sampler seeded with seed/data_seed over "
             "the train rows in file order; 'same_batches' compares the row lengths of every batch of those two. "
             "project_shared_prefix uses its own seeded sampler (rows grouped by opening): other batches."),
            ("Reference: TRL SFTTrainer tokenisation, padded to the longest row per batch, loss on every non-pad "
             "token (assistant_only_loss=False). Project: assistant-only labels, padding-free batches."),
            ("The recipe's bf16 and 4-bit (QLoRA) are CUDA settings; on CPU both variants run fp32 without "
             "activation checkpointing."),
            "Peak RSS is ru_maxrss of each variant's own subprocess (load + tokenise + train).",
            "MFU (CUDA) = 6 * N_params * real tokens/s / peak FLOPS; 6N is approximate for LoRA.",
            ("project_shared_prefix: real tokens are computed tokens (a prefix shared by a batch once per batch); "
             "logical tokens count it for every row, as the other variants compute it."),
        ],
        "results": {k: {kk: vv for kk, vv in v.items() if kk != "steps_log"} | (
            {"batch_rows": [s["rows"] for s in v["steps_log"]]} if "steps_log" in v else {})
            for k, v in results.items()},
        "ratios": ratios,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    if any("error" in r for r in results.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
