"""Hostile input for every reader of raw data: chat JSONL, CSV and Parquet through a mapping, and the mapping
YAML itself (hypothesis; derandomized, no example database, so CI runs the same examples every time).

Properties: nothing raises but ``MappingError`` for a mapping file (its message names the file); every
input line or row is accepted or quarantined, once (inputs == accepted + quarantined, blank lines
counted apart); every rejection has a reason code; every accepted record can be stored by the stages
after ingest (its row in Parquet, its messages in a dataset version's schema). Minimal examples of what
the fuzzing found are kept as regular tests at the end.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fine_tune_assets.lib.common.hashing import record_id_for
from fine_tune_assets.lib.data.ingest import ingest_directory
from fine_tune_assets.lib.data.mapping import MappingError, load_mapping, load_mappings
from fine_tune_assets.lib.data.publish import MESSAGE_TYPE
from fine_tune_assets.lib.data.records import QUARANTINE_SCHEMA, RECORD_SCHEMA, Record, Rejection
from fine_tune_assets_tests.factories import TICKETS_MAPPING

FUZZ = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MAX_LINE_BYTES = 16_384  # small enough for hypothesis to reach the size guard, over the 4,300-digit int limit
COLUMNS = ("subject", "body", "cat", "prio")


# ------------------------------------------------------------------------------------------------ checks


def ingest(raw: Path, mappings: list) -> tuple[list, list]:
    reports, stream = ingest_directory(raw, mappings, max_line_bytes=MAX_LINE_BYTES)
    return reports, list(stream)


def assert_storable(items: list) -> None:
    """Every item can be written by the ingest stage, and every record's messages by a dataset version."""
    for item in items:
        if isinstance(item, Record):
            pa.Table.from_pylist([item.to_row()], schema=RECORD_SCHEMA)
            pa.array([item.messages], type=MESSAGE_TYPE)
            assert item.record_id == record_id_for(item.messages)
            assert all(isinstance(m["content"], str) and m["content"] for m in item.messages)
        else:
            assert isinstance(item, Rejection)
            assert isinstance(item.reason, str) and item.reason.strip(), item
            assert item.messages is None  # rejected at ingest: no content kept
            pa.Table.from_pylist([item.to_row()], schema=QUARANTINE_SCHEMA)


def assert_accounted(report, items: list) -> None:
    records = sum(isinstance(i, Record) for i in items)
    assert (report.records, report.rejected) == (records, len(items) - records)
    assert report.inputs == len(items) == report.records + report.rejected
    assert sum(report.reasons.values()) == report.rejected
    assert all(i.provenance.source_file == report.path for i in items)


# ------------------------------------------------------------------------------------------------ JSONL

# Any text, NUL (Cc), BOM (Cf) and lone surrogates (Cs) included: hypothesis leaves surrogates out by default.
texts = st.text(st.characters(categories=["L", "M", "N", "P", "S", "Z", "Cc", "Cf", "Cs"]), max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4), max_leaves=12)
DELETE = object()


@st.composite
def examples(draw) -> object:
    """A well-formed conversation with one field of one message set to something odd (or removed), or any
    JSON value at all."""
    if draw(st.integers(0, 4)) == 0:
        return draw(json_values)
    conversation = [{"role": "user", "content": draw(texts.filter(str.strip))},
                    {"role": "assistant", "content": draw(texts.filter(str.strip))}]
    if draw(st.booleans()):
        conversation.insert(0, {"role": "system", "content": draw(texts)})
    message = draw(st.sampled_from(conversation))
    key = draw(st.sampled_from(["role", "content", "name", "weight", "function_call", "timestamp"]))
    value = draw(st.sampled_from([DELETE, 0, 1, -1, 2, True, 0.5, "1", 2**70, "system", "tool"]) | json_values)
    if value is DELETE:
        message.pop(key, None)
    else:
        message[key] = value
    if draw(st.integers(0, 9)) == 0:
        return {"messages": draw(json_values)}  # not a list of messages at all
    return {"messages": conversation}


