"""What a fine-tuning run will need before it runs: peak GPU memory by part, training tokens, GPU-hours and
money per GPU type, the API fine-tuning price of the same tokens, and the inference volume at which
self-hosting the result pays.

Memory (bytes, 1 GB = 1e9 bytes), per GPU, for the project's training recipe (bf16, activation
checkpointing, padding-free rows, an LM head that runs only on labelled tokens):

- weights: 2 bytes a parameter (bf16); QLoRA stores the linear layers in NF4 with double quantisation,
  0.5 + 1/64 + 4/(64*256) bytes a weight, and keeps embeddings, norms and the output layer in bf16;
- LoRA parameters, their gradients and AdamW's two moments in fp32 (PEFT keeps adapters in fp32 under a
  bf16 base): 4 + 4 + 8 bytes; QLoRA uses paged 8-bit AdamW: 2 bytes of state;
- full fine-tuning, mixed precision as the ZeRO paper counts it: bf16 weights and gradients, fp32 master
  weights and moments: 2 + 2 + 12 bytes a parameter;
- activations: each layer's input kept for the recompute (2 bytes x hidden a token and layer) plus one
  layer's working set during its backward (norms, q/k/v, attention output, SwiGLU's four intermediate
  tensors, LoRA's dropout copies of its inputs), with flash-style attention (no T x T scores);
- logits: bf16 logits, their fp32 upcast and gradient for the labelled tokens: 10 bytes x vocabulary.

Sharding over n GPUs (FSDP) divides weights, LoRA, gradients and optimizer state by n; each GPU keeps its
own micro-batch's activations. A GPU fits when the total stays under its memory less 10% and 1 GB (CUDA
context, allocator fragmentation). ``check_against_measurements`` states the error against the peaks the
project measured on an H200 (``docs/training-gpu.md``).

Time: training FLOPs are 6 x parameters x tokens; a GPU delivers its bf16 peak times a model-FLOPs
utilisation (MFU) measured by the project where it exists (``prices.yaml`` says which), so GPU-hours scale
with the model and the tokens, and n GPUs are assumed to scale linearly.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from .model_size import ModelSize

METHODS = ("lora", "qlora", "full")
GB = 1e9
NF4_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)  # 4-bit weight, 8-bit absmax per 64, fp32 per 256 absmaxes
HEADROOM_FRACTION, CONTEXT_GB = 0.10, 1.0
GPU_COUNTS = (1, 2, 4, 8)
HOURS_PER_MONTH = 730


class PlanError(ValueError):
    """A plan that cannot be made as asked (unknown method, malformed price table); printed for the user."""


@dataclass(frozen=True)
class Workload:
    """What one optimizer micro-step holds and how many tokens the run trains on."""

    method: str
    micro_batch_rows: int
    tokens_per_row: float  # a long batch's rows: the dataset's p95, at most max_seq_length
    label_fraction: float  # share of tokens with a label (assistant turns): the LM head runs on these only
    training_tokens: int  # billable tokens x epochs
    epochs: float
    source: str  # where the numbers come from (a dataset version, or the config alone)

    def __post_init__(self):
        if self.method not in METHODS:
            raise PlanError(f"method {self.method!r}: choose one of {', '.join(METHODS)}")

    @property
    def batch_tokens(self) -> float:
        return self.micro_batch_rows * self.tokens_per_row


def memory_parts(size: ModelSize, work: Workload, gpus: int = 1) -> dict[str, float]:
    """Peak bytes on one of ``gpus`` GPUs, by part (see the module docstring for every factor)."""
    n, lora = size.parameters, size.lora_parameters
    if work.method == "qlora":
        weights = size.quantizable_parameters * NF4_BYTES + (n - size.quantizable_parameters) * 2
    else:
        weights = 2 * n
    if work.method == "full":
        lora_bytes, gradients, optimizer = 0.0, 2 * n, 12 * n
    else:
        lora_bytes, gradients, optimizer = 4 * lora, 4 * lora, (2 if work.method == "qlora" else 8) * lora
    t, h = work.batch_tokens, size.hidden_size
    dropout_copies = 0 if work.method == "full" else size.lora_input_width
    layer_elements = 7 * h + 2 * size.kv_size + 4 * size.intermediate_size + dropout_copies
    activations = 2 * t * h * size.num_layers + 2 * t * layer_elements
    logits = 10 * t * work.label_fraction * size.vocab_size
    shard = max(1, gpus)
    return {"weights": weights / shard, "lora_parameters": lora_bytes / shard, "gradients": gradients / shard,
            "optimizer_state": optimizer / shard, "activations": activations + logits}


def usable_gb(memory_gb: float) -> float:
    return memory_gb * (1 - HEADROOM_FRACTION) - CONTEXT_GB


@dataclass(frozen=True)
class Hardware:
    name: str
    memory_gb: float  # a card's memory; for the CPU entry the host's
    peak_tflops: float  # bf16 dense for a GPU; for the CPU the effective rate the project measured
    price_per_hour: float
    source: str
    mfu: dict[str, float] = field(default_factory=dict)  # per method; the CPU's figure is already effective
    cpu: bool = False  # one machine: no sharding, its rate measured rather than derived from an MFU


@dataclass(frozen=True)
class Prices:
    as_of: str
    hardware: list[Hardware]
    mfu: dict[str, dict]  # method -> {mfu, source}
    api: dict[str, dict]  # model -> {training_per_million, input_per_million, output_per_million, source}
    break_even: dict

    @classmethod
    def load(cls, path: str | Path) -> Prices:
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text())
            mfu = raw["utilisation"]
            hardware = [Hardware(name, float(h["memory_gb"]), float(h["peak_tflops"]), float(h["price_per_hour"]),
                                 str(h["source"]), {m: (1.0 if h.get("cpu") else float(mfu[m]["mfu"]))
                                                     for m in METHODS}, bool(h.get("cpu")))
                        for name, h in raw["hardware"].items()]
            api = {name: {k: (v if k == "source" else float(v)) for k, v in a.items()}
                   for name, a in raw["api"].items()}
            for name, entry in {**raw["hardware"], **raw["api"]}.items():
                if not entry.get("source"):
                    raise PlanError(f"{path}: price {name!r} has no source")
            return cls(str(raw["as_of"]), hardware, mfu, api, raw["break_even"])
        except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, PlanError):
                raise
            raise PlanError(f"{path}: not a usable price table ({exc.__class__.__name__}: {exc})") from None


def _flops_per_token(size: ModelSize) -> float:
    return 6.0 * size.parameters


def hardware_options(size: ModelSize, work: Workload, prices: Prices) -> list[dict]:
    """Per GPU type: the fewest GPUs that hold the run, its wall and GPU-hours, and its price."""
    options = []
    for hw in prices.hardware:
        counts = (1,) if hw.cpu else GPU_COUNTS
        gpus = next((g for g in counts
                     if sum(memory_parts(size, work, g).values()) / GB <= usable_gb(hw.memory_gb)), None)
        if gpus is None:
            options.append({"hardware": hw.name, "fits": False, "gpus": None, "memory_gb": hw.memory_gb,
                            "cpu": hw.cpu, "note": f"needs more than {counts[-1]} x {hw.memory_gb:g} GB"})
            continue
        tokens_per_s = hw.mfu[work.method] * hw.peak_tflops * 1e12 / _flops_per_token(size)
        wall_hours = work.training_tokens / (tokens_per_s * gpus) / 3600
        options.append({
            "hardware": hw.name, "fits": True, "gpus": gpus, "memory_gb": hw.memory_gb, "cpu": hw.cpu,
            "peak_memory_gb_per_gpu": round(sum(memory_parts(size, work, gpus).values()) / GB, 2),
            "tokens_per_s_per_gpu": round(tokens_per_s, 1), "wall_hours": _round(wall_hours),
            "gpu_hours": _round(wall_hours * gpus), "price_per_hour": hw.price_per_hour,
            "cost": round(wall_hours * gpus * hw.price_per_hour, 4), "source": hw.source})
    return options


def _round(value: float) -> float:
    """Three significant digits: an estimate, not a measurement."""
    return float(f"{value:.3g}")


def api_costs(work: Workload, prices: Prices) -> dict[str, dict]:
    return {name: {"training_cost": round(work.training_tokens * a["training_per_million"] / 1e6, 2),
                   "training_per_million": a["training_per_million"], "source": a["source"]}
            for name, a in prices.api.items()}


def break_even(options: list[dict], prices: Prices, prompt_tokens: dict[str, float] | None = None) -> dict:
    """Requests a month above which the fine-tuned model, self-hosted on one always-on serving GPU (training
    paid back over ``amortise_months``), costs less than prompting the API model with a long few-shot/RAG
    prompt. ``prompt_tokens`` (per approach, from an evaluation report) replace the assumed lengths."""
    b = prices.break_even
    prompt = (prompt_tokens or {}).get("few_shot", b["prompt_tokens_prompting"])
    api = prices.api[b["api_model"]]
    per_request = (prompt * api["input_per_million"] + b["output_tokens"] * api["output_per_million"]) / 1e6
    serving = next(h for h in prices.hardware if h.name == b["serving_hardware"])
    trained = next((o for o in options if o["hardware"] == b["training_hardware"] and o["fits"]), None)
    training = trained["cost"] if trained else 0.0
    monthly = serving.price_per_hour * HOURS_PER_MONTH + training / b["amortise_months"]
    return {"api_model": b["api_model"], "api_cost_per_1000_requests": round(per_request * 1000, 4),
            "prompt_tokens_per_request": prompt, "output_tokens_per_request": b["output_tokens"],
            "self_hosted_monthly_cost": round(monthly, 2), "serving_hardware": serving.name,
            "training_cost_amortised_over_months": b["amortise_months"],
            "break_even_requests_per_month": math.ceil(monthly / per_request), "source": b["source"]}


def make_plan(size: ModelSize, work: Workload, prices: Prices, prompt_tokens: dict | None = None) -> dict:
    parts = memory_parts(size, work)
    options = hardware_options(size, work, prices)
    return {
        "base_model": size.name, "architecture": size.architecture, "method": work.method,
        "parameters": size.parameters,
        "trainable_parameters": size.parameters if work.method == "full" else size.lora_parameters,
        "peak_memory_gb": {"total": round(sum(parts.values()) / GB, 2),
                           **{k: round(v / GB, 3) for k, v in parts.items()}},
        "workload": asdict(work), "training_tokens": work.training_tokens,
        "gpu_hours": {o["hardware"]: o["gpu_hours"] for o in options if o["fits"]},
        "costs": {"hardware": options, "api_fine_tuning": api_costs(work, prices)},
        "break_even": break_even(options, prices, prompt_tokens),
        "prices_as_of": prices.as_of,
        "mfu": prices.mfu,
    }


def dataset_workload(train_path: str | Path, config, method: str, source: str) -> Workload:
    """The workload of training ``config`` on a dataset version's train split: rows of its p95 length (at most
    ``max_seq_length``), the share of characters in trained assistant turns as the labelled share, and
    billable tokens (rows cut at ``max_seq_length``) times the epochs ``config`` runs."""
    import duckdb

    with duckdb.connect() as con:
        rows, tokens, p95 = con.execute(
            "SELECT count(*), coalesce(sum(least(n_tokens, ?)), 0), coalesce(quantile_cont(n_tokens, 0.95), 0) "
            "FROM read_parquet(?)", [config.max_seq_length, str(train_path)]).fetchone()
        labelled, total = con.execute(
            "SELECT coalesce(sum(CASE WHEN m.role = 'assistant' AND coalesce(m.weight, 1) = 1 "
            "THEN length(m.content) ELSE 0 END), 0), coalesce(sum(length(m.content)), 0) "
            "FROM (SELECT unnest(messages) AS m FROM read_parquet(?))", [str(train_path)]).fetchone()
    if not rows:
        raise PlanError(f"{train_path}: the train split is empty")
    if config.max_steps > 0:
        epochs = (config.max_steps * config.per_device_batch_size * config.gradient_accumulation_steps
                  * config.nproc_per_node / rows)
    else:
        epochs = float(config.num_epochs)
    return Workload(method, config.per_device_batch_size, float(min(p95, config.max_seq_length)),
                    round(labelled / total, 4) if total else 1.0, round(tokens * epochs), round(epochs, 3),
                    f"{source}: {rows} train rows, {int(tokens):,} tokens")


def check_against_measurements(size: ModelSize, measured: dict, method: str) -> dict:
    """The estimate against a peak the project measured (a ``bench/train_throughput.py`` result: its batch,
    mean row and labelled share), and the relative error."""
    steps = measured["steps"]
    work = Workload(method, measured["config"]["per_device_batch_size"],
                    measured["real_tokens"] / steps / measured["config"]["per_device_batch_size"],
                    measured["label_tokens"] / measured["real_tokens"], 0, 0.0, "measurement")
    estimate = sum(memory_parts(size, work).values()) / 2**20
    return {"estimated_mib": round(estimate), "measured_mib": round(measured["peak_cuda_mib"]),
            "error": round(estimate / measured["peak_cuda_mib"] - 1, 3)}


def hardware_entry(prices: Prices, device: str, gpu_name: str | None) -> Hardware | None:
    """The price table's entry for the hardware a run used: the CPU entry, or the GPU whose model number
    ("H200" of "H200-141GB") is in the device's name ("NVIDIA H200"; spaces ignored)."""
    if device != "cuda":
        return next((h for h in prices.hardware if h.cpu), None)
    name = (gpu_name or "").replace(" ", "").upper()
    return next((h for h in prices.hardware if not h.cpu
                 and h.name.split("-")[0].replace(" ", "").upper() in name), None)


def planned_against_actual(plan: dict, metrics: dict, hardware: Hardware | None) -> dict:
    """What the dossier shows: the plan's memory and hours for this run's hardware next to what the run
    measured, and the run's cost at the table's price."""
    option = next((o for o in plan["costs"]["hardware"] if hardware and o["hardware"] == hardware.name), None)
    hours = metrics["train_seconds"] * metrics.get("world_size", 1) / 3600
    return {
        "hardware": hardware.name if hardware else None,
        "planned_peak_memory_gb": plan["peak_memory_gb"]["total"],
        "actual_peak_memory_gb": round(metrics["peak_memory_gb"], 3),
        "actual_peak_memory_kind": metrics["peak_memory_kind"],
        "planned_compute_hours": option["gpu_hours"] if option and option["fits"] else None,
        "actual_compute_hours": _round(hours),
        "actual_cost": _round(hours * hardware.price_per_hour) if hardware else None,
        "price_per_hour": hardware.price_per_hour if hardware else None,
        "planned_training_tokens": plan["training_tokens"],
    }
