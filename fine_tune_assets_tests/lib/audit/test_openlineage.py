"""OpenLineage export: event structure against the 2-0-2 spec, file and HTTP transports, the asset
decorator (START / COMPLETE / FAIL), and the data half of the pipeline end to end."""

import itertools
import json
import logging
import socket
import threading
import uuid
from datetime import datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import dagster as dg
import pytest

from fine_tune_assets.defs.openlineage import _Describer, emits_openlineage
from fine_tune_assets.defs.resources import PipelineResource
from fine_tune_assets.lib.audit import openlineage as ol
from fine_tune_assets.lib.common.paths import DataPaths
from fine_tune_assets_tests.factories import DATA_ASSETS, SAMPLE_DATA, make_data_dir
from fine_tune_assets_tests.pii_patterns import structured_pii

jsonschema = pytest.importorskip("jsonschema")

ENV_VARS = ("FINE_TUNE_OPENLINEAGE", "FINE_TUNE_OPENLINEAGE_FILE", "OPENLINEAGE_URL", "OPENLINEAGE_ENDPOINT",
            "OPENLINEAGE_API_KEY", "OPENLINEAGE_NAMESPACE", "OPENLINEAGE_DISABLED", "FINE_TUNE_OPENLINEAGE_TIMEOUT",
            "FINE_TUNE_OPENLINEAGE_PRODUCER", "FINE_TUNE_OPENLINEAGE_DATASET_NAMESPACE")

# The requirements of https://openlineage.io/spec/2-0-2/OpenLineage.json that matter to a consumer,
# transcribed (the spec cannot be fetched offline): required keys, types, the base facet's fields.
BASE_FACET = {"type": "object", "required": ["_producer", "_schemaURL"],
              "properties": {"_producer": {"type": "string", "minLength": 1},
                             "_schemaURL": {"type": "string", "pattern": r"^[a-z][a-z0-9+.-]*:.+#/\$defs/\w+$"}}}
FACETS = {"type": "object", "additionalProperties": {"$ref": "#/$defs/BaseFacet"}}
DATASET = {"type": "object", "required": ["namespace", "name"],
           "properties": {"namespace": {"type": "string", "minLength": 1}, "name": {"type": "string", "minLength": 1},
                          "facets": FACETS, "inputFacets": FACETS, "outputFacets": FACETS}}
RUN_EVENT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$defs": {"BaseFacet": BASE_FACET},
    "type": "object",
    "required": ["eventTime", "producer", "schemaURL", "run", "job"],
    "properties": {
        "eventType": {"enum": ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]},
        "eventTime": {"type": "string", "format": "date-time"},
        "producer": {"type": "string", "minLength": 1},
        "schemaURL": {"const": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"},
        "run": {"type": "object", "required": ["runId"],
                "properties": {"runId": {"type": "string", "format": "uuid"}, "facets": FACETS}},
        "job": {"type": "object", "required": ["namespace", "name"],
                "properties": {"namespace": {"type": "string", "minLength": 1},
                               "name": {"type": "string", "minLength": 1}, "facets": FACETS}},
        "inputs": {"type": "array", "items": DATASET},
        "outputs": {"type": "array", "items": DATASET},
    },
}
VALIDATOR = jsonschema.Draft202012Validator(RUN_EVENT_SCHEMA, format_checker=jsonschema.FormatChecker())


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def facets_of(event: dict):
    """(facet name, facet) for every facet of an event: run, job, datasets, input and output facets."""
    groups = [event["run"].get("facets", {}), event["job"].get("facets", {})]
    for d in event.get("inputs", []) + event.get("outputs", []):
        groups += [d.get("facets", {}), d.get("inputFacets", {}), d.get("outputFacets", {})]
    return [item for group in groups for item in group.items()]


