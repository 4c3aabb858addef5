"""Every asset materialization emits OpenLineage START, then COMPLETE (or FAIL / ABORT).

Mechanism: the decorator ``@emits_openlineage``, one line under each ``@dg.asset``. It runs inside
the step, around the asset's body:

- START before the body, with the inputs as the body will read them: the latest materialization
  of each upstream asset (the same lookup ``upstream_stage`` makes);
- COMPLETE after it, with the output described from the asset's own ``MaterializeResult`` metadata
  (the path and content hash it just produced) and the inputs refined where the output records
  what was really read (an adapter's ``lineage.json`` names its dataset version and base model);
- FAIL with an ``errorMessage`` facet when the body raises (ABORT when the run is terminated).

The decorator covers every way an asset runs (UI, jobs, ``dg.materialize``), and lineage can never
fail a materialization: an event that cannot be built or sent is a warning in the run's log (why a
decorator rather than a sensor or run hooks: docs/architecture.md).

What goes into events: paths, content hashes, counts and schemas (``lib/audit/openlineage.py``). Error
messages: a ``dg.Failure``'s description (written by this project: gate names, thresholds, ids);
any other exception is reported by its class name only, since its message can quote a record.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import dagster as dg

from fine_tune_assets.lib.audit import openlineage as ol
from fine_tune_assets.lib.common.paths import DataPaths

SCHEDULED_TIME_TAG = "dagster/scheduled_execution_time"
DATA_VERSION_TAG = "dagster/data_version"


def _plain(metadata) -> dict:
    return {k: (v.value if isinstance(v, dg.MetadataValue) else v) for k, v in (metadata or {}).items()}


class _Describer:
    """Turns an asset's materialization metadata into the OpenLineage dataset it produced."""

    def __init__(self, paths: DataPaths, config: ol.LineageConfig):
        self.paths, self.config = paths, config
        self.ns, self.producer = config.dataset_namespace, config.producer

    def output(self, asset: str, md: dict, as_output: bool = True) -> ol.Dataset | None:
        ns, producer = self.ns, self.producer
        if "staging_path" in md:  # raw_conversations, scrubbed_conversations, validated_conversations
            return ol.staged_dataset(ns, Path(md["staging_path"]), md.get("data_version"), producer)
        if asset == "dataset_version" and md.get("path"):
            return ol.published_dataset(ns, Path(md["path"]), md.get("dataset_version"), producer)
        if asset == "base_model" and md.get("path"):
            return ol.base_model_dataset(ns, Path(md["path"]), md.get("identity_hash"), md.get("weights_sha256"),
                                         producer)
        if asset == "lora_adapter" and md.get("path"):
            return ol.adapter_dataset(ns, Path(md["path"]), md.get("adapter_id"), hash_files=as_output,
                                      producer=producer)
        if asset == "eval_report" and md.get("report_json"):
            return ol.eval_report_dataset(ns, Path(md["report_json"]).parent, md.get("eval_id"),
                                          hash_files=as_output, producer=producer)
        if md.get("path"):  # any other asset that reports where it wrote: named by that path
            return ol.dataset(ns, Path(md["path"]), version=md.get("data_version"), producer=producer)
        return None

    def upstream(self, context, key: dg.AssetKey) -> ol.Dataset | None:
        event = context.instance.get_latest_materialization_event(key)
        if event is None or event.asset_materialization is None:
            return None
        md = _plain(event.asset_materialization.metadata)
        md.setdefault("data_version", (event.asset_materialization.tags or {}).get(DATA_VERSION_TAG))
        return self.output(key.to_user_string(), md, as_output=False)

    def inputs_recorded_by(self, asset: str, md: dict) -> list[ol.Dataset] | None:
        """Inputs as the output records them, where it does; None: keep the ones START named."""
        ns, producer = self.ns, self.producer
        if asset == "raw_conversations" and md.get("staging_path"):
            summary = json.loads((Path(md["staging_path"]) / "summary.json").read_text())
            return [ol.raw_files_dataset(ns, self.paths.raw, summary["cumulative"]["files"], producer)]
        if asset == "lora_adapter" and md.get("path"):
            lineage = json.loads((Path(md["path"]) / "lineage.json").read_text())
            base = lineage["base_model"]
            return [ol.published_dataset(ns, self.paths.datasets / lineage["dataset_version"],
                                         lineage["dataset_version"], producer),
                    ol.base_model_dataset(ns, Path(base["path"]), base.get("identity_hash"),
                                          base.get("weights_sha256"), producer)]
        if asset == "eval_report" and md.get("report_json") and md.get("adapter_id"):
            adapter_dir = Path(md["report_json"]).parent.parent
            inputs = [ol.adapter_dataset(ns, adapter_dir, md["adapter_id"], producer=producer)]
            if md.get("dataset_version"):
                inputs.append(ol.published_dataset(ns, self.paths.datasets / md["dataset_version"],
                                                   md["dataset_version"], producer))
            return inputs
        return None


