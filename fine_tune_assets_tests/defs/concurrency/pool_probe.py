"""A code location for test_pools.py: one asset in the accelerator pool that records when it ran.

While it holds the pool's slot it waits (up to two minutes) until the other run's step reports that
it is blocked, so the test does not depend on how fast two loaded processes start."""

import json
import os
import time

import dagster as dg

from fine_tune_assets.defs.keys import ACCELERATOR_POOL

BLOCKED = f"blocked by limit for pool {ACCELERATOR_POOL}"


def _other_run_waits_or_is_done(context: dg.AssetExecutionContext) -> bool:
    others = [r for r in context.instance.get_runs() if r.run_id != context.run_id]
    if not others:
        return False  # the other process has not created its run yet
    if all(r.is_finished for r in others):
        return True
    return any(BLOCKED in (e.user_message or "") for r in others for e in context.instance.all_logs(r.run_id))


@dg.asset(pool=ACCELERATOR_POOL)
def pool_probe(context: dg.AssetExecutionContext) -> None:
    started = time.time()
    with open(os.environ["POOL_PROBE_LOG"] + ".holding", "a", encoding="utf-8") as f:  # the test waits for this
        f.write(context.run_id + "\n")
    deadline = started + 120
    while time.time() < deadline and not _other_run_waits_or_is_done(context):
        time.sleep(0.5)
    time.sleep(1)
    with open(os.environ["POOL_PROBE_LOG"], "a", encoding="utf-8") as f:
        f.write(json.dumps({"run_id": context.run_id, "start": started, "end": time.time()}) + "\n")


# the executor the project's jobs use (defs/jobs.py)
probe_job = dg.define_asset_job("probe_job", selection=[pool_probe], executor_def=dg.in_process_executor)
defs = dg.Definitions(assets=[pool_probe], jobs=[probe_job])