def assert_valid(event: dict) -> None:
    errors = sorted(VALIDATOR.iter_errors(event), key=str)
    assert not errors, [e.message for e in errors[:5]]
    time = datetime.fromisoformat(event["eventTime"])
    assert time.utcoffset() is not None and time.utcoffset().total_seconds() == 0
    uuid.UUID(event["run"]["runId"])
    for name, facet in facets_of(event):
        assert facet["_producer"] and facet["_schemaURL"], name
        if name in ol.FACET_SCHEMA_URLS:
            assert facet["_schemaURL"] == ol.FACET_SCHEMA_URLS[name]
            assert facet["_schemaURL"].startswith("https://openlineage.io/spec/facets/")
        else:  # custom facets carry the project's prefix and follow their own schema
            assert name.startswith(ol.CUSTOM_FACET_PREFIX), name
            schema_name = facet["_schemaURL"].rsplit("/", 1)[1]
            jsonschema.validate(facet, ol.CUSTOM_FACET_SCHEMAS[schema_name])


def sample_event(event_type="COMPLETE") -> dict:
    output = ol.dataset("file", "/data/datasets", version="ab" * 32,
                        schema=[{"name": "record_id", "type": "string"},
                                {"name": "messages", "type": "list", "fields": [
                                    {"name": "element", "type": "struct", "fields": [
                                        {"name": "role", "type": "string"}, {"name": "content", "type": "string"}]}]}],
                        files=[{"path": "train.jsonl", "size": 10, "sha256": "cd" * 32}], row_count=3)
    return ol.run_event(
        event_type, job_namespace="fine_tune_assets", job_name="dataset_version",
        run_id=ol.child_run_id(str(uuid.uuid4()), "dataset_version"),
        inputs=[ol.dataset("file", "/data/staging/validate", version="ef" * 32)], outputs=[output],
        run_facets={"parent": ol.parent_run_facet("fine_tune_assets", "data_job", str(uuid.uuid4())),
                    "nominalTime": ol.nominal_time_facet("2026-11-30T12:00:00Z"),
                    "processing_engine": ol.processing_engine_facet("Dagster", dg.__version__)},
        job_facets={"jobType": ol.job_type_facet(), "documentation": ol.documentation_facet("publishes"),
                    "sourceCodeLocation": ol.source_code_location_facet("https://example.invalid/repo"),
                    ol.ASSET_FACET: ol.custom_facet("DagsterAssetJobFacet", assetKey="dataset_version",
                                                    codeVersion="dataset-1", groupName="data")})


# ------------------------------------------------------------------------------------------------ events

def test_run_event_follows_the_spec():
    event = sample_event()
    assert_valid(event)
    assert event["job"]["facets"]["jobType"]["integration"] == "DAGSTER"
    assert event["job"]["facets"]["jobType"]["processingType"] == "BATCH"
    assert event["job"]["facets"]["jobType"]["jobType"] == "ASSET"
    out = event["outputs"][0]
    assert out["facets"]["version"]["datasetVersion"] == "ab" * 32
    assert [f["name"] for f in out["facets"]["schema"]["fields"]] == ["record_id", "messages"]
    assert out["outputFacets"]["outputStatistics"]["rowCount"] == 3
    assert event["run"]["facets"]["parent"]["job"] == {"namespace": "fine_tune_assets", "name": "data_job"}
    with pytest.raises(ValueError):
        ol.run_event("DONE", job_namespace="n", job_name="j", run_id="r")
    # the transcribed schema rejects what the spec rejects
    broken = sample_event()
    del broken["run"]["facets"]["parent"]["_producer"]
    broken["run"]["runId"] = "not-a-uuid"
    assert len(list(VALIDATOR.iter_errors(broken))) == 2


