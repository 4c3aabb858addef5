"""Blocking quality gates on validated_conversations: nothing reaches a dataset version unless they pass."""


import dagster as dg

from fine_tune_assets.lib.data.quality_gates import evaluate_gate

from ..keys import VALIDATED_CONVERSATIONS
from ..resources import PipelineResource, upstream_stage

DESCRIPTIONS = {
    "expectation_suite": "Great Expectations 1.x suites on the validated records and messages "
                         "(schema, allowed roles, non-empty content, token bounds, unique ids).",
    "no_residual_pii": "Second scan of the scrubbed output: no high-confidence structured PII, and no name "
                       "after a cue phrase ('my name is ...', 'thanks, ...'), may remain.",
    "quarantine_rate": "Share of input records quarantined at any stage stays under the configured ceiling.",
    "minimum_examples": "At least the minimum number of examples (OpenAI requires 10); warns under 100.",
}


def gate_check(name: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=VALIDATED_CONVERSATIONS, name=name, blocking=True, description=DESCRIPTIONS[name])
    def _check(context: dg.AssetCheckExecutionContext, pipeline: PipelineResource) -> dg.AssetCheckResult:
        validated = upstream_stage(context, VALIDATED_CONVERSATIONS)
        result = evaluate_gate(name, validated, pipeline.policy(), pipeline.gate_settings())
        metadata = {"observed": result.observed, "threshold": str(result.threshold),
                    "validated_data_version": validated.data_version}
        for key, value in result.details.items():
            if key == "expectations":
                failed = [f"{e['table']}.{e['expectation']}({e['column'] or ''})" for e in value if not e["success"]]
                metadata["failed_expectations"] = dg.MetadataValue.json(failed)
                metadata["expectations_evaluated"] = len(value)
            else:
                metadata[key] = dg.MetadataValue.json(value) if isinstance(value, (dict, list)) else value
        if result.passed and result.severity == "WARN":  # passes the gate, but shows as a warning
            return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN, metadata=metadata,
                                       description=result.description)
        return dg.AssetCheckResult(passed=result.passed, severity=dg.AssetCheckSeverity.ERROR, metadata=metadata,
                                   description=result.description)

    return _check


validated_conversations_checks = [gate_check(name) for name in DESCRIPTIONS]
