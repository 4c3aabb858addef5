"""Smoke form of ``bench/drift_power.py`` (CI, ~3 min on 2 cores): the committed sample and one other
generator seed through the real ingest, scrub and validate stages, three same-distribution windows
and one window per shift, evaluated by the real detectors."""

import importlib.util
import json

import pytest

from fine_tune_assets_tests.factories import REPO


@pytest.mark.slow
def test_drift_power_smoke(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_drift_power", REPO / "bench" / "drift_power.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "drift_power.json"
    assert bench.main(["--smoke", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    same = result["false_alarms"]
    assert same["windows"] == 3 and same["confirmed"] == 0
    assert set(result["detection"]) == {*bench.SHIFTS, "new_product_line@10%"}
    assert all(d["windows"] == 1 for d in result["detection"].values())
    # a quarter of the window in German, or under a new system prompt: confirmed at once
    assert result["detection"]["another_language"]["confirmed"] == 1
    assert result["detection"]["new_system_prompt"]["confirmed"] == 1
    # a new product name in a tenth of the window: the terms family sees it
    assert result["detection"]["new_product_line@10%"]["families"].get("terms") == 1
    lo, hi = bench.clopper_pearson(0, 60)
    assert lo == 0.0 and 0.059 < hi < 0.061  # the bound the benchmark reports for 0 of 60