HOSTILE_LINES = [
    b"\xef\xbb\xbf" + json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode(),  # a BOM, not first
    b'{"messages": [{"role": "user", "content": "\\ud800"}, {"role": "assistant", "content": "a"}]}',
    b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": '
    + b"1" * 5000 + b"}]}",
    b"[" * 3000 + b"]" * 3000,
    b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": NaN}]}',
    b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": "1"}]}',
    b'{"messages": [{"role": "user", "content": "q\\u0000"}, {"\\ud83d": "a"}]}',
    b'{"messages": [{"role": "user", "content": "caf\xe9"}]}',
    b"\x00" * 10, b"\r", b"\t \x0b\x0c", b"null", b'"string"', b"1e999", b"{}", b'{"messages": []}',
    b'{"messages": [{"role": "user", "content": "' + b"x" * (MAX_LINE_BYTES + 1) + b'"}]}',
]
lines = st.one_of(
    examples().map(lambda v: json.dumps(v).encode()),  # lone surrogates as \\u escapes, NaN as NaN
    examples().map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    st.sampled_from(HOSTILE_LINES),
    st.binary(max_size=60),
)


def expected_lines(content: bytes) -> tuple[list[int], int]:
    """The non-blank physical lines (numbers) and the blank ones (count), read as the reader must: split at
    LF only, a BOM ignored at the start of the file."""
    pieces = content.split(b"\n")
    if pieces[-1] == b"":
        pieces.pop()
    if pieces and pieces[0].startswith(b"\xef\xbb\xbf"):
        pieces[0] = pieces[0][3:]
    return [n for n, p in enumerate(pieces, 1) if p.strip()], sum(not p.strip() for p in pieces)


@FUZZ
@given(lines=st.lists(lines, max_size=12), newline=st.sampled_from([b"\n", b"\r\n"]), bom=st.booleans(),
       final_newline=st.booleans())
def test_chat_jsonl_never_crashes_and_accounts_for_every_line(lines, newline, bom, final_newline):
    content = (b"\xef\xbb\xbf" if bom else b"") + newline.join(lines) + (newline if final_newline else b"")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp)
        (raw / "export.jsonl").write_bytes(content)
        reports, items = ingest(raw, [])
    (report,) = reports
    assert_accounted(report, items)
    assert_storable(items)
    numbers, blank = expected_lines(content)
    assert [i.provenance.source_line for i in items] == numbers  # one item per non-blank line, in order
    assert report.blank_lines == blank


# ------------------------------------------------------------------------------------------------ CSV

cells = st.one_of(st.text(max_size=30), st.sampled_from(['"', '""', ",", "\n", "\r\n", "\x00", "\ufeff", " ", "é"]),
                  st.integers().map(str))
headers = st.permutations([*COLUMNS, "extra"]) | st.lists(st.sampled_from([*COLUMNS, ""]) | st.text(max_size=8),
                                                       max_size=7)  # all the mapped columns, or any


@st.composite
def csv_rows(draw, width: int) -> list[list[str]]:
    """Rows of the header's width, mostly, and ragged ones."""
    return [draw(st.lists(cells, min_size=width, max_size=width) if draw(st.integers(0, 4)) else
                 st.lists(cells, max_size=width + 2)) for _ in range(draw(st.integers(0, 6)))]


def corrupt(data: bytes, how: int, where: int) -> bytes:
    """``data`` with invalid UTF-8 or a stray quote inserted, cut short, or left as it is."""
    at = where % (len(data) + 1)
    return {0: data, 1: data[:at] + b"\xff\xfe" + data[at:], 2: data[:at], 3: data[:at] + b'"' + data[at:],
            4: b"\xef\xbb\xbf" + data}[how % 5]


@FUZZ
@given(data=st.data(), header=headers, how=st.integers(0, 4), where=st.integers(0, 10_000),
       long_field=st.booleans())
