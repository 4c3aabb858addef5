"""The Great Expectations (1.x) suite run on the validated table before a dataset is published.

GX is called directly (``dagster-ge`` still pins GX < 1.0): an ephemeral context, a pandas data
source, ``batch.validate(suite)``. Two tables are checked: one row per record and one row per message,
so both record-level (unique ids, token bounds) and message-level (roles, non-empty content)
expectations are native GX expectations rather than hand-written loops. The record table (no text)
is one batch, so uniqueness is checked over all records; the message table, which holds all the
text, goes through in batches of ``MESSAGES_PER_BATCH`` messages (its expectations are row by row,
so the batches' outcomes add up to the whole table's), and memory stays flat as the data grows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from ..common.parquet import iter_rows
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


MESSAGES_PER_BATCH = 200_000


def record_table(validated_path: Path) -> pd.DataFrame:
    """One row per record (id, turns, tokens, provenance): no text, so the whole table is one batch."""
    with duckdb.connect() as con:
        return con.execute(
            "SELECT record_id, CAST(json_array_length(messages_json) AS BIGINT) AS n_messages, n_tokens, "
            "source_file, source_line FROM read_parquet(?)", [str(validated_path)]).df()


def message_tables(validated_path: Path, per_batch: int = MESSAGES_PER_BATCH) -> Iterator[pd.DataFrame]:
    """One row per message (id, turn, role, content), about ``per_batch`` messages at a time: this table
    holds all the text, and its expectations look at one row at a time, so batches add up exactly."""
    rows: list[dict] = []
    batches = 0
    for row in iter_rows(validated_path, columns=["record_id", "messages_json"]):
        for i, m in enumerate(json.loads(row["messages_json"])):
            rows.append({"record_id": row["record_id"], "turn": i, "role": m["role"], "content": m["content"]})
        if len(rows) >= per_batch:
            yield pd.DataFrame.from_records(rows)
            rows, batches = [], batches + 1
    if rows or not batches:
        yield pd.DataFrame.from_records(rows, columns=["record_id", "turn", "role", "content"])


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


def run_suite(validated_path: Path, max_tokens: int,
              messages_per_batch: int = MESSAGES_PER_BATCH) -> list[ExpectationOutcome]:
    """Both suites over the validated records; memory holds the record table and one batch of messages."""
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # no tqdm noise in run logs
    source = context.data_sources.add_pandas("validated")
    records_suite, messages_suite = _suites(max_tokens)
    return (_validate(source, records_suite, [record_table(validated_path)])
            + _validate(source, messages_suite, message_tables(validated_path, messages_per_batch)))


def _validate(source, suite, frames: Iterable[pd.DataFrame]) -> list[ExpectationOutcome]:
    """One outcome per expectation over all ``frames``: passed in every batch, unexpected rows summed."""
    definition = source.add_dataframe_asset(name=suite.name).add_batch_definition_whole_dataframe(
        f"{suite.name}_all")
    outcomes: dict[tuple, ExpectationOutcome] = {}
    for frame in frames:
        for item in definition.get_batch(batch_parameters={"dataframe": frame}).validate(suite).results:
            config = item.expectation_config
            key = (config.type, config.kwargs.get("column"))
            count = (item.result or {}).get("unexpected_count")
            if key not in outcomes:
                outcomes[key] = ExpectationOutcome(suite.name, config.type, config.kwargs.get("column"),
                                                   bool(item.success), count)
                continue
            outcome = outcomes[key]
            outcome.success = outcome.success and bool(item.success)
            if count is not None:
                outcome.unexpected_count = (outcome.unexpected_count or 0) + count
    return list(outcomes.values())