def test_run_ids_are_uuids_stable_per_asset_and_distinct_between_assets():
    dagster_run = str(uuid.uuid4())
    assert ol.as_run_id(dagster_run) == dagster_run
    assert ol.as_run_id("EPHEMERAL") == ol.as_run_id("EPHEMERAL")
    uuid.UUID(ol.as_run_id("EPHEMERAL"))
    a, b = ol.child_run_id(dagster_run, "raw_conversations"), ol.child_run_id(dagster_run, "dataset_version")
    assert a == ol.child_run_id(dagster_run, "raw_conversations") and a != b and dagster_run not in (a, b)
    assert ol.child_run_id(dagster_run, "raw_conversations", attempt=1) != a


def test_arrow_schema_becomes_nested_schema_fields():
    import pyarrow as pa

    schema = pa.schema([pa.field("record_id", pa.string()), pa.field("n_tokens", pa.int32()),
                        pa.field("messages", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())])))])
    fields = ol.arrow_schema_fields(schema)
    assert fields[:2] == [{"name": "record_id", "type": "string"}, {"name": "n_tokens", "type": "int32"}]
    assert fields[2]["type"] == "list"
    element = fields[2]["fields"][0]
    assert element["type"] == "struct" and [f["name"] for f in element["fields"]] == ["role", "content"]


def test_config_from_environment(tmp_path, monkeypatch):
    config = ol.LineageConfig.from_env(tmp_path)
    assert config.enabled and config.file == tmp_path / "lineage" / "openlineage.jsonl"
    assert config.http_url is None and config.job_namespace == "fine_tune_assets" and config.dataset_namespace == "file"
    monkeypatch.setenv("OPENLINEAGE_URL", "http://marquez:5000/")
    monkeypatch.setenv("OPENLINEAGE_API_KEY", "k")
    monkeypatch.setenv("OPENLINEAGE_NAMESPACE", "prod")
    monkeypatch.setenv("FINE_TUNE_OPENLINEAGE_FILE", str(tmp_path / "x.jsonl"))
    config = ol.LineageConfig.from_env(tmp_path)
    assert config.http_url == "http://marquez:5000/api/v1/lineage"
    assert config.api_key == "k" and "k" not in repr(config)
    assert config.job_namespace == "prod" and config.file == tmp_path / "x.jsonl"
    monkeypatch.setenv("FINE_TUNE_OPENLINEAGE_FILE", "off")
    assert ol.LineageConfig.from_env(tmp_path).file is None
    monkeypatch.setenv("FINE_TUNE_OPENLINEAGE", "off")
    assert not ol.LineageConfig.from_env(tmp_path).enabled
    monkeypatch.delenv("FINE_TUNE_OPENLINEAGE")
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    assert not ol.LineageConfig.from_env(tmp_path).enabled


# ------------------------------------------------------------------------------------------------ transports

def test_file_transport_appends_one_json_line_per_event(tmp_path):
    config = ol.LineageConfig(file=tmp_path / "lineage" / "events.jsonl")
    assert ol.emit(sample_event("START"), config)
    assert ol.emit(sample_event("COMPLETE"), config)
    lines = config.file.read_text().splitlines()
    assert [json.loads(line)["eventType"] for line in lines] == ["START", "COMPLETE"]
    for line in lines:
        assert_valid(json.loads(line))


