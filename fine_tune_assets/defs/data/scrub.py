"""scrubbed_conversations: Presidio over every message of every role, after cheap size guards.

The stage runs in the step's process (``scrub_executor``: its process pool, or Ray Data actors on a
local Ray or the cluster at ``$RAY_ADDRESS``). For a Ray cluster, ``scrub_request`` and
``ray_job_params`` submit the same stage as a Ray job through dagster-ray's Pipes clients
(``workers/scrub.py``; README, "Scrubbing on Ray"). ``scrub_result`` reports either run the same way.
"""


import shlex
import time

import dagster as dg

from fine_tune_assets import OFFLINE_DEFAULTS
from fine_tune_assets.lib.data.stages import SCRUB_CODE_VERSION, StageOutput, scrub_stage

from ..keys import RAW_CONVERSATIONS
from ..metadata import md_table, stage_metadata
from ..openlineage import emits_openlineage
from ..resources import PipelineResource, upstream_stage


@dg.asset(group_name="data", code_version=SCRUB_CODE_VERSION, deps=[RAW_CONVERSATIONS],
          kinds={"presidio", "parquet"})
@emits_openlineage
def scrubbed_conversations(context: dg.AssetExecutionContext,
                           pipeline: PipelineResource) -> dg.MaterializeResult:
    """PII replaced by typed placeholders (``<PERSON_1>`` stays one person within a conversation) or
    keyed pseudonyms. Per-record provenance: entity counts, policy hash, Presidio version; never the
    raw values."""
    ingested = upstream_stage(context, RAW_CONVERSATIONS)
    policy = pipeline.policy()
    started = time.perf_counter()
    stage = scrub_stage(pipeline.paths, ingested, policy, workers=pipeline.scrub_workers,
                        max_record_chars=pipeline.max_record_chars, progress=context.log.info,
                        executor=pipeline.scrub_executor)
    return scrub_result(stage, time.perf_counter() - started)


RATE_AFTER = 1000  # records scrubbed in a run before its records/s means throughput


def scrub_result(stage: StageOutput, seconds: float) -> dg.MaterializeResult:
    """The materialization of a scrub stage's output, wherever it ran."""
    metadata = stage_metadata(stage)
    counts = stage.summary["entity_counts"]
    metadata.update({
        "scrub_policy_hash": stage.summary["policy_hash"],
        "presidio_version": stage.summary["presidio_version"],
        "entities_replaced": dg.MetadataValue.int(sum(counts.values())),
        "entities_by_type": md_table(["entity type", "replaced"], [[k, v] for k, v in counts.items()]),
    })
    cache = stage.summary.get("cache")
    if not stage.reused and cache:  # the per-record scrub cache: only records it lacked were scrubbed
        metadata["scrubbed_in_this_run"] = dg.MetadataValue.int(cache["scrubbed"])
        metadata["reused_from_scrub_cache"] = dg.MetadataValue.int(cache["reused"])
        metadata["scrub_seconds"] = dg.MetadataValue.float(round(seconds, 1))
        if cache["scrubbed"] >= RATE_AFTER:  # below that, loading Presidio (seconds) is most of the time
            metadata["records_per_second"] = dg.MetadataValue.float(round(cache["scrubbed"] / seconds, 1))
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(stage.data_version))


def scrub_request(pipeline: PipelineResource, ingested: StageOutput) -> dict:
    """What ``workers/scrub.py`` needs to run this stage as a Ray job: the settings the asset uses, on Ray."""
    policy = pipeline.policy_path()
    return {"data_dir": str(pipeline.paths.root), "ingest_folder": str(ingested.folder),
            "policy": str(policy) if policy else None, "workers": pipeline.scrub_workers,
            "max_record_chars": pipeline.max_record_chars, "executor": "ray"}


def ray_job_params(request_path, entrypoint_num_cpus: float = 1) -> dict:
    """``submit_job_params`` for dagster-ray's ``PipesRayJobClient.run`` (or ``PipesKubeRayJobClient.run``):
    ``workers/scrub.py`` on ``request_path``, as a Ray job on a cluster whose image has this project installed.

    The job's driver reserves ``entrypoint_num_cpus``. The runtime env carries only the offline
    defaults, so the driver and every Ray worker start with them. dagster-ray adds the Pipes
    variables. Secrets such as the pseudonym key come from the cluster's own environment (a
    Kubernetes secret): a runtime env is visible on the Ray dashboard.
    """
    return {"entrypoint": shlex.join(["python", "-m", "fine_tune_assets.workers.scrub", str(request_path)]),
            "entrypoint_num_cpus": entrypoint_num_cpus,
            "runtime_env": {"env_vars": dict(OFFLINE_DEFAULTS)}}
