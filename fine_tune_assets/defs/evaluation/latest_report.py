"""The report both eval_report checks judge: the JSON of the newest eval_report materialization."""

import json
from pathlib import Path

import dagster as dg

from ..keys import EVAL_REPORT

NOT_MATERIALIZED = dg.AssetCheckResult(passed=False, description="eval_report has not been materialized")


def latest_eval_report(instance: dg.DagsterInstance) -> dict | None:
    event = instance.get_latest_materialization_event(EVAL_REPORT)
    if event is None or event.asset_materialization is None:
        return None
    return json.loads(Path(event.asset_materialization.metadata["report_json"].value).read_text())