def test_concurrent_writers_never_interleave_lines(tmp_path):
    config = ol.LineageConfig(file=tmp_path / "events.jsonl")
    big = sample_event()
    big["job"]["facets"]["documentation"]["description"] = "x" * 20_000  # several pipe/page sizes per line

    def write(n):
        for _ in range(n):
            ol.emit(big, config)

    threads = [threading.Thread(target=write, args=(25,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = ol.read_events(config.file)
    assert len(events) == 100 and all(e == events[0] for e in events)


class _Recorder(BaseHTTPRequestHandler):
    received: ClassVar[list] = []
    status = 201

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    handler = type("Handler", (_Recorder,), {"received": [], "status": 201})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", handler
    server.shutdown()
    server.server_close()


def test_http_transport_posts_to_the_marquez_endpoint(tmp_path, http_server, monkeypatch):
    url, handler = http_server
    monkeypatch.setenv("OPENLINEAGE_URL", url + "/")
    monkeypatch.setenv("OPENLINEAGE_API_KEY", "s3cret-key")
    config = ol.LineageConfig.from_env(tmp_path)
    event = sample_event()
    assert ol.emit(event, config)
    [request] = handler.received
    assert request["path"] == "/api/v1/lineage"
    assert request["body"] == event
    assert request["headers"]["Authorization"] == "Bearer s3cret-key"
    assert request["headers"]["Content-Type"] == "application/json"
    assert ol.read_events(config.file) == [event]


def test_http_errors_only_warn_and_the_file_is_still_written(tmp_path, http_server, caplog):
    url, handler = http_server
    handler.status = 500
    config = ol.LineageConfig(file=tmp_path / "events.jsonl", url=url, api_key="s3cret-key", timeout_s=2)
    event = sample_event()
    with caplog.at_level(logging.WARNING, logger=ol.__name__):
        assert not ol.emit(event, config)
    assert "HTTP 500" in caplog.text and f"{url}/api/v1/lineage" in caplog.text

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    unreachable = ol.LineageConfig(file=tmp_path / "events.jsonl", url=f"http://user:pw@127.0.0.1:{closed_port}",
                                   api_key="s3cret-key", timeout_s=2)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=ol.__name__):
        assert not ol.emit(event, unreachable)
    assert f"http://127.0.0.1:{closed_port}/api/v1/lineage" in caplog.text
    for secret in ("s3cret-key", "pw@", "/data/datasets", "dataset_version"):  # no key, credentials or payload
        assert secret not in caplog.text
    assert len(ol.read_events(tmp_path / "events.jsonl")) == 2


# ------------------------------------------------------------------------------------------------ decorator

@dg.asset
@emits_openlineage
def lineage_probe(context: dg.AssetExecutionContext, pipeline: PipelineResource) -> dg.MaterializeResult:
    out = pipeline.paths.root / "probe"
    out.mkdir(parents=True, exist_ok=True)
    (out / "probe.txt").write_text("ok")
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(out))}, data_version=dg.DataVersion("v1"))


@dg.asset(deps=[lineage_probe])
@emits_openlineage
def gate_probe(context: dg.AssetExecutionContext, pipeline: PipelineResource) -> dg.MaterializeResult:
    raise dg.Failure(description="Blocking quality gates failed: minimum_examples (observed 3, threshold 10)")


@dg.asset
@emits_openlineage
def crash_probe(context: dg.AssetExecutionContext, pipeline: PipelineResource) -> dg.MaterializeResult:
    raise ValueError("could not convert 'Jane Roe, jane@example.com' to int")


def test_decorator_emits_start_complete_and_fail_without_data(tmp_path):
    resources = {"pipeline": PipelineResource(data_dir=str(tmp_path))}
    instance = dg.DagsterInstance.ephemeral()
    ok = dg.materialize([lineage_probe, gate_probe], instance=instance, resources=resources, raise_on_error=False)
    crashed = dg.materialize([crash_probe], instance=instance, resources=resources, raise_on_error=False)
    assert not ok.success and not crashed.success
    events = ol.read_events(tmp_path / "lineage" / "openlineage.jsonl")
    for event in events:
        assert_valid(event)
    assert [(e["job"]["name"], e["eventType"]) for e in events] == [
        ("lineage_probe", "START"), ("lineage_probe", "COMPLETE"), ("gate_probe", "START"), ("gate_probe", "FAIL"),
        ("crash_probe", "START"), ("crash_probe", "FAIL")]
    probe_start, probe_done, gate_start, gate_fail, _, crash_fail = events
    assert probe_start["run"]["runId"] == probe_done["run"]["runId"] != gate_start["run"]["runId"]
    assert probe_done["run"]["facets"]["parent"]["run"]["runId"] == ok.run_id
    assert probe_done["run"]["facets"]["parent"]["job"]["name"] == ok.job_def.name
    [output] = probe_done["outputs"]
    assert output == {**output, "namespace": "file", "name": str(tmp_path / "probe")}
    assert output["facets"]["version"]["datasetVersion"] == "v1"
    # the failing asset names its upstream as input, by the version it would have read
    assert [(i["name"], i["facets"]["version"]["datasetVersion"]) for i in gate_start["inputs"]] == \
        [(str(tmp_path / "probe"), "v1")]
    error = gate_fail["run"]["facets"]["errorMessage"]
    assert error["message"].startswith("Blocking quality gates failed") and error["programmingLanguage"] == "python"
    assert "stackTrace" not in error
    crash = crash_fail["run"]["facets"]["errorMessage"]["message"]
    assert crash.startswith("ValueError in crash_probe")
    text = (tmp_path / "lineage" / "openlineage.jsonl").read_text()
    assert "Jane Roe" not in text and structured_pii(text) == []