def test_csv_never_crashes_and_accounts_for_every_row(data, header, how, where, long_field):
    rows = data.draw(csv_rows(len(header)))
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    for row in [header, *rows]:
        writer.writerow(row)
    if long_field:  # over the csv module's field limit (131,072 characters): that row only is unreadable
        writer.writerow(["s", "x" * 140_000, "c", "p"])
        writer.writerow(["after", "the long", "row", "P1"])
    content = corrupt(buffer.getvalue().encode("utf-8", "surrogatepass"), how, where)
    reports, items = _ingest_one_file("tickets_1.csv", content)
    (report,) = reports
    assert_accounted(report, items)
    assert_storable(items)
    assert not report.reasons.get("unreadable_file")  # a CSV is read to its end, row by row
    if long_field:
        if how % 5 in (0, 1, 4):  # not cut short, no stray quote: the long row and the one after it are read
            assert report.inputs >= 2
        return
    reference = list(csv.reader(io.StringIO(content.decode("utf-8", "surrogateescape").removeprefix("\ufeff"),
                                            newline="")))[1:]
    assert report.inputs == sum(any(f.strip() for f in r) for r in reference)
    assert report.blank_lines == sum(not any(f.strip() for f in r) for r in reference)


def _ingest_one_file(name: str, content: bytes):
    """``ingest`` over a landing folder holding ``content`` as ``raw/name``, with the tickets mapping."""
    with tempfile.TemporaryDirectory() as tmp:
        raw, mappings = Path(tmp) / "raw", Path(tmp) / "mappings"
        raw.mkdir()
        mappings.mkdir()
        (mappings / "tickets.yaml").write_text(TICKETS_MAPPING)
        (raw / name).write_bytes(content)
        return ingest(raw, load_mappings(mappings))


# ------------------------------------------------------------------------------------------------ Parquet

PARQUET_TYPES = {
    "string": (pa.string(), st.text(max_size=20) | st.sampled_from(["", "  ", "\x00"])),
    "large_string": (pa.large_string(), st.text(max_size=20)),
    "int": (pa.int64(), st.integers(-(2**63), 2**63 - 1)),
    "float": (pa.float64(), st.floats()),
    "bool": (pa.bool_(), st.booleans()),
    "binary": (pa.binary(), st.binary(max_size=20)),
    "list": (pa.list_(pa.int32()), st.lists(st.integers(-5, 5), max_size=3)),
    "struct": (pa.struct([("a", pa.string())]), st.fixed_dictionaries({"a": st.text(max_size=5)})),
    "timestamp": (pa.timestamp("us"), st.datetimes()),
    "dictionary": (pa.dictionary(pa.int8(), pa.string()), st.sampled_from(["a", "b", ""])),
}


@st.composite
def parquet_tables(draw) -> pa.Table:
    n = draw(st.integers(0, 6))
    names = draw(st.permutations([*COLUMNS, "extra"]) | st.lists(st.sampled_from([*COLUMNS, "extra"]), unique=True,
                                                                 max_size=5))
    columns = {}
    for name in names:
        arrow_type, values = PARQUET_TYPES[draw(st.sampled_from(["string"] * 5 + sorted(PARQUET_TYPES)))]
        data = draw(st.lists(st.none() | values, min_size=n, max_size=n))
        if arrow_type == pa.dictionary(pa.int8(), pa.string()):
            columns[name] = pa.array(data, pa.string()).dictionary_encode()
        else:
            columns[name] = pa.array(data, arrow_type)
    return pa.table(columns) if columns else pa.table({"unrelated": pa.array([None] * n, pa.null())})


@FUZZ
@given(table=parquet_tables(), how=st.integers(0, 4), where=st.integers(0, 10_000))
def test_parquet_never_crashes_and_accounts_for_every_row(table, how, where):
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    content = corrupt(sink.getvalue().to_pybytes(), how, where)
    reports, items = _ingest_one_file("tickets_1.parquet", content)
    (report,) = reports
    assert_accounted(report, items)
    assert_storable(items)
    if how % 5 == 0:  # intact: one item per row, rows numbered from 1
        assert [i.provenance.source_line for i in items] == list(range(1, table.num_rows + 1))


