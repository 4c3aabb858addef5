"""Evaluation in its own process, reporting to Dagster through Pipes.

``python -m fine_tune_assets.workers.evaluation REQUEST.json``: loads the base model and the adapter,
evaluates both on the held-out split, writes the report beside the adapter and registers it. Like
training, it runs apart from the code server, so its memory is freed when it ends and the same
entry point can be launched on a GPU node.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dagster_pipes import open_dagster_pipes

from fine_tune_assets.lib.evaluation.report import write_report
from fine_tune_assets.lib.evaluation.spec import load_eval_spec
from fine_tune_assets.lib.evaluation.store import record_evaluation
from fine_tune_assets.lib.registry.connection import worker_registry
from fine_tune_assets.lib.registry.ledger import EventKind, event_reference
from fine_tune_assets.lib.training.publish import rewrite_card


def _residual_pii_filter(policy_path: str | None):
    """A text may appear in the report only if the residual-PII scan finds nothing in it."""
    from fine_tune_assets.lib.data.scrub import load_policy, residual_pii

    policy = load_policy(Path(policy_path) if policy_path else None)
    return lambda text: not residual_pii(text, policy)


def main(request_path: str) -> None:
    from fine_tune_assets.lib.evaluation.evaluate import evaluate_adapter

    request = json.loads(Path(request_path).read_text())
    spec = load_eval_spec(request["spec_path"])
    adapter_dir = Path(request["adapter_dir"])
    with open_dagster_pipes() as pipes:
        report = evaluate_adapter(adapter_dir, request["base_model_dir"], request["dataset_dir"], spec,
                                  device=request.get("device", "auto"), progress=pipes.log.info,
                                  is_clean=_residual_pii_filter(request.get("scrub_policy")),
                                  champion=request.get("champion"))
        if report["champion"] is None:
            report["champion"] = {"none": request.get("no_champion") or "no adapter in production to compare with"}
        folder = write_report(report, adapter_dir)
        registry = worker_registry(request["data_dir"], request["registry"])
        card_sha256 = rewrite_card(adapter_dir, report)  # the model card's model-index gets the results
        eval_id = record_evaluation(registry, report, folder / "eval_report.json", card_sha256)
        base, tuned, gate = report["metrics"]["base"], report["metrics"]["fine_tuned"], report["gate"]
        pipes.log.info(f"promotion gate {'PASSED' if gate['passed'] else 'FAILED'}: {'; '.join(gate['reasons'])}")
        champion = report["champion"]
        if "passed" in champion:
            pipes.log.info(f"champion/challenger {'PASSED' if champion['passed'] else 'FAILED'} against "
                           f"{champion['champion_adapter_id'][:12]}: {'; '.join(champion['reasons'])}")

        def number(value):
            return {"raw_value": None if value is None else round(float(value), 4), "type": "float"} \
                if value is not None else "n/a"

        pipes.report_asset_materialization(
            metadata={
                "eval_id": eval_id,
                "adapter_id": report["adapter_id"],
                "dataset_version": report["dataset_version"],
                "eval_set_sha256": report["eval_set"]["sha256"],
                "ledger_event": event_reference(registry, EventKind.EVALUATION_COMPLETED, eval_id) or "-",
                "report": {"raw_value": str(folder / "report.html"), "type": "path"},
                "report_json": {"raw_value": str(folder / "eval_report.json"), "type": "path"},
                "format_compliance_base": number(base["format_compliance"]),
                "format_compliance_fine_tuned": number(tuned["format_compliance"]),
                "field_accuracy_base": number(base["field_accuracy"]),
                "field_accuracy_fine_tuned": number(tuned["field_accuracy"]),
                "eval_loss_base": number(base["eval_loss"]),
                "eval_loss_fine_tuned": number(tuned["eval_loss"]),
                "general_loss_change": number(report["regression"]["relative_change"]),
                "promotion_gate_passed": {"raw_value": gate["passed"], "type": "bool"},
                "champion": champion.get("champion_adapter_id") or champion["none"],
                "summary": {"raw_value": (folder / "report.md").read_text(encoding="utf-8"), "type": "md"},
            },
            data_version=eval_id,
        )


if __name__ == "__main__":
    main(sys.argv[1])
