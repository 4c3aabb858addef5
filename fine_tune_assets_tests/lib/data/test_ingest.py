"""Ingestion: every line becomes a record or a quarantine entry with the right reason, file and line."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fine_tune_assets.lib.data.ingest import ingest_directory
from fine_tune_assets.lib.data.mapping import MappingError, load_mapping, load_mappings
from fine_tune_assets.lib.data.records import Record, Rejection
from fine_tune_assets_tests.factories import TICKETS_MAPPING

SYSTEM = {"role": "system", "content": "You triage tickets."}
USER = {"role": "user", "content": "My HaloBox keeps rebooting."}
ASSISTANT = {"role": "assistant", "content": '{"category": "hardware"}'}


def line(obj) -> bytes:
    return (json.dumps(obj) + "\n").encode()


BAD_LINES = [
    (b'{"messages": [{"role": "user", "content": "trunc\n', "invalid_json"),
    (b'{"messages": [{"role": "user", "content": "caf\xe9"}]}\n', "invalid_utf8"),
    (line([SYSTEM, USER]), "data_type"),
    (line({"conversation": [USER, ASSISTANT]}), "missing_messages_list"),
    (line({"messages": "hello"}), "missing_messages_list"),
    (line({"messages": [{"role": "user"}, ASSISTANT]}), "message_missing_key"),
    (line({"messages": [{**USER, "timestamp": "2026-10-01"}, ASSISTANT]}), "message_unrecognized_key"),
    (line({"messages": [{"role": "agent", "content": "hi"}, ASSISTANT]}), "unrecognized_role"),
    (line({"messages": [{"role": "user", "content": ""}, ASSISTANT]}), "missing_content"),
    (line({"messages": [SYSTEM, USER]}), "example_missing_assistant_message"),
]


@pytest.fixture()
def raw_dir(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    return raw


def run(raw, mappings=()):
    reports, stream = ingest_directory(raw, list(mappings))
    items = list(stream)
    return reports, items


def test_every_malformed_line_is_quarantined_with_reason_and_line(raw_dir):
    good = line({"messages": [SYSTEM, USER, ASSISTANT]})
    content = good + b"\n   \n" + b"".join(bad for bad, _ in BAD_LINES) + good
    (raw_dir / "export.jsonl").write_bytes(content)
    reports, items = run(raw_dir)
    rejections = [i for i in items if isinstance(i, Rejection)]
    assert [r.reason for r in rejections] == [reason for _, reason in BAD_LINES]
    # good line 1, blank lines 2-3, bad lines from 4 on, then the good line again
    assert [r.provenance.source_line for r in rejections] == list(range(4, 4 + len(BAD_LINES)))
    assert all(r.provenance.source_file == "export.jsonl" for r in rejections)
    records = [i for i in items if isinstance(i, Record)]
    assert len(records) == 2 and records[0].record_id == records[1].record_id
    report = reports[0]
    assert report.blank_lines == 2
    assert report.inputs == len(BAD_LINES) + 2 == report.records + report.rejected


def test_rejections_never_carry_raw_content(raw_dir):
    secret = "jane.doe@example.com"
    (raw_dir / "a.jsonl").write_bytes(
        line({"messages": [{"role": "user", "content": secret}]}) + b'{"messages": "' + secret.encode() + b'\n')
    _, items = run(raw_dir)
    assert len(items) == 2
    for item in items:
        assert item.messages is None
        assert secret not in item.detail


def test_record_id_is_the_content_hash_and_provenance_is_kept(raw_dir):
    (raw_dir / "a.jsonl").write_bytes(line({"messages": [USER, ASSISTANT]}))
    (raw_dir / "b.jsonl").write_bytes(b"\n" + line({"messages": [USER, ASSISTANT]}))
    reports, items = run(raw_dir)
    assert items[0].record_id == items[1].record_id
    assert (items[1].provenance.source_file, items[1].provenance.source_line) == ("b.jsonl", 2)
    assert items[1].provenance.source_sha256 == reports[1].sha256




def test_csv_through_mapping_with_bad_rows(raw_dir, tmp_path):
    (tmp_path / "tickets.yaml").write_text(TICKETS_MAPPING)
    mappings = load_mappings(tmp_path)
    (raw_dir / "tickets_1.csv").write_bytes(
        b"id,subject,body,cat,prio,customer_email\n"
        b'1,Router,"It reboots\nevery hour",hardware,P3,a@b.com\n'
        b"2,Bill,,billing,P4,c@d.com\n"
        b"\n"
        b"3,Short row\n"
        b"4,Caf\xe9,body,billing,P4,e@f.com\n"
        b"5,Outage,Down since noon,outage,P1,g@h.com\n")
    reports, items = run(raw_dir, mappings)
    kinds = [(i.provenance.source_line, i.reason if isinstance(i, Rejection) else "ok") for i in items]
    assert kinds == [(2, "ok"), (4, "missing_content"), (6, "malformed_row"), (7, "invalid_utf8"), (8, "ok")]
    first = items[0]
    assert first.mapping == "tickets"
    assert first.messages[1]["content"] == "Subject: Router\n\nIt reboots\nevery hour"
    assert json.loads(first.messages[2]["content"]) == {"category": "hardware", "priority": "P3"}
    assert "a@b.com" not in json.dumps(first.messages)  # unmapped columns never enter the dataset
    assert reports[0].blank_lines == 1 and reports[0].inputs == 5


def test_parquet_through_mapping_and_null_values(raw_dir, tmp_path):
    (tmp_path / "tickets.yaml").write_text(TICKETS_MAPPING)
    table = pa.table({"subject": ["A", "B"], "body": ["text", None], "cat": ["outage", "billing"],
                      "prio": ["P1", "P2"]})
    pq.write_table(table, raw_dir / "tickets_2.parquet")
    _, items = run(raw_dir, load_mappings(tmp_path))
    assert isinstance(items[0], Record) and items[0].provenance.source_format == "parquet"
    assert isinstance(items[1], Rejection) and items[1].reason == "missing_content"
    assert items[1].provenance.source_line == 2


def test_files_without_mapping_unknown_type_or_corrupt_are_quarantined(raw_dir, tmp_path):
    (tmp_path / "tickets.yaml").write_text(TICKETS_MAPPING)
    (raw_dir / "other.csv").write_text("a,b\n1,2\n3,4\n")
    (raw_dir / "notes.txt").write_text("hello")
    (raw_dir / "tickets_bad.parquet").write_bytes(b"PAR1 not really parquet")
    (raw_dir / ".hidden.jsonl").write_text("ignored")
    reports, items = run(raw_dir, load_mappings(tmp_path))
    by_file = {(i.provenance.source_file, i.reason) for i in items}
    assert by_file == {("other.csv", "no_mapping"), ("notes.txt", "unsupported_file_type"),
                       ("tickets_bad.parquet", "unreadable_file")}
    assert sum(r.inputs for r in reports) == len(items) == 4


def test_mapping_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nfiles: [a.csv]\nmessages:\n  - {role: user, column: a, text: b}\n")
    with pytest.raises(MappingError, match=r"bad\.yaml: message 1"):
        load_mapping(bad)


def test_line_size_guard(raw_dir):
    (raw_dir / "big.jsonl").write_bytes(line({"messages": [USER, {"role": "assistant", "content": "x" * 5000}]}))
    _reports, stream = ingest_directory(raw_dir, [], max_line_bytes=1000)
    (item,) = list(stream)
    assert item.reason == "line_too_long" and "limit 1,000" in item.detail