def test_lineage_off_writes_nothing_and_a_broken_target_never_fails_the_asset(tmp_path, monkeypatch):
    resources = {"pipeline": PipelineResource(data_dir=str(tmp_path))}
    monkeypatch.setenv("FINE_TUNE_OPENLINEAGE", "off")
    assert dg.materialize([lineage_probe], resources=resources).success
    assert not (tmp_path / "lineage").exists()
    monkeypatch.delenv("FINE_TUNE_OPENLINEAGE")
    (tmp_path / "not_a_dir").write_text("")
    monkeypatch.setenv("FINE_TUNE_OPENLINEAGE_FILE", str(tmp_path / "not_a_dir" / "events.jsonl"))
    assert dg.materialize([lineage_probe], resources=resources).success


def test_adapter_and_evaluation_inputs_come_from_what_they_recorded(tmp_path):
    """lora_adapter / eval_report train and evaluate (too slow here): their describers on fake folders."""
    paths = DataPaths(tmp_path)
    version = "1" * 64
    (paths.datasets / version).mkdir(parents=True)
    (paths.datasets / version / "manifest.json").write_text(json.dumps(
        {"version_id": version, "files": {"train.jsonl": "2" * 64}, "counts": {"train": 5, "eval": 1}}))
    adapter = paths.adapters / ("3" * 64)
    (adapter / "eval").mkdir(parents=True)
    (adapter / "adapter_model.safetensors").write_bytes(b"weights")
    (adapter / "eval" / "eval_report.json").write_text("{}")
    base = tmp_path / "models" / "SmolLM2"
    (adapter / "lineage.json").write_text(json.dumps({"dataset_version": version, "base_model": {
        "path": str(base), "identity_hash": "4" * 64, "weights_sha256": {"model.safetensors": "5" * 64}}}))
    describer = _Describer(paths, ol.LineageConfig(file=None))

    lora_md = {"adapter_id": adapter.name, "path": str(adapter), "dataset_version": version}
    out = describer.output("lora_adapter", lora_md)
    assert (out.name, out.version) == (str(paths.adapters), adapter.name)
    files = out.facets[ol.FILES_FACET]["files"]
    assert {f["path"] for f in files} == {"adapter_model.safetensors", "lineage.json"}
    assert all(len(f["sha256"]) == 64 for f in files)
    inputs = describer.inputs_recorded_by("lora_adapter", lora_md)
    assert [(d.name, d.version) for d in inputs] == [(str(paths.datasets), version), (str(base), "4" * 64)]
    assert inputs[0].facets[ol.FILES_FACET]["files"] == [{"path": "train.jsonl", "sha256": "2" * 64}]

    eval_md = {"eval_id": "e1", "adapter_id": adapter.name, "dataset_version": version,
               "report_json": str(adapter / "eval" / "eval_report.json")}
    out = describer.output("eval_report", eval_md)
    assert (out.name, out.version) == (str(adapter / "eval"), "e1")
    assert [(d.name, d.version) for d in describer.inputs_recorded_by("eval_report", eval_md)] == \
        [(str(paths.adapters), adapter.name), (str(paths.datasets), version)]