# ------------------------------------------------------------------------------------------------ mapping YAML

yaml_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts
templates = st.text(alphabet="subjectbody{}:!.[]0 ", max_size=16)
odd_values = st.one_of(yaml_scalars, templates, st.lists(yaml_scalars, max_size=2),
                       st.dictionaries(texts, yaml_scalars | st.sampled_from(COLUMNS), max_size=3))


@st.composite
def mapping_documents(draw) -> object:
    """The test's mapping with one key of the document or of one message set to something odd (or removed),
    another source kind added to a message, or any YAML value at all."""
    if draw(st.integers(0, 5)) == 0:
        return draw(odd_values)
    document = yaml.safe_load(TICKETS_MAPPING)
    targets = [document, *document["messages"]]
    target = draw(st.sampled_from(targets))
    key = draw(st.sampled_from(["name", "files", "messages", "role", "text", "column", "template", "json_fields"]))
    value = draw(st.sampled_from([DELETE, *COLUMNS]) | odd_values)
    if value is DELETE:
        target.pop(key, None)
    else:
        target[key] = value
    return document


HOSTILE_YAML = [
    b"", b"\x00", b"\xff\xfe\xfd", b"\xef\xbb\xbfname: x\n", b"[" * 2000, b"- " * 2000 + b"x",
    b"name: !!python/object/apply:os.system ['true']\nfiles: a\nmessages: []\n",
    b"a: &a [x, x]\nb: &b [*a, *a, *a]\nc: &c [*b, *b, *b]\nname: *c\nfiles: '*.csv'\nmessages: *c\n",
    b'name: x\nfiles: "*.csv"\nmessages:\n  - {role: user, text: "\\ud800"}\n',
    b"name: x\nfiles: '*.csv'\nmessages:\n  - {role: user, template: '{subject'}\n",
    b"name: x\nfiles: '*.csv'\nmessages:\n  - {role: user, template: '{subject.upper}'}\n",
    b"name: x\nfiles: [1, 2]\nmessages: []\n", b"name: x\nfiles: '*.csv'\nmessages: 5\n",
    b"name: x\nfiles: '*.csv'\nmessages: [5]\n", b"name: x\nfiles: '*.csv'\nmessages:\n  - {role: user, column: [a]}\n",
]


def tabular_files(raw: Path) -> None:
    """The same small CSV and Parquet export for every mapping: whatever the mapping says must not crash them."""
    (raw / "tickets_1.csv").write_text("subject,body,cat,prio\nRouter,It reboots,hardware,P3\n,,,\n")
    pq.write_table(pa.table({"subject": ["A", None], "body": ["b", "c"], "cat": ["x", "y"], "prio": [1, 2]}),
                   raw / "tickets_2.parquet")


@FUZZ
@given(document=st.one_of(mapping_documents().map(lambda d: yaml.safe_dump(d, allow_unicode=True).encode(
                              "utf-8", "surrogatepass")),
                          mapping_documents().map(lambda d: yaml.safe_dump(d).encode()),  # \\u escapes
                          st.sampled_from(HOSTILE_YAML), st.binary(max_size=80)))
def test_mapping_yaml_is_loaded_or_refused_by_name(document):
    with tempfile.TemporaryDirectory() as tmp:
        raw, mappings = Path(tmp) / "raw", Path(tmp) / "mappings"
        raw.mkdir()
        mappings.mkdir()
        path = mappings / "tickets.yaml"
        path.write_bytes(document)
        try:
            loaded = load_mapping(path)
        except MappingError as exc:
            assert str(exc).startswith(f"{path}: "), exc
            return
        tabular_files(raw)
        reports, items = ingest(raw, [loaded])
    for report in reports:
        assert_accounted(report, [i for i in items if i.provenance.source_file == report.path])
    assert_storable(items)
    assert sum(r.inputs for r in reports) == len(items)


