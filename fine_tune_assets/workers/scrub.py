"""The scrub stage in its own process, reporting to Dagster through Pipes: the driver of a Ray job.

``python -m fine_tune_assets.workers.scrub REQUEST.json``. The asset runs the stage in its own process.
This entry point is for a Ray cluster. dagster-ray's ``PipesRayJobClient`` (``PipesKubeRayJobClient``
on KubeRay) submits it as a Ray job with the parameters that ``defs.pipes.ray_job_params`` builds.
This process is the job's driver: Ray's job supervisor sets ``RAY_ADDRESS``, so ``executor="ray"``
connects to the cluster, and the actors run on the cluster's nodes. Only this process reads the
ingest stage's output and writes the scrub stage's folder. The actors get their chunks through Ray's
object store, so only the job's driver needs the data directory, at the paths the request names.

It reports the stage's folder as a Pipes custom message. The asset loads the stage from there and
reports it the same way as a run in its own process. Without Pipes (run by hand), it logs to stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dagster_pipes import open_dagster_pipes

from fine_tune_assets.lib.common.paths import DataPaths
from fine_tune_assets.lib.data.scrub import load_policy
from fine_tune_assets.lib.data.stages import DEFAULT_MAX_RECORD_CHARS, StageOutput, scrub_stage


def main(request_path: str) -> None:
    request = json.loads(Path(request_path).read_text())
    with open_dagster_pipes() as pipes:
        stage = scrub_stage(
            DataPaths(Path(request["data_dir"])), StageOutput.load(Path(request["ingest_folder"])),
            load_policy(request.get("policy")), workers=request.get("workers", 2),
            max_record_chars=request.get("max_record_chars", DEFAULT_MAX_RECORD_CHARS),
            progress=pipes.log.info, executor=request.get("executor", "ray"))
        pipes.report_custom_message({"staging_path": str(stage.folder), "data_version": stage.data_version})


if __name__ == "__main__":
    main(sys.argv[1])
