"""The Great Expectations (1.x) suite run on the validated table before a dataset is published.

GX is called directly (``dagster-ge`` still pins GX < 1.0): an ephemeral context, a pandas data
source, one batch per table, ``batch.validate(suite)``. Two tables are checked: one row per record
and one row per message, so both record-level (unique ids, token bounds) and message-level (roles,
non-empty content) expectations are native GX expectations rather than hand-written loops.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from .chat_format import PIPELINE_ROLES


@dataclass
class ExpectationOutcome:
    table: str
    expectation: str
    column: str | None
    success: bool
    unexpected_count: int | None

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def tables_from_rows(rows: Iterable[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Record table (id, turns, tokens) and message table (id, turn, role, content)."""
    records, messages = [], []
    for row in rows:
        turns = json.loads(row["messages_json"])
        records.append({"record_id": row["record_id"], "n_messages": len(turns), "n_tokens": row["n_tokens"],
                        "source_file": row["source_file"], "source_line": row["source_line"]})
        for i, m in enumerate(turns):
            messages.append({"record_id": row["record_id"], "turn": i, "role": m["role"], "content": m["content"]})
    return pd.DataFrame.from_records(records), pd.DataFrame.from_records(messages)


def _suites(max_tokens: int):
    import great_expectations as gx
    import great_expectations.expectations as gxe

    records = gx.ExpectationSuite(name="validated_records")
    for expectation in [
        gxe.ExpectTableColumnsToMatchSet(column_set=["record_id", "n_messages", "n_tokens", "source_file",
                                                     "source_line"]),
        gxe.ExpectColumnValuesToNotBeNull(column="record_id"),
        gxe.ExpectColumnValuesToBeUnique(column="record_id"),
        gxe.ExpectColumnValuesToMatchRegex(column="record_id", regex=r"^[0-9a-f]{64}$"),
        gxe.ExpectColumnValuesToBeBetween(column="n_messages", min_value=2, max_value=500),
        gxe.ExpectColumnValuesToBeBetween(column="n_tokens", min_value=1, max_value=max_tokens),
        gxe.ExpectColumnValuesToNotBeNull(column="source_file"),
    ]:
        records.add_expectation(expectation)

    messages = gx.ExpectationSuite(name="validated_messages")
    for expectation in [
        gxe.ExpectColumnValuesToBeInSet(column="role", value_set=list(PIPELINE_ROLES)),
        gxe.ExpectColumnValuesToNotBeNull(column="content"),
        gxe.ExpectColumnValueLengthsToBeBetween(column="content", min_value=1),
        gxe.ExpectColumnValuesToNotMatchRegex(column="content", regex=r"^\s*$"),
    ]:
        messages.add_expectation(expectation)
    return records, messages


def run_suite(records: pd.DataFrame, messages: pd.DataFrame, max_tokens: int) -> list[ExpectationOutcome]:
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # no tqdm noise in run logs
    source = context.data_sources.add_pandas("validated")
    outcomes: list[ExpectationOutcome] = []
    for suite, frame in zip(_suites(max_tokens), (records, messages)):
        asset = source.add_dataframe_asset(name=suite.name)
        batch = asset.add_batch_definition_whole_dataframe(f"{suite.name}_all").get_batch(
            batch_parameters={"dataframe": frame})
        result = batch.validate(suite)
        for item in result.results:
            config = item.expectation_config
            outcomes.append(ExpectationOutcome(
                table=suite.name, expectation=config.type, column=config.kwargs.get("column"),
                success=bool(item.success), unexpected_count=(item.result or {}).get("unexpected_count")))
    return outcomes
