"""eval_report: base model vs fine-tuned adapter on the held-out split (its gate: promotion_gate.py)."""

import json
from pathlib import Path

import dagster as dg
from pydantic import Field

from fine_tune_assets.lib.evaluation.champion import find_champion
from fine_tune_assets.lib.models.base_model import resolve_base_model
from fine_tune_assets.lib.registry.backends import display
from fine_tune_assets.lib.registry.connection import connect
from fine_tune_assets.lib.registry.resolve import NotFound, resolve_adapter

from ..keys import ACCELERATOR_POOL, LORA_ADAPTER
from ..openlineage import emits_openlineage
from ..pipes import launch_worker, run_folder
from ..resources import PipelineResource

EVAL_CODE_VERSION = "eval-1"


class EvalReportConfig(dg.Config):
    adapter_id: str = Field(default="", description="Adapter id or unique prefix; empty = the latest lora_adapter")
    spec: str = Field(default="", description="Evaluation spec YAML; empty = <data>/config/evaluation.yaml")
    device: str = Field(default="auto", description="auto | cpu | cuda")


@dg.asset(group_name="evaluation", code_version=EVAL_CODE_VERSION, deps=[LORA_ADAPTER], kinds={"pytorch"},
          pool=ACCELERATOR_POOL)
@emits_openlineage
def eval_report(context: dg.AssetExecutionContext, config: EvalReportConfig, pipeline: PipelineResource,
                pipes_subprocess_client: dg.PipesSubprocessClient) -> dg.MaterializeResult:
    """Evaluates an adapter (default: the latest ``lora_adapter`` materialization) against its base model on
    the held-out split of the dataset version it was trained on: eval loss and perplexity, greedy answers to
    every held-out prompt scored for format compliance, field accuracy and domain terms, and a regression
    check on general prompts. When another adapter holds production it answers the same prompts too
    (champion/challenger, overall and on the records its data never held). The Markdown/HTML report (with
    the loss curve) lands in ``<adapter>/eval/``; the promotion gate check blocks when the adapter does not
    beat its base model, the champion_challenger check when it trails the adapter in production."""
    paths = pipeline.paths
    if config.adapter_id:
        with connect(paths.registry, read_only=True) as con:
            try:
                adapter = resolve_adapter(con, config.adapter_id)
            except NotFound as exc:
                raise dg.Failure(str(exc)) from None
        adapter_id, adapter_dir = adapter["adapter_id"], Path(adapter["path"])
    else:
        event = context.instance.get_latest_materialization_event(LORA_ADAPTER)
        if event is None or event.asset_materialization is None:
            raise dg.Failure("lora_adapter has not been materialized yet; train an adapter first.")
        metadata = event.asset_materialization.metadata
        adapter_id, adapter_dir = metadata["adapter_id"].value, Path(metadata["path"].value)
    lineage = json.loads((adapter_dir / "lineage.json").read_text())
    with connect(paths.registry, read_only=True) as con:
        row = con.execute("SELECT path FROM dataset_versions WHERE version_id = ?",
                          [lineage["dataset_version"]]).fetchone()
    if row is None:
        raise dg.Failure(f"dataset version {lineage['dataset_version']} of adapter {adapter_id[:12]} is not in the "
                         "registry; cannot find its held-out split")
    identity = resolve_base_model(pipeline.base_model, paths.models)
    if identity.identity_hash != lineage["base_model"]["identity_hash"]:
        raise dg.Failure(f"adapter {adapter_id[:12]} was trained on base model {lineage['base_model']['name']} "
                         f"({lineage['base_model']['identity_hash'][:12]}), but the configured base model is "
                         f"{identity.name} ({identity.identity_hash[:12]})")
    spec = Path(config.spec) if config.spec else paths.evaluation_spec
    if not spec.exists():
        raise dg.Failure(f"evaluation spec {spec} not found (see data/config/evaluation.yaml in the repository)")
    champion, no_champion = find_champion(paths.registry, adapter_id, identity.identity_hash)
    request = {"adapter_dir": str(adapter_dir), "base_model_dir": identity.path, "dataset_dir": row[0],
               "spec_path": str(spec), "device": config.device, "data_dir": str(paths.root),
               "registry": display(paths.registry),
               "scrub_policy": str(pipeline.policy_path()) if pipeline.policy_path() else None,
               "champion": champion, "no_champion": no_champion}
    if champion:
        context.log.info(f"also comparing with the adapter in production, {champion['adapter_id'][:12]} "
                         f"(champion/challenger)")
    context.log.info(f"evaluating adapter {adapter_id[:12]} on the held-out split of dataset "
                     f"{lineage['dataset_version'][:12]} with {spec}")
    return launch_worker(context, pipes_subprocess_client, "evaluation", request,
                         run_folder(paths, context) / "eval_request.json")