# ------------------------------------------------------------------------------------------------ end to end

def raw_message_texts(raw_dir: Path) -> set[str]:
    texts = set()
    for path in raw_dir.glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                messages = json.loads(line).get("messages")
            except (ValueError, AttributeError):
                continue
            for m in messages if isinstance(messages, list) else []:
                if isinstance(m, dict) and isinstance(m.get("content"), str) and len(m["content"]) >= 20:
                    texts.add(m["content"])
    return texts


@pytest.mark.slow
def test_data_pipeline_emits_lineage_for_every_asset(tmp_path, models_dir):
    data_dir = make_data_dir(tmp_path / "data", models_dir, with_sample=False)
    source = SAMPLE_DATA / "raw" / "chat_export_2026-09.jsonl"
    (data_dir / "raw" / source.name).write_bytes(b"\n".join(source.read_bytes().splitlines()[:120]) + b"\n")
    resource = PipelineResource(data_dir=str(data_dir), quarantine_rate_ceiling=1.0, min_examples=1)
    result = dg.materialize(DATA_ASSETS, resources={"pipeline": resource})
    assert result.success

    events = ol.read_events(data_dir / "lineage" / "openlineage.jsonl")
    for event in events:
        assert_valid(event)
    names = ["raw_conversations", "scrubbed_conversations", "validated_conversations", "dataset_version"]
    assert [(e["job"]["name"], e["eventType"]) for e in events] == \
        [(n, t) for n in names for t in ("START", "COMPLETE")]
    done = {e["job"]["name"]: e for e in events if e["eventType"] == "COMPLETE"}
    assert {e["run"]["facets"]["parent"]["run"]["runId"] for e in events} == {result.run_id}

    # each stage's input is exactly the version its upstream produced
    for upstream, downstream in itertools.pairwise(names):
        [produced] = done[upstream]["outputs"]
        [consumed] = done[downstream]["inputs"]
        assert (consumed["name"], consumed["facets"]["version"]) == (produced["name"], produced["facets"]["version"])
    [raw] = done["raw_conversations"]["inputs"]
    assert raw["name"] == str(data_dir / "raw")
    assert [f["path"] for f in raw["facets"][ol.FILES_FACET]["files"]] == [source.name]
    [staged] = done["scrubbed_conversations"]["outputs"]
    assert staged["name"] == str(data_dir / "staging" / "scrub")
    assert {"record_id", "messages_json"} <= {f["name"] for f in staged["facets"]["schema"]["fields"]}

    metadata = result.asset_materializations_for_node("dataset_version")[0].metadata
    version_id = metadata["dataset_version"].value
    [published] = done["dataset_version"]["outputs"]
    assert published["name"] == str(data_dir / "datasets")
    assert published["facets"]["version"]["datasetVersion"] == version_id
    assert {"record_id", "messages"} <= {f["name"] for f in published["facets"]["schema"]["fields"]}
    manifest = json.loads((data_dir / "datasets" / version_id / "manifest.json").read_text())
    assert {f["path"]: f["sha256"] for f in published["facets"][ol.FILES_FACET]["files"]} == manifest["files"]
    assert published["outputFacets"]["outputStatistics"]["rowCount"] == \
        metadata["train_examples"].value + metadata["eval_examples"].value

    text = (data_dir / "lineage" / "openlineage.jsonl").read_text(encoding="utf-8")
    texts = raw_message_texts(data_dir / "raw")
    assert len(texts) > 100
    assert sum(t in text for t in texts) == 0  # (a count: a failure message must not quote the text)
    assert structured_pii(text) == []
