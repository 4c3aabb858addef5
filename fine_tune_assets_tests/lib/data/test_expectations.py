"""The Great Expectations suites (real GX 1.x): bad rows fail them, and batching the message table changes
nothing but memory."""

import json

import pyarrow as pa
import pyarrow.parquet as pq

from fine_tune_assets.lib.data.expectations import run_suite
from fine_tune_assets_tests.factories import write_validated


def _outcomes(path, **kwargs):
    return {(o.table, o.expectation, o.column): (o.success, o.unexpected_count)
            for o in run_suite(path, max_tokens=100, **kwargs)}


def test_a_clean_table_passes_and_bad_rows_fail_with_their_count_over_all_batches(tmp_path):
    clean = tmp_path / "clean.parquet"
    write_validated(clean, n=12)
    assert all(success for success, _ in _outcomes(clean).values())

    rows = write_validated(tmp_path / "rows.parquet", n=12)
    rows[3]["messages_json"] = json.dumps([{"role": "user", "content": "   "}, {"role": "assistant", "content": "x"}])
    rows[7]["messages_json"] = json.dumps([{"role": "user", "content": "q"}, {"role": "robot", "content": "x"}])
    rows[9]["messages_json"] = json.dumps([{"role": "user", "content": "\t"}, {"role": "assistant", "content": "x"}])
    rows[10]["n_tokens"] = 500
    rows[11]["record_id"] = rows[0]["record_id"]
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(clean)), bad)

    whole, batched = _outcomes(bad), _outcomes(bad, messages_per_batch=5)  # 24 messages: five batches
    assert whole == batched
    failed = {key[1:]: count for key, (success, count) in whole.items() if not success}
    assert failed == {("expect_column_values_to_not_match_regex", "content"): 2,
                      ("expect_column_values_to_be_in_set", "role"): 1,
                      ("expect_column_values_to_be_between", "n_tokens"): 1,
                      ("expect_column_values_to_be_unique", "record_id"): 2}
