"""A code location for test_pools.py: one asset in the accelerator pool that records when it ran."""

import json
import os
import time

import dagster as dg

from fine_tune_assets.defs.keys import ACCELERATOR_POOL


@dg.asset(pool=ACCELERATOR_POOL)
def pool_probe(context: dg.AssetExecutionContext) -> None:
    started = time.time()
    time.sleep(3)
    with open(os.environ["POOL_PROBE_LOG"], "a", encoding="utf-8") as f:
        f.write(json.dumps({"run_id": context.run_id, "start": started, "end": time.time()}) + "\n")


# the executor the project's jobs use (defs/jobs.py)
probe_job = dg.define_asset_job("probe_job", selection=[pool_probe], executor_def=dg.in_process_executor)
defs = dg.Definitions(assets=[pool_probe], jobs=[probe_job])
