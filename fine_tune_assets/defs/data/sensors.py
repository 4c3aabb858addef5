"""new_raw_files: start data_job when files land in (or change in) raw/ or mappings/, once they settle."""

import json

import dagster as dg

from fine_tune_assets.lib.common.hashing import sha256_file, sha256_json
from fine_tune_assets.lib.data.ingest import list_raw_files
from fine_tune_assets.lib.data.stages import INGEST_CODE_VERSION

from ..resources import PipelineResource

# names that copy tools, browsers and editors give a file while they write it
IN_FLIGHT_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".download", ".filepart", ".swp", "~")


def _in_flight(path) -> bool:
    return path.name.lower().endswith(IN_FLIGHT_SUFFIXES)


def _cursor(raw: str | None) -> dict:
    """{"seen": listing fingerprint of the last tick, "ran": content hash of the last request}. An older
    cursor was the fingerprint alone."""
    if not raw:
        return {"seen": None, "ran": None}
    try:
        value = json.loads(raw)
    except ValueError:
        return {"seen": raw, "ran": None}
    return value if isinstance(value, dict) else {"seen": raw, "ran": None}


@dg.sensor(job_name="data_job", minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED,
           description="Runs data_job when the raw/ or mappings/ folder changes and has settled: files with "
                       "in-flight names (.part, .tmp, ...) are ignored, and a change must look the same (names, "
                       "sizes, modification times) on two ticks in a row before a run is requested, so a file "
                       "still being copied is not ingested half-written. The run key is built from the files' "
                       "content hashes and the ingest code version, so the same data never runs twice.")
def new_raw_files(context: dg.SensorEvaluationContext, pipeline: PipelineResource):
    paths = pipeline.paths
    raw = [p for p in list_raw_files(paths.raw) if not _in_flight(p)]
    if not raw:
        return dg.SkipReason(f"no files in {paths.raw} (files still being written are ignored)")
    files = raw + sorted(paths.mappings.glob("*.y*ml"))
    cursor = _cursor(context.cursor)
    # Cheap fingerprint first (names, sizes, mtimes); hash contents only once it held still for a tick.
    fingerprint = sha256_json([(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files])
    if fingerprint != cursor["seen"]:
        context.update_cursor(json.dumps({"seen": fingerprint, "ran": cursor["ran"]}))
        return dg.SkipReason("raw/ or mappings/ changed: waiting one more tick for the files to settle")
    content = sha256_json([(p.name, sha256_file(p)) for p in files])
    if content == cursor["ran"]:
        return dg.SkipReason("raw/ and mappings/ unchanged since the last run request")
    context.update_cursor(json.dumps({"seen": fingerprint, "ran": content}))
    return dg.RunRequest(run_key=f"raw-{content[:20]}-{INGEST_CODE_VERSION}",
                         tags={"fine_tune_assets/raw_content": content})
