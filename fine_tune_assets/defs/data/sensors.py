"""new_raw_files: start data_job when files land in (or change in) raw/ or mappings/."""

import dagster as dg

from fine_tune_assets.lib.common.hashing import sha256_file, sha256_json
from fine_tune_assets.lib.data.ingest import list_raw_files
from fine_tune_assets.lib.data.stages import INGEST_CODE_VERSION

from ..resources import PipelineResource


@dg.sensor(job_name="data_job", minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED,
           description="Runs data_job when the raw/ or mappings/ folder changes. The run key is built from the "
                       "files' content hashes and the ingest code version, so the same data never runs twice.")
def new_raw_files(context: dg.SensorEvaluationContext, pipeline: PipelineResource):
    paths = pipeline.paths
    files = list_raw_files(paths.raw) + sorted(paths.mappings.glob("*.y*ml"))
    if not list_raw_files(paths.raw):
        return dg.SkipReason(f"no files in {paths.raw}")
    # Cheap fingerprint first (names, sizes, mtimes); hash contents only when something moved.
    fingerprint = sha256_json([(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files])
    if fingerprint == context.cursor:
        return dg.SkipReason("raw/ and mappings/ unchanged since the last evaluation")
    content = sha256_json([(p.name, sha256_file(p)) for p in files])
    context.update_cursor(fingerprint)
    return dg.RunRequest(run_key=f"raw-{content[:20]}-{INGEST_CODE_VERSION}",
                         tags={"fine_tune_assets/raw_content": content})