# ------------------------------------------------------------------------------------------------ found by fuzzing


@pytest.mark.parametrize(("line", "reason"), [
    pytest.param(b'{"messages": [{"role": "user", "content": "\\ud800"}, {"role": "assistant", "content": "a"}]}',
                 "invalid_utf8", id="lone-surrogate-escape"),  # crashed: UnicodeEncodeError hashing the record
    pytest.param(b'{"messages": [{"role": "user", "content": "0", "weight": "1"}, {"role": "assistant", "content": '
                 b'"0"}]}', "invalid_weight", id="weight-string"),  # accepted; its dataset version failed to publish
    pytest.param(b'{"messages": [{"role": "user", "content": "0", "weight": true}, {"role": "assistant", "content": '
                 b'"0"}]}', "invalid_weight", id="weight-bool"),
    pytest.param(b'{"messages": [{"role": "user", "content": "0", "weight": 1180591620717411303424}, '
                 b'{"role": "assistant", "content": "0"}]}', "invalid_weight", id="weight-over-int64"),
    pytest.param(b'{"weight": ' + b"1" * 5000 + b"}", "invalid_json", id="number-over-the-digit-limit"),  # ValueError
    pytest.param(b"[" * 100_000, "invalid_json", id="nested-too-deep"),  # RecursionError
])
def test_jsonl_lines_found_by_fuzzing_are_quarantined(tmp_path, line, reason):
    (tmp_path / "export.jsonl").write_bytes(line + b"\n")
    (report,), stream = ingest_directory(tmp_path, [])
    assert [i.reason for i in stream] == [reason] and report.inputs == 1


@pytest.mark.parametrize("document", [
    pytest.param(b"name: x\nfiles: '*.csv'\nmessages: 5\n", id="messages-not-a-list"),  # TypeError
    pytest.param(b"name: x\nfiles: '*.csv'\nmessages: [5]\n", id="message-not-a-mapping"),  # TypeError
    pytest.param(b"name: x\nfiles: [1]\nmessages: []\n", id="glob-not-text"),  # TypeError at the first file
    pytest.param(b"name: x\nfiles: a\nmessages: [{role: user, column: [a]}]\n", id="column-a-list"),  # TypeError
    pytest.param(b"name: x\nfiles: a\nmessages: [{role: user, json_fields: [a]}]\n", id="json-fields-a-list"),
    pytest.param(b"name: x\nfiles: a\nmessages: [{role: user, template: '{a'}]\n", id="template-unclosed"),
    pytest.param(b"name: x\nfiles: a\nmessages: [{role: user, template: '{a.b}'}]\n", id="template-attribute"),
    pytest.param(b'name: x\nfiles: a\nmessages: [{role: user, text: "\\ud800"}]\n', id="lone-surrogate"),
    pytest.param(b"[" * 5000, id="nested-too-deep"),  # RecursionError
])
def test_mapping_files_found_by_fuzzing_are_refused_by_name(tmp_path, document):
    (tmp_path / "bad.yaml").write_bytes(document)
    with pytest.raises(MappingError, match=r"bad\.yaml: "):
        load_mapping(tmp_path / "bad.yaml")


def test_a_csv_field_over_the_size_limit_quarantines_its_row_only(tmp_path):
    """It ended the file's reading (``unreadable_file``): the rows after it were never accounted for."""
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "tickets.yaml").write_text(TICKETS_MAPPING)
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "tickets_1.csv").write_text(
        f"subject,body,cat,prio\nRouter,{'x' * 140_000},hardware,P3\nBill,Too high,billing,P4\n")
    (report,), items = ingest(tmp_path / "raw", load_mappings(tmp_path / "mappings"))
    assert [(i.provenance.source_line, getattr(i, "reason", "ok")) for i in items] == [(2, "malformed_row"), (3, "ok")]
    assert report.inputs == 2