class _AssetRun:
    """The OpenLineage run of one asset in one Dagster run."""

    def __init__(self, context: dg.AssetExecutionContext, paths: DataPaths, config: ol.LineageConfig):
        self.context, self.paths, self.config = context, paths, config
        self.describer = _Describer(paths, config)
        key = context.asset_key
        self.asset = key.to_user_string()
        self.job_name = ".".join(key.path)
        self.run_id = ol.child_run_id(context.run_id, self.job_name, context.retry_number)
        self.inputs: list[ol.Dataset] = []
        assets_def = context.assets_def
        producer = config.producer
        self.job_facets = {"jobType": ol.job_type_facet(producer)}
        description = assets_def.descriptions_by_key.get(key)
        if description:
            self.job_facets["documentation"] = ol.documentation_facet(description, producer)
        self.job_facets[ol.ASSET_FACET] = ol.custom_facet(
            "DagsterAssetJobFacet", producer, assetKey=self.asset, codeVersion=assets_def.code_versions_by_key.get(key),
            groupName=assets_def.group_names_by_key.get(key))
        self.run_facets = {
            "parent": ol.parent_run_facet(config.job_namespace, context.job_name, context.run_id, producer),
            "processing_engine": ol.processing_engine_facet("Dagster", dg.__version__, producer),
        }
        scheduled = (context.run.tags or {}).get(SCHEDULED_TIME_TAG)
        if scheduled:
            self.run_facets["nominalTime"] = ol.nominal_time_facet(scheduled, producer=producer)

    def _emit(self, event_type: str, outputs=(), extra_run_facets=None) -> None:
        event = ol.run_event(event_type, job_namespace=self.config.job_namespace, job_name=self.job_name,
                             run_id=self.run_id, inputs=self.inputs, outputs=outputs,
                             run_facets={**self.run_facets, **(extra_run_facets or {})},
                             job_facets=self.job_facets, producer=self.config.producer)
        ol.emit(event, self.config, self.context.log)

    def start(self) -> None:
        deps = self.context.assets_def.asset_deps.get(self.context.asset_key, set())
        self.inputs = [d for d in (self.describer.upstream(self.context, k)
                                   for k in sorted(deps, key=lambda k: k.to_user_string())) if d is not None]
        if not deps and self.asset == "raw_conversations":
            self.inputs = [ol.raw_files_dataset(self.config.dataset_namespace, self.paths.raw, None,
                                                self.config.producer)]
        self._emit("START")

    def complete(self, result) -> None:
        md = _plain(getattr(result, "metadata", None))
        data_version = getattr(result, "data_version", None)
        if data_version is not None and "data_version" not in md:
            md["data_version"] = data_version.value
        output = self.describer.output(self.asset, md)
        recorded = self.describer.inputs_recorded_by(self.asset, md)
        if recorded is not None:
            self.inputs = recorded
        self._emit("COMPLETE", outputs=[output] if output else [])

    def failed(self, exc: BaseException) -> None:
        if isinstance(exc, dg.Failure):
            message = exc.description or "dg.Failure"
        else:
            message = (f"{exc.__class__.__name__} in {self.asset} (details are in the log of Dagster run "
                       f"{self.context.run_id}; not copied here since they can quote data)")
        aborted = not isinstance(exc, Exception)  # KeyboardInterrupt, run termination
        self._emit("ABORT" if aborted else "FAIL",
                   extra_run_facets={"errorMessage": ol.error_message_facet(message, self.config.producer)})


def _guarded(context, what: str, action, *args) -> None:
    try:
        action(*args)
    except Exception as exc:
        context.log.warning(f"OpenLineage {what} event not emitted: {exc.__class__.__name__}: {exc}")


def _paths_of(context, kwargs) -> DataPaths:
    pipeline = kwargs.get("pipeline")
    if pipeline is None:
        pipeline = getattr(context.resources, "pipeline", None)
    return pipeline.paths if pipeline is not None else DataPaths.from_env()


def emits_openlineage(fn):
    """Put under ``@dg.asset``: the asset emits OpenLineage START / COMPLETE / FAIL (module docstring)."""

    @functools.wraps(fn)
    def wrapper(context, *args, **kwargs):
        run = None
        try:
            paths = _paths_of(context, kwargs)
            config = ol.LineageConfig.from_env(paths.root)
            if config.enabled:
                run = _AssetRun(context, paths, config)
        except Exception as exc:
            context.log.warning(f"OpenLineage disabled for this step: {exc.__class__.__name__}: {exc}")
        if run is not None:
            _guarded(context, "START", run.start)
        try:
            result = fn(context, *args, **kwargs)
        except BaseException as exc:
            if run is not None:
                _guarded(context, "FAIL", run.failed, exc)
            raise
        if run is not None:
            _guarded(context, "COMPLETE", run.complete, result)
        return result

    return wrapper
